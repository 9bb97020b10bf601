//! RTOS timing from a recording: the jobs of each task, as Tracealyzer shows them for a
//! single RTOS, taken from what the hypervisor read of the RTOS's own state.
//!
//! A job is a task's work from its **release** (when it became ready) to its
//! **completion** (when it blocked again). The analysis reads the recording's
//! `hvtrace:rtos_switch` events and two data probes' `hvtrace:rtos_probe` events
//! (`hv-trace record --timing` inserts them), all on the RTOS's own counter
//! (`ts_counter`, exact, the same clock as the RTOS's CNTVCT):
//!
//! - `OSTimeTick tick=OSTime`: the time of each tick; the tick at which `OSTime` was `t`
//!   on entry makes it `t + 1` and readies every task whose delay ends there.
//! - `OSTimeDly ticks now=OSTime`: a task that asks for `ticks` at `now` is released by the
//!   tick that makes `OSTime` `now + ticks`.
//!
//! - `OS_EventTaskRdy%return prio=$retval`: the task a post (semaphore, mailbox, queue,
//!   mutex) made ready: the release of a task that waits for posts.
//!
//! So a release is exact, not the next time the task ran. Without the last probe (or for
//! event flags, which ready tasks elsewhere) a job of a task that waits for posts starts at
//! its first run and has no start latency. Tasks that delay end a job only when they delay;
//! their other blocks are time blocked within the job.
//!
//! Works on a guest recording or a merged one (both carry the `hvtrace` events).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;

use crate::clock::ClockMap;
use crate::error::Result;
use crate::event::Event;
use crate::probe_values::{self, ProbeValue};
use crate::sched::{Slice, SliceBuilder, Switch};
use crate::stream::Trace;

/// `OSTCBStat` bits of a task that waits for something (any of them: pending).
const STAT_PEND_ANY: i64 = 0x37;
/// `OSTCBStat`: suspended.
const STAT_SUSPEND: i64 = 0x08;
/// Added to `OSTCBStat` when a ready task waits out a delay
/// (`guest_probe::abi::STATE_DELAYED`).
const STATE_DELAYED: i64 = guest_probe::abi::STATE_DELAYED as i64;

/// The probe that times ticks, as `hv-trace record --timing` inserts it.
pub const TICK_PROBE: &str = "OSTimeTick tick=OSTime";
/// The probe that gives delays' release ticks.
pub const DELAY_PROBE: &str = "OSTimeDly ticks now=OSTime";
/// The probe that gives releases by posts: the task a post made ready
/// (uC/OS-II's `OS_EventTaskRdy` returns its priority).
pub const READY_PROBE: &str = "OS_EventTaskRdy%return prio=$retval";

/// What the analysis is asked for.
#[derive(Debug, Clone, Default)]
pub struct TimingOptions {
    /// Deadlines by task name (counter ticks are not known yet: nanoseconds); a task
    /// without one is judged against its period.
    pub deadlines: BTreeMap<String, u64>,
    /// The CPU-load windows' length, ns (0: one second).
    pub window_ns: u64,
}

impl TimingOptions {
    /// Parses `NAME=DURATION` (`20ms`, `500us`, `1s`, `250000ns`).
    pub fn add_deadline(&mut self, spec: &str) -> std::result::Result<(), String> {
        let (name, dur) = spec
            .rsplit_once('=')
            .ok_or_else(|| format!("--deadline {spec:?}: expected TASK=DURATION, e.g. RTOS-Task4=20ms"))?;
        let ns = parse_duration(dur)
            .ok_or_else(|| format!("--deadline {spec:?}: {dur:?} is not a duration (e.g. 20ms, 500us, 1s)"))?;
        self.deadlines.insert(name.to_string(), ns);
        Ok(())
    }
}

/// `ticks` of a counter running at `hz`, in nanoseconds.
fn ticks_ns(ticks: u64, hz: u64) -> u64 {
    (ticks as u128 * 1_000_000_000 / hz.max(1) as u128) as u64
}

/// Nanoseconds as microseconds with one decimal, as the tables show them.
pub(crate) fn us(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1e3)
}

/// `20ms`, `1.5ms`, `500us`, `1s`, `250000ns` in nanoseconds.
pub fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, scale) = [("ns", 1.0), ("us", 1e3), ("ms", 1e6), ("s", 1e9)]
        .iter()
        .find_map(|(unit, scale)| s.strip_suffix(unit).map(|n| (n, *scale)))?;
    let v: f64 = num.parse().ok()?;
    (v.is_finite() && v > 0.0).then(|| (v * scale).round() as u64)
}

/// One job of one task. Times are the RTOS's counter (`ts_counter`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Job {
    /// The task's name.
    pub task: String,
    /// Its priority.
    pub prio: u32,
    /// `OSTime` after the tick that released it (delayed tasks).
    pub release_tick: Option<u64>,
    /// When it became ready (delayed tasks: the tick's `OSTimeTick` entry).
    pub release: Option<u64>,
    /// Its first run.
    pub start: u64,
    /// When it blocked (the job's completion).
    pub end: u64,
    /// Time on the CPU (the sum of its runs), ns.
    pub exec_ns: u64,
    /// Completion minus release, ns (from the start when the release is not known).
    pub response_ns: u64,
    /// Start minus release, ns.
    pub start_latency_ns: Option<u64>,
    /// Times it was switched out while ready.
    pub preemptions: u32,
    /// Time blocked within the job (waiting for something other than its next
    /// release), ns.
    pub blocked_ns: u64,
    /// What it blocked on within the job (`sem`, `mbox`, …), if it did.
    pub blocked_on: Vec<&'static str>,
    /// Response time above the task's deadline.
    pub missed: bool,
}

/// min / median / p99 / max of a set, ns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct Spread {
    /// Smallest.
    pub min: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest.
    pub max: u64,
}

impl Spread {
    fn of(mut v: Vec<u64>) -> Option<Spread> {
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        let q = |f: f64| v[((v.len() - 1) as f64 * f).round() as usize];
        Some(Spread {
            min: v[0],
            p50: q(0.5),
            p99: q(0.99),
            max: v[v.len() - 1],
        })
    }
}

/// One task's jobs, summarised.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskTiming {
    /// Its name.
    pub name: String,
    /// Its priority.
    pub prio: u32,
    /// Whole jobs seen (the first, cut by the recording's start, is left out).
    pub jobs: usize,
    /// Median time between releases, ns (tasks released by ticks).
    pub period_ns: Option<u64>,
    /// Largest minus smallest time between releases, ns.
    pub release_jitter_ns: Option<u64>,
    /// The deadline judged against, ns (given, else the period).
    pub deadline_ns: Option<u64>,
    /// Jobs whose response time exceeded the deadline.
    pub misses: usize,
    /// Execution times.
    pub exec_ns: Option<Spread>,
    /// Response times.
    pub response_ns: Option<Spread>,
    /// Start latencies.
    pub start_latency_ns: Option<Spread>,
    /// Largest minus smallest start latency, ns.
    pub start_jitter_ns: Option<u64>,
    /// Preemptions over all jobs.
    pub preemptions: u64,
    /// Time blocked within jobs, over all jobs, ns.
    pub blocked_ns: u64,
}

impl TaskTiming {
    /// Period, release jitter, execution p50 and max, response p50, p99 and
    /// max, start latency p50, in µs (`-` when unknown): the columns every
    /// table of tasks shows.
    pub fn figures_us(&self) -> [String; 8] {
        let opt = |v: Option<u64>| v.map_or("-".to_string(), us);
        [
            opt(self.period_ns),
            opt(self.release_jitter_ns),
            opt(self.exec_ns.map(|x| x.p50)),
            opt(self.exec_ns.map(|x| x.max)),
            opt(self.response_ns.map(|x| x.p50)),
            opt(self.response_ns.map(|x| x.p99)),
            opt(self.response_ns.map(|x| x.max)),
            opt(self.start_latency_ns.map(|x| x.p50)),
        ]
    }
}

/// The timing of a recording's RTOS.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timing {
    /// The counter's frequency (from `clock_sync`).
    pub counter_hz: u64,
    /// Ticks timed by the tick probe.
    pub ticks: usize,
    /// Median time between ticks, ns.
    pub tick_ns: Option<u64>,
    /// Per task, by priority.
    pub tasks: Vec<TaskTiming>,
    /// Every whole job, in completion order.
    pub jobs: Vec<Job>,
    /// The RTOS's interrupts as the hypervisor passed them on, per INTID
    /// (`hvtrace:rtos_irq`, recorded with `--timing`).
    pub irqs: Vec<IrqLatency>,
    /// What ran on Linux's cores during the worst jobs (every miss, and each
    /// job above its task's p99 response time), worst first.
    pub interference: Vec<Interference>,
    /// CPU load over time, per OS and per RTOS task.
    pub load: Option<Load>,
    /// Every RTOS run: (prio, from, to), counter ticks.
    #[serde(skip)]
    runs: Vec<(u32, u64, u64)>,
    /// RTOS task names by priority.
    #[serde(skip)]
    names: BTreeMap<u32, String>,
    /// The counter → trace-clock map of the recording (its `clock_sync`
    /// events), to place jobs on the trace's timeline.
    #[serde(skip)]
    pub clock: Option<ClockMap>,
    /// What limits the result (missing probes, drops).
    pub notes: Vec<String>,
}

/// CPU load in consecutive windows from the RTOS's first switch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Load {
    /// The windows' length, ns.
    pub window_ns: u64,
    /// Each window's start, counter ticks.
    pub starts: Vec<u64>,
    /// The RTOS's load (every task but its idle task), percent of its core.
    pub rtos: Vec<f64>,
    /// Per RTOS task (idle included), percent of the RTOS's core.
    pub tasks: BTreeMap<String, Vec<f64>>,
    /// Linux's load (not idle), percent of all its cores seen running; empty
    /// without Linux's switches or a clock map.
    pub linux: Vec<f64>,
}

impl Load {
    fn of(t: &Timing, window_ns: u64, linux: &[Slice], map: Option<&ClockMap>) -> Option<Load> {
        let hz = t.counter_hz.max(1);
        let window = ((window_ns as u128 * hz as u128) / 1_000_000_000).max(1) as u64;
        let first = t.runs.iter().map(|r| r.1).min()?;
        let last = t.runs.iter().map(|r| r.2).max()?;
        let n = (last - first).div_ceil(window).clamp(1, 100_000) as usize;
        let idle = t.runs.iter().map(|r| r.0).max()?;
        let share = |from: u64, to: u64, k: usize| {
            let (a, b) = (first + k as u64 * window, first + (k as u64 + 1) * window);
            to.min(b).saturating_sub(from.max(a))
        };
        let mut per_prio: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
        for &(prio, from, to) in &t.runs {
            let row = per_prio.entry(prio).or_insert_with(|| vec![0; n]);
            let (k0, k1) = (
                ((from - first) / window) as usize,
                (((to - first) / window) as usize).min(n - 1),
            );
            for (k, cell) in row.iter_mut().enumerate().take(k1 + 1).skip(k0) {
                *cell += share(from, to, k);
            }
        }
        let pct = |v: u64| (v as f64 * 1000.0 / window as f64).round() / 10.0;
        let rtos = (0..n)
            .map(|k| pct(per_prio.iter().filter(|(&p, _)| p != idle).map(|(_, r)| r[k]).sum()))
            .collect();
        let tasks = per_prio
            .iter()
            .map(|(p, r)| {
                let name = t.names.get(p).cloned().unwrap_or_else(|| format!("prio{p}"));
                (name, r.iter().map(|&v| pct(v)).collect())
            })
            .collect();
        let cores: BTreeSet<u32> = linux.iter().map(|s| s.cpu).collect();
        let linux = match map {
            Some(map) if !cores.is_empty() => (0..n)
                .map(|k| {
                    let a = map.ns(first + k as u64 * window);
                    let b = map.ns(first + (k as u64 + 1) * window);
                    let busy: u64 = linux
                        .iter()
                        .filter(|s| s.pid != 0)
                        .map(|s| s.end_ns.min(b).saturating_sub(s.start_ns.max(a)))
                        .sum();
                    let span = (b - a).max(1) * cores.len() as u64;
                    (busy as f64 * 1000.0 / span as f64).round() / 10.0
                })
                .collect(),
            _ => Vec::new(),
        };
        Some(Load {
            window_ns,
            starts: (0..n).map(|k| first + k as u64 * window).collect(),
            rtos,
            tasks,
            linux,
        })
    }
}

/// What Linux did while one RTOS job ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Interference {
    /// The job's task.
    pub task: String,
    /// The job's end (counter ticks): which job.
    pub end: u64,
    /// Whether it missed its deadline.
    pub missed: bool,
    /// Its response time, ns.
    pub response_ns: u64,
    /// Its window (release, else start, to end), ns.
    pub window_ns: u64,
    /// Time the Linux cores ran something other than their idle task in
    /// the window (summed over cores), ns.
    pub linux_busy_ns: u64,
    /// Linux tasks that ran in the window: (name, pid, ns), most first.
    pub linux_tasks: Vec<(String, i32, u64)>,
    /// RTOS ticks in the window.
    pub rtos_ticks: usize,
}

impl Interference {
    /// For every missed job and each job above its task's p99 response time.
    fn of_worst(t: &Timing, linux: &[Slice], map: &ClockMap, ticks: &[u64]) -> Vec<Interference> {
        let p99: BTreeMap<&str, u64> = t
            .tasks
            .iter()
            .filter_map(|x| Some((x.name.as_str(), x.response_ns?.p99)))
            .collect();
        let mut worst: Vec<&Job> = t
            .jobs
            .iter()
            .filter(|j| j.missed || p99.get(j.task.as_str()).is_some_and(|&p| j.response_ns > p))
            .collect();
        worst.sort_by_key(|j| (std::cmp::Reverse(j.missed), std::cmp::Reverse(j.response_ns)));
        worst
            .into_iter()
            .map(|j| {
                let from_c = j.release.unwrap_or(j.start);
                let (from, to) = (map.ns(from_c), map.ns(j.end));
                let mut by_task: BTreeMap<(i32, &str), u64> = BTreeMap::new();
                let mut busy = 0;
                for s in linux {
                    let overlap = s.end_ns.min(to).saturating_sub(s.start_ns.max(from));
                    if overlap > 0 && s.pid != 0 {
                        busy += overlap;
                        *by_task.entry((s.pid, &s.comm)).or_default() += overlap;
                    }
                }
                let mut linux_tasks: Vec<(String, i32, u64)> = by_task
                    .into_iter()
                    .map(|((pid, comm), ns)| (comm.to_string(), pid, ns))
                    .collect();
                linux_tasks.sort_by_key(|x| std::cmp::Reverse(x.2));
                Interference {
                    task: j.task.clone(),
                    end: j.end,
                    missed: j.missed,
                    response_ns: j.response_ns,
                    window_ns: to.saturating_sub(from),
                    linux_busy_ns: busy,
                    linux_tasks,
                    rtos_ticks: ticks.iter().filter(|&&k| from_c <= k && k <= j.end).count(),
                }
            })
            .collect()
    }
}

/// The latency of one interrupt source of the RTOS, step by step (ns).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IrqLatency {
    /// The INTID (27: the virtual timer, the RTOS's tick).
    pub irq: u32,
    /// Interrupts seen.
    pub count: usize,
    /// From when it was due (the timer's compare value) to when the
    /// physical interrupt reached the hypervisor.
    pub due_to_el2_ns: Option<Spread>,
    /// In the hypervisor: from its arrival to its injection into the VM.
    pub el2_to_injected_ns: Option<Spread>,
    /// From the injection to the RTOS's handler (`OSTimeTick`'s entry).
    pub injected_to_handler_ns: Option<Spread>,
    /// From due to the handler: what the RTOS sees as its tick's latency.
    pub due_to_handler_ns: Option<Spread>,
    /// Each interrupt's due-to-handler time, ns (for histograms).
    #[serde(skip)]
    pub due_to_handler_samples: Vec<u64>,
}

/// The virtual timer's PPI: the RTOS's tick.
pub const TIMER_IRQ: u32 = 27;

/// One `hvtrace:rtos_irq`: (reached EL2, INTID, due, injected), counter ticks.
type IrqRecord = (u64, u32, u64, u64);

impl IrqLatency {
    /// Per INTID, from the records and the ticks' handler entries (sorted).
    fn of(mut irqs: Vec<IrqRecord>, ticks: &[u64], ns: impl Fn(u64) -> u64) -> Vec<IrqLatency> {
        irqs.sort_unstable();
        let intids: BTreeSet<u32> = irqs.iter().map(|i| i.1).collect();
        intids
            .into_iter()
            .map(|irq| {
                let mine: Vec<&IrqRecord> = irqs.iter().filter(|i| i.1 == irq).collect();
                let due = |&&(arrived, _, due, _): &&IrqRecord| (due != 0 && due <= arrived).then(|| ns(arrived - due));
                // The handler: the first tick entry after the injection and
                // before the same source's next interrupt.
                let handlers: Vec<Option<u64>> = (0..mine.len())
                    .map(|k| {
                        let (_, _, _, injected) = *mine[k];
                        let next = mine.get(k + 1).map_or(u64::MAX, |n| n.0);
                        let t = *ticks.get(ticks.partition_point(|&t| t < injected))?;
                        (irq == TIMER_IRQ && t < next).then_some(t)
                    })
                    .collect();
                let due_to_handler_samples: Vec<u64> = mine
                    .iter()
                    .zip(&handlers)
                    .filter_map(|(&&(_, _, due, _), h)| h.filter(|&h| due != 0 && due <= h).map(|h| ns(h - due)))
                    .collect();
                IrqLatency {
                    irq,
                    count: mine.len(),
                    due_to_el2_ns: Spread::of(mine.iter().filter_map(due).collect()),
                    el2_to_injected_ns: Spread::of(mine.iter().map(|i| ns(i.3.saturating_sub(i.0))).collect()),
                    injected_to_handler_ns: Spread::of(
                        mine.iter()
                            .zip(&handlers)
                            .filter_map(|(i, h)| h.map(|h| ns(h - i.3)))
                            .collect(),
                    ),
                    due_to_handler_ns: Spread::of(due_to_handler_samples.clone()),
                    due_to_handler_samples,
                }
            })
            .collect()
    }
}

/// One RTOS event, in counter order.
enum Item {
    Tick { now: u64 },
    Ready { prio: u32 },
    Delay { prio: u32, until: u64 },
    Switch { prev: u32, prev_state: i64, next: u32 },
}

#[derive(Default)]
struct TaskState {
    /// When it was switched in, if running.
    since: Option<u64>,
    /// The job in progress.
    job: Option<Open>,
    /// The tick its delay ends at.
    release_tick: Option<u64>,
    /// When a post readied it (its next job's release, if not delayed).
    ready_at: Option<u64>,
    /// Whether a job was cut by the recording's start (its first is not whole).
    seen_block: bool,
}

struct Open {
    release_tick: Option<u64>,
    release: Option<u64>,
    start: u64,
    exec: u64,
    preemptions: u32,
    blocked: u64,
    blocked_since: Option<u64>,
    blocked_on: BTreeSet<&'static str>,
    whole: bool,
}

/// What a pending task waits for, by its `OSTCBStat` bits.
fn pend_names(state: i64) -> impl Iterator<Item = &'static str> {
    [
        (0x01, "sem"),
        (0x02, "mbox"),
        (0x04, "q"),
        (0x10, "mutex"),
        (0x20, "flag"),
    ]
    .into_iter()
    .filter(move |(bit, _)| state & bit != 0)
    .map(|(_, n)| n)
}

impl Timing {
    /// Analyses `trace` (a guest recording or a merged one).
    pub fn of_trace(trace: &Trace, opts: &TimingOptions) -> Result<Timing> {
        Self::of_events(trace.events(), opts)
    }

    /// Analyses the events of one or more recordings of one run.
    pub fn of_events(events: impl Iterator<Item = Result<Event>>, opts: &TimingOptions) -> Result<Timing> {
        let mut items: Vec<(u64, u64, Item)> = Vec::new();
        let mut names: BTreeMap<u32, String> = BTreeMap::new();
        let mut irqs: Vec<IrqRecord> = Vec::new();
        let (mut syncs, mut slices, mut linux, mut last_ns) = (Vec::new(), SliceBuilder::new(), Vec::new(), 0);
        let mut counter_hz = 0;
        let (mut tick_probe, mut delay_probe) = (false, false);
        for e in events {
            let e = e?;
            last_ns = last_ns.max(e.ts_ns);
            if let Some(sw) = Switch::from_event(&e) {
                linux.extend(slices.push(&sw).filter(|s| s.pid < crate::merge::RTOS_PID_BASE));
                continue;
            }
            if e.system() != "hvtrace" {
                continue;
            }
            match e.name() {
                "clock_sync" => {
                    counter_hz = e.int("freq_hz").unwrap_or(0) as u64;
                    if let (Some(c), Some(t)) = (e.int("counter"), e.int("trace_clock_ns")) {
                        syncs.push((c as u64, t as u64, counter_hz));
                    }
                }
                "rtos_irq" => {
                    let field = |n: &str| e.int(n).map(|v| v as u64);
                    if let (Some(at), Some(irq), Some(due), Some(inj)) =
                        (field("ts_counter"), field("irq"), field("due"), field("injected"))
                    {
                        irqs.push((at, irq as u32, due, inj));
                    }
                }
                "rtos_switch" => {
                    let (Some(ts), Some(prev), Some(next)) =
                        (e.int("ts_counter"), e.int("prev_prio"), e.int("next_prio"))
                    else {
                        continue;
                    };
                    for (side, prio) in [("prev", prev), ("next", next)] {
                        let n = e.str(&format!("{side}_comm")).unwrap_or("");
                        if !n.is_empty() {
                            names.insert(prio as u32, n.to_string());
                        }
                    }
                    items.push((
                        ts as u64,
                        seq(&e),
                        Item::Switch {
                            prev: prev as u32,
                            prev_state: e.int("prev_state").unwrap_or(0),
                            next: next as u32,
                        },
                    ));
                }
                "rtos_probe" => {
                    let Some(ts) = e.int("ts_counter") else { continue };
                    let what = probe_values::parse(e.str("what").unwrap_or(""));
                    let uint = |n: &str| match what.get(n) {
                        Some(ProbeValue::UInt(v) | ProbeValue::Hex(v)) => Some(*v),
                        _ => None,
                    };
                    let item = match what.label {
                        "OSTimeTick" => uint("tick")
                            .and_then(|t| t.checked_add(1))
                            .map(|now| Item::Tick { now }),
                        "OS_EventTaskRdy%return" => uint("prio").map(|p| Item::Ready { prio: p as u32 }),
                        "OSTimeDly" => {
                            // Fetched by the timing probe (`now`), not just any OSTimeDly probe.
                            delay_probe |= uint("now").is_some();
                            match (uint("ticks"), uint("now"), e.int("prio")) {
                                (Some(d), Some(now), Some(prio)) if d > 0 => {
                                    now.checked_add(d).map(|until| Item::Delay {
                                        prio: prio as u32,
                                        until,
                                    })
                                }
                                _ => None,
                            }
                        }
                        _ => None,
                    };
                    tick_probe |= matches!(item, Some(Item::Tick { .. }));
                    if let Some(item) = item {
                        items.push((ts as u64, seq(&e), item));
                    }
                }
                _ => {}
            }
        }
        items.sort_by_key(|&(ts, seq, _)| (ts, seq));
        let mut notes = Vec::new();
        if counter_hz == 0 {
            counter_hz = 62_500_000;
            notes.push("no clock_sync event: the counter is taken to run at 62.5 MHz".into());
        }
        if !tick_probe || !delay_probe {
            notes.push(format!(
                "releases need the probes `{TICK_PROBE}` and `{DELAY_PROBE}` (hv-trace record --timing); \
                 without them a job starts at its first run"
            ));
        }
        let mut timing = Self::from_items(&items, &names, counter_hz, opts, notes);
        let ticks: Vec<u64> = items
            .iter()
            .filter_map(|(ts, _, it)| matches!(it, Item::Tick { .. }).then_some(*ts))
            .collect();
        timing.irqs = IrqLatency::of(irqs, &ticks, |t| ticks_ns(t, counter_hz));
        linux.extend(
            slices
                .finish(last_ns)
                .into_iter()
                .filter(|s| s.pid < crate::merge::RTOS_PID_BASE),
        );
        syncs.sort_unstable();
        let map = ClockMap::fit(&syncs);
        timing.clock = map;
        let window = if opts.window_ns == 0 {
            1_000_000_000
        } else {
            opts.window_ns
        };
        timing.load = Load::of(&timing, window, &linux, map.as_ref());
        if let Some(map) = map.filter(|_| !linux.is_empty()) {
            timing.interference = Interference::of_worst(&timing, &linux, &map, &ticks);
            timing.notes.push(
                "interference: under QEMU TCG each core is a host thread, so Linux slows the RTOS through \
                 the host's CPUs (and, under -icount, one shared instruction clock), not through shared \
                 hardware as on a real SoC; Linux's own interrupts and the hypervisor's traps for Linux \
                 are not recorded"
                    .into(),
            );
        }
        Ok(timing)
    }

    fn from_items(
        items: &[(u64, u64, Item)],
        names: &BTreeMap<u32, String>,
        counter_hz: u64,
        opts: &TimingOptions,
        notes: Vec<String>,
    ) -> Timing {
        let ns = |ticks: u64| ticks_ns(ticks, counter_hz);
        // Tasks that ever block on a delay alone end their jobs only there.
        let delayers: BTreeSet<u32> = items
            .iter()
            .filter_map(|(_, _, it)| match it {
                Item::Switch { prev, prev_state, .. } if *prev_state == STATE_DELAYED => Some(*prev),
                _ => None,
            })
            .collect();
        let mut tick_at: BTreeMap<u64, u64> = BTreeMap::new();
        let mut tasks: BTreeMap<u32, TaskState> = BTreeMap::new();
        let mut jobs: Vec<Job> = Vec::new();
        let mut runs: Vec<(u32, u64, u64)> = Vec::new();
        for &(ts, _, ref item) in items {
            match *item {
                Item::Tick { now } => {
                    tick_at.insert(now, ts);
                }
                Item::Delay { prio, until } => tasks.entry(prio).or_default().release_tick = Some(until),
                Item::Ready { prio } => {
                    // A post readied it: the release of its next job, unless it
                    // was only blocked within one.
                    let t = tasks.entry(prio).or_default();
                    if t.job.is_none() {
                        t.ready_at = Some(ts);
                    }
                }
                Item::Switch { prev, prev_state, next } => {
                    let t = tasks.entry(prev).or_default();
                    let since = t.since.take();
                    if let Some(s) = since {
                        runs.push((prev, s, ts));
                    }
                    let ran = since.map(|s| ts.saturating_sub(s));
                    let blocked = prev_state & (STAT_PEND_ANY | STAT_SUSPEND | STATE_DELAYED) != 0;
                    let ends_job = blocked && (!delayers.contains(&prev) || prev_state == STATE_DELAYED);
                    if let Some(job) = t.job.as_mut() {
                        job.exec += ran.unwrap_or(0);
                        if !blocked {
                            job.preemptions += 1;
                        } else if !ends_job {
                            job.blocked_since = Some(ts);
                            job.blocked_on.extend(pend_names(prev_state));
                        }
                    }
                    if ends_job {
                        if let Some(job) = t.job.take().filter(|j| j.whole) {
                            let name = names.get(&prev).cloned().unwrap_or_else(|| format!("prio{prev}"));
                            let response = ts.saturating_sub(job.release.unwrap_or(job.start));
                            jobs.push(Job {
                                task: name,
                                prio: prev,
                                release_tick: job.release_tick,
                                release: job.release,
                                start: job.start,
                                end: ts,
                                exec_ns: ns(job.exec),
                                response_ns: ns(response),
                                start_latency_ns: job.release.map(|r| ns(job.start.saturating_sub(r))),
                                preemptions: job.preemptions,
                                blocked_ns: ns(job.blocked),
                                blocked_on: job.blocked_on.into_iter().collect(),
                                missed: false,
                            });
                        }
                        t.job = None;
                        t.seen_block = true;
                    }
                    let n = tasks.entry(next).or_default();
                    n.since = Some(ts);
                    match n.job.as_mut() {
                        Some(job) => {
                            if let Some(b) = job.blocked_since.take() {
                                job.blocked += ts.saturating_sub(b);
                            }
                        }
                        None => {
                            let release_tick = n.release_tick.take();
                            let ready_at = n.ready_at.take();
                            n.job = Some(Open {
                                release_tick,
                                release: release_tick.and_then(|r| tick_at.get(&r).copied()).or(ready_at),
                                start: ts,
                                exec: 0,
                                preemptions: 0,
                                blocked: 0,
                                blocked_since: None,
                                blocked_on: BTreeSet::new(),
                                whole: n.seen_block,
                            });
                        }
                    }
                }
            }
        }
        let ticks: Vec<u64> = tick_at.values().copied().collect();
        let tick_ns = Spread::of(ticks.windows(2).map(|w| ns(w[1].saturating_sub(w[0]))).collect()).map(|s| s.p50);
        let mut out = Vec::new();
        for (&prio, _) in tasks.iter() {
            let mine: Vec<&mut Job> = jobs.iter_mut().filter(|j| j.prio == prio).collect();
            if mine.is_empty() {
                continue;
            }
            let name = mine[0].task.clone();
            let releases: Vec<u64> = mine.iter().filter_map(|j| j.release).collect();
            let gaps: Vec<u64> = releases.windows(2).map(|w| ns(w[1].saturating_sub(w[0]))).collect();
            let period = Spread::of(gaps.clone());
            let given = opts.deadlines.get(&name).copied();
            // A periodic task (released by ticks) is judged by its period; a
            // task released by posts is sporadic: only by a deadline given.
            let periodic = mine.iter().any(|j| j.release_tick.is_some());
            let deadline = given.or(period.map(|p| p.p50).filter(|_| periodic));
            // Without a given deadline a job must end before its next release, as
            // the RTOS counts it: by the tick `period_ticks` after its own (the
            // ticks' times vary; a job ending 50.1 ms after a 50-tick span that took
            // 50.3 ms is in time).
            let tick_gaps: Vec<u64> = mine
                .iter()
                .filter_map(|j| j.release_tick)
                .collect::<Vec<_>>()
                .windows(2)
                .map(|w| w[1].saturating_sub(w[0]))
                .collect();
            let period_ticks = Spread::of(tick_gaps).map(|p| p.p50).filter(|&p| p > 0);
            let mut misses = 0;
            for j in mine {
                let next_release = match (given, period_ticks, j.release_tick) {
                    (None, Some(p), Some(r)) => r.checked_add(p).and_then(|t| tick_at.get(&t)),
                    _ => None,
                };
                j.missed = match next_release {
                    Some(&t) => j.end > t,
                    None => deadline.is_some_and(|d| j.response_ns > d),
                };
                misses += usize::from(j.missed);
            }
            let mine: Vec<&Job> = jobs.iter().filter(|j| j.prio == prio).collect();
            let lat = Spread::of(mine.iter().filter_map(|j| j.start_latency_ns).collect());
            out.push(TaskTiming {
                name,
                prio,
                jobs: mine.len(),
                period_ns: period.map(|p| p.p50),
                release_jitter_ns: period.map(|p| p.max - p.min),
                deadline_ns: deadline,
                misses,
                exec_ns: Spread::of(mine.iter().map(|j| j.exec_ns).collect()),
                response_ns: Spread::of(mine.iter().map(|j| j.response_ns).collect()),
                start_latency_ns: lat,
                start_jitter_ns: lat.map(|l| l.max - l.min),
                preemptions: mine.iter().map(|j| u64::from(j.preemptions)).sum(),
                blocked_ns: mine.iter().map(|j| j.blocked_ns).sum(),
            });
        }
        Timing {
            counter_hz,
            ticks: tick_at.len(),
            tick_ns,
            tasks: out,
            jobs,
            irqs: Vec::new(),
            interference: Vec::new(),
            load: None,
            runs,
            names: names.clone(),
            clock: None,
            notes,
        }
    }

    /// A counter value in seconds.
    pub fn seconds(&self, counter: u64) -> f64 {
        counter as f64 / self.counter_hz.max(1) as f64
    }

    /// The per-task table a user reads.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "RTOS jobs: {} ticks timed{}",
            self.ticks,
            self.tick_ns
                .map_or(String::new(), |t| format!(" (one every {} us)", us(t)))
        );
        let _ = writeln!(
            s,
            "  {:<16} {:>4} {:>5} {:>9} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>6} {:>8}",
            "task",
            "prio",
            "jobs",
            "period",
            "jitter",
            "exec p50",
            "exec max",
            "resp p50",
            "resp p99",
            "resp max",
            "start p50",
            "preem",
            "misses"
        );
        for t in &self.tasks {
            let [period, jitter, exec_p50, exec_max, resp_p50, resp_p99, resp_max, start_p50] = t.figures_us();
            let _ = writeln!(
                s,
                "  {:<16} {:>4} {:>5} {:>9} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>6} {:>8}",
                t.name,
                t.prio,
                t.jobs,
                period,
                jitter,
                exec_p50,
                exec_max,
                resp_p50,
                resp_p99,
                resp_max,
                start_p50,
                t.preemptions,
                match t.deadline_ns {
                    Some(d) => format!("{}/{}", t.misses, us(d)),
                    None => "-".into(),
                }
            );
        }
        let _ = writeln!(s, "  (times in us; misses: jobs over the deadline / the deadline)");
        if let Some(l) = &self.load {
            let _ = writeln!(
                s,
                "CPU load per {} ms window (percent; the RTOS of its core, Linux of its cores):",
                l.window_ns as f64 / 1e6
            );
            let names: Vec<&String> = l.tasks.keys().collect();
            let mut head = format!("  {:>12} {:>6} {:>6}", "from (s)", "RTOS", "Linux");
            for n in &names {
                let _ = write!(head, " {:>14}", n.chars().take(14).collect::<String>());
            }
            let _ = writeln!(s, "{head}");
            for (k, start) in l.starts.iter().enumerate().take(20) {
                let linux = l.linux.get(k).map_or("-".to_string(), |v| format!("{v:.1}"));
                let mut row = format!("  {:>12.3} {:>6.1} {:>6}", self.seconds(*start), l.rtos[k], linux);
                for n in &names {
                    let _ = write!(row, " {:>14.1}", l.tasks[*n][k]);
                }
                let _ = writeln!(s, "{row}");
            }
            if l.starts.len() > 20 {
                let _ = writeln!(s, "  … {} windows in all (--json has each)", l.starts.len());
            }
        }
        if !self.irqs.is_empty() {
            let _ = writeln!(
                s,
                "RTOS interrupts, as the hypervisor passed them on (us, median / p99 / max):"
            );
            let _ = writeln!(
                s,
                "  {:<12} {:>6} {:>24} {:>24} {:>24} {:>24}",
                "irq", "count", "due -> at EL2", "at EL2 -> injected", "injected -> handler", "due -> handler"
            );
            let spread = |x: Option<Spread>| {
                x.map_or("-".to_string(), |x| {
                    format!("{} / {} / {}", us(x.p50), us(x.p99), us(x.max))
                })
            };
            for i in &self.irqs {
                let name = if i.irq == TIMER_IRQ {
                    format!("{} (tick)", i.irq)
                } else {
                    i.irq.to_string()
                };
                let _ = writeln!(
                    s,
                    "  {:<12} {:>6} {:>24} {:>24} {:>24} {:>24}",
                    name,
                    i.count,
                    spread(i.due_to_el2_ns),
                    spread(i.el2_to_injected_ns),
                    spread(i.injected_to_handler_ns),
                    spread(i.due_to_handler_ns)
                );
            }
        }
        let mut worst: Vec<&Job> = self.jobs.iter().filter(|j| j.missed).collect();
        worst.sort_by_key(|j| std::cmp::Reverse(j.response_ns));
        for j in worst.iter().take(5) {
            let _ = writeln!(
                s,
                "  missed: {} job ending at counter {} ({:.6} s): response {} us, exec {} us, {} preemptions",
                j.task,
                j.end,
                self.seconds(j.end),
                us(j.response_ns),
                us(j.exec_ns),
                j.preemptions
            );
        }
        if !self.interference.is_empty() {
            let _ = writeln!(
                s,
                "The worst jobs ({} of them: every miss, each above its task's p99), and what Linux ran meanwhile:",
                self.interference.len()
            );
            for w in self.interference.iter().take(5) {
                let tasks: Vec<String> = w
                    .linux_tasks
                    .iter()
                    .take(4)
                    .map(|(comm, pid, ns)| format!("{comm} ({pid}) {} us", us(*ns)))
                    .collect();
                let _ = writeln!(
                    s,
                    "  {} job ending at counter {} ({:.6} s){}: response {} us; Linux busy {} us of {} us{}{}",
                    w.task,
                    w.end,
                    self.seconds(w.end),
                    if w.missed { ", missed" } else { "" },
                    us(w.response_ns),
                    us(w.linux_busy_ns),
                    us(w.window_ns),
                    if tasks.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", tasks.join(", "))
                    },
                    if w.rtos_ticks > 0 {
                        format!("; {} RTOS ticks", w.rtos_ticks)
                    } else {
                        String::new()
                    },
                );
            }
        }
        for n in &self.notes {
            let _ = writeln!(s, "  note: {n}");
        }
        s
    }
}

/// A record's sequence number (ties between equal counter times keep the ring's order).
fn seq(e: &Event) -> u64 {
    e.int("seq").unwrap_or(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> BTreeMap<u32, String> {
        [(10, "T1"), (11, "T2"), (63, "Idle")]
            .into_iter()
            .map(|(p, n)| (p, n.to_string()))
            .collect()
    }

    fn sw(ts: u64, prev: u32, prev_state: i64, next: u32) -> (u64, u64, Item) {
        (ts, 0, Item::Switch { prev, prev_state, next })
    }

    fn tick(ts: u64, now: u64) -> (u64, u64, Item) {
        (ts, 0, Item::Tick { now })
    }

    fn delay(ts: u64, prio: u32, until: u64) -> (u64, u64, Item) {
        (ts, 0, Item::Delay { prio, until })
    }

    /// Two tasks released together every 10 ticks (1 tick = 1000 counts at 1 MHz = 1 ms);
    /// T1 (higher priority) runs 2 ms, T2 3 ms, preempted once by T1's next release in
    /// the second period... built by hand, then checked job by job.
    #[test]
    fn jobs_have_their_release_from_the_tick_and_the_delay() {
        let mut items = Vec::new();
        let d = STATE_DELAYED;
        // Before: both delay until tick 10 (the first jobs are cut: not whole).
        items.push(sw(0, 63, 0, 10));
        items.push(delay(100, 10, 10));
        items.push(sw(200, 10, d, 11));
        items.push(delay(300, 11, 10));
        items.push(sw(400, 11, d, 63));
        for period in 1..=3u64 {
            let base = period * 10_000;
            // The tick that makes OSTime = 10·period at `base`.
            items.push(tick(base, period * 10));
            items.push(sw(base + 50, 63, 0, 10));
            items.push(delay(base + 2_000, 10, period * 10 + 10));
            items.push(sw(base + 2_050, 10, d, 11));
            if period == 2 {
                // T2 waits on a semaphore for 1 ms inside its job.
                items.push(sw(base + 3_050, 11, 0x01, 63));
                items.push(sw(base + 4_050, 63, 0, 11));
            }
            items.push(delay(base + 5_050, 11, period * 10 + 10));
            items.push(sw(base + 5_100, 11, d, 63));
        }
        let t = Timing::from_items(&items, &names(), 1_000_000, &TimingOptions::default(), vec![]);
        let t1: Vec<&Job> = t.jobs.iter().filter(|j| j.task == "T1").collect();
        let t2: Vec<&Job> = t.jobs.iter().filter(|j| j.task == "T2").collect();
        assert_eq!((t1.len(), t2.len()), (3, 3), "{:#?}", t.jobs);
        assert_eq!(t1[0].release, Some(10_000));
        assert_eq!(t1[0].release_tick, Some(10));
        assert_eq!(t1[0].start_latency_ns, Some(50_000));
        assert_eq!(t1[0].response_ns, 2_050_000);
        assert_eq!(t1[0].exec_ns, 2_000_000);
        assert_eq!(t2[0].start_latency_ns, Some(2_050_000));
        assert_eq!(t2[0].response_ns, 5_100_000);
        assert_eq!(t2[0].exec_ns, 3_050_000);
        // The semaphore wait is blocked time inside the job, not a job of its own.
        assert_eq!(t2[1].blocked_ns, 1_000_000);
        assert_eq!(t2[1].blocked_on, vec!["sem"]);
        assert_eq!(t2[1].exec_ns, 2_050_000);
        let task2 = t.tasks.iter().find(|x| x.name == "T2").unwrap();
        assert_eq!(task2.period_ns, Some(10_000_000));
        assert_eq!(task2.release_jitter_ns, Some(0));
        assert_eq!(task2.misses, 0);
        assert_eq!(t.tick_ns, Some(10_000_000));
        // Idle never blocks: it has no whole job and no row.
        assert!(t.tasks.iter().all(|x| x.name != "Idle"));
    }

    #[test]
    fn a_deadline_counts_the_jobs_over_it() {
        let d = STATE_DELAYED;
        let mut items = vec![sw(0, 63, 0, 10), sw(10, 10, d, 63)];
        for (i, run) in [100u64, 300, 200].into_iter().enumerate() {
            let base = 1_000 * (i as u64 + 1);
            items.push(delay(base - 1, 10, i as u64 + 1));
            items.push(tick(base, i as u64 + 1));
            items.push(sw(base, 63, 0, 10));
            items.push(sw(base + run, 10, d, 63));
        }
        let mut opts = TimingOptions::default();
        opts.add_deadline("T1=150us").unwrap();
        let t = Timing::from_items(&items, &names(), 1_000_000, &opts, vec![]);
        let row = &t.tasks[0];
        assert_eq!((row.jobs, row.misses, row.deadline_ns), (3, 2, Some(150_000)));
        assert!(t
            .render()
            .contains("missed: T1 job ending at counter 2300 (0.002300 s): response 300.0 us"));
        assert!(opts.add_deadline("T1").is_err());
        assert!(opts.add_deadline("T1=fast").is_err());
        assert_eq!(parse_duration("1.5ms"), Some(1_500_000));
    }

    /// Without a given deadline a job misses when it ends after its next
    /// release's tick, whatever the ticks' spacing (as the RTOS counts overruns).
    #[test]
    fn a_period_deadline_is_the_next_releases_tick() {
        let d = STATE_DELAYED;
        // Ticks 10..60, the last one late. T1 released at 10, 20, 40, 50 (its
        // second job overran tick 30, its release skipped to 40): periods of 10
        // ticks, 1_000 counts.
        let items = vec![
            sw(0, 63, 0, 10),
            delay(5, 10, 10),
            sw(10, 10, d, 63),
            tick(1_000, 10),
            sw(1_001, 63, 0, 10),
            delay(1_499, 10, 20),
            sw(1_500, 10, d, 63),
            tick(2_000, 20),
            sw(2_001, 63, 0, 10),
            tick(3_000, 30),
            delay(3_049, 10, 40),
            sw(3_050, 10, d, 63), // after tick 30: missed
            tick(4_000, 40),
            sw(4_001, 63, 0, 10),
            delay(4_899, 10, 50),
            sw(4_900, 10, d, 63),
            tick(5_000, 50),
            sw(5_001, 63, 0, 10),
            delay(6_099, 10, 60),
            sw(6_100, 10, d, 63), // 1_100 after its release, but before tick 60: in time
            tick(6_200, 60),
        ];
        let t = Timing::from_items(&items, &names(), 1_000_000, &TimingOptions::default(), vec![]);
        let missed: Vec<bool> = t.jobs.iter().map(|j| j.missed).collect();
        assert_eq!(missed, [false, true, false, false], "{:#?}", t.jobs);
        assert_eq!(t.tasks[0].misses, 1);
        // A deadline given in time is judged in time.
        let mut opts = TimingOptions::default();
        opts.add_deadline("T1=1ms").unwrap();
        let t = Timing::from_items(&items, &names(), 1_000_000, &opts, vec![]);
        let missed: Vec<bool> = t.jobs.iter().map(|j| j.missed).collect();
        assert_eq!(missed, [false, true, false, true]);
    }

    /// Each step of an interrupt's way in, per source: the handler is the
    /// first tick after the injection (and before the next interrupt).
    #[test]
    fn interrupt_latency_is_split_into_its_steps() {
        // (reached EL2, INTID, due, injected) at 1 MHz: 1 count = 1 us.
        let irqs = vec![
            (1_010, TIMER_IRQ, 1_000, 1_012),
            (2_030, TIMER_IRQ, 2_000, 2_031),
            (2_500, 33, 0, 2_502),
            (3_005, TIMER_IRQ, 3_000, 3_006), // its handler is not in the recording
        ];
        let ticks = [1_020, 2_040];
        let l = IrqLatency::of(irqs, &ticks, |t| t * 1_000);
        assert_eq!(l.len(), 2);
        let timer = &l[0];
        assert_eq!((timer.irq, timer.count), (TIMER_IRQ, 3));
        let s = |x: Option<Spread>| x.map(|x| (x.min, x.max));
        assert_eq!(s(timer.due_to_el2_ns), Some((5_000, 30_000)));
        assert_eq!(s(timer.el2_to_injected_ns), Some((1_000, 2_000)));
        assert_eq!(s(timer.injected_to_handler_ns), Some((8_000, 9_000)));
        assert_eq!(s(timer.due_to_handler_ns), Some((20_000, 40_000)));
        let other = &l[1];
        assert_eq!((other.irq, other.count), (33, 1));
        assert_eq!(other.due_to_el2_ns, None);
        assert_eq!(other.injected_to_handler_ns, None);
        assert_eq!(s(other.el2_to_injected_ns), Some((2_000, 2_000)));
    }

    /// A missed job's window against Linux's run slices: who ran, how long,
    /// idle left out; ranked by overlap.
    #[test]
    fn the_worst_jobs_name_what_linux_ran_meanwhile() {
        let d = STATE_DELAYED;
        let items = vec![
            sw(0, 63, 0, 10),
            delay(5, 10, 10),
            sw(10, 10, d, 63),
            tick(1_000, 10),
            sw(1_001, 63, 0, 10),
            delay(1_599, 10, 20),
            sw(1_600, 10, d, 63),
        ];
        let mut opts = TimingOptions::default();
        opts.add_deadline("T1=500us").unwrap();
        let t = Timing::from_items(&items, &names(), 1_000_000, &opts, vec![]);
        assert!(t.jobs[0].missed);
        let slice = |cpu: u32, pid: i32, comm: &str, start_ns: u64, end_ns: u64| Slice {
            cpu,
            pid,
            comm: comm.into(),
            prio: 120,
            start_ns,
            end_ns,
            end_state: 0,
        };
        // 1 count = 1 us = 1_000 ns; the job's window is 1_000_000..1_600_000 ns.
        let linux = [
            slice(0, 7, "dd", 500_000, 1_200_000), // 200 us inside
            slice(0, 0, "swapper", 1_200_000, 1_300_000),
            slice(0, 9, "sh", 1_300_000, 1_700_000), // 300 us inside
            slice(2, 7, "dd", 1_550_000, 1_650_000), // 50 us inside, another core
            slice(0, 11, "late", 1_700_000, 1_800_000),
        ];
        let map = ClockMap {
            c0: 0,
            ns0: 0,
            rate: 1_000.0,
        };
        let w = Interference::of_worst(&t, &linux, &map, &[1_000]);
        assert_eq!(w.len(), 1);
        assert_eq!(
            (w[0].window_ns, w[0].linux_busy_ns, w[0].rtos_ticks),
            (600_000, 550_000, 1)
        );
        assert_eq!(
            w[0].linux_tasks,
            [("sh".to_string(), 9, 300_000), ("dd".to_string(), 7, 250_000)]
        );
    }

    /// Load per window: each task's share of the RTOS's core, the RTOS's
    /// (idle left out), and Linux's share of its cores.
    #[test]
    fn load_is_counted_per_window_and_task() {
        let d = STATE_DELAYED;
        let items = vec![
            sw(0, 63, 0, 10),
            sw(10, 10, d, 63),
            tick(1_000, 10),
            sw(1_001, 63, 0, 10),
            sw(1_600, 10, d, 63),
        ];
        let t = Timing::from_items(&items, &names(), 1_000_000, &TimingOptions::default(), vec![]);
        let linux = [Slice {
            cpu: 0,
            pid: 5,
            comm: "dd".into(),
            prio: 120,
            start_ns: 500_000,
            end_ns: 1_500_000,
            end_state: 0,
        }];
        let map = ClockMap {
            c0: 0,
            ns0: 0,
            rate: 1_000.0,
        };
        let l = Load::of(&t, 1_000_000, &linux, Some(&map)).unwrap();
        assert_eq!(l.starts, [0, 1_000]);
        assert_eq!(l.rtos, [1.0, 59.9]);
        assert_eq!(l.tasks["T1"], [1.0, 59.9]);
        assert_eq!(l.tasks["Idle"], [99.0, 0.1]);
        assert_eq!(l.linux, [50.0, 50.0]);
    }

    /// Whatever a recording holds (a lying guest, drops, odd states), the
    /// analysis answers without a panic.
    #[test]
    fn any_sequence_of_events_is_analysed_without_a_panic() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..300 {
            let n = (next() % 200) as usize;
            let mut ts = 0u64;
            let mut items = Vec::new();
            let mut irqs = Vec::new();
            for _ in 0..n {
                ts += next() % 3;
                let small = |v: u64| [0, 1, 10, 63, u64::MAX - 1, u64::MAX][(v % 6) as usize];
                items.push(match next() % 4 {
                    0 => tick(ts, small(next())),
                    3 => (
                        ts,
                        0,
                        Item::Ready {
                            prio: (next() % 70) as u32,
                        },
                    ),
                    1 => (
                        ts,
                        0,
                        Item::Delay {
                            prio: (next() % 70) as u32,
                            until: small(next()),
                        },
                    ),
                    _ => sw(ts, (next() % 70) as u32, (next() % 0x200) as i64, (next() % 70) as u32),
                });
                irqs.push((ts, (next() % 40) as u32, small(next()), small(next())));
            }
            let mut opts = TimingOptions::default();
            if next() % 2 == 0 {
                opts.add_deadline("T1=1ns").unwrap();
            }
            let t = Timing::from_items(&items, &names(), 1 + next() % 100_000_000, &opts, vec![]);
            let ticks: Vec<u64> = items
                .iter()
                .filter_map(|(ts, _, it)| matches!(it, Item::Tick { .. }).then_some(*ts))
                .collect();
            let _ = IrqLatency::of(irqs, &ticks, |c| c);
            let map = ClockMap {
                c0: next() % 1000,
                ns0: next() % 1000,
                rate: 0.5,
            };
            let _ = Load::of(&t, 1 + next() % 1_000_000, &[], Some(&map));
            let _ = Interference::of_worst(&t, &[], &map, &ticks);
            let _ = t.render();
            let _ = crate::report::html(&t, "fuzz");
        }
    }

    /// A task that waits for posts is released by the post that readied it.
    #[test]
    fn a_post_releases_a_task_that_waits_for_it() {
        let items = vec![
            sw(0, 63, 0, 11),
            sw(100, 11, 0x01, 63), // waits on a semaphore: its first job is cut
            (1_000, 0, Item::Ready { prio: 11 }),
            sw(1_300, 63, 0, 11),
            sw(1_800, 11, 0x01, 63),
            (3_000, 0, Item::Ready { prio: 11 }),
            sw(3_050, 63, 0, 11),
            sw(3_250, 11, 0x01, 63),
        ];
        let t = Timing::from_items(&items, &names(), 1_000_000, &TimingOptions::default(), vec![]);
        let j: Vec<(Option<u64>, Option<u64>, u64)> = t
            .jobs
            .iter()
            .map(|j| (j.release, j.start_latency_ns, j.response_ns))
            .collect();
        assert_eq!(
            j,
            [
                (Some(1_000), Some(300_000), 800_000),
                (Some(3_000), Some(50_000), 250_000)
            ]
        );
        // Released by posts, it is sporadic: no deadline unless one is given.
        assert_eq!((t.tasks[0].deadline_ns, t.tasks[0].misses), (None, 0));
    }
}
