//! The `trace-convert` command line, also reachable as `hv-trace export`.
//!
//! The binary is a thin `main` over [`run`]; other tools can call [`run`] with their own
//! argument list, or [`convert`] directly.

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};

use crate::event::TraceMeta;
use crate::merge;
use crate::stats;
use crate::stream::{Merged, Trace};
use crate::write::dat::{DatHeader, DatWriter};
use crate::write::json::JsonWriter;
use crate::write::text::{TextOptions, TextWriter};
use crate::write::EventSink;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// trace-cmd `.dat` version 6.
    Dat,
    /// ftrace text in `trace-cmd report`'s layout.
    Text,
    /// Chrome/Perfetto JSON trace events.
    Json,
}

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
}

/// What [`convert`] wrote.
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    /// Events written.
    pub events: u64,
    /// CPUs declared in the output.
    pub cpus: u32,
}

fn open_all(inputs: &[PathBuf]) -> anyhow::Result<Vec<Trace>> {
    inputs
        .iter()
        .map(|p| Trace::open(p).with_context(|| format!("cannot read {}", p.display())))
        .collect()
}

fn guess_format(out: &Path) -> Format {
    match out.extension().and_then(|e| e.to_str()) {
        Some("dat") => Format::Dat,
        Some("json") => Format::Json,
        _ => Format::Text,
    }
}

/// Events and metadata of `traces`, with or without the RTOS merge.
pub fn prepare(traces: &[Trace], rtos_merge: bool) -> crate::Result<(TraceMeta, Merged)> {
    if rtos_merge {
        let plan = merge::plan(traces)?;
        let meta = merge::merged_meta(traces, &plan);
        let events = merge::merged_events(traces, &plan, &meta);
        Ok((meta, events))
    } else {
        let mut meta = traces.first().map(|t| t.meta().clone()).unwrap_or_default();
        for t in traces.iter().skip(1) {
            meta.cpus = meta.cpus.max(t.meta().cpus);
            for f in &t.meta().formats {
                if meta.format(&f.system, &f.name).is_none() {
                    meta.formats.push(f.clone());
                }
            }
        }
        let streams = traces.iter().flat_map(|t| t.streams()).collect();
        Ok((meta, Merged::new(streams)))
    }
}

/// Writes `events` to `out` in `format`.
pub fn write_events(
    meta: &TraceMeta,
    events: Merged,
    format: Format,
    out: &Path,
    text_opts: TextOptions,
) -> anyhow::Result<Summary> {
    let mut n = 0u64;
    let to_stdout = out == Path::new("-");
    let mut run = |sink: &mut dyn EventSink, events: Merged| -> anyhow::Result<()> {
        for ev in events {
            let ev = ev?;
            sink.event(&ev)?;
            n += 1;
        }
        sink.finish()?;
        Ok(())
    };
    match format {
        Format::Dat => {
            if to_stdout {
                bail!("a .dat output needs a file (-o FILE), not standard output");
            }
            let f = File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
            let mut w = DatWriter::new(BufWriter::new(f), DatHeader::from_meta(meta), &meta.formats)?;
            run(&mut w, events)?;
        }
        Format::Text | Format::Json => {
            let sink: Box<dyn Write> = if to_stdout {
                Box::new(BufWriter::with_capacity(1 << 16, std::io::stdout().lock()))
            } else {
                Box::new(BufWriter::with_capacity(
                    1 << 16,
                    File::create(out).with_context(|| format!("cannot create {}", out.display()))?,
                ))
            };
            if format == Format::Text {
                run(&mut TextWriter::new(sink, meta, text_opts)?, events)?;
            } else {
                run(&mut JsonWriter::new(sink, meta)?, events)?;
            }
        }
    }
    Ok(Summary {
        events: n,
        cpus: meta.cpus,
    })
}

/// Reads `inputs`, optionally applies the RTOS merge, and writes `out`.
pub fn convert(args: &OutArgs, rtos_merge: bool) -> anyhow::Result<Summary> {
    let traces = open_all(&args.inputs)?;
    let (meta, events) = prepare(&traces, rtos_merge)?;
    let format = args.format.unwrap_or_else(|| guess_format(&args.output));
    let opts = TextOptions {
        nsec: args.nsec,
        raw: args.raw,
    };
    write_events(&meta, events, format, &args.output, opts)
        .with_context(|| format!("cannot write {}", args.output.display()))
}

/// Runs a parsed command line, printing to standard output.
pub fn execute(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Merge(a) => {
            let s = convert(&a, true)?;
            if a.output != Path::new("-") {
                eprintln!("wrote {} events on {} CPUs to {}", s.events, s.cpus, a.output.display());
            }
        }
        Command::Export(a) => {
            let s = convert(&a, false)?;
            if a.output != Path::new("-") {
                eprintln!("wrote {} events on {} CPUs to {}", s.events, s.cpus, a.output.display());
            }
        }
        Command::Info { inputs } => {
            for p in &inputs {
                let t = Trace::open(p).with_context(|| format!("cannot read {}", p.display()))?;
                let (info, _) = stats::collect(t.meta(), t.events())?;
                println!("{}:", p.display());
                print!("{}", info.render(t.meta()));
            }
        }
        Command::Stats { inputs, merge } => {
            let traces = open_all(&inputs)?;
            let (meta, events) = prepare(&traces, merge)?;
            let (_, st) = stats::collect(&meta, events)?;
            print!("{}", st.render());
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
    execute(Cli::try_parse_from(args)?)
}
