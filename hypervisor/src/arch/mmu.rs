//! The hypervisor's own stage-1 translation (EL2): an identity map with 1 GiB
//! blocks — devices below 1 GiB, RAM (write-back cacheable) from 1 GiB to
//! 4 GiB. Turned on by every core before it touches guest state.

use core::sync::atomic::{AtomicU64, Ordering};
use hyp_core::regs::el2::{attr_index, AF, ATTR_DEVICE, ATTR_NORMAL, BLOCK, MAIR, SCTLR, SH_INNER, TCR, XN};

#[repr(C, align(4096))]
struct Table([AtomicU64; 512]);

static EL2_L1: Table = Table([const { AtomicU64::new(0) }; 512]);

/// Fill the table (boot core, once, before any core enables its MMU).
pub fn build() {
    EL2_L1.0[0].store(BLOCK | AF | XN | attr_index(ATTR_DEVICE), Ordering::Relaxed);
    for gib in 1..4u64 {
        EL2_L1.0[gib as usize].store(
            (gib << 30) | BLOCK | AF | SH_INNER | attr_index(ATTR_NORMAL),
            Ordering::Relaxed,
        );
    }
    crate::arch::dsb_sy();
}

/// Turn on this core's EL2 MMU and caches.
pub fn enable() {
    crate::write_sysreg!("mair_el2", MAIR);
    crate::write_sysreg!("tcr_el2", TCR);
    crate::write_sysreg!("ttbr0_el2", core::ptr::addr_of!(EL2_L1) as u64);
    crate::arch::dsb_sy();
    // SAFETY: invalidating this core's EL2 TLB before the MMU goes on.
    unsafe { core::arch::asm!("tlbi alle2", "dsb sy", "isb", options(nostack)) };
    // The map is an identity map, so execution continues at the same address.
    crate::write_sysreg!("sctlr_el2", SCTLR);
    crate::arch::isb();
}
