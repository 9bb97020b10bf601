//! Cross-core requests: a probe is added or removed on its VM's own core (its
//! translation registers live there, and its vCPU is paused in EL2 while
//! its code changes). A request from another core goes through the target
//! core's mailbox and an SGI; the caller waits for the answer.

use super::patch::{add_here, remove_here, write_here};
use crate::arch;
use crate::gic::{self, REQUEST_SGI};
use crate::percpu::{this_cpu, MAX_CPUS};
use crate::sync::SpinLock;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use guest_probe::abi::fetch::FetchPlan;
use guest_probe::abi::{self, HvError, ProbeKind};
use hyp_core::config::VmConfig;

pub(super) const IDLE: u32 = 0;
pub(super) const POSTED: u32 = 1;
pub(super) const DONE: u32 = 2;
/// A requester is filling the mailbox.
pub(super) const CLAIMED: u32 = 3;
/// The target core is running the request: the requester waits for it.
pub(super) const RUNNING: u32 = 4;
pub(super) const OP_ADD: u64 = 1;
pub(super) const OP_REMOVE: u64 = 2;
pub(super) const OP_WRITE: u64 = 3;

pub(super) struct Mailbox {
    pub(super) state: AtomicU32,
    pub(super) op: AtomicU64,
    pub(super) args: [AtomicU64; 3],
    /// An add's fetch plan (written by the requester that claimed the box).
    pub(super) plan: SpinLock<FetchPlan>,
    pub(super) result: AtomicU64,
}

pub(super) static MAILBOXES: [Mailbox; MAX_CPUS] = [const {
    Mailbox {
        state: AtomicU32::new(IDLE),
        op: AtomicU64::new(0),
        args: [const { AtomicU64::new(0) }; 3],
        plan: SpinLock::new(FetchPlan::EMPTY),
        result: AtomicU64::new(0),
    }
}; MAX_CPUS];

/// Run `op` on `vm`'s core: here if that is this core, else through its mailbox.
pub(super) fn on_vm_core(vm: &'static VmConfig, op: u64, args: [u64; 3], plan: &FetchPlan) -> Result<u64, HvError> {
    let target = usize::from(vm.cpus[0]);
    if target == arch::cpu_id() {
        return run_op(vm, op, args, plan);
    }
    let mb = &MAILBOXES[target];
    if mb
        .state
        .compare_exchange(IDLE, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return Err(HvError::Busy);
    }
    mb.op.store(op, Ordering::Relaxed);
    for (slot, v) in mb.args.iter().zip(args) {
        slot.store(v, Ordering::Relaxed);
    }
    *mb.plan.lock() = *plan;
    mb.state.store(POSTED, Ordering::Release);
    gic::send_sgi(REQUEST_SGI, target);
    // The target answers within microseconds unless its VM was stopped.
    let deadline = arch::counter() + arch::counter_freq() / 5;
    loop {
        if mb.state.load(Ordering::Acquire) == DONE {
            let raw = mb.result.load(Ordering::Relaxed);
            mb.state.store(IDLE, Ordering::Release);
            return match raw as i64 {
                code if code < 0 => Err(HvError::from_code(code).unwrap_or(HvError::Busy)),
                _ => Ok(raw),
            };
        }
        if arch::counter() > deadline {
            // Take the request back if it was never picked up.
            if mb
                .state
                .compare_exchange(POSTED, IDLE, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                crate::warn!(
                    "CPU{target} did not answer a probe request (is VM {} running?)",
                    vm.name
                );
                return Err(HvError::Busy);
            }
        }
        core::hint::spin_loop();
    }
}

/// The REQUEST_SGI handler: run the posted request for this core.
pub fn serve_mailbox() {
    let mb = &MAILBOXES[arch::cpu_id()];
    let Some(vm) = this_cpu().vm else { return };
    // Taken from POSTED to RUNNING: a requester that times out can no
    // longer take it back (and reuse the box) while it runs here.
    if mb
        .state
        .compare_exchange(POSTED, RUNNING, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return;
    }
    let args = [0, 1, 2].map(|i| mb.args[i].load(Ordering::Relaxed));
    let plan = *mb.plan.lock();
    let r = run_op(vm, mb.op.load(Ordering::Relaxed), args, &plan);
    mb.result.store(abi::encode_result(r), Ordering::Relaxed);
    mb.state.store(DONE, Ordering::Release);
}

pub(super) fn run_op(vm: &'static VmConfig, op: u64, a: [u64; 3], plan: &FetchPlan) -> Result<u64, HvError> {
    match op {
        OP_ADD => add_here(
            vm,
            a[0],
            ProbeKind::from_raw(a[1]).ok_or(HvError::InvalidArgument)?,
            ProbeKind::entry_of(a[1]),
            plan,
        ),
        OP_REMOVE => remove_here(vm, a[0]),
        OP_WRITE => write_here(vm, a[0], a[1], a[2]),
        _ => Err(HvError::NotSupported),
    }
}
