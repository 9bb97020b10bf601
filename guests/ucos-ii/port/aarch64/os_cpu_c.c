/*
 * os_cpu_c.c - AArch64 EL1 port, C part: initial task stack frames and the
 * kernel hooks. OSTaskSwHook keeps per-task run-time totals
 * (OSTCBCyclesTot, in virtual-counter ticks) for the profile fields.
 */
#include "ucos_ii.h"
#include "os_cpu_frame.h"

/* Builds the frame OSCtxSw/OSIntCtxSw would have left for a task about to
 * call task(p_arg) with IRQs enabled; returning from task() lands in
 * OS_TaskReturn. */
OS_STK *OSTaskStkInit(OS_TASK_FN task, void *p_arg, OS_STK *ptos, INT16U opt)
{
    INT64U top = ((INT64U)(ptos + 1)) & ~(INT64U)15u; /* ptos is the highest entry */
    OS_STK *frame = (OS_STK *)(top - OS_CPU_FRAME_SIZE_BYTES);
    INT32U i;

    (void)opt;
    for (i = 0u; i < 31u; i++) {
        frame[i] = 0x0101010101010101ull * i; /* recognisable register values */
    }
    frame[0] = (OS_STK)p_arg;
    frame[29] = 0u;                                 /* frame pointer chain ends */
    frame[FRAME_X30 / 8] = (OS_STK)OS_TaskReturn;   /* x30 */
    frame[FRAME_ELR / 8] = (OS_STK)task;            /* entry point */
    frame[FRAME_SPSR / 8] = SPSR_EL1H;              /* EL1h, DAIF clear */
    frame[FRAME_SPSR / 8 + 1] = 0u;
    return frame;
}

static inline INT32U OS_CPU_Cycles(void)
{
    INT64U v;

    __asm__ volatile("mrs %0, cntvct_el0" : "=r"(v));
    return (INT32U)v;
}

/* Called by OSCtxSw/OSIntCtxSw/OSStartHighRdy with IRQs masked, while
 * OSTCBCur is the outgoing task and OSTCBHighRdy the incoming one. */
void OSTaskSwHook(void)
{
    INT32U now = OS_CPU_Cycles();

    if (OSRunning == OS_TRUE) {
        OSTCBCur->OSTCBCyclesTot += now - OSTCBCur->OSTCBCyclesStart;
    }
    OSTCBHighRdy->OSTCBCyclesStart = now;
}

/* Sleep until the next interrupt, and count the time slept (in counter
 * ticks) into OSIdleCtr: the idle task then measures idle time rather than
 * loop turns, so OSCPUUsage stays meaningful with WFI (which saves the host
 * CPU under emulation) whatever the interrupt rate. Interrupts are masked
 * around WFI (it still wakes on a pending one) so the measurement ends
 * before the ISR — and any switch it causes — runs. */
void OSTaskIdleHook(void)
{
    INT64U t0, t1;

    __asm__ volatile("msr daifset, #2\n\tisb\n\tmrs %0, cntvct_el0" : "=r"(t0) :: "memory");
    __asm__ volatile("dsb sy\n\twfi\n\tisb\n\tmrs %0, cntvct_el0" : "=r"(t1) :: "memory");
    OSIdleCtr += (INT32U)(t1 - t0);
    __asm__ volatile("msr daifclr, #2" ::: "memory");
}

void OSInitHookBegin(void) {}
void OSInitHookEnd(void) {}
void OSTaskCreateHook(OS_TCB *ptcb) { (void)ptcb; }
void OSTaskDelHook(OS_TCB *ptcb) { (void)ptcb; }
void OSTaskReturnHook(OS_TCB *ptcb) { (void)ptcb; }
void OSTaskStatHook(void) {}
void OSTCBInitHook(OS_TCB *ptcb) { (void)ptcb; }
void OSTimeTickHook(void) {}
