//! EL2 exception vectors and the trap frame. Exceptions from a guest save its
//! general-purpose registers, ELR_EL2 and SPSR_EL2 on this core's EL2 stack,
//! call the Rust handler with the frame, and return to the (possibly changed)
//! frame with `eret`.

use core::arch::global_asm;

/// A guest's general-purpose state at the moment of a trap.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct TrapFrame {
    pub x: [u64; 31],
    pub elr: u64,
    pub spsr: u64,
    _pad: u64,
}

const _: () = assert!(core::mem::size_of::<TrapFrame>() == 0x110);

impl TrapFrame {
    /// A frame that enters EL1h at `entry` with all exceptions masked.
    pub fn new_el1(entry: u64, x0: u64) -> Self {
        let mut f = TrapFrame {
            elr: entry,
            spsr: 0x3c5,
            ..Default::default()
        };
        f.x[0] = x0;
        f
    }
}

global_asm!(
    r#"
.macro SAVE_FRAME
    sub     sp, sp, #0x110
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
    mrs     x0, elr_el2
    mrs     x1, spsr_el2
    stp     x30, x0, [sp, #0xf0]
    str     x1, [sp, #0x100]
.endm

.macro VECTOR target
    .balign 0x80
    b       \target
.endm

    .section .text.vectors, "ax"
    .balign 0x800
    .global hyp_vectors
hyp_vectors:
    VECTOR  cur_sp0_stub
    VECTOR  cur_sp0_stub
    VECTOR  cur_sp0_stub
    VECTOR  cur_sp0_stub
    VECTOR  cur_spx_sync_stub
    VECTOR  cur_spx_other_stub
    VECTOR  cur_spx_other_stub
    VECTOR  cur_spx_other_stub
    VECTOR  lower_sync_stub
    VECTOR  lower_irq_stub
    VECTOR  lower_other_stub
    VECTOR  lower_other_stub
    VECTOR  lower32_stub
    VECTOR  lower32_stub
    VECTOR  lower32_stub
    VECTOR  lower32_stub

lower_sync_stub:
    SAVE_FRAME
    mov     x0, sp
    bl      hyp_lower_sync
    b       return_to_guest
lower_irq_stub:
    SAVE_FRAME
    mov     x0, sp
    bl      hyp_lower_irq
    b       return_to_guest
lower_other_stub:
    SAVE_FRAME
    mov     x0, sp
    mov     x1, #1
    bl      hyp_unexpected
lower32_stub:
    SAVE_FRAME
    mov     x0, sp
    mov     x1, #2
    bl      hyp_unexpected
cur_sp0_stub:
    SAVE_FRAME
    mov     x0, sp
    mov     x1, #3
    bl      hyp_unexpected
cur_spx_sync_stub:
    SAVE_FRAME
    mov     x0, sp
    mov     x1, #4
    bl      hyp_unexpected
cur_spx_other_stub:
    SAVE_FRAME
    mov     x0, sp
    mov     x1, #5
    bl      hyp_unexpected

    .global return_to_guest
return_to_guest:
    ldp     x30, x0, [sp, #0xf0]
    ldr     x1, [sp, #0x100]
    msr     elr_el2, x0
    msr     spsr_el2, x1
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
    add     sp, sp, #0x110
    eret

// enter_guest(frame: *const TrapFrame, stack_top: u64) -> !
// Resets the EL2 stack to its top (nothing on it is needed any more; the
// frame is read before anything is pushed) and erets into the frame.
    .global enter_guest_asm
enter_guest_asm:
    mov     sp, x1
    ldr     x2, [x0, #0xf8]
    msr     elr_el2, x2
    ldr     x2, [x0, #0x100]
    msr     spsr_el2, x2
    ldp     x2, x3, [x0, #0x10]
    ldp     x4, x5, [x0, #0x20]
    ldp     x6, x7, [x0, #0x30]
    ldp     x8, x9, [x0, #0x40]
    ldp     x10, x11, [x0, #0x50]
    ldp     x12, x13, [x0, #0x60]
    ldp     x14, x15, [x0, #0x70]
    ldp     x16, x17, [x0, #0x80]
    ldp     x18, x19, [x0, #0x90]
    ldp     x20, x21, [x0, #0xa0]
    ldp     x22, x23, [x0, #0xb0]
    ldp     x24, x25, [x0, #0xc0]
    ldp     x26, x27, [x0, #0xd0]
    ldp     x28, x29, [x0, #0xe0]
    ldr     x30, [x0, #0xf0]
    ldp     x0, x1, [x0, #0x00]
    eret
"#
);

extern "C" {
    static hyp_vectors: u8;
    fn enter_guest_asm(frame: *const TrapFrame, stack_top: u64) -> !;
}

/// Install the vector table on this core.
pub fn install() {
    let base = core::ptr::addr_of!(hyp_vectors) as u64;
    crate::write_sysreg!("vbar_el2", base);
    crate::arch::isb();
}

/// Leave the hypervisor for the guest state in `frame`; this core's EL2
/// stack restarts from its top, so traps find an empty stack.
pub fn enter_guest(frame: &TrapFrame) -> ! {
    let top = crate::arch::stack_top(crate::arch::cpu_id());
    // SAFETY: `frame` is a valid TrapFrame (read before the stack is reused:
    // see the assembly); `top` is this core's own stack top; EL1 state (stage
    // 2, HCR_EL2, EL1 system registers) was set up by the caller.
    unsafe { enter_guest_asm(frame, top) }
}

#[no_mangle]
extern "C" fn hyp_unexpected(frame: &mut TrapFrame, kind: u64) -> ! {
    let what = match kind {
        1 => "FIQ/SError from a guest",
        2 => "exception from AArch32",
        3 => "EL2 exception on SP_EL0",
        4 => "EL2 synchronous exception (hypervisor bug)",
        _ => "EL2 interrupt/SError",
    };
    crate::error!(
        "CPU{}: {what}: ESR_EL2={:#x} ELR_EL2={:#x} FAR_EL2={:#x} SPSR={:#x}; stopping this core",
        crate::arch::cpu_id(),
        crate::read_sysreg!("esr_el2"),
        frame.elr,
        crate::read_sysreg!("far_el2"),
        frame.spsr
    );
    crate::arch::halt()
}
