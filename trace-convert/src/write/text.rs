//! ftrace text output in `trace-cmd report`'s layout.
//!
//! ```text
//! cpus=2
//!            <idle>-0     [001]   257.755444: irq_handler_exit:     irq=36 ret=handled
//! ```
//! Time stamps are rounded to microseconds as `trace-cmd report` does (or printed in full
//! nanoseconds with [`TextOptions::nsec`], like `trace-cmd report -t`); `raw` prints bodies as
//! `name=value` pairs like `trace-cmd report -R`. With several buffers, each line starts with the
//! buffer's name (`tcinst: `), the top buffer's lines with as many spaces.

use std::fmt::Write as _;
use std::io::Write;

use super::EventSink;
use crate::error::Result;
use crate::event::{Event, Missed, TraceMeta};
use crate::printfmt::BodyPrinter;

/// Text layout choices.
#[derive(Debug, Clone, Copy, Default)]
pub struct TextOptions {
    /// Nanosecond time stamps (`trace-cmd report -t`).
    pub nsec: bool,
    /// Bodies as `name=value` (`trace-cmd report -R`).
    pub raw: bool,
}

/// Writes events as text lines.
pub struct TextWriter<W: Write> {
    out: W,
    opts: TextOptions,
    prefixes: Vec<String>,
    printer: BodyPrinter,
    line: String,
}

impl<W: Write> TextWriter<W> {
    /// A writer for a trace described by `meta`; writes the `cpus=N` header line at once.
    pub fn new(mut out: W, meta: &TraceMeta, opts: TextOptions) -> Result<Self> {
        writeln!(out, "cpus={}", meta.cpus)?;
        let prefixes = if meta.buffers.len() > 1 {
            let w = meta.buffers.iter().map(|b| b.name.len()).max().unwrap_or(0) + 2;
            meta.buffers
                .iter()
                .map(|b| {
                    if b.name.is_empty() {
                        " ".repeat(w)
                    } else {
                        format!("{}: ", b.name)
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(TextWriter {
            out,
            opts,
            prefixes,
            printer: BodyPrinter::with_kallsyms(&meta.kallsyms),
            line: String::with_capacity(256),
        })
    }

    /// Formats one event line (without the newline) into `line`.
    pub fn format_line(&mut self, ev: &Event) {
        let l = &mut self.line;
        l.clear();
        let prefix = self.prefixes.get(ev.buffer as usize).map(String::as_str).unwrap_or("");
        // trace-cmd prints the buffer prefix once for a drop line and the event after it.
        match ev.missed_before {
            Missed::None => l.push_str(prefix),
            Missed::Unknown => {
                let _ = writeln!(l, "{prefix}CPU:{} [EVENTS DROPPED]", ev.cpu);
            }
            Missed::Count(n) => {
                let _ = writeln!(l, "{prefix}CPU:{} [{n} EVENTS DROPPED]", ev.cpu);
            }
        }
        let _ = write!(l, "{:>16}-{:<5} [{:03}] ", ev.comm, ev.pid, ev.cpu);
        if self.opts.nsec {
            let _ = write!(l, "{:5}.{:09}: ", ev.ts_ns / 1_000_000_000, ev.ts_ns % 1_000_000_000);
        } else {
            let us = ev.ts_ns / 1000 + u64::from(ev.ts_ns % 1000 >= 500);
            let _ = write!(l, "{:5}.{:06}: ", us / 1_000_000, us % 1_000_000);
        }
        let name_start = l.len();
        l.push_str(&ev.format.name);
        l.push(':');
        let w = if self.opts.raw { 22 } else { 21 };
        while l.len() - name_start < w {
            l.push(' ');
        }
        l.push(' ');
        if self.opts.raw {
            self.printer.raw(ev, l);
        } else {
            self.printer.print(ev, l);
        }
    }
}

impl<W: Write> EventSink for TextWriter<W> {
    fn event(&mut self, ev: &Event) -> Result<()> {
        self.format_line(ev);
        self.line.push('\n');
        self.out.write_all(self.line.as_bytes())?;
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.out.flush()?;
        Ok(())
    }
}
