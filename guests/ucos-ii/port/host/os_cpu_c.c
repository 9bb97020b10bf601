/*
 * os_cpu_c.c - host test port: context switches with swapcontext. A task's
 * OSTCBStkPtr points at a HostTask record at the top of its stack; the rest
 * of the stack (OS_CPU_HOST_STK_SIZE entries in all) is the coroutine's.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <ucontext.h>
#include "ucos_ii.h"

typedef struct {
    ucontext_t uc;
    OS_TASK_FN task;
    void *arg;
} HostTask;

OS_CPU_SR HostIntMasked;
INT8U HostSwLog[HOST_SW_LOG_SIZE][2];
INT32U HostSwCount;
INT32U HostIdleTicks = 100000u;

static void HostTaskEntry(void)
{
    HostTask *t = (HostTask *)OSTCBCur->OSTCBStkPtr;

    HostIntMasked = 0u;
    t->task(t->arg);
    OS_TaskReturn();
}

OS_STK *OSTaskStkInit(OS_TASK_FN task, void *p_arg, OS_STK *ptos, INT16U opt)
{
    uintptr_t top = (uintptr_t)(ptos + 1);
    HostTask *t = (HostTask *)((top - sizeof(HostTask)) & ~(uintptr_t)63u);
    OS_STK *pbos = ptos + 1 - OS_CPU_HOST_STK_SIZE;

    (void)opt;
    if (getcontext(&t->uc) != 0) {
        abort();
    }
    t->uc.uc_stack.ss_sp = pbos;
    t->uc.uc_stack.ss_size = (size_t)((uintptr_t)t - (uintptr_t)pbos);
    t->uc.uc_link = NULL;
    t->task = task;
    t->arg = p_arg;
    makecontext(&t->uc, HostTaskEntry, 0);
    return (OS_STK *)t;
}

/* Switch from OSTCBCur to OSTCBHighRdy: hook first, as on the target. */
static void HostSwitch(void)
{
    HostTask *from = (HostTask *)OSTCBCur->OSTCBStkPtr;

    OSTaskSwHook();
    OSTCBCur = OSTCBHighRdy;
    OSPrioCur = OSPrioHighRdy;
    if (swapcontext(&from->uc, &((HostTask *)OSTCBCur->OSTCBStkPtr)->uc) != 0) {
        abort();
    }
}

void OSCtxSw(void)
{
    HostSwitch();
}

/* The simulated ISR runs on the interrupted task's coroutine, so saving
 * that coroutine saves the interrupted task. */
void OSIntCtxSw(void)
{
    HostSwitch();
}

void OSStartHighRdy(void)
{
    OSTaskSwHook();
    OSRunning = OS_TRUE;
    setcontext(&((HostTask *)OSTCBHighRdy->OSTCBStkPtr)->uc);
    abort();
}

void HostTick(void)
{
    OS_CPU_SR cpu_sr = 0u;

    OS_ENTER_CRITICAL(); /* as an IRQ: masked while the ISR runs */
    OSIntEnter();
    OSTimeTick();
    OSIntExit();
    OS_EXIT_CRITICAL();
}

void OSTaskSwHook(void)
{
    if (HostSwCount < HOST_SW_LOG_SIZE) {
        HostSwLog[HostSwCount][0] = OSTCBCur != NULL && OSRunning ? OSTCBCur->OSTCBPrio : 0xFFu;
        HostSwLog[HostSwCount][1] = OSTCBHighRdy->OSTCBPrio;
    }
    HostSwCount++;
}

/* Time passes only when every task is blocked. */
void OSTaskIdleHook(void)
{
    if (HostIdleTicks == 0u) {
        fprintf(stderr, "host port: idle tick budget exhausted (deadlock?)\n");
        exit(3);
    }
    HostIdleTicks--;
    HostTick();
}

void OSInitHookBegin(void) {}
void OSInitHookEnd(void) {}
void OSTaskCreateHook(OS_TCB *ptcb) { (void)ptcb; }
void OSTaskDelHook(OS_TCB *ptcb) { (void)ptcb; }
void OSTaskReturnHook(OS_TCB *ptcb) { (void)ptcb; }
void OSTaskStatHook(void) {}
void OSTCBInitHook(OS_TCB *ptcb) { (void)ptcb; }
void OSTimeTickHook(void) {}
