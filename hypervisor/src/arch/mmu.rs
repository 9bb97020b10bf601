//! The hypervisor's own stage-1 translation (EL2): an identity map with 1 GiB
//! blocks — devices below 1 GiB, RAM (write-back cacheable) from 1 GiB to
//! 4 GiB. Turned on by every core before it touches guest state.

use core::sync::atomic::{AtomicU64, Ordering};

/// MAIR_EL2: index 0 = Device-nGnRE, index 1 = Normal write-back RW-allocate.
const MAIR: u64 = 0x04 | (0xff << 8);
/// TCR_EL2: T0SZ = 25 (39-bit VA, start at level 1), inner/outer WB walks,
/// inner shareable, 4K granule, PS = 40 bits, RES1 bits 31 and 23.
const TCR: u64 = 25 | (1 << 8) | (1 << 10) | (3 << 12) | (2 << 16) | (1 << 23) | (1 << 31);
/// SCTLR_EL2: MMU, data cache, alignment of SP, instruction cache, RES1 bits.
const SCTLR: u64 = 0x30c5_0830 | 1 | (1 << 2) | (1 << 3) | (1 << 12);

const BLOCK: u64 = 0b01;
const AF: u64 = 1 << 10;
const SH_INNER: u64 = 3 << 8;
const XN: u64 = 1 << 54;

#[repr(C, align(4096))]
struct Table([AtomicU64; 512]);

static EL2_L1: Table = Table([const { AtomicU64::new(0) }; 512]);

/// Fill the table (boot core, once, before any core enables its MMU).
pub fn build() {
    EL2_L1.0[0].store(BLOCK | AF | XN, Ordering::Relaxed); // devices: AttrIndx 0
    for gib in 1..4u64 {
        EL2_L1.0[gib as usize].store((gib << 30) | BLOCK | AF | SH_INNER | (1 << 2), Ordering::Relaxed);
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
