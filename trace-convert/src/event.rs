//! The event model every reader produces and every writer consumes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::format::{EventFormat, Value};

/// A time-ordered stream of events (one CPU, or already merged).
pub type EventStream = Box<dyn Iterator<Item = crate::error::Result<Event>> + Send>;

/// Events lost just before an event (ring-buffer overwrite or a full buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Missed {
    /// Nothing was lost.
    #[default]
    None,
    /// Events were lost but the kernel did not store how many.
    Unknown,
    /// This many events were lost.
    Count(u64),
}

/// One trace event.
///
/// `fields` holds one [`Value`] per entry of `format.fields` (the `common_*` fields are
/// lifted into `pid`, `flags` and `preempt_count`).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Timestamp in nanoseconds of the trace clock (after the file's clock corrections).
    pub ts_ns: u64,
    /// CPU the event was recorded on.
    pub cpu: u32,
    /// `common_pid`: the task that was running.
    pub pid: i32,
    /// That task's name, from the trace's saved cmdlines (`<...>` when unknown, `<idle>` for 0).
    pub comm: Arc<str>,
    /// The event type (system, name, field layout, print format).
    pub format: Arc<EventFormat>,
    /// Field values, parallel to `format.fields`.
    pub fields: Vec<Value>,
    /// `common_flags` (0x01 irqs off, 0x04 need resched, 0x08 hardirq, 0x10 softirq).
    pub flags: u8,
    /// `common_preempt_count`.
    pub preempt_count: u8,
    /// Index of the buffer (instance) in [`TraceMeta::buffers`]; 0 is the top buffer.
    pub buffer: u32,
    /// Events lost on this CPU just before this one.
    pub missed_before: Missed,
}

impl Event {
    /// The event name (`sched_switch`).
    pub fn name(&self) -> &str {
        &self.format.name
    }

    /// The event's system (`sched`).
    pub fn system(&self) -> &str {
        &self.format.system
    }

    /// The value of field `name`.
    pub fn field(&self, name: &str) -> Option<&Value> {
        let (i, _) = self.format.field(name)?;
        self.fields.get(i)
    }

    /// Field `name` as an integer.
    pub fn int(&self, name: &str) -> Option<i64> {
        self.field(name)?.as_i64()
    }

    /// Field `name` as a string.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.field(name)?.as_str()
    }

    /// `(name, value)` pairs in format order.
    pub fn named_fields(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.format
            .fields
            .iter()
            .map(|f| f.name.as_str())
            .zip(self.fields.iter())
    }

    /// Is this `system:name`?
    pub fn is(&self, system: &str, name: &str) -> bool {
        self.format.name == name && self.format.system == system
    }
}

/// One recorded buffer: the top buffer or an instance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BufferInfo {
    /// Instance name; empty for the top buffer.
    pub name: String,
    /// Trace clock of this buffer (`local`, `mono`, `counter`…), when the file says.
    pub clock: Option<String>,
    /// CPUs with data in this buffer.
    pub cpus: Vec<u32>,
}

/// Time stamp conversion stored in the file (`TSC2NSEC` option): `ns = ((ts - offset) * mult) >> shift`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tsc2Nsec {
    /// Multiplier.
    pub mult: u32,
    /// Right shift.
    pub shift: u32,
    /// Subtracted from raw stamps first.
    pub offset: u64,
}

/// Task names by pid, shared by all events of a trace.
#[derive(Debug, Clone)]
pub struct Cmdlines {
    map: HashMap<i32, Arc<str>>,
    unknown: Arc<str>,
    idle: Arc<str>,
}

impl Default for Cmdlines {
    fn default() -> Self {
        Cmdlines {
            map: HashMap::new(),
            unknown: Arc::from("<...>"),
            idle: Arc::from("<idle>"),
        }
    }
}

impl Cmdlines {
    /// The pids that have a saved name.
    pub fn pids(&self) -> impl Iterator<Item = i32> + '_ {
        self.map.keys().copied()
    }

    /// Parses `saved_cmdlines` text (`"<pid> <comm>\n"` lines); bad lines are skipped.
    pub fn parse(text: &str) -> Self {
        let mut c = Cmdlines::default();
        for line in text.lines() {
            let line = line.trim_start();
            if let Some((pid, comm)) = line.split_once(' ') {
                if let Ok(pid) = pid.parse::<i32>() {
                    c.insert(pid, comm);
                }
            }
        }
        c
    }

    /// Adds or replaces a name.
    pub fn insert(&mut self, pid: i32, comm: &str) {
        self.map.insert(pid, Arc::from(comm));
    }

    /// The name of `pid`, if saved.
    pub fn get(&self, pid: i32) -> Option<&Arc<str>> {
        self.map.get(&pid)
    }

    /// The name to show for `pid`: its saved name, `<idle>` for 0, `<...>` otherwise.
    pub fn comm(&self, pid: i32) -> Arc<str> {
        if let Some(c) = self.map.get(&pid) {
            return c.clone();
        }
        if pid == 0 {
            return self.idle.clone();
        }
        self.unknown.clone()
    }

    /// All entries, sorted by pid.
    pub fn sorted(&self) -> BTreeMap<i32, Arc<str>> {
        self.map.iter().map(|(k, v)| (*k, v.clone())).collect()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// No entries?
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The `saved_cmdlines` text.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for (pid, comm) in self.sorted() {
            s += &format!("{pid} {comm}\n");
        }
        s
    }
}

/// Everything a trace says about itself besides its events.
#[derive(Debug, Clone, Default)]
pub struct TraceMeta {
    /// Where it came from: `trace-cmd .dat v6`, `ftrace text`, …
    pub source: String,
    /// `.dat` file version (6 or 7), when the input is a `.dat` file.
    pub dat_version: Option<u32>,
    /// Traced machine's `long` size in bytes.
    pub long_size: u32,
    /// Ring-buffer page size.
    pub page_size: u32,
    /// Compression (`name`, `version`) of a v7 file; `None` when uncompressed.
    pub compression: Option<(String, String)>,
    /// Number of CPUs the trace declares (at least one more than the highest CPU with data).
    pub cpus: u32,
    /// Recorded buffers; index 0 is the top buffer.
    pub buffers: Vec<BufferInfo>,
    /// Event formats (ftrace ones under system `ftrace`).
    pub formats: Vec<Arc<EventFormat>>,
    /// `header_page` text.
    pub header_page: String,
    /// `header_event` text.
    pub header_event: String,
    /// Saved task names.
    pub cmdlines: Cmdlines,
    /// `/proc/kallsyms` text (may be empty).
    pub kallsyms: String,
    /// `printk_formats` text (may be empty).
    pub printk: String,
    /// `trace_clock` file content (`[local] global …`), when saved.
    pub trace_clock: Option<String>,
    /// `uname` of the traced machine.
    pub uname: Option<String>,
    /// Version of the tool that wrote the file.
    pub tool_version: Option<String>,
    /// Per-CPU ring-buffer statistics text (`CPUSTAT` options), in file order.
    pub cpustats: Vec<String>,
    /// Clock conversion, when the file has one.
    pub tsc2nsec: Option<Tsc2Nsec>,
    /// Nanoseconds added to every time stamp (`OFFSET` option).
    pub ts_offset: i64,
    /// Options a `.dat` writer carries over as they were read, in file order
    /// (id, payload): CPU statistics (with their buffer separators), the
    /// trace id, process maps, hooks, guest descriptions. Options that
    /// change how time stamps read (offset, TSC conversion) are not among
    /// them: the reader has applied those already.
    pub kept_options: Vec<(u16, Vec<u8>)>,
    /// What could not be read and was skipped (a damaged event format, …):
    /// the rest of the file was read all the same.
    pub warnings: Vec<String>,
}

impl TraceMeta {
    /// The format with `system` and `name`.
    pub fn format(&self, system: &str, name: &str) -> Option<&Arc<EventFormat>> {
        self.formats.iter().find(|f| f.name == name && f.system == system)
    }

    /// Converts a raw ring-buffer stamp to nanoseconds with the file's corrections.
    pub fn to_ns(&self, raw: u64) -> u64 {
        let mut ts = raw;
        if let Some(t) = self.tsc2nsec {
            ts = ((ts.wrapping_sub(t.offset) as u128 * t.mult as u128) >> t.shift) as u64;
        }
        ts.wrapping_add(self.ts_offset as u64)
    }

    /// Lost-event counts summed from the `CPUSTAT` texts (`overrun:` + `dropped events:`).
    pub fn cpustat_lost(&self) -> u64 {
        let mut n = 0;
        for s in &self.cpustats {
            for line in s.lines() {
                for key in ["overrun:", "dropped events:"] {
                    if let Some(v) = line.trim().strip_prefix(key) {
                        n += v.trim().parse::<u64>().unwrap_or(0);
                    }
                }
            }
        }
        n
    }
}
