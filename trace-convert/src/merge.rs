//! Linux and RTOS events on one time base.
//!
//! The Linux module records RTOS activity as `hvtrace` events stamped by ftrace when it
//! injects them, with the exact shared-counter time in `ts_counter`, and emits `clock_sync`
//! events (`counter`, `trace_clock_ns`, `freq_hz`) sampled at one instant. Merging:
//!
//! 1. [`plan`] scans the inputs once: fits counter → trace clock (least squares over all
//!    `clock_sync` points when there are two or more; one point gives an offset and the rate
//!    `1e9 / freq_hz`), collects RTOS task names and CPUs.
//! 2. [`merged_events`] streams: Linux events pass through unchanged; each `hvtrace:rtos_switch`
//!    and `hvtrace:rtos_probe` is re-stamped with its exact counter time and moved to its
//!    `rtos_cpu`, with `common_pid` the synthetic pid of the RTOS task running; each
//!    `rtos_switch` is followed by a standard `sched:sched_switch` (the kernel's layout) on the
//!    same CPU and time, so `trace-cmd report`, KernelShark and Perfetto show RTOS tasks natively.
//!
//! RTOS tasks get synthetic pids `RTOS_PID_BASE + rtos_cpu * 1000 + prio` (see [`rtos_pid`]),
//! written to the cmdlines with their names.

use crate::clock::ClockMap;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::sync::Arc;

use crate::error::Result;
use crate::event::{Event, Missed, TraceMeta};
use crate::format::{EventFormat, Value};
use crate::stream::{EventStream, Merged, Trace};

/// First synthetic pid of RTOS tasks.
pub const RTOS_PID_BASE: i32 = 100_000;
/// Events the re-stamped RTOS stream may hold back to restore time order.
const REORDER_WINDOW: usize = 4096;

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
    for t in inputs {
        p.cpus = p.cpus.max(t.meta().cpus);
        for s in t.streams() {
            for ev in s {
                let ev = ev?;
                if ev.system() != "hvtrace" {
                    continue;
                }
                match ev.name() {
                    "clock_sync" => {
                        if let (Some(c), Some(ns)) = (ev.int("counter"), ev.int("trace_clock_ns")) {
                            points.push((c as u64, ns as u64, ev.int("freq_hz").unwrap_or(0) as u64));
                        }
                    }
                    "rtos_switch" => {
                        p.rtos_events += 1;
                        let cpu = ev.int("rtos_cpu").unwrap_or(0) as u32;
                        p.rtos_cpus.insert(cpu);
                        for side in ["prev", "next"] {
                            let prio = ev.int(&format!("{side}_prio")).unwrap_or(0) as u32;
                            let name = ev.str(&format!("{side}_comm")).unwrap_or("").to_string();
                            let name = if name.is_empty() {
                                format!("rtos-prio{prio}")
                            } else {
                                name
                            };
                            p.tasks.insert(rtos_pid(cpu, prio), name);
                        }
                    }
                    "rtos_probe" => {
                        p.rtos_events += 1;
                        let cpu = ev.int("rtos_cpu").unwrap_or(0) as u32;
                        p.rtos_cpus.insert(cpu);
                        let prio = ev.int("prio").unwrap_or(0) as u32;
                        let name = ev.str("comm").unwrap_or("").to_string();
                        p.tasks.entry(rtos_pid(cpu, prio)).or_insert(if name.is_empty() {
                            format!("rtos-prio{prio}")
                        } else {
                            name
                        });
                    }
                    _ => {}
                }
            }
        }
    }
    points.sort_unstable();
    p.sync_points = points.len();
    p.clock = ClockMap::fit(&points);
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
    if plan.rtos_events > 0 && meta.format("sched", "sched_switch").is_none() {
        meta.formats.push(Arc::new(sched_switch_for(&meta)));
    }
    for (pid, name) in &plan.tasks {
        meta.cmdlines.insert(*pid, name);
    }
    meta.cpus = meta.cpus.max(plan.cpus);
    meta.source = format!("merged ({} inputs)", inputs.len());
    meta
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

struct RtosStream {
    src: Merged,
    clock: Option<ClockMap>,
    switch_fmt: Arc<EventFormat>,
    cmd: BTreeMap<i32, Arc<str>>,
    heap: BinaryHeap<Reverse<(u64, u64)>>,
    held: BTreeMap<u64, Event>,
    seq: u64,
    last: u64,
    done: bool,
}

impl RtosStream {
    fn comm(&self, pid: i32) -> Arc<str> {
        self.cmd.get(&pid).cloned().unwrap_or_else(|| Arc::from("<...>"))
    }

    /// Moves an RTOS event to its exact time, its CPU and its task.
    fn restamp(&self, mut ev: Event, ts: u64, cpu: u32, pid: i32) -> Event {
        ev.ts_ns = ts;
        ev.cpu = cpu;
        ev.pid = pid;
        ev.comm = self.comm(pid);
        ev.buffer = 0;
        ev.missed_before = Missed::None;
        ev
    }

    fn hold(&mut self, ev: Event) {
        self.seq += 1;
        self.heap.push(Reverse((ev.ts_ns, self.seq)));
        self.held.insert(self.seq, ev);
    }

    fn convert(&mut self, ev: Event) {
        let cpu = ev.int("rtos_cpu").unwrap_or(0) as u32;
        let ts = match (self.clock, ev.int("ts_counter")) {
            (Some(c), Some(t)) => c.ns(t as u64),
            _ => ev.ts_ns,
        };
        if ev.name() == "rtos_switch" {
            let pp = ev.int("prev_prio").unwrap_or(0) as u32;
            let np = ev.int("next_prio").unwrap_or(0) as u32;
            let (ppid, npid) = (rtos_pid(cpu, pp), rtos_pid(cpu, np));
            let orig = self.restamp(ev.clone(), ts, cpu, ppid);
            let fmt = self.switch_fmt.clone();
            let fields = fmt
                .fields
                .iter()
                .map(|f| match f.name.as_str() {
                    "prev_comm" => Value::Str(self.comm(ppid).to_string()),
                    "prev_pid" => Value::Int(ppid as i64),
                    "prev_prio" => Value::Int(pp as i64),
                    "prev_state" => Value::Int(linux_state(ev.int("prev_state").unwrap_or(0))),
                    "next_comm" => Value::Str(self.comm(npid).to_string()),
                    "next_pid" => Value::Int(npid as i64),
                    "next_prio" => Value::Int(np as i64),
                    _ => {
                        if f.signed {
                            Value::Int(0)
                        } else {
                            Value::UInt(0)
                        }
                    }
                })
                .collect();
            let sw = Event {
                ts_ns: ts,
                cpu,
                pid: ppid,
                comm: self.comm(ppid),
                format: fmt,
                fields,
                flags: 0,
                preempt_count: 0,
                buffer: 0,
                missed_before: Missed::None,
            };
            self.hold(orig);
            self.hold(sw);
        } else {
            let prio = ev.int("prio").unwrap_or(0) as u32;
            let pid = rtos_pid(cpu, prio);
            let orig = self.restamp(ev, ts, cpu, pid);
            self.hold(orig);
        }
    }
}

impl Iterator for RtosStream {
    type Item = Result<Event>;

    fn next(&mut self) -> Option<Result<Event>> {
        while !self.done && self.held.len() < REORDER_WINDOW {
            match self.src.next() {
                Some(Ok(ev)) => {
                    if ev.system() == "hvtrace" && matches!(ev.name(), "rtos_switch" | "rtos_probe") {
                        self.convert(ev);
                    }
                }
                Some(Err(e)) => return Some(Err(e)),
                None => self.done = true,
            }
        }
        let Reverse((_, seq)) = self.heap.pop()?;
        let mut ev = self.held.remove(&seq)?;
        // An event later than the window allows is clamped to keep the stream ordered.
        ev.ts_ns = ev.ts_ns.max(self.last);
        self.last = ev.ts_ns;
        Some(Ok(ev))
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
                Ok(ev) => !(ev.system() == "hvtrace" && matches!(ev.name(), "rtos_switch" | "rtos_probe")),
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
        let switch_fmt = meta
            .format("sched", "sched_switch")
            .cloned()
            .unwrap_or_else(|| Arc::new(sched_switch_for(meta)));
        let cmd = plan
            .tasks
            .iter()
            .map(|(p, n)| (*p, Arc::<str>::from(n.as_str())))
            .collect();
        streams.push(Box::new(RtosStream {
            src: Merged::new(all),
            clock: plan.clock,
            switch_fmt,
            cmd,
            heap: BinaryHeap::new(),
            held: BTreeMap::new(),
            seq: 0,
            last: 0,
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
