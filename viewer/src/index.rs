//! The trace index: everything the viewer shows, precomputed once when a file is opened.
//!
//! Opening decodes every event once through `trace-convert` (one thread per CPU stream) and
//! keeps only compact records: per CPU the run intervals of its tasks ([`Runs`]), its events
//! (time, task, event type, a detail reference), its probe hits and lost-event marks; per task
//! its run intervals across CPUs. No UI code lives here.
//!
//! # Which CPUs are RTOS CPUs
//!
//! A CPU belongs to the RTOS when its scheduler switches involve a synthetic RTOS pid
//! (`pid ≥ 100000`, as `trace-convert merge` assigns: `100000 + rtos_cpu * 1000 + prio`), or,
//! when it has no `sched_switch` at all, when it carries `hvtrace:rtos_switch`/`rtos_probe`
//! events whose `rtos_cpu` field names that CPU. Every other CPU is a Linux CPU. A task is an
//! RTOS task when its pid is ≥ 100000.
//!
//! # Unmerged traces
//!
//! A trace whose `hvtrace:rtos_*` events still sit on the Linux CPU that injected them
//! (`rtos_cpu` ≠ the event's CPU) is merged on open with `trace_convert::merge`, so the RTOS
//! gets its own row either way.
//!
//! # Idle
//!
//! Pid 0, tasks named `swapper…` and tasks whose name contains `Idle` (uC/OS-II's
//! `uC/OS-II Idle`) are idle: they are not drawn as blocks and do not count as busy time.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use anyhow::Context;
use trace_convert::{Event, EventFormat, EventStream, Missed, Trace};

use crate::runs::Runs;

/// First synthetic RTOS pid (`trace_convert::merge::rtos_pid`).
pub const RTOS_PID_BASE: i32 = 100_000;

/// Operating system of a CPU or task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Os {
    /// The general-purpose OS.
    #[default]
    Linux,
    /// uC/OS-II behind the hypervisor.
    Rtos,
}

impl Os {
    /// Display name.
    pub fn label(self) -> &'static str {
        match self {
            Os::Linux => "Linux",
            Os::Rtos => "RTOS",
        }
    }
}

/// A task (a pid), named from its switches or the trace's saved cmdlines.
#[derive(Debug, Clone)]
pub struct Task {
    /// Pid (synthetic for RTOS tasks).
    pub pid: i32,
    /// Name.
    pub name: Arc<str>,
    /// Its OS.
    pub os: Os,
    /// Idle task (not drawn, not busy).
    pub idle: bool,
}

/// What an event type is to the viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KindClass {
    /// `sched:sched_switch`.
    Switch,
    /// `hvtrace:rtos_probe`: a probe hit.
    Probe,
    /// `hvtrace:rtos_switch`: the original of an RTOS switch (the block row shows it).
    RtosSwitch,
    /// `ftrace:print`: a user's marker (`echo TEXT > trace_marker`), labelled on the timeline.
    Marker,
    /// Anything else.
    Other,
}

/// An event type present in the trace.
#[derive(Debug, Clone)]
pub struct Kind {
    /// `system:name`.
    pub name: String,
    /// Its class.
    pub class: KindClass,
    /// Number of events of this type.
    pub count: u64,
}

/// One event, compactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRec {
    /// Time stamp (ns).
    pub ts: u64,
    /// Task index (the event's `common_pid`).
    pub task: u32,
    /// Index into [`TraceIndex::kinds`].
    pub kind: u16,
    /// For switches the next task's index; otherwise an index into the CPU's details, or
    /// `u32::MAX`.
    pub aux: u32,
}

/// A lost-events mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lost {
    /// Time of the first event after the loss.
    pub ts: u64,
    /// How many were lost, when the kernel said.
    pub count: Option<u64>,
}

/// One CPU's data.
#[derive(Debug, Default)]
pub struct CpuIndex {
    /// CPU number.
    pub cpu: u32,
    /// Its OS.
    pub os: Os,
    /// Run intervals; `who` is a task index.
    pub runs: Runs,
    /// Events in time order.
    pub events: Vec<EventRec>,
    /// Probe-hit times.
    pub probes: Vec<u64>,
    /// Lost-event marks.
    pub lost: Vec<Lost>,
    /// Field text of non-switch events (see [`EventRec::aux`]).
    pub details: Vec<Box<str>>,
}

/// Everything the viewer needs from one trace.
#[derive(Debug)]
pub struct TraceIndex {
    /// The file.
    pub path: String,
    /// Where it came from (`trace-cmd .dat v6`, …), plus `, merged on open` when it was.
    pub source: String,
    /// First and last event time (ns).
    pub t0: u64,
    /// Last event time (ns).
    pub t1: u64,
    /// CPUs with data, in CPU order.
    pub cpus: Vec<CpuIndex>,
    /// Tasks; indices are stable.
    pub tasks: Vec<Task>,
    /// Per task, its runs on any CPU (`who` is the CPU number).
    pub task_runs: Vec<Runs>,
    /// Event types.
    pub kinds: Vec<Kind>,
    /// Total events.
    pub events: u64,
    /// Lost events the file's CPU statistics report (overruns, drops).
    pub cpustat_lost: u64,
}

/// Per-task statistics over a time range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TaskStat {
    /// Task index.
    pub task: u32,
    /// Running time inside the range (ns).
    pub cpu_ns: u64,
    /// Runs starting inside the range.
    pub runs: u64,
    /// Shortest of those runs (ns).
    pub min_ns: u64,
    /// Their average (ns).
    pub avg_ns: u64,
    /// Longest (ns).
    pub max_ns: u64,
}

/// A search hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// Time.
    pub ts: u64,
    /// CPU.
    pub cpu: u32,
    /// Task, when the match was a task.
    pub task: Option<u32>,
}

/// Which events the caller wants to see.
pub trait EventFilter {
    /// Is event `e` on `cpu` shown?
    fn shows(&self, cpu: u32, e: &EventRec) -> bool;
}

impl<F: Fn(u32, &EventRec) -> bool> EventFilter for F {
    fn shows(&self, cpu: u32, e: &EventRec) -> bool {
        self(cpu, e)
    }
}

// ---------------------------------------------------------------------------------------------
// Building.

/// Field positions of one event type, looked up once per type.
#[derive(Debug, Clone, Copy)]
struct Layout {
    kind: u16,
    class: KindClass,
    prev_pid: Option<usize>,
    next_pid: Option<usize>,
    next_comm: Option<usize>,
    prev_comm: Option<usize>,
    rtos_cpu: Option<usize>,
    rtos: bool,
}

fn layout_of(f: &EventFormat, kind: u16) -> Layout {
    let idx = |n: &str| f.field(n).map(|(i, _)| i);
    let class = if f.system == "sched" && f.name == "sched_switch" {
        KindClass::Switch
    } else if f.system == "hvtrace" && f.name == "rtos_probe" {
        KindClass::Probe
    } else if f.system == "hvtrace" && f.name == "rtos_switch" {
        KindClass::RtosSwitch
    } else {
        KindClass::Other
    };
    Layout {
        kind,
        class,
        prev_pid: idx("prev_pid"),
        next_pid: idx("next_pid"),
        next_comm: idx("next_comm"),
        prev_comm: idx("prev_comm"),
        rtos_cpu: idx("rtos_cpu"),
        rtos: f.system == "hvtrace" && (f.name == "rtos_switch" || f.name == "rtos_probe"),
    }
}

/// Per-CPU state while building.
#[derive(Default, Clone)]
struct CpuBuild {
    runs: Vec<(u64, u64, u32)>,
    running: Option<(u32, u64)>,
    events: Vec<EventRec>,
    probes: Vec<u64>,
    lost: Vec<Lost>,
    details: Vec<Box<str>>,
    switches: u64,
    rtos_pid_seen: bool,
    rtos_events_here: bool,
    last_ts: u64,
}

/// What one decoding thread produces.
#[derive(Default, Clone)]
struct Part {
    /// Time of the last event decoded.
    last_ts: u64,
    cpus: HashMap<u32, CpuBuild>,
    /// Local task index → (pid, name).
    /// (pid, name, when the name was last seen): parts are CPUs, not
    /// periods, so the latest name across parts is the one seen last.
    tasks: Vec<(i32, Arc<str>, u64)>,
    kind_counts: HashMap<u16, u64>,
    unmerged: bool,
    events: u64,
}

struct Builder<'a> {
    part: Part,
    pids: HashMap<i32, u32>,
    /// By the format's address; the format is kept so the address is not reused.
    layouts: HashMap<usize, (Arc<EventFormat>, Layout)>,
    kinds: &'a KindTable,
}

/// Event types by (system, name), shared read-only by the decoding threads.
struct KindTable {
    names: Vec<String>,
    by_name: HashMap<(String, String), u16>,
}

impl KindTable {
    fn new(formats: &[Arc<EventFormat>]) -> KindTable {
        let mut t = KindTable {
            names: Vec::new(),
            by_name: HashMap::new(),
        };
        for f in formats {
            let key = (f.system.clone(), f.name.clone());
            if !t.by_name.contains_key(&key) && t.names.len() < u16::MAX as usize - 1 {
                t.by_name.insert(key, t.names.len() as u16);
                t.names.push(format!("{}:{}", f.system, f.name));
            }
        }
        // Catch-all for event ids the file has no format for.
        t.names.push("unknown".into());
        t
    }

    fn kind(&self, f: &EventFormat) -> u16 {
        self.by_name
            .get(&(f.system.clone(), f.name.clone()))
            .copied()
            .unwrap_or(self.names.len() as u16 - 1)
    }
}

fn trim_comm(s: &str) -> &str {
    s.trim_end_matches('\0')
}

impl Builder<'_> {
    fn task(&mut self, pid: i32, name: Option<&str>, fallback: &Arc<str>, ts: u64) -> u32 {
        let tasks = &mut self.part.tasks;
        let id = *self.pids.entry(pid).or_insert_with(|| {
            tasks.push((pid, fallback.clone(), 0));
            (tasks.len() - 1) as u32
        });
        if let Some(n) = name.map(trim_comm) {
            let t = &mut self.part.tasks[id as usize];
            if !n.is_empty() {
                if *t.1 != *n {
                    t.1 = Arc::from(n);
                }
                t.2 = ts;
            }
        }
        id
    }

    fn layout(&mut self, f: &Arc<EventFormat>) -> Layout {
        let key = Arc::as_ptr(f) as usize;
        if let Some((_, l)) = self.layouts.get(&key) {
            return *l;
        }
        let l = layout_of(f, self.kinds.kind(f));
        self.layouts.insert(key, (f.clone(), l));
        l
    }

    fn add(&mut self, ev: &Event) {
        let l = self.layout(&ev.format);
        self.part.events += 1;
        *self.part.kind_counts.entry(l.kind).or_default() += 1;
        let task = self.task(ev.pid, None, &ev.comm, ev.ts_ns);
        let int = |i: Option<usize>| i.and_then(|i| ev.fields.get(i)).and_then(|v| v.as_i64());
        let text = |i: Option<usize>| i.and_then(|i| ev.fields.get(i)).and_then(|v| v.as_str());
        let mut aux = u32::MAX;
        let mut probe = false;
        let mut switch: Option<(u32, u32)> = None;
        match l.class {
            KindClass::Switch if ev.buffer == 0 => {
                if let (Some(pp), Some(np)) = (int(l.prev_pid), int(l.next_pid)) {
                    let unknown: Arc<str> = Arc::from("<...>");
                    let prev = self.task(pp as i32, text(l.prev_comm), &unknown, ev.ts_ns);
                    let next = self.task(np as i32, text(l.next_comm), &unknown, ev.ts_ns);
                    aux = next;
                    switch = Some((prev, next));
                    if pp >= RTOS_PID_BASE as i64 || np >= RTOS_PID_BASE as i64 {
                        self.cpu(ev.cpu).rtos_pid_seen = true;
                    }
                }
            }
            KindClass::Probe => probe = true,
            _ => {}
        }
        if l.rtos {
            if let Some(rc) = int(l.rtos_cpu) {
                if rc as u32 == ev.cpu {
                    self.cpu(ev.cpu).rtos_events_here = true;
                } else {
                    self.part.unmerged = true;
                }
            }
        }
        let c = self.cpu(ev.cpu);
        c.last_ts = ev.ts_ns;
        if let Some((_prev, next)) = switch {
            c.switches += 1;
            if let Some((who, since)) = c.running.replace((next, ev.ts_ns)) {
                c.runs.push((since, ev.ts_ns, who));
            }
        } else if l.class != KindClass::Switch {
            aux = c.details.len() as u32;
            c.details.push(detail(ev).into_boxed_str());
        }
        if probe {
            c.probes.push(ev.ts_ns);
        }
        match ev.missed_before {
            Missed::None => {}
            Missed::Unknown => c.lost.push(Lost {
                ts: ev.ts_ns,
                count: None,
            }),
            Missed::Count(n) => c.lost.push(Lost {
                ts: ev.ts_ns,
                count: Some(n),
            }),
        }
        c.events.push(EventRec {
            ts: ev.ts_ns,
            task,
            kind: l.kind,
            aux,
        });
    }

    fn cpu(&mut self, cpu: u32) -> &mut CpuBuild {
        self.part.cpus.entry(cpu).or_default()
    }
}

/// The fields of a non-switch event as `name=value` text (at most 96 bytes).
fn detail(ev: &Event) -> String {
    let mut s = String::new();
    for (field, v) in ev.format.fields.iter().zip(ev.fields.iter()) {
        if s.len() > 96 {
            break;
        }
        if !s.is_empty() {
            s.push(' ');
        }
        let name = field.name.as_str();
        s.push_str(name);
        s.push('=');
        // Addresses in hex, as trace-cmd prints them; never as negative numbers.
        let address = field.type_name.contains('*') || name == "pc" || name == "ip";
        match v {
            trace_convert::Value::Str(t) => s.push_str(trim_comm(t)),
            trace_convert::Value::Int(x) if address => s.push_str(&format!("{:#x}", *x as u64)),
            trace_convert::Value::UInt(x) if address => s.push_str(&format!("{x:#x}")),
            trace_convert::Value::Int(x) => s.push_str(&x.to_string()),
            trace_convert::Value::UInt(x) => s.push_str(&x.to_string()),
            v => s.push_str(&format!("{v:?}")),
        }
    }
    s.truncate(s.floor_char_boundary_compat(96));
    s
}

trait FloorBoundary {
    fn floor_char_boundary_compat(&self, i: usize) -> usize;
}

impl FloorBoundary for String {
    fn floor_char_boundary_compat(&self, mut i: usize) -> usize {
        if i >= self.len() {
            return self.len();
        }
        while !self.is_char_boundary(i) {
            i -= 1;
        }
        i
    }
}

fn is_idle(pid: i32, name: &str) -> bool {
    pid == 0 || name.starts_with("swapper") || name.contains("Idle")
}

/// Coordination between the decoding threads and whoever waits for them.
#[derive(Default)]
struct Ctl {
    /// Snapshot generation requested; a worker answers each generation once.
    gen: AtomicU64,
    /// Events decoded so far (all workers, updated every [`TICK`] events).
    events: AtomicU64,
    state: Mutex<CtlState>,
    cond: Condvar,
}

#[derive(Default)]
struct CtlState {
    /// Latest snapshot per worker: (generation, part).
    snaps: HashMap<usize, (u64, Part)>,
    /// Finished workers.
    done: HashMap<usize, anyhow::Result<Part>>,
}

/// Events between two looks at [`Ctl`].
const TICK: u64 = 1 << 14;

fn decode(streams: Vec<EventStream>, kinds: &KindTable, worker: usize, ctl: &Ctl) -> anyhow::Result<Part> {
    let mut b = Builder {
        part: Part::default(),
        pids: HashMap::new(),
        layouts: HashMap::new(),
        kinds,
    };
    let mut answered = 0;
    let mut n = 0u64;
    for s in streams {
        for ev in s {
            let ev = ev.context("corrupt trace")?;
            b.add(&ev);
            b.part.last_ts = ev.ts_ns;
            n += 1;
            if n & (TICK - 1) == 0 {
                ctl.events.fetch_add(TICK, Ordering::Relaxed);
                let g = ctl.gen.load(Ordering::Acquire);
                if g > answered {
                    answered = g;
                    let snap = b.part.clone();
                    let mut st = ctl.state.lock().unwrap_or_else(|e| e.into_inner());
                    st.snaps.insert(worker, (g, snap));
                    ctl.cond.notify_all();
                }
            }
        }
    }
    Ok(b.part)
}

impl Part {
    /// Keeps only what happened before `t` (a consistent cut across workers).
    fn cut(&mut self, t: u64) {
        for c in self.cpus.values_mut() {
            c.events.truncate(c.events.partition_point(|e| e.ts < t));
            c.probes.truncate(c.probes.partition_point(|&p| p < t));
            c.lost.truncate(c.lost.partition_point(|l| l.ts < t));
            let keep = c.runs.partition_point(|r| r.0 < t);
            c.runs.truncate(keep);
            if let Some(last) = c.runs.last_mut() {
                if last.1 > t {
                    c.running = Some((last.2, last.0));
                    c.runs.pop();
                }
            }
            if c.running.is_some_and(|(_, since)| since >= t) {
                c.running = None;
            }
            c.last_ts = c.last_ts.min(t);
        }
        self.last_ts = self.last_ts.min(t);
    }
}

/// An index that grows while a recording streams in (the live view): the
/// events go into one builder kept from refresh to refresh, so a refresh
/// costs the events that arrived since the last one plus a copy of the
/// index, never a second decode of the trace so far.
pub struct LiveIndex {
    meta: trace_convert::TraceMeta,
    kinds: KindTable,
    part: Part,
    pids: HashMap<i32, u32>,
    layouts: HashMap<usize, (Arc<EventFormat>, Layout)>,
}

impl LiveIndex {
    /// An empty index of a trace with `meta`'s formats (merged: RTOS events on their CPUs).
    pub fn new(meta: &trace_convert::TraceMeta) -> LiveIndex {
        LiveIndex {
            meta: meta.clone(),
            kinds: KindTable::new(&meta.formats),
            part: Part::default(),
            pids: HashMap::new(),
            layouts: HashMap::new(),
        }
    }

    /// Adds an event (each CPU's in time order).
    pub fn add(&mut self, ev: &Event) {
        let mut b = Builder {
            part: std::mem::take(&mut self.part),
            pids: std::mem::take(&mut self.pids),
            layouts: std::mem::take(&mut self.layouts),
            kinds: &self.kinds,
        };
        b.add(ev);
        b.part.last_ts = b.part.last_ts.max(ev.ts_ns);
        (self.part, self.pids, self.layouts) = (b.part, b.pids, b.layouts);
    }

    /// Takes task names and the like from the metadata as it stands now
    /// (a stream sends them last); the formats stay the first ones.
    pub fn set_meta(&mut self, meta: &trace_convert::TraceMeta) {
        let formats = std::mem::take(&mut self.meta.formats);
        self.meta = meta.clone();
        self.meta.formats = formats;
    }

    /// The index of everything added so far.
    pub fn index(&self) -> TraceIndex {
        TraceIndex::assemble(&self.meta, &self.kinds, vec![self.part.clone()])
    }
}

/// What [`Loader::first`] gives: the whole trace, or the part indexed so far.
#[derive(Debug)]
pub enum Loaded {
    /// Fully indexed.
    Full(TraceIndex),
    /// Events before [`TraceIndex::t1`] only; the rest is still being indexed.
    Partial(TraceIndex),
}

/// Indexing in the background: decoding threads (one per core, CPU streams dealt round-robin)
/// that can hand out a consistent partial index while they run.
pub struct Loader {
    trace: Arc<Trace>,
    meta: trace_convert::TraceMeta,
    kinds: Arc<KindTable>,
    ctl: Arc<Ctl>,
    workers: usize,
    path: String,
}

impl std::fmt::Debug for Loader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Loader {
    /// Opens `path` (errors in its header are reported here) and starts indexing it.
    pub fn start(path: &Path) -> anyhow::Result<Loader> {
        let trace = Trace::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let meta = trace.meta().clone();
        let kinds = Arc::new(KindTable::new(&meta.formats));
        let streams = trace.streams();
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(streams.len())
            .max(1);
        let mut groups: Vec<Vec<EventStream>> = (0..workers).map(|_| Vec::new()).collect();
        for (k, s) in streams.into_iter().enumerate() {
            groups[k % workers].push(s);
        }
        let ctl = Arc::new(Ctl::default());
        for (w, g) in groups.into_iter().enumerate() {
            let (kinds, ctl) = (kinds.clone(), ctl.clone());
            std::thread::Builder::new()
                .name(format!("index-{w}"))
                .spawn(move || {
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode(g, &kinds, w, &ctl)))
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("indexing thread failed")));
                    let mut st = ctl.state.lock().unwrap_or_else(|e| e.into_inner());
                    st.done.insert(w, r);
                    ctl.cond.notify_all();
                })
                .context("cannot start an indexing thread")?;
        }
        Ok(Loader {
            trace: Arc::new(trace),
            meta,
            kinds,
            ctl,
            workers,
            path: path.display().to_string(),
        })
    }

    /// Events decoded so far (approximate).
    pub fn events_so_far(&self) -> u64 {
        self.ctl.events.load(Ordering::Relaxed)
    }

    /// Has every worker finished?
    pub fn finished(&self) -> bool {
        let st = self.ctl.state.lock().unwrap_or_else(|e| e.into_inner());
        st.done.len() == self.workers
    }

    /// Waits up to `budget` for the whole index; after that, returns what is indexed so far
    /// (cut at the earliest time every unfinished worker has reached).
    pub fn first(&self, budget: std::time::Duration) -> anyhow::Result<Loaded> {
        let deadline = std::time::Instant::now() + budget;
        {
            let mut st = self.ctl.state.lock().unwrap_or_else(|e| e.into_inner());
            while st.done.len() < self.workers {
                let now = std::time::Instant::now();
                if now >= deadline {
                    break;
                }
                st = self
                    .ctl
                    .cond
                    .wait_timeout(st, deadline - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            if st.done.values().any(|r| r.is_err()) || st.done.len() == self.workers {
                drop(st);
                return self.wait().map(Loaded::Full);
            }
        }
        let gen = self.ctl.gen.fetch_add(1, Ordering::AcqRel) + 1;
        let mut st = self.ctl.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let ready =
                (0..self.workers).all(|w| st.done.contains_key(&w) || st.snaps.get(&w).is_some_and(|s| s.0 >= gen));
            if ready {
                break;
            }
            st = self.ctl.cond.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        let mut parts = Vec::new();
        let mut cut = u64::MAX;
        for w in 0..self.workers {
            match st.done.get(&w) {
                Some(Ok(p)) => parts.push(p.clone()),
                Some(Err(e)) => return Err(anyhow::anyhow!("cannot read {}: {e:#}", self.path)),
                None => {
                    let p = st.snaps.remove(&w).map(|s| s.1).unwrap_or_default();
                    cut = cut.min(p.last_ts);
                    parts.push(p);
                }
            }
        }
        drop(st);
        if parts.iter().any(|p| p.unmerged) {
            return self.wait().map(Loaded::Full);
        }
        for p in &mut parts {
            p.cut(cut);
        }
        let mut idx = TraceIndex::assemble(&self.meta, &self.kinds, parts);
        idx.path = self.path.clone();
        Ok(Loaded::Partial(idx))
    }

    /// Waits for every worker and builds the whole index.
    pub fn wait(&self) -> anyhow::Result<TraceIndex> {
        let mut st = self.ctl.state.lock().unwrap_or_else(|e| e.into_inner());
        while st.done.len() < self.workers {
            st = self.ctl.cond.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        let mut parts = Vec::new();
        for w in 0..self.workers {
            match st.done.remove(&w) {
                Some(Ok(p)) => parts.push(p),
                Some(Err(e)) => return Err(e.context(format!("cannot read {}", self.path))),
                None => unreachable!("every worker is done"),
            }
        }
        drop(st);
        let mut idx = if parts.iter().any(|p| p.unmerged) {
            let mut idx =
                TraceIndex::from_trace(&self.trace, true).with_context(|| format!("cannot read {}", self.path))?;
            idx.source = format!("{}, merged on open", self.meta.source);
            idx
        } else {
            TraceIndex::assemble(&self.meta, &self.kinds, parts)
        };
        idx.path = self.path.clone();
        Ok(idx)
    }
}

impl TraceIndex {
    /// Opens and indexes `path` (`.dat` v6/v7, ftrace text, hvtrace ring dump, merged or not),
    /// waiting for the whole index.
    pub fn open(path: &Path) -> anyhow::Result<TraceIndex> {
        Loader::start(path)?.wait()
    }

    /// Indexes an opened trace on this thread; `merge` applies the RTOS merge first.
    pub fn from_trace(trace: &Trace, merge: bool) -> anyhow::Result<TraceIndex> {
        let ctl = Ctl::default();
        let (meta, events): (_, EventStream) = if merge {
            let inputs = std::slice::from_ref(trace);
            let plan = trace_convert::merge::plan(inputs)?;
            let meta = trace_convert::merge::merged_meta(inputs, &plan);
            let events = trace_convert::merge::merged_events(inputs, &plan, &meta);
            (meta, Box::new(events))
        } else {
            (trace.meta().clone(), Box::new(trace.events()))
        };
        let kinds = KindTable::new(&meta.formats);
        let part = decode(vec![events], &kinds, 0, &ctl)?;
        Ok(Self::assemble(&meta, &kinds, vec![part]))
    }

    fn assemble(meta: &trace_convert::TraceMeta, kinds: &KindTable, parts: Vec<Part>) -> TraceIndex {
        // Global tasks by pid.
        let mut tasks: Vec<Task> = Vec::new();
        let mut by_pid: HashMap<i32, u32> = HashMap::new();
        let mut remaps: Vec<Vec<u32>> = Vec::new();
        // When each task's name was seen (0: only a fallback).
        let mut named_at: Vec<u64> = Vec::new();
        for p in &parts {
            let mut remap = Vec::with_capacity(p.tasks.len());
            for (pid, name, seen) in &p.tasks {
                let id = *by_pid.entry(*pid).or_insert_with(|| {
                    tasks.push(Task {
                        pid: *pid,
                        name: name.clone(),
                        os: if *pid >= RTOS_PID_BASE { Os::Rtos } else { Os::Linux },
                        idle: false,
                    });
                    named_at.push(0);
                    (tasks.len() - 1) as u32
                });
                let t = &mut tasks[id as usize];
                // The task's latest name (after an exec, say), as `stats`
                // names it; a fallback only until a name is seen.
                let named = *seen > 0 && &**name != "<...>" && !name.is_empty();
                let unnamed = &*t.name == "<...>" || t.name.is_empty();
                if (named && *seen >= named_at[id as usize]) || (unnamed && &**name != "<...>") {
                    t.name = name.clone();
                    named_at[id as usize] = named_at[id as usize].max(*seen);
                }
                remap.push(id);
            }
            remaps.push(remap);
        }
        for t in &mut tasks {
            if &*t.name == "<...>" {
                if let Some(n) = meta.cmdlines.get(t.pid) {
                    t.name = n.clone();
                }
            }
            t.idle = is_idle(t.pid, &t.name);
        }
        let mut kind_list: Vec<Kind> = kinds
            .names
            .iter()
            .map(|n| Kind {
                name: n.clone(),
                class: match n.as_str() {
                    "sched:sched_switch" => KindClass::Switch,
                    "hvtrace:rtos_probe" => KindClass::Probe,
                    "hvtrace:rtos_switch" => KindClass::RtosSwitch,
                    "ftrace:print" => KindClass::Marker,
                    _ => KindClass::Other,
                },
                count: 0,
            })
            .collect();
        let mut cpus: HashMap<u32, CpuBuild> = HashMap::new();
        let mut total = 0;
        for (p, remap) in parts.into_iter().zip(&remaps) {
            total += p.events;
            for (k, n) in p.kind_counts {
                kind_list[k as usize].count += n;
            }
            for (cpu, mut c) in p.cpus {
                for r in &mut c.runs {
                    r.2 = remap[r.2 as usize];
                }
                if let Some((who, since)) = c.running.take() {
                    if since < c.last_ts {
                        c.runs.push((since, c.last_ts, remap[who as usize]));
                    }
                }
                let is_switch = |k: u16| kind_list[k as usize].class == KindClass::Switch;
                for e in &mut c.events {
                    e.task = remap[e.task as usize];
                    if is_switch(e.kind) && e.aux != u32::MAX {
                        e.aux = remap[e.aux as usize];
                    }
                }
                match cpus.entry(cpu) {
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(c);
                    }
                    std::collections::hash_map::Entry::Occupied(mut o) => {
                        // Another buffer of the same CPU: append and re-sort.
                        let a = o.get_mut();
                        let base = a.details.len() as u32;
                        for e in &mut c.events {
                            if !is_switch(e.kind) && e.aux != u32::MAX {
                                e.aux += base;
                            }
                        }
                        a.details.append(&mut c.details);
                        a.events.append(&mut c.events);
                        a.events.sort_by_key(|e| e.ts);
                        a.runs.append(&mut c.runs);
                        a.runs.sort_by_key(|r| r.0);
                        a.probes.append(&mut c.probes);
                        a.probes.sort_unstable();
                        a.lost.append(&mut c.lost);
                        a.lost.sort_by_key(|l| l.ts);
                        a.switches += c.switches;
                        a.rtos_pid_seen |= c.rtos_pid_seen;
                        a.rtos_events_here |= c.rtos_events_here;
                        a.last_ts = a.last_ts.max(c.last_ts);
                    }
                }
            }
        }
        let mut order: Vec<u32> = cpus.keys().copied().collect();
        order.sort_unstable();
        let mut per_task: Vec<Vec<(u64, u64, u32)>> = vec![Vec::new(); tasks.len()];
        let mut t0 = u64::MAX;
        let mut t1 = 0;
        let mut out = Vec::new();
        for cpu in order {
            let c = cpus.remove(&cpu).unwrap_or_default();
            if let (Some(f), Some(l)) = (c.events.first(), c.events.last()) {
                t0 = t0.min(f.ts);
                t1 = t1.max(l.ts);
            }
            let os = if c.rtos_pid_seen || (c.switches == 0 && c.rtos_events_here) {
                Os::Rtos
            } else {
                Os::Linux
            };
            for &(s, e, w) in &c.runs {
                if !tasks[w as usize].idle {
                    per_task[w as usize].push((s, e, cpu));
                }
            }
            let runs = Runs::new(c.runs, |w| !tasks[w as usize].idle);
            out.push(CpuIndex {
                cpu,
                os,
                runs,
                events: c.events,
                probes: c.probes,
                lost: c.lost,
                details: c.details,
            });
        }
        let task_runs = per_task.into_iter().map(|r| Runs::new(r, |_| true)).collect();
        if t0 > t1 {
            (t0, t1) = (0, 0);
        }
        TraceIndex {
            path: String::new(),
            source: meta.source.clone(),
            t0,
            t1,
            cpus: out,
            tasks,
            task_runs,
            kinds: kind_list,
            events: total,
            cpustat_lost: meta.cpustat_lost(),
        }
    }

    /// An index of nothing (a placeholder while the whole index is assembled).
    pub fn empty() -> TraceIndex {
        let kinds = KindTable::new(&[]);
        TraceIndex::assemble(&trace_convert::TraceMeta::default(), &kinds, Vec::new())
    }

    /// Trace length (ns).
    pub fn span(&self) -> u64 {
        self.t1 - self.t0
    }

    /// The CPU entry for CPU number `cpu`.
    pub fn cpu(&self, cpu: u32) -> Option<&CpuIndex> {
        self.cpus.iter().find(|c| c.cpu == cpu)
    }

    /// Lost-event marks in the trace.
    pub fn lost_marks(&self) -> usize {
        self.cpus.iter().map(|c| c.lost.len()).sum()
    }

    /// Approximate heap bytes of the index.
    pub fn heap_bytes(&self) -> usize {
        let mut n = 0;
        for c in &self.cpus {
            n += c.runs.heap_bytes()
                + c.events.capacity() * std::mem::size_of::<EventRec>()
                + c.probes.capacity() * 8
                + c.lost.capacity() * std::mem::size_of::<Lost>()
                + c.details.iter().map(|d| d.len() + 16).sum::<usize>();
        }
        n + self.task_runs.iter().map(Runs::heap_bytes).sum::<usize>()
    }

    /// The text shown for event `e` of `cpu`: `prev ==> next` for switches, fields otherwise.
    pub fn describe(&self, cpu: &CpuIndex, e: &EventRec) -> String {
        let kind = &self.kinds[e.kind as usize];
        if kind.class == KindClass::Switch && e.aux != u32::MAX {
            let p = &self.tasks[e.task as usize];
            let n = &self.tasks[e.aux as usize];
            return format!("{}:{} ==> {}:{}", p.name, p.pid, n.name, n.pid);
        }
        cpu.details
            .get(e.aux as usize)
            .map(|d| d.to_string())
            .unwrap_or_default()
    }

    /// A marker's text (`ftrace:print`'s `buf`), trimmed.
    pub fn marker_text(&self, cpu: &CpuIndex, e: &EventRec) -> String {
        let d = self.describe(cpu, e);
        let text = d.split_once("buf=").map_or(d.as_str(), |(_, t)| t);
        text.trim().to_string()
    }

    /// Per-task statistics over `[a, b)` (every task that ran), busiest first.
    pub fn task_stats(&self, a: u64, b: u64) -> Vec<TaskStat> {
        let mut v = Vec::new();
        for (k, r) in self.task_runs.iter().enumerate() {
            let cpu_ns = r.busy(a, b);
            let starting = r.starting(a, b);
            if cpu_ns == 0 && starting.is_empty() {
                continue;
            }
            let runs = starting.len() as u64;
            let (min_ns, max_ns) = r.min_max(starting.clone()).unwrap_or((0, 0));
            let avg_ns = r.total(starting).checked_div(runs).unwrap_or(0);
            v.push(TaskStat {
                task: k as u32,
                cpu_ns,
                runs,
                min_ns,
                avg_ns,
                max_ns,
            });
        }
        v.sort_by(|x, y| y.cpu_ns.cmp(&x.cpu_ns).then(x.task.cmp(&y.task)));
        v
    }

    /// Up to `before` shown events before `t` and `after` at or after it, across `cpus`, in
    /// time order, as (cpu position, event index); and the position of the first one at or
    /// after `t`. At most `limit` events per direction are examined.
    pub fn events_around(
        &self,
        t: u64,
        before: usize,
        after: usize,
        filter: &dyn EventFilter,
    ) -> (Vec<(usize, usize)>, usize) {
        let limit = 200_000;
        let starts: Vec<usize> = self
            .cpus
            .iter()
            .map(|c| c.events.partition_point(|e| e.ts < t))
            .collect();
        // Backwards.
        let mut back = Vec::new();
        let mut pos = starts.clone();
        let mut seen = 0;
        while back.len() < before && seen < limit {
            let best = (0..self.cpus.len())
                .filter(|&c| pos[c] > 0)
                .max_by_key(|&c| (self.cpus[c].events[pos[c] - 1].ts, c));
            let Some(c) = best else { break };
            pos[c] -= 1;
            seen += 1;
            let e = &self.cpus[c].events[pos[c]];
            if filter.shows(self.cpus[c].cpu, e) {
                back.push((c, pos[c]));
            }
        }
        back.reverse();
        let at = back.len();
        let mut pos = starts;
        let mut seen = 0;
        let mut fwd = Vec::new();
        while fwd.len() < after && seen < limit {
            let best = (0..self.cpus.len())
                .filter(|&c| pos[c] < self.cpus[c].events.len())
                .min_by_key(|&c| (self.cpus[c].events[pos[c]].ts, c));
            let Some(c) = best else { break };
            seen += 1;
            let e = &self.cpus[c].events[pos[c]];
            if filter.shows(self.cpus[c].cpu, e) {
                fwd.push((c, pos[c]));
            }
            pos[c] += 1;
        }
        back.extend(fwd);
        (back, at)
    }

    /// Next (or previous) shown event strictly after (before) `t` on CPU position `c`.
    pub fn step_event(&self, c: usize, t: u64, forward: bool, filter: &dyn EventFilter) -> Option<u64> {
        let cpu = self.cpus.get(c)?;
        let ev = &cpu.events;
        if forward {
            let k = ev.partition_point(|e| e.ts <= t);
            ev[k..].iter().find(|e| filter.shows(cpu.cpu, e)).map(|e| e.ts)
        } else {
            let k = ev.partition_point(|e| e.ts < t);
            ev[..k].iter().rev().find(|e| filter.shows(cpu.cpu, e)).map(|e| e.ts)
        }
    }

    /// Next (previous) switch-in or switch-out of `task` strictly after (before) `t`.
    pub fn step_task(&self, task: u32, t: u64, forward: bool) -> Option<u64> {
        let r = self.task_runs.get(task as usize)?;
        let mut cands = Vec::new();
        let around: Range<usize> = r.overlapping(t.saturating_sub(1), t.saturating_add(1));
        let lo = around.start.saturating_sub(1);
        let hi = (around.end + 1).min(r.len());
        for k in lo..hi {
            let (s, e, _) = r.get(k);
            cands.extend([s, e]);
        }
        let k = if forward { r.next_start(t) } else { r.prev_start(t) };
        if let Some(k) = k {
            let (s, e, _) = r.get(k);
            cands.extend([s, e]);
        }
        let ok = cands.into_iter().filter(|&x| if forward { x > t } else { x < t });
        if forward {
            ok.min()
        } else {
            ok.max()
        }
    }

    /// Tasks whose name contains `q` (case-insensitive) or whose pid is `q`.
    pub fn match_tasks(&self, q: &str) -> Vec<u32> {
        let ql = q.to_lowercase();
        self.tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.name.to_lowercase().contains(&ql) || t.pid.to_string() == q)
            .map(|(k, _)| k as u32)
            .collect()
    }

    /// Event types whose `system:name` contains `q` (case-insensitive).
    pub fn match_kinds(&self, q: &str) -> Vec<u16> {
        let ql = q.to_lowercase();
        self.kinds
            .iter()
            .enumerate()
            .filter(|(_, k)| k.count > 0 && k.name.to_lowercase().contains(&ql))
            .map(|(k, _)| k as u16)
            .collect()
    }

    /// The next (previous) match of `q` strictly after (before) `t`: a run start of a matching
    /// task or an event of a matching type, among shown events.
    pub fn search(&self, q: &str, t: u64, forward: bool, filter: &dyn EventFilter) -> Option<Hit> {
        let better = |a: u64, b: u64| if forward { a < b } else { a > b };
        let mut best: Option<Hit> = None;
        for task in self.match_tasks(q) {
            let r = &self.task_runs[task as usize];
            let k = if forward { r.next_start(t) } else { r.prev_start(t) };
            if let Some(k) = k {
                let (s, _, cpu) = r.get(k);
                if best.is_none_or(|b| better(s, b.ts)) {
                    best = Some(Hit {
                        ts: s,
                        cpu,
                        task: Some(task),
                    });
                }
            }
        }
        let kinds = self.match_kinds(q);
        if !kinds.is_empty() {
            let mut mask = vec![false; self.kinds.len()];
            for k in kinds {
                mask[k as usize] = true;
            }
            let want = |cpu: u32, e: &EventRec| mask[e.kind as usize] && filter.shows(cpu, e);
            for c in 0..self.cpus.len() {
                if let Some(ts) = self.step_event(c, t, forward, &want) {
                    if best.is_none_or(|b| better(ts, b.ts)) {
                        best = Some(Hit {
                            ts,
                            cpu: self.cpus[c].cpu,
                            task: None,
                        });
                    }
                }
            }
        }
        best
    }
}
