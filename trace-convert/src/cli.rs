//! The `trace-convert` command line, also reachable as `hv-trace export`.
//!
//! The binary is a thin `main` over [`run`]; the work is the library's
//! ([`crate::pipeline`], [`crate::stats`]).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::error::ErrorKind;
use clap::{Parser, Subcommand};

use crate::pipeline::{convert_files, open_all, prepare};
pub use crate::pipeline::{Format, Summary};
use crate::stats;
use crate::write::text::TextOptions;

/// Read, merge and write trace-cmd .dat, ftrace text and Perfetto JSON.
#[derive(Debug, Parser)]
#[command(name = "trace-convert", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Output arguments shared by `merge` and `export`.
#[derive(Debug, Clone, clap::Args)]
pub struct OutArgs {
    /// Input files (.dat v6/v7, ftrace text).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output file (`-` for standard output).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Output format (default: from the output's extension: .dat, .json, else text).
    #[arg(short, long, value_enum)]
    pub format: Option<Format>,
    /// Text output: full nanosecond time stamps (like `trace-cmd report -t`).
    #[arg(long)]
    pub nsec: bool,
    /// Text output: `name=value` bodies (like `trace-cmd report -R`).
    #[arg(long)]
    pub raw: bool,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Put Linux and RTOS events on one time base (clock_sync), RTOS switches as sched_switch.
    Merge(OutArgs),
    /// Convert inputs (merged by time stamp, RTOS events untouched) to another format.
    Export(OutArgs),
    /// CPUs, event counts per type, time span, drops.
    Info {
        /// Input files.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
    },
    /// Per-task CPU time, runs, run lengths, period and response-time jitter.
    Stats {
        /// Input files.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Apply the RTOS merge first (so RTOS tasks appear).
        #[arg(long)]
        merge: bool,
    },
    /// RTOS jobs: release, start, completion, execution and response times, start
    /// latency, preemptions, deadline misses (needs `hv-trace record --timing`'s probes
    /// for exact releases).
    Timing(TimingArgs),
    /// Write a streamed recording's capture directory (`hv-trace record`'s
    /// OUT/capture) as a trace-cmd .dat: after a crash, as far as it came.
    Assemble {
        /// The capture directory.
        capture: PathBuf,
        /// The .dat to write.
        #[arg(short, long)]
        output: PathBuf,
    },
}

/// Arguments of the RTOS timing analysis (`trace-convert timing`, `hv-trace analyze`).
#[derive(Debug, Clone, clap::Args)]
pub struct TimingArgs {
    /// Recording(s) of one run: guest.dat or merged.dat.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// A task's deadline (default: its period), e.g. `RTOS-Task4=20ms`; repeatable.
    #[arg(long, value_name = "TASK=DURATION")]
    pub deadline: Vec<String>,
    /// The CPU-load windows' length (e.g. 100ms, 1s).
    #[arg(long, value_name = "DURATION", default_value = "1s")]
    pub window: String,
    /// Also write every job and the per-task figures as JSON (for scripts and regression checks).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also write a self-contained HTML page with plots (response-time and
    /// interrupt-latency histograms, load over time, the worst jobs).
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
}

/// Runs the timing analysis: the table on standard output, JSON to `--json`.
pub fn timing(args: &TimingArgs) -> anyhow::Result<crate::timing::Timing> {
    let mut opts = crate::timing::TimingOptions::default();
    for d in &args.deadline {
        opts.add_deadline(d).map_err(anyhow::Error::msg)?;
    }
    opts.window_ns = crate::timing::parse_duration(&args.window)
        .ok_or_else(|| anyhow::anyhow!("--window {:?}: not a duration (e.g. 100ms, 1s)", args.window))?;
    // Before the work: an output that names an input is refused up front.
    for out in args.json.iter().chain(&args.report) {
        crate::output::refuse_inputs(out, &args.inputs)?;
    }
    let traces = open_all(&args.inputs)?;
    warn(&crate::pipeline::warnings(&args.inputs, &traces));
    let (_, events) = prepare(&traces, false)?;
    let timing = crate::timing::Timing::of_events(events, &opts)?;
    for name in opts.deadlines.keys() {
        if !timing.tasks.iter().any(|t| &t.name == name) {
            eprintln!("warning: --deadline {name}: no task of that name has whole jobs in the recording");
        }
    }
    print!("{}", timing.render());
    if let Some(json) = &args.json {
        let text = serde_json::to_vec_pretty(&timing)?;
        crate::output::write_atomically(json, &text)?;
        eprintln!(
            "wrote {} jobs of {} tasks to {}",
            timing.jobs.len(),
            timing.tasks.len(),
            json.display()
        );
    }
    if let Some(report) = &args.report {
        let source: Vec<String> = args.inputs.iter().map(|p| p.display().to_string()).collect();
        crate::output::write_atomically(report, crate::report::html(&timing, &source.join(", ")).as_bytes())?;
        eprintln!("wrote the report to {}", report.display());
    }
    Ok(timing)
}

/// Runs `merge` or `export` with their arguments.
pub fn convert(args: &OutArgs, rtos_merge: bool) -> anyhow::Result<Summary> {
    let opts = TextOptions {
        nsec: args.nsec,
        raw: args.raw,
    };
    convert_files(&args.inputs, &args.output, args.format, opts, rtos_merge)
}

/// What the readers skipped, on standard error.
fn warn(warnings: &[String]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}

/// Runs a parsed command line, printing to standard output.
pub fn execute(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Merge(a) => {
            let s = convert(&a, true)?;
            warn(&s.warnings);
            if a.output != Path::new("-") {
                eprintln!("wrote {} events on {} CPUs to {}", s.events, s.cpus, a.output.display());
            }
        }
        Command::Export(a) => {
            let s = convert(&a, false)?;
            warn(&s.warnings);
            if a.output != Path::new("-") {
                eprintln!("wrote {} events on {} CPUs to {}", s.events, s.cpus, a.output.display());
            }
        }
        Command::Info { inputs } => {
            for p in &inputs {
                let t = crate::pipeline::open(p)?;
                let (info, _) = stats::collect(t.meta(), t.events())?;
                println!("{}:", p.display());
                print!("{}", info.render(t.meta()));
            }
        }
        Command::Stats { inputs, merge } => {
            let traces = open_all(&inputs)?;
            warn(&crate::pipeline::warnings(&inputs, &traces));
            let (meta, events) = prepare(&traces, merge)?;
            let (_, st) = stats::collect(&meta, events)?;
            print!("{}", st.render());
        }
        Command::Timing(args) => {
            timing(&args)?;
        }
        Command::Assemble { capture, output } => {
            let a = crate::capture::assemble(&capture, &output)?;
            eprintln!(
                "wrote {} pages of {} CPUs to {}{}",
                a.pages,
                a.cpus,
                output.display(),
                if a.ended {
                    ""
                } else {
                    " (the stream had not ended: it stops where the data did)"
                }
            );
        }
    }
    Ok(())
}

/// Parses `args` (including the program name) and runs them.
pub fn run<I, T>(args: I) -> anyhow::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match Cli::try_parse_from(args) {
        Ok(cli) => execute(cli),
        // --help and --version are answers, not errors.
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            e.print()?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
