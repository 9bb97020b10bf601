//! Linux and RTOS events on one time base.
//!
//! The Linux module records RTOS activity as `hvtrace` events stamped by ftrace when it
//! injects them, with the exact shared-counter time in `ts_counter`, and emits `clock_sync`
//! events (`counter`, `trace_clock_ns`, `freq_hz`) sampled at one instant. Merging:
//!
//! 1. [`plan`] scans the inputs once: RTOS task names and CPUs (for the metadata), and the
//!    least-squares fit of all `clock_sync` points (a summary of the clock).
//! 2. [`merged_events`] streams: Linux events pass through unchanged; each `hvtrace:rtos_switch`
//!    and `hvtrace:rtos_probe` goes through [`RtosMerge`]: re-stamped with its exact counter
//!    time by the fit of the sync points around it, moved to its `rtos_cpu`, with
//!    `common_pid` the synthetic pid of the RTOS task running; each `rtos_switch` is followed
//!    by a standard `sched:sched_switch` (the kernel's layout) on the same CPU and time, so
//!    `trace-cmd report`, KernelShark and Perfetto show RTOS tasks natively.
//!
//! [`RtosMerge`] also runs on its own, fed while a recording streams in (the live view); what
//! it gives does not depend on the order the CPUs' pages came in, so it equals this merge of
//! the finished file.
//!
//! RTOS tasks get synthetic pids `RTOS_PID_BASE + rtos_cpu * 1000 + prio` (see [`rtos_pid`]),
//! written to the cmdlines with their names.

use crate::clock::ClockMap;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::error::Result;
use crate::event::{Event, TraceMeta};
use crate::format::EventFormat;
use crate::stream::{EventStream, Merged, Trace};

mod rtos;
pub use rtos::{is_rtos, RtosMerge, TaskNames, MAX_HELD, SETTLE_NS};

/// First synthetic pid of RTOS tasks.
pub const RTOS_PID_BASE: i32 = 100_000;

/// The synthetic pid of the RTOS task of priority `prio` on `rtos_cpu`.
pub fn rtos_pid(rtos_cpu: u32, prio: u32) -> i32 {
    RTOS_PID_BASE + rtos_cpu as i32 * 1000 + prio as i32
}

/// What [`plan`] learned from the inputs.
#[derive(Debug, Clone, Default)]
pub struct MergePlan {
    /// Counter → trace clock, when the inputs have `clock_sync` events.
    pub clock: Option<ClockMap>,
    /// Number of `clock_sync` points used.
    pub sync_points: usize,
    /// Synthetic pid → RTOS task name.
    pub tasks: BTreeMap<i32, String>,
    /// CPUs the RTOS ran on.
    pub rtos_cpus: BTreeSet<u32>,
    /// CPUs to declare: enough for Linux's and the RTOS's.
    pub cpus: u32,
    /// RTOS events seen.
    pub rtos_events: u64,
}

/// Scans `inputs` for clock sync points, RTOS tasks and CPUs.
pub fn plan(inputs: &[Trace]) -> Result<MergePlan> {
    let mut p = MergePlan::default();
    let mut points = Vec::new();
    let mut names = TaskNames::default();
    for t in inputs {
        p.cpus = p.cpus.max(t.meta().cpus);
        for s in t.streams() {
            for ev in s {
                let ev = ev?;
                if ev.system() != "hvtrace" {
                    continue;
                }
                if ev.name() == "clock_sync" {
                    if let (Some(c), Some(ns)) = (ev.int("counter"), ev.int("trace_clock_ns")) {
                        points.push((c as u64, ns as u64, ev.int("freq_hz").unwrap_or(0) as u64));
                    }
                } else if rtos::is_rtos(&ev) {
                    p.rtos_events += 1;
                    p.rtos_cpus.insert(ev.int("rtos_cpu").unwrap_or(0) as u32);
                    names.learn(&ev);
                }
            }
        }
    }
    points.sort_unstable();
    points.dedup();
    p.sync_points = points.len();
    p.clock = ClockMap::fit(&points);
    p.tasks = names.all();
    if let Some(&m) = p.rtos_cpus.iter().next_back() {
        p.cpus = p.cpus.max(m + 1);
    }
    Ok(p)
}

/// The metadata of the merged trace: the first input's, with every input's formats, the
/// `sched_switch` format, RTOS task names and enough CPUs.
pub fn merged_meta(inputs: &[Trace], plan: &MergePlan) -> TraceMeta {
    let mut meta = inputs.first().map(|t| t.meta().clone()).unwrap_or_default();
    for t in inputs.iter().skip(1) {
        for f in &t.meta().formats {
            if meta.format(&f.system, &f.name).is_none() {
                meta.formats.push(f.clone());
            }
        }
        for (pid, c) in t.meta().cmdlines.sorted() {
            if meta.cmdlines.get(pid).is_none() {
                meta.cmdlines.insert(pid, &c);
            }
        }
    }
    let mut meta = merged_meta_from(meta, plan);
    meta.source = format!("merged ({} inputs)", inputs.len());
    meta
}

/// One input's metadata as the merge writes it (see [`merged_meta`]).
pub fn merged_meta_from(mut meta: TraceMeta, plan: &MergePlan) -> TraceMeta {
    if plan.rtos_events > 0 && meta.format("sched", "sched_switch").is_none() {
        meta.formats.push(Arc::new(sched_switch_for(&meta)));
    }
    for (pid, name) in &plan.tasks {
        meta.cmdlines.insert(*pid, name);
    }
    meta.cpus = meta.cpus.max(plan.cpus);
    meta.source = "merged (1 inputs)".into();
    meta
}

/// The `sched_switch` format the merge writes RTOS switches with: the
/// merged metadata's own.
pub fn switch_format(meta: &TraceMeta) -> Arc<EventFormat> {
    meta.format("sched", "sched_switch")
        .cloned()
        .unwrap_or_else(|| Arc::new(sched_switch_for(meta)))
}

fn sched_switch_for(meta: &TraceMeta) -> EventFormat {
    let id = meta.formats.iter().map(|f| f.id).max().unwrap_or(1000).max(1000) + 1;
    crate::text::sched_switch_format(id)
}

/// Maps an OS_TCB `OSTCBStat` to Linux task-state bits: ready → `R` (0), suspended → `T`
/// (stopped, 0x4), pending on anything → `S` (0x1).
pub fn linux_state(rtos_state: i64) -> i64 {
    if rtos_state == 0 {
        0
    } else if rtos_state & 0x08 != 0 {
        0x04
    } else {
        0x01
    }
}

/// The RTOS events of every input, merged by [`RtosMerge`], in time order.
struct RtosStream {
    src: Merged,
    merge: RtosMerge,
    ready: std::collections::VecDeque<Event>,
    out: Vec<Event>,
    done: bool,
}

impl Iterator for RtosStream {
    type Item = Result<Event>;

    fn next(&mut self) -> Option<Result<Event>> {
        while self.ready.is_empty() && !self.done {
            match self.src.next() {
                Some(Ok(ev)) => {
                    // Linux events come out of their own streams; here they only move time on.
                    let _ = self.merge.push(ev);
                    self.merge.release(&mut self.out);
                }
                Some(Err(e)) => return Some(Err(e)),
                None => {
                    self.merge.finish(&mut self.out);
                    self.done = true;
                }
            }
            self.ready.extend(self.out.drain(..));
        }
        self.ready.pop_front().map(Ok)
    }
}

/// Every event of `inputs`, merged as described in the module docs, in time order.
pub fn merged_events(inputs: &[Trace], plan: &MergePlan, meta: &TraceMeta) -> Merged {
    let mut streams: Vec<EventStream> = Vec::new();
    let mut buffer_base = 0u32;
    for t in inputs {
        let base = buffer_base;
        for s in t.streams() {
            let filtered = s.filter(|r| match r {
                Ok(ev) => !rtos::is_rtos(ev),
                Err(_) => true,
            });
            if base == 0 {
                streams.push(Box::new(filtered));
            } else {
                streams.push(Box::new(filtered.map(move |r| {
                    r.map(|mut ev| {
                        if ev.buffer > 0 {
                            ev.buffer += base;
                        }
                        ev
                    })
                })));
            }
        }
        buffer_base += t.meta().buffers.len().saturating_sub(1) as u32;
    }
    if plan.rtos_events > 0 {
        let all: Vec<EventStream> = inputs.iter().flat_map(|t| t.streams()).collect();
        streams.push(Box::new(RtosStream {
            src: Merged::new(all),
            merge: RtosMerge::new(switch_format(meta)),
            ready: Default::default(),
            out: Vec::new(),
            done: false,
        }));
    }
    Merged::new(streams)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_fit_recovers_offset_and_rate() {
        // 62.5 MHz counter (16 ns/tick), trace clock = 1e9 + 16 * counter.
        let pts: Vec<_> = (0..5u64)
            .map(|i| (1000 + i * 62_500_000, 1_000_016_000 + i * 1_000_000_000, 62_500_000))
            .collect();
        let m = ClockMap::fit(&pts).unwrap();
        assert!((m.rate - 16.0).abs() < 1e-9);
        assert_eq!(m.ns(1000 + 31_250_000), 1_000_016_000 + 500_000_000);
        let one = ClockMap::fit(&pts[..1]).unwrap();
        assert_eq!(one.ns(1000 + 625), 1_000_016_000 + 10_000);
    }

    #[test]
    fn synthetic_pids_are_documented_formula() {
        assert_eq!(rtos_pid(1, 5), 101_005);
        assert_eq!(linux_state(0), 0);
        assert_eq!(linux_state(0x08), 0x04);
        assert_eq!(linux_state(0x01), 0x01);
    }
}
