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
    /// Names learned from scheduler events for pids the saved cmdlines do
    /// not have, as trace-cmd's sched plugin learns them.
    learned: std::collections::HashMap<i32, std::sync::Arc<str>>,
    /// Pids the saved cmdlines name.
    saved: std::collections::HashSet<i32>,
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
            learned: std::collections::HashMap::new(),
            saved: meta.cmdlines.pids().collect(),
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
        let comm = match self.learned.get(&ev.pid) {
            Some(name) if &*ev.comm == "<...>" => name,
            _ => &ev.comm,
        };
        let _ = write!(l, "{:>16}-{:<5} [{:03}] ", comm, ev.pid, ev.cpu);
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
        // A body that ends its own line (a trace_marker text) ends where
        // trace-cmd's does: one line an event.
        if l.ends_with('\n') {
            l.pop();
        }
        self.learn(ev);
    }

    /// A switch or wake-up names its tasks: pids without a saved name are
    /// shown by that name from the next line on (trace-cmd does the same;
    /// it never replaces a saved name).
    fn learn(&mut self, ev: &Event) {
        if ev.format.system != "sched" {
            return;
        }
        let pairs: &[(&str, &str)] = match ev.format.name.as_str() {
            "sched_switch" => &[("prev_pid", "prev_comm"), ("next_pid", "next_comm")],
            "sched_wakeup" | "sched_wakeup_new" | "sched_waking" => &[("pid", "comm")],
            _ => return,
        };
        for (pid, comm) in pairs {
            let (Some(pid), Some(comm)) = (ev.int(pid), ev.str(comm)) else {
                continue;
            };
            let pid = pid as i32;
            if pid != 0 && !self.saved.contains(&pid) {
                self.learned.entry(pid).or_insert_with(|| std::sync::Arc::from(comm));
            }
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
