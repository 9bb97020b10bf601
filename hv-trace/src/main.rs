//! `hv-trace`: build, boot and drive the traced system, then export and view
//! its traces. A thin layer: arguments become a plan, library code does the work.

mod artifacts;
mod bench;
mod commands;
mod fingerprint;
mod paths;
mod profile;
mod profile_kernel;
mod progress;
mod qemu;
mod session;
mod system;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "hv-trace",
    version,
    about = "Trace an RTOS and Linux side by side under a small hypervisor, on one timeline"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

/// Which VM a probe goes into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Vm {
    Rtos,
    Linux,
}

impl Vm {
    pub fn id(self) -> u8 {
        match self {
            Vm::Linux => 0,
            Vm::Rtos => 1,
        }
    }
}

/// What a probe records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProbeKind {
    /// A context switch: current task → highest-ready task.
    Switch,
    /// A plain hit with the current task.
    Plain,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build target artifacts into the cache and print their paths.
    Build {
        #[arg(value_enum, default_value = "all")]
        target: artifacts::Target,
        /// Print a JSON object: artifact name -> absolute path.
        #[arg(long)]
        json: bool,
        /// RTOS application: paper (default) or sync.
        #[arg(long)]
        rtos_app: Option<String>,
        /// Build the RTOS with its ground-truth context-switch log.
        #[arg(long)]
        ground_truth: bool,
    },
    /// Boot the system in QEMU and stream its console.
    Run(commands::RunArgs),
    /// Time from QEMU start to the RTOS's first task output and to Linux's init.
    BootTime {
        /// Boots to measure.
        #[arg(long, default_value_t = 3)]
        runs: u32,
    },
    /// Stop the running system (Linux powers off; QEMU is stopped if it does not).
    Stop,
    /// Insert, remove or list probes in the running system.
    Probe {
        #[command(subcommand)]
        action: ProbeCmd,
    },
    /// Run a shell command in the running Linux guest (its output and status).
    Exec {
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Record with the real trace-cmd in the Linux guest and bring trace.dat home.
    Record {
        /// Seconds to record.
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        /// Directory for guest.dat.
        #[arg(long, default_value = "hv-trace-out")]
        out: PathBuf,
    },
    /// The whole story in one command: boot, probe the RTOS's context switches,
    /// record both OSes, merge, summarise, view.
    Demo(commands::DemoArgs),
    /// Measure the tracing overhead: UnixBench-style workloads in the Linux
    /// guest, native vs. under the hypervisor vs. traced, with ftrace and
    /// kprobe peers; prints a table, writes CSV and an SVG chart.
    Bench(bench::BenchArgs),
    /// Count, instruction by instruction, what the hypervisor executes per
    /// probe hit (QEMU's single-stepped exec log of its code).
    ProfileHits(profile::ProfileArgs),
    /// Count where a bench workload's instructions go (hypervisor, Linux
    /// kernel symbols, user, RTOS) per loop, in each bench mode, from QEMU's
    /// single-stepped exec log under -icount.
    ProfileKernel(profile_kernel::ProfileKernelArgs),
    /// Open a trace (.dat, ftrace text, merged files) in the terminal timeline viewer.
    View { file: PathBuf },
    /// trace-convert: merge/export/info/stats of trace files (see `hv-trace export help`).
    #[command(disable_help_flag = true)]
    Export {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

#[derive(Subcommand)]
enum ProbeCmd {
    /// Insert a probe: a symbol, symbol+offset or address of the VM's image.
    Add {
        target: String,
        #[arg(long, value_enum, default_value = "rtos")]
        vm: Vm,
        /// What a hit records (default: switch for the RTOS's context-switch
        /// functions, plain otherwise).
        #[arg(long, value_enum)]
        kind: Option<ProbeKind>,
    },
    /// Remove a probe by id or by the symbol it was added at.
    Remove {
        target: String,
        #[arg(long, value_enum, default_value = "rtos")]
        vm: Vm,
    },
    /// List the probes of the running system.
    List,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("hv-trace: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Cmd::Build {
            target,
            json,
            rtos_app,
            ground_truth,
        } => {
            let built = artifacts::build(target, &artifacts::Options { rtos_app, ground_truth })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&built)?);
            } else {
                for (name, path) in &built {
                    println!("{name:<14} {}", path.display());
                }
            }
        }
        Cmd::Run(args) => commands::run(args)?,
        Cmd::BootTime { runs } => commands::boot_time(runs)?,
        Cmd::Stop => {
            session::stop_other()?;
            eprintln!("[hv-trace] stopped");
        }
        Cmd::Probe { action } => match action {
            ProbeCmd::Add { target, vm, kind } => commands::probe_add(&target, vm, kind)?,
            ProbeCmd::Remove { target, vm } => commands::probe_remove(&target, vm)?,
            ProbeCmd::List => commands::probe_list()?,
        },
        Cmd::Record { duration, out } => {
            let mut ctl = session::Control::connect(&session::dir())?;
            let path = commands::record(&mut ctl, duration, &out, None)?;
            println!("{}", path.display());
        }
        Cmd::Demo(args) => commands::demo(args)?,
        Cmd::Exec { command } => {
            let mut ctl = session::Control::connect(&session::dir())?;
            let out = ctl.exec(&command.join(" "), std::time::Duration::from_secs(3600))?;
            print!("{}", out.text);
            if out.status != 0 {
                return Ok(ExitCode::from(u8::try_from(out.status).unwrap_or(1).max(1)));
            }
        }
        Cmd::Bench(args) => return bench::run(args),
        Cmd::ProfileHits(args) => profile::run(args)?,
        Cmd::ProfileKernel(args) => profile_kernel::run(args)?,
        Cmd::View { file } => viewer::run_app(&file)?,
        Cmd::Export { args } => {
            let mut full = vec![std::ffi::OsString::from("hv-trace export")];
            full.extend(args);
            trace_convert::cli::run(full)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
