//! A typed view of scheduler switches and the task run slices they imply.

use std::sync::Arc;

use crate::event::Event;

/// One `sched:sched_switch` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch {
    /// Time stamp (ns).
    pub ts_ns: u64,
    /// CPU.
    pub cpu: u32,
    /// Task switched out.
    pub prev_comm: String,
    /// Its pid.
    pub prev_pid: i32,
    /// Its priority.
    pub prev_prio: i32,
    /// Its state bits (0 = runnable, i.e. preempted).
    pub prev_state: i64,
    /// Task switched in.
    pub next_comm: String,
    /// Its pid.
    pub next_pid: i32,
    /// Its priority.
    pub next_prio: i32,
}

impl Switch {
    /// The switch in `ev`, if it is a `sched:sched_switch`.
    pub fn from_event(ev: &Event) -> Option<Switch> {
        if !ev.is("sched", "sched_switch") {
            return None;
        }
        Some(Switch {
            ts_ns: ev.ts_ns,
            cpu: ev.cpu,
            prev_comm: ev.str("prev_comm").unwrap_or("").to_string(),
            prev_pid: ev.int("prev_pid")? as i32,
            prev_prio: ev.int("prev_prio").unwrap_or(0) as i32,
            prev_state: ev.int("prev_state").unwrap_or(0),
            next_comm: ev.str("next_comm").unwrap_or("").to_string(),
            next_pid: ev.int("next_pid")? as i32,
            next_prio: ev.int("next_prio").unwrap_or(0) as i32,
        })
    }
}

/// A task running on a CPU from `start_ns` to `end_ns`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    /// CPU.
    pub cpu: u32,
    /// Task pid (0 is idle).
    pub pid: i32,
    /// Task name.
    pub comm: Arc<str>,
    /// Priority while running.
    pub prio: i32,
    /// Switched in.
    pub start_ns: u64,
    /// Switched out.
    pub end_ns: u64,
    /// State it left in (0 = preempted, otherwise blocked/sleeping bits).
    pub end_state: i64,
}

/// What runs on a CPU: (pid, comm, prio, since).
type Running = (i32, Arc<str>, i32, u64);

/// Turns time-ordered switches into run slices, one CPU state per CPU.
#[derive(Debug, Default)]
pub struct SliceBuilder {
    running: Vec<Option<Running>>,
}

impl SliceBuilder {
    /// A builder with no CPU state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds a switch; returns the slice it ends, if the CPU's previous switch was seen.
    pub fn push(&mut self, s: &Switch) -> Option<Slice> {
        let c = s.cpu as usize;
        if self.running.len() <= c {
            self.running.resize(c + 1, None);
        }
        let prev = self.running[c].replace((s.next_pid, Arc::from(s.next_comm.as_str()), s.next_prio, s.ts_ns));
        prev.map(|(pid, comm, prio, start)| Slice {
            cpu: s.cpu,
            pid,
            comm,
            prio,
            start_ns: start,
            end_ns: s.ts_ns,
            end_state: s.prev_state,
        })
    }

    /// Slices still running at `end_ns` (the end of the trace).
    pub fn finish(&mut self, end_ns: u64) -> Vec<Slice> {
        self.running
            .iter_mut()
            .enumerate()
            .filter_map(|(cpu, r)| {
                r.take().map(|(pid, comm, prio, start)| Slice {
                    cpu: cpu as u32,
                    pid,
                    comm,
                    prio,
                    start_ns: start,
                    end_ns: end_ns.max(start),
                    end_state: 0,
                })
            })
            .collect()
    }
}
