//! Running a guest's data-processing instruction at EL2, on the guest's own
//! registers and flags, so a probe's `HVC` can stay in place while the
//! instruction it displaced takes effect (no other core of the VM ever finds
//! the original word there).
//!
//! Each core has a block of code in writable memory: load X0..X30 from the
//! trap frame, the instruction, store X0..X30 back. SP holds the frame's
//! address meanwhile, which is why only instructions that do not name SP
//! come here (`guest_probe::a64::runs_at_el2` decides). The block's one
//! instruction word is rewritten when a hit needs a different one.

use super::exceptions::TrapFrame;
use crate::percpu::MAX_CPUS;
use core::arch::global_asm;

/// Bytes of one core's block, and the offset of its instruction word.
const BLOCK: usize = 0x100;
const INSN_OFFSET: usize = 0x44;

// `hyp_xol_enter(frame, block)`: saves the callee-saved registers and SP
// (into the frame's padding word at 0x108), loads NZCV from the frame's
// SPSR, and branches to the block, which returns to the caller with the new
// NZCV in x0.
global_asm!(
    r#"
    .section .text
    .global hyp_xol_enter
hyp_xol_enter:
    stp     x29, x30, [sp, #-96]!
    stp     x19, x20, [sp, #16]
    stp     x21, x22, [sp, #32]
    stp     x23, x24, [sp, #48]
    stp     x25, x26, [sp, #64]
    stp     x27, x28, [sp, #80]
    mov     x2, sp
    str     x2, [x0, #0x108]
    ldr     x2, [x0, #0x100]
    and     x2, x2, #0xf0000000
    msr     nzcv, x2
    br      x1

    .section .data.xol, "awx"
    .balign 64
    .global hyp_xol_blocks
hyp_xol_blocks:
    .rept {cpus}
    .balign {block}
    mov     sp, x0                  // 0x00
    ldp     x0, x1, [sp, #0x00]
    ldp     x2, x3, [sp, #0x10]
    ldp     x4, x5, [sp, #0x20]
    ldp     x6, x7, [sp, #0x30]
    ldp     x8, x9, [sp, #0x40]
    ldp     x10, x11, [sp, #0x50]
    ldp     x12, x13, [sp, #0x60]
    ldp     x14, x15, [sp, #0x70]
    ldp     x16, x17, [sp, #0x80]
    ldp     x18, x19, [sp, #0x90]
    ldp     x20, x21, [sp, #0xa0]
    ldp     x22, x23, [sp, #0xb0]
    ldp     x24, x25, [sp, #0xc0]
    ldp     x26, x27, [sp, #0xd0]
    ldp     x28, x29, [sp, #0xe0]
    ldr     x30, [sp, #0xf0]        // 0x40
    nop                             // 0x44: the guest's instruction
    stp     x0, x1, [sp, #0x00]
    stp     x2, x3, [sp, #0x10]
    stp     x4, x5, [sp, #0x20]
    stp     x6, x7, [sp, #0x30]
    stp     x8, x9, [sp, #0x40]
    stp     x10, x11, [sp, #0x50]
    stp     x12, x13, [sp, #0x60]
    stp     x14, x15, [sp, #0x70]
    stp     x16, x17, [sp, #0x80]
    stp     x18, x19, [sp, #0x90]
    stp     x20, x21, [sp, #0xa0]
    stp     x22, x23, [sp, #0xb0]
    stp     x24, x25, [sp, #0xc0]
    stp     x26, x27, [sp, #0xd0]
    stp     x28, x29, [sp, #0xe0]
    str     x30, [sp, #0xf0]
    mrs     x0, nzcv
    ldr     x1, [sp, #0x108]
    mov     sp, x1
    ldp     x19, x20, [sp, #16]
    ldp     x21, x22, [sp, #32]
    ldp     x23, x24, [sp, #48]
    ldp     x25, x26, [sp, #64]
    ldp     x27, x28, [sp, #80]
    ldp     x29, x30, [sp], #96
    ret
    .endr
    .section .text
"#,
    cpus = const MAX_CPUS,
    block = const BLOCK,
);

extern "C" {
    fn hyp_xol_enter(frame: *mut TrapFrame, block: *const u32) -> u64;
    static mut hyp_xol_blocks: [u8; 0];
}

/// Runs `insn` on the guest state in `frame`: X0..X30 and SPSR's NZCV are
/// read and written as the guest would see them. `insn` must satisfy
/// `guest_probe::a64::runs_at_el2` (the caller's probe plan says so).
pub fn run(frame: &mut TrapFrame, insn: u32, cpu: usize) {
    let cpu = cpu.min(MAX_CPUS - 1);
    // SAFETY: each core uses only its own block (indexed by its core
    // number), which lies inside `hyp_xol_blocks` (MAX_CPUS blocks); the
    // word written is the block's instruction slot, made visible to
    // instruction fetch before the branch. The block reads and writes only
    // the frame (whose address it keeps in SP, 16-byte aligned as the EL2
    // stack is) and restores every callee-saved register and SP before it
    // returns. `runs_at_el2` instructions cannot fault, touch memory, SP,
    // or system state.
    unsafe {
        let block = core::ptr::addr_of_mut!(hyp_xol_blocks).cast::<u8>().add(cpu * BLOCK);
        let slot = block.add(INSN_OFFSET).cast::<u32>();
        if slot.read_volatile() != insn {
            slot.write_volatile(insn);
            super::sync_icache(slot as u64);
        }
        let nzcv = hyp_xol_enter(frame, block.cast());
        frame.spsr = (frame.spsr & !0xf000_0000) | (nzcv & 0xf000_0000);
    }
}
