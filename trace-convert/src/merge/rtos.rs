//! The RTOS half of the merge, fed one event at a time: `clock_sync` points
//! build the clock ([`SyncPoints`]), and each `hvtrace:rtos_switch` /
//! `hvtrace:rtos_probe` is held until its time is settled, then re-stamped,
//! moved to its RTOS CPU and given the standard `sched:sched_switch` that
//! goes with it ([`RtosMerge::release`]).
//!
//! What comes out depends on the events, not on the order they came in:
//! RTOS events are ordered by their counter (then the module's `seq`), a
//! stamp uses the sync points near it, and an event is released only once
//! [`clock::LOCAL_POINTS`](crate::clock::LOCAL_POINTS) later sync points have
//! arrived and then [`SETTLE_NS`] of later Linux time. So a merge fed page by
//! page while a recording streams in gives what the merge of the finished
//! file gives; an event that comes later than that anyway is counted
//! ([`RtosMerge::late`]), never dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::clock::{ClockMap, SyncPoints};
use crate::event::{Event, Missed};
use crate::format::{EventFormat, Value};

use super::{linux_state, rtos_pid, MergePlan};

/// Linux time that must pass after an RTOS event's stamp before it is
/// released: how late its injection, or a page of another CPU, may come.
pub const SETTLE_NS: u64 = 500_000_000;
/// Events held at most; past that the earliest is released (and counted as
/// forced): a flood must not grow memory without end.
pub const MAX_HELD: usize = 1 << 16;

/// Where an RTOS event sorts: counter, module sequence, RTOS CPU, arrival.
type Key = (u64, u64, u32, u64);

/// Which events the merge takes.
pub fn is_rtos(ev: &Event) -> bool {
    ev.system() == "hvtrace" && matches!(ev.name(), "rtos_switch" | "rtos_probe")
}

/// A task's name for `pid`: the name of the latest switch that names it,
/// else that of its earliest probe hit (by counter, then sequence).
#[derive(Debug, Clone, Default)]
pub struct TaskNames {
    by_switch: BTreeMap<i32, ((u64, u64), String)>,
    by_probe: BTreeMap<i32, ((u64, u64), String)>,
}

fn name_or_prio(name: &str, prio: u32) -> String {
    let name = name.trim_end_matches('\0');
    if name.is_empty() {
        format!("rtos-prio{prio}")
    } else {
        name.to_string()
    }
}

impl TaskNames {
    /// Learns the names an RTOS event carries.
    pub fn learn(&mut self, ev: &Event) {
        let cpu = ev.int("rtos_cpu").unwrap_or(0) as u32;
        let at = (
            ev.int("ts_counter").unwrap_or(0) as u64,
            ev.int("seq").unwrap_or(0) as u64,
        );
        if ev.name() == "rtos_switch" {
            for side in ["prev", "next"] {
                let prio = ev.int(&format!("{side}_prio")).unwrap_or(0) as u32;
                let name = name_or_prio(ev.str(&format!("{side}_comm")).unwrap_or(""), prio);
                let e = self.by_switch.entry(rtos_pid(cpu, prio)).or_insert((at, name.clone()));
                if at >= e.0 {
                    *e = (at, name);
                }
            }
        } else {
            let prio = ev.int("prio").unwrap_or(0) as u32;
            let name = name_or_prio(ev.str("comm").unwrap_or(""), prio);
            let e = self.by_probe.entry(rtos_pid(cpu, prio)).or_insert((at, name.clone()));
            if at < e.0 {
                *e = (at, name);
            }
        }
    }

    /// Every task: synthetic pid → name.
    pub fn all(&self) -> BTreeMap<i32, String> {
        let mut out: BTreeMap<i32, String> = self.by_probe.iter().map(|(p, (_, n))| (*p, n.clone())).collect();
        out.extend(self.by_switch.iter().map(|(p, (_, n))| (*p, n.clone())));
        out
    }
}

/// The RTOS merge in progress (see the module docs).
pub struct RtosMerge {
    switch_fmt: Arc<EventFormat>,
    syncs: SyncPoints,
    held: BTreeMap<Key, Event>,
    names: TaskNames,
    rtos_cpus: BTreeSet<u32>,
    rtos_events: u64,
    arrivals: u64,
    newest_ns: u64,
    /// Last stamp released per RTOS CPU (stamps never go back on a CPU).
    last_ns: BTreeMap<u32, u64>,
    /// Key of the last event released.
    released: Option<Key>,
    late: u64,
    forced: u64,
}

impl RtosMerge {
    /// A merge writing its switches with `switch_fmt` (the output's `sched_switch`).
    pub fn new(switch_fmt: Arc<EventFormat>) -> Self {
        RtosMerge {
            switch_fmt,
            syncs: SyncPoints::new(),
            held: BTreeMap::new(),
            names: TaskNames::default(),
            rtos_cpus: BTreeSet::new(),
            rtos_events: 0,
            arrivals: 0,
            newest_ns: 0,
            last_ns: BTreeMap::new(),
            released: None,
            late: 0,
            forced: 0,
        }
    }

    /// Takes the next event of any CPU (each CPU's in time order). RTOS
    /// events are kept for [`release`](Self::release); any other event is
    /// given back as it is (`clock_sync` too, after its point is noted).
    pub fn push(&mut self, ev: Event) -> Option<Event> {
        self.newest_ns = self.newest_ns.max(ev.ts_ns);
        if ev.system() != "hvtrace" {
            return Some(ev);
        }
        match ev.name() {
            "clock_sync" => {
                if let (Some(c), Some(ns)) = (ev.int("counter"), ev.int("trace_clock_ns")) {
                    self.syncs
                        .insert((c as u64, ns as u64, ev.int("freq_hz").unwrap_or(0) as u64));
                }
                Some(ev)
            }
            "rtos_switch" | "rtos_probe" => {
                let cpu = ev.int("rtos_cpu").unwrap_or(0) as u32;
                let key = (
                    ev.int("ts_counter").unwrap_or(0) as u64,
                    ev.int("seq").unwrap_or(0) as u64,
                    cpu,
                    self.arrivals,
                );
                self.arrivals += 1;
                self.rtos_events += 1;
                self.rtos_cpus.insert(cpu);
                self.names.learn(&ev);
                if self.released.is_some_and(|r| key < r) {
                    self.late += 1;
                }
                self.held.insert(key, ev);
                None
            }
            _ => Some(ev),
        }
    }

    /// Appends to `out` every held event whose place and time can no longer
    /// change, in time order.
    pub fn release(&mut self, out: &mut Vec<Event>) {
        while let Some((&key, ev)) = self.held.first_key_value() {
            let (has_counter, ts_ns) = (ev.int("ts_counter").is_some(), ev.ts_ns);
            let stamp = self.stamp(key.0, has_counter, ts_ns);
            // The event and the newest sync point its stamp uses are old enough that
            // anything before them has arrived.
            let edge = stamp.max(self.syncs.window_end_ns(key.0).unwrap_or(0));
            let settled = (self.syncs.is_empty() || self.syncs.settled(key.0))
                && edge.saturating_add(SETTLE_NS) <= self.newest_ns;
            if !settled {
                if self.held.len() <= MAX_HELD {
                    break;
                }
                self.forced += 1;
            }
            self.release_first(out);
        }
    }

    /// Appends every held event to `out`: the input has ended.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        while !self.held.is_empty() {
            self.release_first(out);
        }
    }

    /// What the merge has learned so far, as [`super::plan`] says it for
    /// the same events of inputs declaring `meta_cpus` CPUs.
    pub fn plan(&self, meta_cpus: u32) -> MergePlan {
        let mut p = MergePlan {
            clock: ClockMap::fit(self.syncs.points()),
            sync_points: self.syncs.len(),
            tasks: self.names.all(),
            rtos_cpus: self.rtos_cpus.clone(),
            cpus: meta_cpus,
            rtos_events: self.rtos_events,
        };
        if let Some(&m) = p.rtos_cpus.iter().next_back() {
            p.cpus = p.cpus.max(m + 1);
        }
        p
    }

    /// RTOS events that came after a later one was released (placed at that
    /// one's time on their CPU).
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Events released before their time was settled because too many were held.
    pub fn forced(&self) -> u64 {
        self.forced
    }

    /// An event's time: its counter's by the clock near it, else ftrace's.
    fn stamp(&mut self, counter: u64, has_counter: bool, ts_ns: u64) -> u64 {
        if !has_counter {
            return ts_ns;
        }
        self.syncs.ns(counter).unwrap_or(ts_ns)
    }

    fn release_first(&mut self, out: &mut Vec<Event>) {
        let Some((key, ev)) = self.held.pop_first() else {
            return;
        };
        let cpu = key.2;
        let last = self.last_ns.get(&cpu).copied().unwrap_or(0);
        let ts = self.stamp(key.0, ev.int("ts_counter").is_some(), ev.ts_ns).max(last);
        self.last_ns.insert(cpu, ts);
        self.released = Some(self.released.map_or(key, |r| r.max(key)));
        if ev.name() == "rtos_switch" {
            let pp = ev.int("prev_prio").unwrap_or(0) as u32;
            let np = ev.int("next_prio").unwrap_or(0) as u32;
            let prev = name_or_prio(ev.str("prev_comm").unwrap_or(""), pp);
            let next = name_or_prio(ev.str("next_comm").unwrap_or(""), np);
            let (ppid, npid) = (rtos_pid(cpu, pp), rtos_pid(cpu, np));
            let prev_state = linux_state(ev.int("prev_state").unwrap_or(0));
            let fields = self
                .switch_fmt
                .fields
                .iter()
                .map(|f| match f.name.as_str() {
                    "prev_comm" => Value::Str(prev.clone()),
                    "prev_pid" => Value::Int(ppid as i64),
                    "prev_prio" => Value::Int(pp as i64),
                    "prev_state" => Value::Int(prev_state),
                    "next_comm" => Value::Str(next.clone()),
                    "next_pid" => Value::Int(npid as i64),
                    "next_prio" => Value::Int(np as i64),
                    _ if f.signed => Value::Int(0),
                    _ => Value::UInt(0),
                })
                .collect();
            let comm: Arc<str> = Arc::from(prev.as_str());
            let sw = Event {
                ts_ns: ts,
                cpu,
                pid: ppid,
                comm: comm.clone(),
                format: self.switch_fmt.clone(),
                fields,
                flags: 0,
                preempt_count: 0,
                buffer: 0,
                missed_before: Missed::None,
            };
            out.push(restamp(ev, ts, cpu, ppid, comm));
            out.push(sw);
        } else {
            let prio = ev.int("prio").unwrap_or(0) as u32;
            let comm: Arc<str> = Arc::from(name_or_prio(ev.str("comm").unwrap_or(""), prio).as_str());
            out.push(restamp(ev, ts, cpu, rtos_pid(cpu, prio), comm));
        }
    }
}

/// Moves an RTOS event to its exact time, its CPU and its task.
fn restamp(mut ev: Event, ts: u64, cpu: u32, pid: i32, comm: Arc<str>) -> Event {
    ev.ts_ns = ts;
    ev.cpu = cpu;
    ev.pid = pid;
    ev.comm = comm;
    ev.buffer = 0;
    ev.missed_before = Missed::None;
    ev
}
