//! Virtual interrupts for this core's guest: straight into a free list
//! register, or into the core's small queue until one frees up (every return
//! to the guest flushes it, and rings the hvtrace doorbell when it is set).

use crate::gic;
use crate::percpu::{this_cpu, DOORBELL};
use core::sync::atomic::Ordering;

/// Queue a virtual interrupt for this core's guest.
pub fn queue_virq(vintid: u32, pintid: Option<u32>) {
    if gic::inject(vintid, pintid) {
        return;
    }
    let cpu = this_cpu();
    if pintid.is_none() && cpu.pending[..cpu.pending_len].contains(&(vintid, None)) {
        return;
    }
    if cpu.pending_len < cpu.pending.len() {
        cpu.pending[cpu.pending_len] = (vintid, pintid);
        cpu.pending_len += 1;
    } else {
        crate::warn!(
            "CPU{}: virtual interrupt {vintid} lost (queue full)",
            crate::arch::cpu_id()
        );
    }
}

/// Move queued virtual interrupts (and a rung doorbell) into free list registers.
#[inline(always)]
pub fn flush_pending() {
    let core = crate::arch::cpu_id();
    // Every trap returns through here: the usual nothing-to-do costs three
    // loads, inline, not a call and an atomic swap.
    let (queued, owed) = {
        let cpu = this_cpu();
        (cpu.pending_len != 0, cpu.doorbell.deferred())
    };
    if !queued && !owed && !DOORBELL[core].load(Ordering::Relaxed) {
        return;
    }
    if owed {
        crate::trace::doorbell_due();
    }
    flush_pending_slow(core);
}

#[inline(never)]
fn flush_pending_slow(core: usize) {
    if DOORBELL[core].swap(false, Ordering::AcqRel) && this_cpu().vm.is_some() {
        queue_virq(crate::HVTRACE_INTID, None);
    }
    // Taken after `queue_virq`, which uses this core's state itself.
    let cpu = this_cpu();
    let mut kept = 0;
    for i in 0..cpu.pending_len {
        let v = cpu.pending[i];
        if !gic::inject(v.0, v.1) {
            cpu.pending[kept] = v;
            kept += 1;
        }
    }
    cpu.pending_len = kept;
}
