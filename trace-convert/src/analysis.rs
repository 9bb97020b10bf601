//! What a recording of both OSes says, as a user reads it after `hv-trace
//! demo`: the tasks of each OS with their CPU share, and how long a probe
//! hit took to become visible in ftrace.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::error::{Error, Result};
use crate::merge::RTOS_PID_BASE;
use crate::stats::{self, Info};
use crate::stream::Trace;

/// One row of an OS's task table: a task name (Linux's tasks come and go,
/// so its pids are grouped by name).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRow {
    /// The task's name.
    pub name: String,
    /// Nanoseconds on the CPU.
    pub cpu_ns: u64,
    /// Times it was switched in.
    pub runs: u64,
    /// Distinct pids with this name.
    pub tasks: u64,
}

/// The tasks of one OS, busiest first.
#[derive(Debug, Clone, PartialEq)]
pub struct OsTasks {
    /// `RTOS (CPU1)` or `Linux (CPU0)`.
    pub os: &'static str,
    /// By CPU time, descending.
    pub rows: Vec<TaskRow>,
}

/// A merged recording, summarised.
#[derive(Debug, Clone)]
pub struct Recording {
    /// Event counts, CPUs, span, drops.
    pub info: Info,
    /// The RTOS's tasks, then Linux's.
    pub oses: Vec<OsTasks>,
}

impl Recording {
    /// Reads the merged trace at `merged` (RTOS tasks have pids from
    /// [`RTOS_PID_BASE`]).
    pub fn of_file(merged: &Path) -> Result<Self> {
        let trace = Trace::open(merged)?;
        let (info, stats) = stats::collect(trace.meta(), trace.events())?;
        let mut oses = Vec::new();
        for (os, rtos) in [("RTOS (CPU1)", true), ("Linux (CPU0)", false)] {
            let mut by_name: BTreeMap<&str, TaskRow> = BTreeMap::new();
            for (&pid, t) in &stats.tasks {
                if (pid >= RTOS_PID_BASE) != rtos || pid == 0 {
                    continue;
                }
                let row = by_name.entry(t.comm.as_str()).or_insert_with(|| TaskRow {
                    name: t.comm.clone(),
                    cpu_ns: 0,
                    runs: 0,
                    tasks: 0,
                });
                row.cpu_ns += t.cpu_time;
                row.runs += t.runs.n;
                row.tasks += 1;
            }
            let mut rows: Vec<TaskRow> = by_name.into_values().collect();
            rows.sort_by_key(|r| std::cmp::Reverse(r.cpu_ns));
            oses.push(OsTasks { os, rows });
        }
        Ok(Recording { info, oses })
    }

    /// Nanoseconds between the first and the last event (at least 1).
    pub fn span_ns(&self) -> u64 {
        self.info.span.map_or(0, |(a, b)| b.saturating_sub(a)).max(1)
    }

    /// The summary a user reads after a recording: totals, event types, and
    /// each OS's `top` busiest tasks. `module_drops` is the module's own
    /// drop line (from its `stats`), shown beside the trace's.
    pub fn render(&self, title: &str, module_drops: &str, top: usize) -> String {
        let span = self.span_ns();
        let mut o = String::new();
        let _ = writeln!(o, "== {title} ==");
        let _ = writeln!(
            o,
            "{} events on {} CPUs over {:.3} s; dropped: {} (trace) / module: {}",
            self.info.events,
            self.info.cpus,
            span as f64 / 1e9,
            self.info.dropped,
            module_drops
        );
        let types: Vec<String> = self.info.per_type.iter().map(|(t, n)| format!("{t} {n}")).collect();
        let _ = writeln!(o, "events: {}", types.join(", "));
        for os in &self.oses {
            let _ = writeln!(o, "{}: {} tasks", os.os, os.rows.iter().map(|r| r.tasks).sum::<u64>());
            let _ = writeln!(o, "  {:<18} {:>8} {:>7} {:>12}", "task", "CPU %", "runs", "avg run us");
            for r in os.rows.iter().take(top) {
                let avg = if r.runs == 0 {
                    0.0
                } else {
                    r.cpu_ns as f64 / r.runs as f64 / 1e3
                };
                let _ = writeln!(
                    o,
                    "  {:<18} {:>7.2}% {:>7} {:>12.1}",
                    r.name,
                    100.0 * r.cpu_ns as f64 / span as f64,
                    r.runs,
                    avg
                );
            }
        }
        o
    }
}

/// How long after a probe hit its record became an ftrace event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InjectionLatency {
    /// Microseconds: the smallest, the median, the 99th percentile.
    pub min_us: f64,
    /// Median, in microseconds.
    pub median_us: f64,
    /// 99th percentile, in microseconds.
    pub p99_us: f64,
    /// Probe hits measured.
    pub hits: usize,
}

impl InjectionLatency {
    /// From a guest recording (before the merge): each `rtos_switch` or
    /// `rtos_probe` event's ftrace time stamp minus its hit's counter time on
    /// the ftrace clock, the clocks paired by the `clock_sync` events (least
    /// squares).
    pub fn of_file(guest: &Path) -> Result<Self> {
        let trace = Trace::open(guest)?;
        let mut sync = Vec::new();
        let mut hits = Vec::new();
        for e in trace.events() {
            let e = e?;
            match e.name() {
                "clock_sync" => {
                    if let (Some(c), Some(ns)) = (e.int("counter"), e.int("trace_clock_ns")) {
                        sync.push((c as f64, ns as f64));
                    }
                }
                "rtos_switch" | "rtos_probe" => {
                    if let Some(c) = e.int("ts_counter") {
                        hits.push((c as f64, e.ts_ns as f64));
                    }
                }
                _ => {}
            }
        }
        Self::from_pairs(&sync, &hits).ok_or_else(|| Error::Malformed {
            offset: 0,
            what: "the recording needs two clock_sync events with different counters and a probe hit".into(),
        })
    }

    /// From `(counter, ftrace ns)` sync pairs and `(hit counter, event ns)`
    /// pairs; `None` without two distinct sync points or any hit.
    pub fn from_pairs(sync: &[(f64, f64)], hits: &[(f64, f64)]) -> Option<Self> {
        if sync.len() < 2 || hits.is_empty() {
            return None;
        }
        let n = sync.len() as f64;
        let (mx, my) = (
            sync.iter().map(|p| p.0).sum::<f64>() / n,
            sync.iter().map(|p| p.1).sum::<f64>() / n,
        );
        let sxy: f64 = sync.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        let sxx: f64 = sync.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
        if sxx <= 0.0 {
            return None;
        }
        let slope = sxy / sxx;
        let mut lat: Vec<f64> = hits.iter().map(|(c, ts)| ts - (my + slope * (c - mx))).collect();
        lat.sort_by(f64::total_cmp);
        let q = |f: f64| lat[((lat.len() - 1) as f64 * f) as usize] / 1e3;
        Some(InjectionLatency {
            min_us: q(0.0),
            median_us: q(0.5),
            p99_us: q(0.99),
            hits: lat.len(),
        })
    }
}

impl std::fmt::Display for InjectionLatency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "probe hit -> visible in ftrace: min {:.0} us, median {:.0} us, p99 {:.0} us ({} hits)",
            self.min_us, self.median_us, self.p99_us, self.hits
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_is_the_event_time_minus_the_hit_on_the_fitted_clock() {
        // 1 tick = 16 ns (62.5 MHz), the ftrace clock 1,000 ns ahead of the counter's.
        let sync: Vec<(f64, f64)> = (0..10).map(|i| (i as f64 * 1e6, 1000.0 + i as f64 * 16e6)).collect();
        // Hits whose events appeared 50, 100 and 150 us after the hit.
        let hits: Vec<(f64, f64)> = [50e3, 100e3, 150e3]
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let c = 5e5 + i as f64 * 1e5;
                (c, 1000.0 + c * 16.0 + d)
            })
            .collect();
        let l = InjectionLatency::from_pairs(&sync, &hits).unwrap();
        assert_eq!(l.hits, 3);
        assert!(
            (l.min_us - 50.0).abs() < 1e-6 && (l.median_us - 100.0).abs() < 1e-6,
            "{l:?}"
        );
        assert!((l.p99_us - 100.0).abs() < 1e-6, "p99 of 3 is the 2nd: {l:?}");
        assert_eq!(
            l.to_string(),
            "probe hit -> visible in ftrace: min 50 us, median 100 us, p99 100 us (3 hits)"
        );
    }

    #[test]
    fn latency_needs_two_distinct_sync_points_and_a_hit() {
        assert_eq!(InjectionLatency::from_pairs(&[(1.0, 2.0)], &[(1.0, 5.0)]), None);
        assert_eq!(
            InjectionLatency::from_pairs(&[(1.0, 2.0), (1.0, 3.0)], &[(1.0, 5.0)]),
            None
        );
        assert_eq!(InjectionLatency::from_pairs(&[(1.0, 2.0), (2.0, 3.0)], &[]), None);
    }
}
