//! The pipeline every tool calls: open trace files, put them on one time
//! base (the RTOS merge) or merge them by time stamp as they are, and write
//! the result as .dat, text or JSON. The `trace-convert` command line, the
//! `hv-trace demo` and the analyses all go through these functions.

use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::event::TraceMeta;
use crate::merge;
use crate::output::{refuse_inputs, OutputFile};
use crate::stream::{Merged, Trace};
use crate::write::dat::{DatHeader, DatWriter};
use crate::write::json::JsonWriter;
use crate::write::text::{TextOptions, TextWriter};
use crate::write::EventSink;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// trace-cmd `.dat` version 6.
    Dat,
    /// ftrace text in `trace-cmd report`'s layout.
    Text,
    /// Chrome/Perfetto JSON trace events.
    Json,
}

/// What [`convert_files`] wrote.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Events written.
    pub events: u64,
    /// CPUs declared in the output.
    pub cpus: u32,
    /// What the inputs' readers skipped (see `TraceMeta::warnings`).
    pub warnings: Vec<String>,
}

/// Every input's warnings, each prefixed with its file.
pub fn warnings(inputs: &[PathBuf], traces: &[Trace]) -> Vec<String> {
    inputs
        .iter()
        .zip(traces)
        .flat_map(|(p, t)| t.meta().warnings.iter().map(move |w| format!("{}: {w}", p.display())))
        .collect()
}

/// Opens every input (see [`open`]).
pub fn open_all(inputs: &[PathBuf]) -> anyhow::Result<Vec<Trace>> {
    inputs.iter().map(|p| open(p)).collect()
}

/// Opens one input; the error names the file once.
pub fn open(path: &Path) -> anyhow::Result<Trace> {
    Trace::open(path).map_err(|e| match e {
        // These name the file themselves.
        crate::Error::Io { .. } | crate::Error::NotATrace { .. } => anyhow::Error::new(e),
        e => anyhow::Error::new(e).context(format!("cannot read {}", path.display())),
    })
}

pub fn guess_format(out: &Path) -> Format {
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

/// Writes `events` to `out` in `format` (`-`: standard output), a file
/// complete or not at all (`output::OutputFile`).
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
    if to_stdout {
        if format == Format::Dat {
            bail!("a .dat output needs a file (-o FILE), not standard output");
        }
        let sink = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
        if format == Format::Text {
            run(&mut TextWriter::new(sink, meta, text_opts)?, events)?;
        } else {
            run(&mut JsonWriter::new(sink, meta)?, events)?;
        }
    } else {
        // Complete or not at all: a temporary file renamed into place.
        let file = OutputFile::create(out, &[])?;
        let sink = BufWriter::with_capacity(1 << 16, file.writer()?);
        match format {
            Format::Dat => run(
                &mut DatWriter::new(sink, DatHeader::from_meta(meta), &meta.formats)?,
                events,
            )?,
            Format::Text => run(&mut TextWriter::new(sink, meta, text_opts)?, events)?,
            Format::Json => run(&mut JsonWriter::new(sink, meta)?, events)?,
        }
        file.commit()?;
    }
    Ok(Summary {
        events: n,
        cpus: meta.cpus,
        warnings: meta.warnings.clone(),
    })
}

/// Reads `inputs`, applies the RTOS merge when `rtos_merge` (else merges by
/// time stamp as they are), and writes `output` in `format` (by default the
/// one its extension names).
pub fn convert_files(
    inputs: &[PathBuf],
    output: &Path,
    format: Option<Format>,
    text_opts: TextOptions,
    rtos_merge: bool,
) -> anyhow::Result<Summary> {
    // Before anything is opened or created: the output must not destroy an input.
    if output != Path::new("-") {
        refuse_inputs(output, inputs)?;
    }
    let traces = open_all(inputs)?;
    let (mut meta, events) = prepare(&traces, rtos_merge)?;
    meta.warnings = warnings(inputs, &traces);
    let format = format.unwrap_or_else(|| guess_format(output));
    write_events(&meta, events, format, output, text_opts).with_context(|| format!("cannot write {}", output.display()))
}
