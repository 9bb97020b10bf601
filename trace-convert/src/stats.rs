//! `info` (what a trace holds) and `stats` (per-task timing) computed in one streaming pass.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::error::Result;
use crate::event::{Event, Missed, TraceMeta};
use crate::sched::{Slice, SliceBuilder, Switch};

/// Summary of a trace.
#[derive(Debug, Clone, Default)]
pub struct Info {
    /// Declared CPUs.
    pub cpus: u32,
    /// Events per `system:name`.
    pub per_type: BTreeMap<String, u64>,
    /// Events per CPU.
    pub per_cpu: BTreeMap<u32, u64>,
    /// All events.
    pub events: u64,
    /// First and last time stamps.
    pub span: Option<(u64, u64)>,
    /// Lost events counted in page headers.
    pub dropped: u64,
    /// Pages that lost an unknown number of events.
    pub dropped_unknown: u64,
}

impl Info {
    /// Adds one event.
    pub fn add(&mut self, ev: &Event) {
        self.events += 1;
        *self
            .per_type
            .entry(format!("{}:{}", ev.system(), ev.name()))
            .or_default() += 1;
        *self.per_cpu.entry(ev.cpu).or_default() += 1;
        self.span = Some(match self.span {
            None => (ev.ts_ns, ev.ts_ns),
            Some((a, b)) => (a.min(ev.ts_ns), b.max(ev.ts_ns)),
        });
        match ev.missed_before {
            Missed::None => {}
            Missed::Unknown => self.dropped_unknown += 1,
            Missed::Count(n) => self.dropped += n,
        }
    }

    /// Human-readable report.
    pub fn render(&self, meta: &TraceMeta) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "source: {}", meta.source);
        for w in &meta.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
        if let Some((c, v)) = &meta.compression {
            let _ = writeln!(s, "compression: {c} {v}");
        }
        let _ = writeln!(s, "cpus: {}", self.cpus);
        for b in &meta.buffers {
            let name = if b.name.is_empty() { "(top)" } else { &b.name };
            let _ = writeln!(
                s,
                "buffer {name}: clock {}, cpus {:?}",
                b.clock.as_deref().unwrap_or("?"),
                b.cpus
            );
        }
        let _ = writeln!(s, "events: {}", self.events);
        if let Some((a, b)) = self.span {
            let _ = writeln!(s, "span: {} .. {} ({} ns)", secs(a), secs(b), b - a);
        }
        let _ = writeln!(
            s,
            "dropped: {} counted, {} pages with an unknown count, {} per cpustats",
            self.dropped,
            self.dropped_unknown,
            meta.cpustat_lost()
        );
        let _ = writeln!(s, "per cpu:");
        for (c, n) in &self.per_cpu {
            let _ = writeln!(s, "  cpu{c}: {n}");
        }
        let _ = writeln!(s, "per event type:");
        for (t, n) in &self.per_type {
            let _ = writeln!(s, "  {t}: {n}");
        }
        s
    }
}

fn secs(ns: u64) -> String {
    format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000)
}

/// Min/avg/max accumulator.
#[derive(Debug, Clone, Copy, Default)]
pub struct MinAvgMax {
    /// Samples.
    pub n: u64,
    /// Sum.
    pub sum: u128,
    /// Minimum.
    pub min: u64,
    /// Maximum.
    pub max: u64,
}

impl MinAvgMax {
    /// Adds a sample.
    pub fn add(&mut self, v: u64) {
        if self.n == 0 || v < self.min {
            self.min = v;
        }
        self.max = self.max.max(v);
        self.n += 1;
        self.sum += v as u128;
    }

    /// Average (0 without samples).
    pub fn avg(&self) -> u64 {
        if self.n == 0 {
            0
        } else {
            (self.sum / self.n as u128) as u64
        }
    }

    /// max - min.
    pub fn jitter(&self) -> u64 {
        self.max - self.min
    }
}

/// Timing of one task.
#[derive(Debug, Clone, Default)]
pub struct TaskStats {
    /// Last name seen.
    pub comm: String,
    /// Total time on a CPU (ns).
    pub cpu_time: u64,
    /// Run slices (switch-in to switch-out).
    pub runs: MinAvgMax,
    /// Jobs: from the first switch-in after blocking to the next blocking switch-out (ns).
    pub response: MinAvgMax,
    /// Time between consecutive job starts (ns).
    pub period: MinAvgMax,
    job_start: Option<u64>,
    last_job_start: Option<u64>,
}

impl TaskStats {
    /// Does the task look periodic (≥ 3 periods whose spread is under 20 % of the mean)?
    pub fn periodic(&self) -> bool {
        self.period.n >= 3 && (self.period.jitter() as f64) < 0.2 * self.period.avg() as f64
    }
}

/// Per-task statistics from scheduler switches.
#[derive(Debug, Default)]
pub struct Stats {
    slices: SliceBuilder,
    /// Tasks by pid (idle, pid 0, excluded).
    pub tasks: BTreeMap<i32, TaskStats>,
    last_ts: u64,
}

impl Stats {
    /// Empty statistics.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one event (only `sched_switch` counts).
    pub fn add(&mut self, ev: &Event) {
        self.last_ts = self.last_ts.max(ev.ts_ns);
        if let Some(sw) = Switch::from_event(ev) {
            if let Some(sl) = self.slices.push(&sw) {
                self.slice(&sl);
            }
            // A task is named by its latest comm, whether it was switched
            // out (after an exec, say) or in: as the viewer names it.
            if sw.prev_pid != 0 && !sw.prev_comm.is_empty() {
                self.tasks.entry(sw.prev_pid).or_default().comm = sw.prev_comm.clone();
            }
            if sw.next_pid != 0 {
                let t = self.tasks.entry(sw.next_pid).or_default();
                t.comm = sw.next_comm.clone();
                if t.job_start.is_none() {
                    t.job_start = Some(sw.ts_ns);
                    if let Some(prev) = t.last_job_start {
                        t.period.add(sw.ts_ns - prev);
                    }
                    t.last_job_start = Some(sw.ts_ns);
                }
            }
        }
    }

    fn slice(&mut self, sl: &Slice) {
        if sl.pid == 0 {
            return;
        }
        let t = self.tasks.entry(sl.pid).or_default();
        if t.comm.is_empty() {
            t.comm = sl.comm.to_string();
        }
        let d = sl.end_ns - sl.start_ns;
        t.cpu_time += d;
        t.runs.add(d);
        if sl.end_state != 0 {
            if let Some(s) = t.job_start.take() {
                t.response.add(sl.end_ns - s);
            }
        }
    }

    /// Closes the slices still running at the end.
    pub fn finish(&mut self) {
        let end = self.last_ts;
        for sl in self.slices.finish(end) {
            self.slice(&sl);
        }
    }

    /// A table, one task a line.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:>8} {:<16} {:>14} {:>6} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12}",
            "pid",
            "task",
            "cpu_time_ns",
            "runs",
            "run_min",
            "run_avg",
            "run_max",
            "period_avg",
            "period_jit",
            "resp_avg",
            "resp_jit"
        );
        for (pid, t) in &self.tasks {
            let (pa, pj) = if t.periodic() {
                (t.period.avg().to_string(), t.period.jitter().to_string())
            } else {
                ("-".into(), "-".into())
            };
            let (ra, rj) = if t.response.n > 0 {
                (t.response.avg().to_string(), t.response.jitter().to_string())
            } else {
                ("-".into(), "-".into())
            };
            let _ = writeln!(
                s,
                "{:>8} {:<16} {:>14} {:>6} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12}",
                pid,
                t.comm,
                t.cpu_time,
                t.runs.n,
                t.runs.min,
                t.runs.avg(),
                t.runs.max,
                pa,
                pj,
                ra,
                rj
            );
        }
        s
    }
}

/// Runs `info` and `stats` over `events`.
pub fn collect(meta: &TraceMeta, events: impl Iterator<Item = Result<Event>>) -> Result<(Info, Stats)> {
    let mut info = Info {
        cpus: meta.cpus,
        ..Default::default()
    };
    let mut stats = Stats::new();
    for ev in events {
        let ev = ev?;
        info.add(&ev);
        stats.add(&ev);
    }
    stats.finish();
    Ok((info, stats))
}
