//! `hv-trace`: build, boot and drive the traced system, then export and view
//! its traces. A thin layer: arguments become a plan, the library
//! (`hv_trace::target`, `hv_trace::measure`, trace-convert, the viewer) does
//! the work.

mod cli;

use clap::{Parser, Subcommand};
use hv_trace::measure::bench::BenchArgs;
use hv_trace::measure::profile_kernel::ProfileKernelArgs;
use hv_trace::target::artifacts;
use hv_trace::target::control::Control;
use hv_trace::target::probe::{ProbeKind, Vm};
use hv_trace::target::{hvtrace, record, session};
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
    Run(cli::run::RunArgs),
    /// Time from QEMU start to the RTOS's first task output and to Linux's init.
    BootTime {
        /// Boots to measure.
        #[arg(long, default_value_t = 3)]
        runs: u32,
    },
    /// Stop the running system (a recording of it first ends and writes its file; then
    /// Linux powers off, and QEMU is stopped if it does not).
    Stop,
    /// Insert, remove or list probes in the running system.
    Probe {
        #[command(subcommand)]
        action: ProbeCmd,
    },
    /// Set a variable of a running VM by its name in the VM's ELF, e.g. the
    /// paper app's overload knob: `hv-trace set App_Overload 10`. The
    /// hypervisor writes it through the VM's own page tables; only .data and
    /// .bss variables of 1, 2, 4 or 8 bytes.
    Set {
        variable: String,
        /// Decimal, 0x hex, or negative.
        #[arg(allow_hyphen_values = true)]
        value: String,
        #[arg(long, value_enum, default_value = "rtos")]
        vm: Vm,
    },
    /// Soak the running system: fork, pipe and I/O storms on every Linux CPU,
    /// probes in both OSes (the RTOS's switches and tick, Linux's
    /// `__switch_to`), for MINUTES; prints hits, records, drops, the RTOS's
    /// overruns against an untraced stretch of the same load, and the
    /// guest's memory over time. Best on `hv-trace run --cores 4`.
    Soak {
        /// Minutes traced.
        #[arg(long, default_value_t = 30.0)]
        minutes: f64,
        /// Minutes of the same load untraced first (the overruns to compare with).
        #[arg(long, default_value_t = 5.0)]
        baseline: f64,
    },
    /// Run a shell command in the running Linux guest (its output and status).
    Exec {
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Bring a file home from the Linux guest, checked against the size and
    /// SHA-256 the guest states (over the binary data port when there is one).
    Fetch {
        /// The file in the guest.
        guest_file: String,
        /// Where to write it (default: its name, in the current directory).
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Record both OSes, streamed home while it runs (ftrace's pages over the
    /// binary data port, written to OUT/capture/ as they arrive, then
    /// OUT/guest.dat). Without --duration, until Ctrl-C or `hv-trace stop`.
    Record {
        /// Seconds to record (default: until Ctrl-C).
        #[arg(long)]
        duration: Option<f64>,
        /// Record with the real trace-cmd in the guest instead, and bring its
        /// file home at the end (needs --duration; bounded by the guest's RAM).
        #[arg(long)]
        trace_cmd: bool,
        #[command(flatten)]
        selection: SelectionArgs,
        /// Directory for guest.dat.
        #[arg(long, default_value = "hv-trace-out")]
        out: PathBuf,
        /// First insert the RTOS probes `hv-trace analyze` needs for exact job
        /// releases (its context switches, each tick's OSTime, each delay's
        /// length), those not in yet.
        #[arg(long)]
        timing: bool,
    },
    /// The whole story in one command: boot, probe the RTOS's context switches,
    /// record both OSes, merge, summarise, view.
    Demo(cli::demo::DemoArgs),
    /// Measure the tracing overhead: UnixBench-style workloads in the Linux
    /// guest, native vs. under the hypervisor vs. traced, with ftrace and
    /// kprobe peers; prints a table, writes CSV and an SVG chart.
    Bench(BenchArgs),
    /// Count, instruction by instruction, what the hypervisor executes per
    /// probe hit (QEMU's single-stepped exec log of its code).
    ProfileHits(cli::profile_hits::ProfileHitsArgs),
    /// Count where a bench workload's instructions go (hypervisor, Linux
    /// kernel symbols, user, RTOS) per loop, in each bench mode, from QEMU's
    /// single-stepped exec log under -icount.
    ProfileKernel(ProfileKernelArgs),
    /// Open a trace (.dat, ftrace text, merged files) in the terminal timeline viewer;
    /// with --live, record both OSes (streamed home) and show the timeline as it grows.
    View {
        /// The trace to open (not with --live).
        #[arg(required_unless_present = "live", conflicts_with = "live")]
        file: Option<PathBuf>,
        /// Record the running system and show it live: the newest events within
        /// about a second; `f` follows them or stops following, End follows.
        #[arg(long)]
        live: bool,
        /// --live: seconds to record (default: until you quit).
        #[arg(long, requires = "live")]
        duration: Option<f64>,
        /// --live: directory for guest.dat and the capture.
        #[arg(long, default_value = "hv-trace-live", requires = "live")]
        out: PathBuf,
        #[command(flatten)]
        selection: SelectionArgs,
    },
    /// RTOS timing of a recording: each task's jobs (release, start, completion),
    /// execution and response times, start latency, period, jitter, deadline misses.
    /// Record with `--timing` for exact releases.
    Analyze(trace_convert::cli::TimingArgs),
    /// trace-convert: merge/export/info/stats of trace files (see `hv-trace export help`).
    #[command(disable_help_flag = true)]
    Export {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

/// What a streamed recording takes besides both OSes' switches and wake-ups.
#[derive(clap::Args)]
struct SelectionArgs {
    /// More ftrace events, as trace-cmd's -e: `irq:*`, `timer:hrtimer_start` (repeatable).
    #[arg(long = "event", short = 'e', value_name = "SYSTEM:EVENT")]
    events: Vec<String>,
    /// An ftrace tracer as well, as trace-cmd's -p: `function`, `function_graph`.
    #[arg(long, short = 'p', value_name = "TRACER")]
    tracer: Option<String>,
}

impl SelectionArgs {
    fn selection(&self) -> anyhow::Result<hv_trace::target::stream::Selection> {
        hv_trace::target::stream::Selection::new(&self.events, self.tracer.as_deref())
    }
}

#[derive(Subcommand)]
enum ProbeCmd {
    /// Insert a probe: a symbol, symbol+offset or address of the VM's image,
    /// or FUNCTION%return; then up to 8 values each hit fetches, as `perf
    /// probe` takes them (`pevent->OSEventCnt`, `ticks`, `OSTime`,
    /// `pname:string`, `cnt=+8(%x0):u32`, `$comm`, `$retval`, …). The target
    /// and its arguments may also be one quoted string.
    Add {
        #[arg(required = true, num_args = 1.., value_name = "TARGET [ARG]...")]
        spec: Vec<String>,
        #[arg(long, value_enum, default_value = "rtos")]
        vm: Vm,
        /// What a hit records (default: switch for the RTOS's context-switch
        /// functions, plain otherwise).
        #[arg(long, value_enum)]
        kind: Option<ProbeKind>,
    },
    /// Remove a probe by id or by what it was added at (FUNCTION%return
    /// removes the function's entry and return probes).
    Remove {
        target: String,
        #[arg(long, value_enum, default_value = "rtos")]
        vm: Vm,
    },
    /// List the probes of the running system.
    List,
    /// What can be fetched at a site: parameters and locals with their types
    /// and where they are (like `perf probe -V`). Needs no running system.
    Vars {
        target: String,
        #[arg(long, value_enum, default_value = "rtos")]
        vm: Vm,
    },
    /// How a probe at each function entry of the image would run the
    /// instruction it displaces: simulated, emulated (no window for another
    /// core to slip past), single-stepped in place, or refused.
    Sites {
        #[arg(long, value_enum, default_value = "rtos")]
        vm: Vm,
        /// Name this many functions of each kind.
        #[arg(long, default_value_t = 0)]
        show: usize,
    },
    /// Functions that can be probed, optionally matching a pattern with `*`
    /// (like `perf probe -F`). Needs no running system.
    Funcs {
        pattern: Option<String>,
        #[arg(long, value_enum, default_value = "rtos")]
        vm: Vm,
    },
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
        } => cli::build::build(target, json, artifacts::Options { rtos_app, ground_truth })?,
        Cmd::Run(args) => cli::run::run(args)?,
        Cmd::BootTime { runs } => cli::boot_time::boot_time(runs)?,
        Cmd::Stop => {
            if record::end_running(&session::dir()) {
                eprintln!("[hv-trace] the recording ended and wrote its file");
            }
            session::stop_other()?;
            eprintln!("[hv-trace] stopped");
        }
        Cmd::Probe { action } => match action {
            ProbeCmd::Add { spec, vm, kind } => cli::probe::add(&spec, vm, kind)?,
            ProbeCmd::Remove { target, vm } => cli::probe::remove(&target, vm)?,
            ProbeCmd::List => cli::probe::list()?,
            ProbeCmd::Vars { target, vm } => cli::probe::vars(&target, vm)?,
            ProbeCmd::Sites { vm, show } => cli::probe::sites(vm, show)?,
            ProbeCmd::Funcs { pattern, vm } => cli::probe::funcs(pattern.as_deref(), vm)?,
        },
        Cmd::Set { variable, value, vm } => cli::probe::set(&variable, &value, vm)?,
        Cmd::Record {
            duration,
            trace_cmd,
            selection,
            out,
            timing,
        } => {
            let selection = selection.selection()?;
            let dir = session::dir();
            let mut ctl = Control::connect(&dir)?;
            if timing {
                let images = hv_trace::target::system::load_artifacts(&dir)?;
                let ids = hvtrace::ensure_timing_probes(&mut ctl, &images)?;
                eprintln!("[hv-trace] timing probes added: {ids:?}");
            }
            let path = if trace_cmd {
                let d = anyhow::Context::context(duration, "--trace-cmd records for a --duration")?;
                record::record_with_trace_cmd(&mut ctl, d, &out, None)?
            } else {
                let streamed = record::record(&mut ctl, duration, &out, None, &selection)?;
                print!("{}", streamed.render());
                streamed.path
            };
            if timing {
                eprintln!("[hv-trace] its RTOS jobs: hv-trace analyze {}", path.display());
            }
            println!("{}", path.display());
        }
        Cmd::Soak { minutes, baseline } => {
            anyhow::ensure!(
                minutes > 0.0 && baseline >= 0.0,
                "--minutes must be positive and --baseline not negative"
            );
            let dir = session::dir();
            let images = hv_trace::target::system::load_artifacts(&dir)?;
            let mut ctl = Control::connect(&dir)?;
            let plan = hv_trace::target::soak::Plan {
                dir: &dir,
                images: &images,
                minutes,
                baseline,
            };
            let s = hv_trace::target::soak::soak(&mut ctl, &plan, &mut |l| eprintln!("[hv-trace] soak: {l}"))?;
            print!("{}", s.render());
            if !s.accounted() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Cmd::Fetch { guest_file, out } => cli::fetch::fetch(&guest_file, out)?,
        Cmd::Demo(args) => cli::demo::demo(args)?,
        Cmd::Exec { command } => {
            let mut ctl = Control::connect(&session::dir())?;
            let out = ctl.exec(&command.join(" "), std::time::Duration::from_secs(3600))?;
            print!("{}", out.text);
            if out.status != 0 {
                return Ok(ExitCode::from(u8::try_from(out.status).unwrap_or(1).max(1)));
            }
        }
        Cmd::Bench(args) => return cli::bench::bench(args),
        Cmd::ProfileHits(args) => cli::profile_hits::profile_hits(args)?,
        Cmd::ProfileKernel(args) => cli::profile_kernel::profile_kernel(args)?,
        Cmd::View {
            file,
            live,
            duration,
            out,
            selection,
        } => match file {
            Some(file) => viewer::run_app(&file)?,
            None if live => {
                let ctl = Control::connect(&session::dir())?;
                let rec = cli::live::LiveRecording::start(ctl, &out, duration, None, &selection.selection()?)?;
                let (streamed, _) = viewer::run_live(rec)?.finish()?;
                print!("{}", streamed.render());
                println!("{}", streamed.path.display());
                if let Some(m) = &streamed.merged {
                    println!("{}", m.display());
                }
            }
            None => anyhow::bail!("name a trace to view, or --live"),
        },
        Cmd::Analyze(args) => {
            trace_convert::cli::timing(&args)?;
        }
        Cmd::Export { args } => {
            let mut full = vec![std::ffi::OsString::from("hv-trace export")];
            full.extend(args);
            trace_convert::cli::run(full)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
