//! Everything architecture-specific: boot code, exception vectors, system
//! registers, the EL2 MMU, MMIO and barriers. No other module contains
//! inline assembly; the rest of the hypervisor calls the safe wrappers here.

pub mod exceptions;
pub mod mmu;
pub mod out_of_line;

use core::arch::{asm, global_asm};

// Boot: every core enters `_start` at EL2 with the MMU off. The core index is
// MPIDR_EL1.Aff0; each core gets a 64 KiB stack from `__stacks_start`. Only
// the boot core (index 0) clears BSS; secondaries are started later by PSCI
// CPU_ON, after that has happened.
global_asm!(
    r#"
    .section .text.boot, "ax"
    .global _start
_start:
    mov     x20, x0                 // DTB address from the loader (boot core)
    mrs     x19, mpidr_el1
    and     x19, x19, #0xff
    mrs     x1, CurrentEL
    lsr     x1, x1, #2
    cmp     x1, #2
    b.ne    9f                      // not at EL2: nothing we can do
    cmp     x19, #4
    b.hs    9f                      // more cores than stacks: park
    adrp    x2, __stacks_start
    add     x2, x2, :lo12:__stacks_start
    add     x3, x19, #1
    lsl     x3, x3, #16
    add     sp, x2, x3
    cbnz    x19, 2f
    adrp    x4, __bss_start
    add     x4, x4, :lo12:__bss_start
    adrp    x5, __bss_end
    add     x5, x5, :lo12:__bss_end
1:  cmp     x4, x5
    b.hs    2f
    str     xzr, [x4], #8
    b       1b
2:  mov     x0, x19
    mov     x1, x20
    bl      hyp_main
9:  wfe
    b       9b
"#
);

extern "C" {
    static __stacks_start: u8;
}

/// The top of core `cpu`'s EL2 stack.
pub fn stack_top(cpu: usize) -> u64 {
    let base = core::ptr::addr_of!(__stacks_start) as u64;
    base + (cpu as u64 + 1) * 0x1_0000
}

/// This core's index (MPIDR_EL1.Aff0 on QEMU virt).
pub fn cpu_id() -> usize {
    (mpidr() & 0xff) as usize
}

pub fn mpidr() -> u64 {
    let v: u64;
    // SAFETY: reads a register that never changes on a core, hence `pure`:
    // the compiler may reuse one read for several calls (the hot trap
    // paths ask for the core number more than once).
    unsafe { core::arch::asm!("mrs {}, mpidr_el1", out(reg) v, options(pure, nomem, nostack)) };
    v
}

/// The exception level we run at (2 in a correct boot).
pub fn current_el() -> u64 {
    (read_sysreg!("CurrentEL") >> 2) & 3
}

/// The physical counter (shared by all cores; guests see it with CNTVOFF = 0).
pub fn counter() -> u64 {
    isb();
    read_sysreg!("cntpct_el0")
}

pub fn counter_freq() -> u64 {
    read_sysreg!("cntfrq_el0")
}

/// Reads a system register by name. Reading has no side effects on the
/// registers we use this for (no IAR-style acknowledges: see `gic`).
#[macro_export]
macro_rules! read_sysreg {
    ($name:literal) => {{
        let v: u64;
        // SAFETY: `mrs` of this register only reads state (see macro docs).
        unsafe { core::arch::asm!(concat!("mrs {}, ", $name), out(reg) v, options(nomem, nostack)) };
        v
    }};
}

/// Writes a system register by name. Only the hypervisor's own code uses
/// this, with values its callers document.
#[macro_export]
macro_rules! write_sysreg {
    ($name:literal, $v:expr) => {{
        let v: u64 = $v;
        // SAFETY: EL2 owns these registers; each caller's value is valid for
        // the register (documented at the call site).
        unsafe { core::arch::asm!(concat!("msr ", $name, ", {}"), in(reg) v, options(nostack)) };
    }};
}
pub use read_sysreg;

/// An MMIO register of a device the hypervisor owns (GIC, UART). The
/// address is a physical address of a device register, mapped as Device
/// memory by `mmu`; never a guest-controlled address.
#[derive(Clone, Copy)]
pub struct Mmio(pub u64);

impl Mmio {
    pub fn read32(self) -> u32 {
        // SAFETY: `Mmio` is only built for device registers the hypervisor
        // owns (see the type's docs); a 32-bit volatile read is the access
        // those registers support.
        unsafe { core::ptr::read_volatile(self.0 as *const u32) }
    }
    pub fn write32(self, v: u32) {
        // SAFETY: as for `read32`.
        unsafe { core::ptr::write_volatile(self.0 as *mut u32, v) }
    }
    pub fn read64(self) -> u64 {
        // SAFETY: as for `read32`; the 64-bit registers we use (TYPER, IROUTER) allow 64-bit access.
        unsafe { core::ptr::read_volatile(self.0 as *const u64) }
    }
    pub fn write64(self, v: u64) {
        // SAFETY: as for `read64`.
        unsafe { core::ptr::write_volatile(self.0 as *mut u64, v) }
    }
    pub fn read8(self) -> u8 {
        // SAFETY: as for `read32`; byte access is allowed on IPRIORITYR.
        unsafe { core::ptr::read_volatile(self.0 as *const u8) }
    }
    pub fn write8(self, v: u8) {
        // SAFETY: as for `read8`.
        unsafe { core::ptr::write_volatile(self.0 as *mut u8, v) }
    }
    pub fn offset(self, by: u64) -> Mmio {
        Mmio(self.0 + by)
    }
}

pub fn isb() {
    // SAFETY: a barrier has no memory effects beyond ordering.
    unsafe { asm!("isb", options(nostack)) };
}

pub fn dsb_sy() {
    // SAFETY: a barrier has no memory effects beyond ordering.
    unsafe { asm!("dsb sy", options(nostack)) };
}

/// Invalidate all stage-1 and stage-2 TLB entries of the current VMID
/// (inner shareable), after changing a VM's stage-2 tables.
pub fn tlbi_vmalls12e1is() {
    // SAFETY: TLB maintenance has no memory effects; VTTBR_EL2 selects the VMID.
    unsafe { asm!("dsb ishst", "tlbi vmalls12e1is", "dsb ish", "isb", options(nostack)) };
}

/// Make an instruction word just written at `pa` (identity-mapped at EL2)
/// visible to instruction fetch on all cores: clean the data cache line to
/// the point of unification, invalidate the instruction cache line.
pub fn sync_icache(pa: u64) {
    // SAFETY: cache maintenance by address on RAM the caller just wrote; no
    // memory contents change.
    unsafe {
        asm!("dc cvau, {0}", "dsb ish", "ic ivau, {0}", "dsb ish", "isb", in(reg) pa, options(nostack));
    }
}

/// Issue an SMC with up to three arguments (PSCI's conduit on QEMU virt).
pub fn smc_call(function: u64, a1: u64, a2: u64, a3: u64) -> i64 {
    let ret: i64;
    // SAFETY: an SMC to the firmware follows the SMC Calling Convention: it
    // clobbers only x0-x17, which we declare, and does not touch our memory
    // except as the function's documented semantics say.
    unsafe {
        asm!(
            "smc #0",
            inout("x0") function => ret,
            inout("x1") a1 => _, inout("x2") a2 => _, inout("x3") a3 => _,
            out("x4") _, out("x5") _, out("x6") _, out("x7") _,
            out("x8") _, out("x9") _, out("x10") _, out("x11") _,
            out("x12") _, out("x13") _, out("x14") _, out("x15") _,
            out("x16") _, out("x17") _,
            options(nostack)
        )
    };
    ret
}

/// Reads ICC_IAR1_EL1: acknowledges the highest-priority pending group 1
/// interrupt and returns its INTID (1020-1023: none).
pub fn acknowledge_group1() -> u64 {
    let intid: u64;
    // SAFETY: reading ICC_IAR1_EL1 acknowledges an interrupt, which is what
    // the caller (the EL2 IRQ handler) wants; no memory effects.
    unsafe { asm!("mrs {}, icc_iar1_el1", out(reg) intid, options(nomem, nostack)) };
    intid
}

/// Waits for an event (an idle core's loop).
pub fn wait_for_event() {
    // SAFETY: waiting for an event has no memory effects.
    unsafe { asm!("wfe", options(nomem, nostack)) };
}

/// Stop this core for good (interrupts masked, waiting forever).
pub fn halt() -> ! {
    loop {
        // SAFETY: masking interrupts and waiting has no memory effects.
        unsafe { asm!("msr daifset, #0xf", "wfe", options(nomem, nostack)) };
    }
}
