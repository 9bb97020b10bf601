//! Everything architecture-specific: boot code, system registers, barriers.
//! No other module contains inline assembly.

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

/// The exception level we run at (2 in a correct boot).
pub fn current_el() -> u64 {
    let el: u64;
    // SAFETY: reading CurrentEL has no side effects.
    unsafe { asm!("mrs {}, CurrentEL", out(reg) el, options(nomem, nostack)) };
    (el >> 2) & 3
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

/// Stop this core for good (interrupts masked, waiting forever).
pub fn halt() -> ! {
    loop {
        // SAFETY: masking interrupts and waiting has no memory effects.
        unsafe { asm!("msr daifset, #0xf", "wfe", options(nomem, nostack)) };
    }
}
