//! Per-core hypervisor state. Each core touches only its own slot, so no
//! locking is needed; the one cross-core signal (doorbell pending) is atomic.

use core::cell::UnsafeCell;
use core::sync::atomic::AtomicBool;
use hyp_core::config::VmConfig;

pub const MAX_CPUS: usize = 4;

pub struct PerCpu {
    pub vm: Option<&'static VmConfig>,
    /// Virtual INTIDs waiting for a free list register.
    pub pending: [(u32, Option<u32>); 8],
    pub pending_len: usize,
    /// The VM's console line being assembled (emulated UART).
    pub line: [u8; 160],
    pub line_len: usize,
    /// This core's trace ring (attached on first use).
    pub ring: Option<guest_probe::abi::Producer<'static>>,
    /// A probe's displaced instruction being single-stepped.
    pub step: Option<PendingStep>,
    /// When this core's records ring Linux's doorbell.
    pub doorbell: hyp_core::doorbell::Moderator,
}

/// What a core must undo when the single step of a probe's displaced
/// instruction completes (`probe::finish_step`).
#[derive(Clone, Copy)]
pub struct PendingStep {
    /// The probe's VM and id, and its site's PA (to put the `HVC` back if
    /// the probe is still there).
    pub vm: u8,
    pub id: u16,
    pub pa: u64,
    /// The guest's interrupt masks and MDSCR_EL1 before the step.
    pub daif: u64,
    pub mdscr: u64,
}

impl PerCpu {
    const fn new() -> Self {
        PerCpu {
            vm: None,
            pending: [(0, None); 8],
            pending_len: 0,
            line: [0; 160],
            line_len: 0,
            ring: None,
            step: None,
            doorbell: hyp_core::doorbell::Moderator::new(),
        }
    }
}

struct Slots([UnsafeCell<PerCpu>; MAX_CPUS]);

// SAFETY: slot i is only ever accessed by core i (see `this_cpu`), and a
// core's hypervisor code runs with interrupts masked, so accesses never
// overlap.
unsafe impl Sync for Slots {}

static SLOTS: Slots = Slots([const { UnsafeCell::new(PerCpu::new()) }; MAX_CPUS]);

/// Signals "raise the hvtrace interrupt in your guest" to a core.
pub static DOORBELL: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

/// This core's state. Callers must not keep two of these alive at once
/// (handlers take it once at their start).
#[allow(clippy::mut_from_ref)]
pub fn this_cpu() -> &'static mut PerCpu {
    let cpu = crate::arch::cpu_id().min(MAX_CPUS - 1);
    // SAFETY: only this core accesses its slot (see `Slots`), and EL2 code is
    // not reentrant (interrupts are masked at EL2), so this is the only
    // live reference.
    unsafe { &mut *SLOTS.0[cpu].get() }
}
