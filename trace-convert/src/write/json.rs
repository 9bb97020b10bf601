//! Chrome trace-event JSON (the "JSON trace format" Perfetto's UI and `chrome://tracing` load).
//!
//! Layout: one process "CPUs" (pid 0) with one thread (track) per CPU (`tid` = CPU number).
//! `sched_switch` records become complete ("X") slices named after the task that ran, with
//! its pid in `args`; every other event becomes an instant ("i", thread scope) on its CPU's
//! track with its fields in `args`. A probe hit (`hvtrace:rtos_probe`) is named after its
//! probe (`OSSemPost`, `OSSemPend%return`) with the values it fetched typed in `args`
//! (numbers, strings, `null` for a fault); a return hit with a duration is a slice from the
//! task's entry to the return. Times are microseconds with nanosecond decimals.
//!
//! Nothing is lost on the way: integers a JSON reader would round (beyond ±2^53, doubles'
//! exact range: pointers, addresses) are written as strings, unsigned ones in hex; events the
//! kernel lost before an event show as a `lost events` instant on that CPU (args `count`, or
//! `"unknown"`) and on a `lost events` counter track.

use std::io::Write;

use super::EventSink;
use crate::error::Result;
use crate::event::{Event, Missed, TraceMeta};
use crate::format::Value;
use crate::probe_values::{self, ProbeValue};

struct Running {
    name: String,
    pid: i64,
    start: u64,
}

/// Writes Chrome/Perfetto JSON.
pub struct JsonWriter<W: Write> {
    out: W,
    running: Vec<Option<Running>>,
    first: bool,
    last_ts: u64,
    named: Vec<bool>,
    buf: String,
    /// Events lost so far, for the counter track.
    lost: u64,
}

fn esc(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The largest integer a double holds exactly.
const EXACT: u64 = 1 << 53;

/// A signed value: a number if a double holds it exactly, else a string.
fn int(i: i64, out: &mut String) {
    if i.unsigned_abs() <= EXACT {
        out.push_str(&i.to_string());
    } else {
        out.push_str(&format!("\"{i}\""));
    }
}

/// An unsigned value: a number if a double holds it exactly, else a hex
/// string (such values are addresses and masks).
fn uint(u: u64, out: &mut String) {
    if u <= EXACT {
        out.push_str(&u.to_string());
    } else {
        out.push_str(&format!("\"{u:#x}\""));
    }
}

fn us(ts: u64) -> String {
    format!("{}.{:03}", ts / 1000, ts % 1000)
}

impl<W: Write> JsonWriter<W> {
    /// A writer for a trace described by `meta`.
    pub fn new(mut out: W, meta: &TraceMeta) -> Result<Self> {
        out.write_all(b"{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n")?;
        out.write_all(b"{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":0,\"tid\":0,\"args\":{\"name\":\"CPUs\"}}")?;
        let mut w = JsonWriter {
            out,
            running: Vec::new(),
            first: false,
            last_ts: 0,
            named: Vec::new(),
            buf: String::new(),
            lost: 0,
        };
        for cpu in 0..meta.cpus {
            w.name_cpu(cpu)?;
        }
        Ok(w)
    }

    fn emit(&mut self) -> Result<()> {
        if !self.first {
            self.out.write_all(b",\n")?;
        }
        self.first = false;
        self.out.write_all(self.buf.as_bytes())?;
        self.buf.clear();
        Ok(())
    }

    fn name_cpu(&mut self, cpu: u32) -> Result<()> {
        let c = cpu as usize;
        if self.named.len() <= c {
            self.named.resize(c + 1, false);
            self.running.resize_with(c + 1, || None);
        }
        if !self.named[c] {
            self.named[c] = true;
            self.buf = format!(
                "{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":0,\"tid\":{cpu},\"args\":{{\"name\":\"CPU {cpu}\"}}}}"
            );
            self.emit()?;
            self.buf = format!(
                "{{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":0,\"tid\":{cpu},\"args\":{{\"sort_index\":{cpu}}}}}"
            );
            self.emit()?;
        }
        Ok(())
    }

    /// Events the kernel lost just before `ev`, on its CPU.
    fn lost_before(&mut self, ev: &Event) -> Result<()> {
        let count = match ev.missed_before {
            Missed::None => return Ok(()),
            Missed::Unknown => None,
            Missed::Count(n) => Some(n),
        };
        let shown = count.map_or_else(|| "\"unknown\"".to_string(), |n| n.to_string());
        self.buf = format!(
            "{{\"name\":\"lost events\",\"cat\":\"lost\",\"ph\":\"i\",\"s\":\"t\",\"pid\":0,\"tid\":{},\"ts\":{},\"args\":{{\"count\":{shown}}}}}",
            ev.cpu,
            us(ev.ts_ns)
        );
        self.emit()?;
        // An unknown count is at least one event.
        self.lost += count.unwrap_or(1);
        self.buf = format!(
            "{{\"name\":\"lost events\",\"ph\":\"C\",\"pid\":0,\"ts\":{},\"args\":{{\"lost\":{}}}}}",
            us(ev.ts_ns),
            self.lost
        );
        self.emit()
    }

    fn close_slice(&mut self, cpu: u32, end: u64) -> Result<()> {
        if let Some(r) = self.running.get_mut(cpu as usize).and_then(Option::take) {
            let mut b = String::new();
            b.push_str("{\"name\":");
            esc(&r.name, &mut b);
            b.push_str(&format!(
                ",\"cat\":\"task\",\"ph\":\"X\",\"pid\":0,\"tid\":{cpu},\"ts\":{},\"dur\":{},\"args\":{{\"pid\":{}}}}}",
                us(r.start),
                us(end.saturating_sub(r.start)),
                r.pid
            ));
            self.buf = b;
            self.emit()?;
        }
        Ok(())
    }
}

impl<W: Write> EventSink for JsonWriter<W> {
    fn event(&mut self, ev: &Event) -> Result<()> {
        self.name_cpu(ev.cpu)?;
        self.last_ts = self.last_ts.max(ev.ts_ns);
        self.lost_before(ev)?;
        if ev.is("sched", "sched_switch") {
            self.close_slice(ev.cpu, ev.ts_ns)?;
            let pid = ev.int("next_pid").unwrap_or(0);
            if pid != 0 {
                let name = format!("{} ({pid})", ev.str("next_comm").unwrap_or(""));
                self.running[ev.cpu as usize] = Some(Running {
                    name,
                    pid,
                    start: ev.ts_ns,
                });
            }
            return Ok(());
        }
        let probe = ev
            .is("hvtrace", "rtos_probe")
            .then(|| ev.str("what"))
            .flatten()
            .map(probe_values::parse);
        let mut b = String::with_capacity(128);
        b.push_str("{\"name\":");
        match &probe {
            Some(p) => esc(p.label, &mut b),
            None => esc(&format!("{}:{}", ev.system(), ev.name()), &mut b),
        }
        let cat = if ev.system() == "hvtrace" {
            "\"hvtrace\""
        } else {
            "\"event\""
        };
        match probe.as_ref().and_then(|p| p.duration_ns()) {
            Some(d) => b.push_str(&format!(
                ",\"cat\":{cat},\"ph\":\"X\",\"pid\":0,\"tid\":{},\"ts\":{},\"dur\":{},\"args\":{{\"comm\":",
                ev.cpu,
                us(ev.ts_ns.saturating_sub(d)),
                us(d.min(ev.ts_ns))
            )),
            None => b.push_str(&format!(
                ",\"cat\":{cat},\"ph\":\"i\",\"s\":\"t\",\"pid\":0,\"tid\":{},\"ts\":{},\"args\":{{\"comm\":",
                ev.cpu,
                us(ev.ts_ns)
            )),
        }
        esc(&ev.comm, &mut b);
        b.push_str(&format!(",\"pid\":{}", ev.pid));
        for (n, v) in ev.named_fields() {
            b.push(',');
            esc(n, &mut b);
            b.push(':');
            match v {
                Value::Int(i) => int(*i, &mut b),
                Value::UInt(u) => uint(*u, &mut b),
                other => esc(&other.to_string(), &mut b),
            }
        }
        for (n, v) in probe.iter().flat_map(|p| p.values.iter()) {
            b.push(',');
            // Fetched values beside the event's own fields, never over them.
            esc(n, &mut b);
            b.push(':');
            match v {
                ProbeValue::UInt(u) => uint(*u, &mut b),
                ProbeValue::Int(i) => int(*i, &mut b),
                ProbeValue::Hex(h) => esc(&format!("{h:#x}"), &mut b),
                ProbeValue::Str(s) | ProbeValue::Other(s) => esc(s, &mut b),
                ProbeValue::Fault => b.push_str("null"),
            }
        }
        b.push_str("}}");
        self.buf = b;
        self.emit()
    }

    fn finish(&mut self) -> Result<()> {
        for cpu in 0..self.running.len() as u32 {
            let end = self.last_ts;
            self.close_slice(cpu, end)?;
        }
        self.out.write_all(b"\n]}\n")?;
        self.out.flush()?;
        Ok(())
    }
}
