/*
 * os_time.c - time management: delays, the tick, and the tick counter.
 */
#include "ucos_ii.h"

/* Ends ptcb's delay: a pending task's pend ends in a timeout. Returns
 * OS_TRUE if the task became ready (it is not suspended). Caller holds the
 * critical section. */
BOOLEAN OS_TimeExpire(OS_TCB *ptcb)
{
    ptcb->OSTCBDly = 0u;
    if ((ptcb->OSTCBStat & OS_STAT_PEND_ANY) != 0u) {
        ptcb->OSTCBStat &= (INT8U)~OS_STAT_PEND_ANY;
        ptcb->OSTCBStatPend = OS_STAT_PEND_TO;
    } else {
        ptcb->OSTCBStatPend = OS_STAT_PEND_OK;
    }
    if ((ptcb->OSTCBStat & OS_STAT_SUSPEND) != 0u) {
        return OS_FALSE;
    }
    OS_RdyInsert(ptcb);
    return OS_TRUE;
}

/* Puts the current task to sleep for ticks clock ticks (0: no delay). */
void OSTimeDly(INT32U ticks)
{
    OS_CPU_SR cpu_sr = 0u;

    if (OSIntNesting > 0u || OSLockNesting > 0u || ticks == 0u) {
        return;
    }
    OS_ENTER_CRITICAL();
    OS_RdyRemove(OSTCBCur);
    OSTCBCur->OSTCBDly = ticks;
    OS_EXIT_CRITICAL();
    OS_Sched();
}

INT8U OSTimeDlyHMSM(INT8U hours, INT8U minutes, INT8U seconds, INT16U ms)
{
    INT32U ticks;

    if (OSIntNesting > 0u) {
        return OS_ERR_TIME_DLY_ISR;
    }
    if (OSLockNesting > 0u) {
        return OS_ERR_SCHED_LOCKED;
    }
    if (hours == 0u && minutes == 0u && seconds == 0u && ms == 0u) {
        return OS_ERR_TIME_ZERO_DLY;
    }
    if (minutes > 59u) {
        return OS_ERR_TIME_INVALID_MINUTES;
    }
    if (seconds > 59u) {
        return OS_ERR_TIME_INVALID_SECONDS;
    }
    if (ms > 999u) {
        return OS_ERR_TIME_INVALID_MS;
    }
    ticks = ((INT32U)hours * 3600u + (INT32U)minutes * 60u + (INT32U)seconds) * OS_TICKS_PER_SEC
            + ((INT32U)ms * OS_TICKS_PER_SEC + 500u) / 1000u; /* nearest tick */
    OSTimeDly(ticks);
    return OS_ERR_NONE;
}

/* Ends the delay (or pend timeout) of the task at prio early. A pending
 * task sees its pend end as a timeout. */
INT8U OSTimeDlyResume(INT8U prio)
{
    OS_CPU_SR cpu_sr = 0u;
    OS_TCB *ptcb;
    BOOLEAN rdy;
    INT8U err;

    if (prio >= OS_LOWEST_PRIO) {
        return OS_ERR_PRIO_INVALID;
    }
    OS_ENTER_CRITICAL();
    ptcb = OS_TaskGet(&prio, OS_ERR_TASK_NOT_EXIST, OS_ERR_TASK_NOT_EXIST, &err);
    if (ptcb != NULL && ptcb->OSTCBDly == 0u) {
        ptcb = NULL;
        err = OS_ERR_TIME_NOT_DLY;
    }
    if (ptcb == NULL) {
        OS_EXIT_CRITICAL();
        return err;
    }
    rdy = OS_TimeExpire(ptcb);
    OS_EXIT_CRITICAL();
    if (rdy == OS_TRUE) {
        OS_Sched();
    }
    return OS_ERR_NONE;
}

INT32U OSTimeGet(void)
{
    OS_CPU_SR cpu_sr = 0u;
    INT32U ticks;

    OS_ENTER_CRITICAL();
    ticks = OSTime;
    OS_EXIT_CRITICAL();
    return ticks;
}

void OSTimeSet(INT32U ticks)
{
    OS_CPU_SR cpu_sr = 0u;

    OS_ENTER_CRITICAL();
    OSTime = ticks;
    OS_EXIT_CRITICAL();
}

/* Called from the tick ISR (between OSIntEnter and OSIntExit): advances
 * OSTime and counts down every delayed task; a task whose count reaches
 * zero becomes ready (a pending one with a timeout outcome) unless it is
 * suspended. */
void OSTimeTick(void)
{
    OS_CPU_SR cpu_sr = 0u;
    OS_TCB *ptcb;

    OSTimeTickHook();
    OS_ENTER_CRITICAL();
    OSTime++;
    OS_EXIT_CRITICAL();
    if (OSRunning != OS_TRUE) {
        return;
    }
    for (ptcb = OSTCBList; ptcb != NULL && ptcb->OSTCBPrio != OS_TASK_IDLE_PRIO;
         ptcb = ptcb->OSTCBNext) {
        OS_ENTER_CRITICAL();
        if (ptcb->OSTCBDly != 0u && --ptcb->OSTCBDly == 0u) {
            (void)OS_TimeExpire(ptcb);
        }
        OS_EXIT_CRITICAL();
    }
}
