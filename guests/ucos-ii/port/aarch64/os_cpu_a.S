/*
 * os_cpu_a.S - AArch64 EL1 port: context switches and exception vectors.
 *
 * Context frame (OS_CPU_FRAME_SIZE = 272 bytes, at the task's saved SP):
 *   +0   x0 ... +232 x29, +240 x30, +248 ELR (resume PC), +256 SPSR, +264 pad
 * Every switch restores a frame with ERET, so a task suspended by OSCtxSw
 * (a call) and one preempted by an interrupt look the same.
 *
 * With GROUND_TRUTH, each switch first calls OS_CPU_GtLog(kind) with
 * kind 0 = OSCtxSw, 1 = OSIntCtxSw, 2 = OSStartHighRdy.
 */
#include "os_cpu_frame.h"

    .macro save_gprs
    sub     sp, sp, #OS_CPU_FRAME_SIZE
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    .endm

    /* Saves the interrupted context of an exception taken at EL1h. */
    .macro save_exception_frame
    save_gprs
    mrs     x0, elr_el1
    stp     x30, x0, [sp, #FRAME_X30]
    mrs     x0, spsr_el1
    str     x0, [sp, #FRAME_SPSR]
    .endm

    .macro restore_frame_eret
    ldp     x30, x0, [sp, #FRAME_X30]
    msr     elr_el1, x0
    ldr     x0, [sp, #FRAME_SPSR]
    msr     spsr_el1, x0
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    add     sp, sp, #OS_CPU_FRAME_SIZE
    eret
    .endm

    .macro gt_log kind
#ifdef GROUND_TRUTH
    mov     w0, #\kind
    bl      OS_CPU_GtLog
#endif
    .endm

    .text

/*
 * void OSCtxSw(void) - task-level switch, called by OS_Sched (through
 * OS_TASK_SW) with IRQs masked. Saves the caller's context, calls
 * OSTaskSwHook while OSTCBCur is still the outgoing task and OSTCBHighRdy
 * the incoming one, then resumes OSTCBHighRdy.
 */
    .global OSCtxSw
    .type   OSCtxSw, %function
    .balign 16
OSCtxSw:
    save_gprs
    mrs     x0, daif
    mov     x1, #SPSR_EL1H
    orr     x0, x0, x1
    stp     x30, x30, [sp, #FRAME_X30]      /* resume at the caller */
    str     x0, [sp, #FRAME_SPSR]
    adrp    x1, OSTCBCur
    ldr     x1, [x1, :lo12:OSTCBCur]
    mov     x2, sp
    str     x2, [x1]                        /* OSTCBCur->OSTCBStkPtr = SP */
    gt_log  0
    bl      OSTaskSwHook
    b       OS_CPU_SwitchToHighRdy
    .size   OSCtxSw, . - OSCtxSw

/*
 * void OSIntCtxSw(void) - interrupt-level switch, called by OSIntExit at
 * the end of the outermost ISR. The interrupted task's frame is already on
 * its stack and its SP already in its OS_TCB (see OS_CPU_IRQ), so only the
 * incoming task is restored; the ISR's call chain is abandoned.
 */
    .global OSIntCtxSw
    .type   OSIntCtxSw, %function
    .balign 16
OSIntCtxSw:
    stp     x29, x30, [sp, #-16]!           /* plain prologue; never returns */
    gt_log  1
    bl      OSTaskSwHook
    b       OS_CPU_SwitchToHighRdy
    .size   OSIntCtxSw, . - OSIntCtxSw

/*
 * void OSStartHighRdy(void) - called once by OSStart: runs the
 * highest-priority task and never returns.
 */
    .global OSStartHighRdy
    .type   OSStartHighRdy, %function
    .balign 16
OSStartHighRdy:
    stp     x29, x30, [sp, #-16]!           /* plain prologue; never returns */
    msr     daifset, #2
    gt_log  2
    bl      OSTaskSwHook
    adrp    x0, OSRunning
    mov     w1, #1
    strb    w1, [x0, :lo12:OSRunning]
    b       OS_CPU_SwitchToHighRdy
    .size   OSStartHighRdy, . - OSStartHighRdy

/* OSTCBCur = OSTCBHighRdy; OSPrioCur = OSPrioHighRdy; resume its frame. */
    .type   OS_CPU_SwitchToHighRdy, %function
OS_CPU_SwitchToHighRdy:
    adrp    x0, OSPrioHighRdy
    ldrb    w1, [x0, :lo12:OSPrioHighRdy]
    adrp    x0, OSPrioCur
    strb    w1, [x0, :lo12:OSPrioCur]
    adrp    x0, OSTCBHighRdy
    ldr     x1, [x0, :lo12:OSTCBHighRdy]
    adrp    x0, OSTCBCur
    str     x1, [x0, :lo12:OSTCBCur]
    ldr     x2, [x1]                        /* OSTCBHighRdy->OSTCBStkPtr */
    mov     sp, x2
    restore_frame_eret
    .size   OS_CPU_SwitchToHighRdy, . - OS_CPU_SwitchToHighRdy

/*
 * IRQ at EL1h: save the frame on the interrupted task's stack, count the
 * nesting (remembering the task's SP at the outermost level, as OSIntCtxSw
 * expects), dispatch, and leave through OSIntExit, which may switch tasks.
 */
    .type   OS_CPU_IRQ, %function
OS_CPU_IRQ:
    save_exception_frame
    adrp    x0, OSIntNesting
    ldrb    w1, [x0, :lo12:OSIntNesting]
    add     w1, w1, #1
    strb    w1, [x0, :lo12:OSIntNesting]
    cmp     w1, #1
    b.ne    1f
    adrp    x0, OSTCBCur
    ldr     x0, [x0, :lo12:OSTCBCur]
    mov     x1, sp
    str     x1, [x0]
1:  bl      OS_CPU_IRQHandler
    bl      OSIntExit
    restore_frame_eret
    .size   OS_CPU_IRQ, . - OS_CPU_IRQ

/* Any other exception: report it (OS_CPU_FaultHandler does not return). */
    .type   OS_CPU_Fault, %function
OS_CPU_Fault:
    save_exception_frame
    mov     x0, sp
    bl      OS_CPU_FaultHandler
2:  wfi
    b       2b
    .size   OS_CPU_Fault, . - OS_CPU_Fault

    .macro vector target
    .balign 0x80
    b       \target
    .endm

    .section .text.vectors, "ax"
    .balign 2048
    .global OS_CPU_Vectors
OS_CPU_Vectors:
    vector  OS_CPU_Fault    /* current EL, SP_EL0: sync   */
    vector  OS_CPU_Fault    /*                      IRQ    */
    vector  OS_CPU_Fault    /*                      FIQ    */
    vector  OS_CPU_Fault    /*                      SError */
    vector  OS_CPU_Fault    /* current EL, SP_ELx: sync   */
    vector  OS_CPU_IRQ      /*                      IRQ    */
    vector  OS_CPU_Fault    /*                      FIQ    */
    vector  OS_CPU_Fault    /*                      SError */
    vector  OS_CPU_Fault    /* lower EL, AArch64 (x4)     */
    vector  OS_CPU_Fault
    vector  OS_CPU_Fault
    vector  OS_CPU_Fault
    vector  OS_CPU_Fault    /* lower EL, AArch32 (x4)     */
    vector  OS_CPU_Fault
    vector  OS_CPU_Fault
    vector  OS_CPU_Fault
