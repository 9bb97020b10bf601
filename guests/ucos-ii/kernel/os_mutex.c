/*
 * os_mutex.c - mutual-exclusion semaphores with uC/OS-II's priority
 * ceiling: each mutex reserves a priority (its ceiling, "PIP"/"PCP") higher
 * than any task that uses it. When a higher-priority task has to wait for a
 * mutex whose owner runs below the ceiling, the owner is raised to the
 * ceiling until it releases the mutex. OS_PRIO_MUTEX_CEIL_DIS creates a
 * mutex without a ceiling.
 *
 * OSEventCnt holds the ceiling in its upper byte and the owner's original
 * priority (OS_MUTEX_AVAILABLE when free) in its lower byte; OSEventPtr
 * points to the owner's OS_TCB.
 */
#include "ucos_ii.h"

#define OS_MUTEX_PCP(pevent) ((INT8U)((pevent)->OSEventCnt >> 8u))
#define OS_MUTEX_OWNER_PRIO(pevent) ((INT8U)((pevent)->OSEventCnt & OS_MUTEX_KEEP_LOWER_8))

/* Makes ptcb the owner; returns OS_ERR_PCP_LOWER if its priority is not
 * below the ceiling (it owns the mutex anyway). */
static INT8U OS_MutexTake(OS_EVENT *pevent, OS_TCB *ptcb)
{
    INT8U pcp = OS_MUTEX_PCP(pevent);

    pevent->OSEventCnt = (INT16U)((pevent->OSEventCnt & OS_MUTEX_KEEP_UPPER_8) | ptcb->OSTCBPrio);
    pevent->OSEventPtr = ptcb;
    if (pcp != OS_PRIO_MUTEX_CEIL_DIS && ptcb->OSTCBPrio <= pcp) {
        return OS_ERR_PCP_LOWER;
    }
    return OS_ERR_NONE;
}

/* Puts an owner that was raised to the ceiling back at its own priority. */
static void OS_MutexRestoreOwner(OS_EVENT *pevent, OS_TCB *owner)
{
    INT8U pcp = OS_MUTEX_PCP(pevent);
    INT8U prio = OS_MUTEX_OWNER_PRIO(pevent);

    if (pcp != OS_PRIO_MUTEX_CEIL_DIS && owner->OSTCBPrio == pcp && prio != pcp) {
        OSTCBPrioTbl[pcp] = OS_TCB_RESERVED;
        OSTCBPrioTbl[prio] = owner;
        OS_TaskPrioMove(owner, prio);
    }
}

OS_EVENT *OSMutexCreate(INT8U prio, INT8U *perr)
{
    OS_CPU_SR cpu_sr = 0u;
    OS_EVENT *pevent;

    if (OSIntNesting > 0u) {
        *perr = OS_ERR_CREATE_ISR;
        return NULL;
    }
    if (prio != OS_PRIO_MUTEX_CEIL_DIS) {
        if (prio >= OS_LOWEST_PRIO) {
            *perr = OS_ERR_PRIO_INVALID;
            return NULL;
        }
        OS_ENTER_CRITICAL();
        if (OSTCBPrioTbl[prio] != NULL) {
            OS_EXIT_CRITICAL();
            *perr = OS_ERR_PRIO_EXIST;
            return NULL;
        }
        OSTCBPrioTbl[prio] = OS_TCB_RESERVED;
        OS_EXIT_CRITICAL();
    }
    pevent = OS_EventAlloc(OS_EVENT_TYPE_MUTEX);
    if (pevent == NULL) {
        if (prio != OS_PRIO_MUTEX_CEIL_DIS) {
            OS_ENTER_CRITICAL();
            OSTCBPrioTbl[prio] = NULL;
            OS_EXIT_CRITICAL();
        }
        *perr = OS_ERR_PEVENT_NULL;
        return NULL;
    }
    pevent->OSEventCnt = (INT16U)(((INT16U)prio << 8u) | OS_MUTEX_AVAILABLE);
    *perr = OS_ERR_NONE;
    return pevent;
}

OS_EVENT *OSMutexDel(OS_EVENT *pevent, INT8U opt, INT8U *perr)
{
    OS_CPU_SR cpu_sr = 0u;
    BOOLEAN waiting;
    OS_TCB *owner;
    INT8U pcp;

    if (OSIntNesting > 0u) {
        *perr = OS_ERR_DEL_ISR;
        return pevent;
    }
    *perr = OS_EventCheck(pevent, OS_EVENT_TYPE_MUTEX);
    if (*perr != OS_ERR_NONE) {
        return pevent;
    }
    if (opt != OS_DEL_NO_PEND && opt != OS_DEL_ALWAYS) {
        *perr = OS_ERR_INVALID_OPT;
        return pevent;
    }
    OS_ENTER_CRITICAL();
    waiting = (BOOLEAN)(pevent->OSEventGrp != 0u);
    if (waiting == OS_TRUE && opt == OS_DEL_NO_PEND) {
        OS_EXIT_CRITICAL();
        *perr = OS_ERR_TASK_WAITING;
        return pevent;
    }
    pcp = OS_MUTEX_PCP(pevent);
    owner = (OS_TCB *)pevent->OSEventPtr;
    if (owner != NULL) {
        OS_MutexRestoreOwner(pevent, owner);
    }
    (void)OS_EventReadyAll(pevent, OS_STAT_MUTEX, OS_STAT_PEND_ABORT, OS_TRUE);
    if (pcp != OS_PRIO_MUTEX_CEIL_DIS) {
        OSTCBPrioTbl[pcp] = NULL;
    }
    OS_EventFree(pevent);
    OS_EXIT_CRITICAL();
    if (waiting == OS_TRUE) {
        OS_Sched();
    }
    return NULL;
}

void OSMutexPend(OS_EVENT *pevent, INT32U timeout, INT8U *perr)
{
    OS_CPU_SR cpu_sr = 0u;
    OS_TCB *owner;
    INT8U pcp;

    *perr = OS_EventPendCheck(pevent, OS_EVENT_TYPE_MUTEX);
    if (*perr != OS_ERR_NONE) {
        return;
    }
    OS_ENTER_CRITICAL();
    if (OS_MUTEX_OWNER_PRIO(pevent) == OS_MUTEX_AVAILABLE) {
        *perr = OS_MutexTake(pevent, OSTCBCur);
        OS_EXIT_CRITICAL();
        return;
    }
    pcp = OS_MUTEX_PCP(pevent);
    owner = (OS_TCB *)pevent->OSEventPtr;
    if (pcp != OS_PRIO_MUTEX_CEIL_DIS && owner->OSTCBPrio > pcp &&
        owner->OSTCBPrio > OSTCBCur->OSTCBPrio) {
        /* Raise the owner to the ceiling so that it can finish and let go. */
        OSTCBPrioTbl[owner->OSTCBPrio] = OS_TCB_RESERVED;
        OSTCBPrioTbl[pcp] = owner;
        OS_TaskPrioMove(owner, pcp);
    }
    *perr = OS_EventPend(pevent, OS_STAT_MUTEX, timeout, NULL, cpu_sr);
}

/* Releases the mutex: the owner returns to its own priority and the
 * highest-priority waiter, if any, becomes the new owner. */
INT8U OSMutexPost(OS_EVENT *pevent)
{
    OS_CPU_SR cpu_sr = 0u;
    INT8U err = OS_EventCheck(pevent, OS_EVENT_TYPE_MUTEX);
    INT8U prio;

    if (OSIntNesting > 0u) {
        return OS_ERR_POST_ISR;
    }
    if (err != OS_ERR_NONE) {
        return err;
    }
    OS_ENTER_CRITICAL();
    if (OSTCBCur != (OS_TCB *)pevent->OSEventPtr) {
        OS_EXIT_CRITICAL();
        return OS_ERR_NOT_MUTEX_OWNER;
    }
    OS_MutexRestoreOwner(pevent, OSTCBCur);
    if (pevent->OSEventGrp != 0u) {
        prio = OS_EventTaskRdy(pevent, NULL, OS_STAT_MUTEX, OS_STAT_PEND_OK);
        err = OS_MutexTake(pevent, OSTCBPrioTbl[prio]);
        OS_EXIT_CRITICAL();
        OS_Sched();
        return err;
    }
    pevent->OSEventCnt |= OS_MUTEX_AVAILABLE;
    pevent->OSEventPtr = NULL;
    OS_EXIT_CRITICAL();
    return OS_ERR_NONE;
}

/* Takes the mutex if it is free, without waiting. */
BOOLEAN OSMutexAccept(OS_EVENT *pevent, INT8U *perr)
{
    OS_CPU_SR cpu_sr = 0u;
    BOOLEAN taken = OS_FALSE;

    *perr = OS_EventCheck(pevent, OS_EVENT_TYPE_MUTEX);
    if (*perr != OS_ERR_NONE) {
        return OS_FALSE;
    }
    if (OSIntNesting > 0u) {
        *perr = OS_ERR_PEND_ISR;
        return OS_FALSE;
    }
    OS_ENTER_CRITICAL();
    if (OS_MUTEX_OWNER_PRIO(pevent) == OS_MUTEX_AVAILABLE) {
        *perr = OS_MutexTake(pevent, OSTCBCur);
        taken = OS_TRUE;
    }
    OS_EXIT_CRITICAL();
    return taken;
}

INT8U OSMutexQuery(OS_EVENT *pevent, OS_MUTEX_DATA *p_mutex_data)
{
    OS_CPU_SR cpu_sr = 0u;
    INT8U err = OS_EventCheck(pevent, OS_EVENT_TYPE_MUTEX);

    if (OSIntNesting > 0u) {
        return OS_ERR_QUERY_ISR;
    }
    if (err != OS_ERR_NONE) {
        return err;
    }
    if (p_mutex_data == NULL) {
        return OS_ERR_PDATA_NULL;
    }
    OS_ENTER_CRITICAL();
    p_mutex_data->OSMutexPIP = OS_MUTEX_PCP(pevent);
    p_mutex_data->OSOwnerPrio = OS_MUTEX_OWNER_PRIO(pevent);
    p_mutex_data->OSValue = (BOOLEAN)(p_mutex_data->OSOwnerPrio == OS_MUTEX_AVAILABLE);
    p_mutex_data->OSEventGrp = pevent->OSEventGrp;
    OS_MemCopy(p_mutex_data->OSEventTbl, pevent->OSEventTbl, OS_EVENT_TBL_SIZE);
    OS_EXIT_CRITICAL();
    return OS_ERR_NONE;
}
