/*
 * os_sem.c - counting semaphores.
 */
#include "ucos_ii.h"

OS_EVENT *OSSemCreate(INT16U cnt)
{
    OS_EVENT *pevent;

    if (OSIntNesting > 0u) {
        return NULL;
    }
    pevent = OS_EventAlloc(OS_EVENT_TYPE_SEM);
    if (pevent != NULL) {
        pevent->OSEventCnt = cnt;
    }
    return pevent;
}

OS_EVENT *OSSemDel(OS_EVENT *pevent, INT8U opt, INT8U *perr)
{
    return OS_EventDel(pevent, OS_EVENT_TYPE_SEM, OS_STAT_SEM, opt, perr);
}

void OSSemPend(OS_EVENT *pevent, INT32U timeout, INT8U *perr)
{
    OS_CPU_SR cpu_sr = 0u;

    *perr = OS_EventPendCheck(pevent, OS_EVENT_TYPE_SEM);
    if (*perr != OS_ERR_NONE) {
        return;
    }
    OS_ENTER_CRITICAL();
    if (pevent->OSEventCnt > 0u) {
        pevent->OSEventCnt--;
        OS_EXIT_CRITICAL();
        return;
    }
    *perr = OS_EventPend(pevent, OS_STAT_SEM, timeout, NULL, cpu_sr);
}

INT8U OSSemPendAbort(OS_EVENT *pevent, INT8U opt, INT8U *perr)
{
    return OS_EventPendAbort(pevent, OS_EVENT_TYPE_SEM, OS_STAT_SEM, opt, perr);
}

/* Wakes the highest-priority waiter, or counts the post if nobody waits. */
INT8U OSSemPost(OS_EVENT *pevent)
{
    OS_CPU_SR cpu_sr = 0u;
    INT8U err = OS_EventCheck(pevent, OS_EVENT_TYPE_SEM);

    if (err != OS_ERR_NONE) {
        return err;
    }
    OS_ENTER_CRITICAL();
    if (OS_EventPostWaiters(pevent, NULL, OS_STAT_SEM, OS_POST_OPT_NONE, cpu_sr) == OS_TRUE) {
        return OS_ERR_NONE;
    }
    if (pevent->OSEventCnt < 65535u) {
        pevent->OSEventCnt++;
        err = OS_ERR_NONE;
    } else {
        err = OS_ERR_SEM_OVF;
    }
    OS_EXIT_CRITICAL();
    return err;
}

/* Takes the semaphore if available without waiting; returns the count it
 * had (0: not taken). */
INT16U OSSemAccept(OS_EVENT *pevent)
{
    OS_CPU_SR cpu_sr = 0u;
    INT16U cnt;

    if (OS_EventCheck(pevent, OS_EVENT_TYPE_SEM) != OS_ERR_NONE) {
        return 0u;
    }
    OS_ENTER_CRITICAL();
    cnt = pevent->OSEventCnt;
    if (cnt > 0u) {
        pevent->OSEventCnt--;
    }
    OS_EXIT_CRITICAL();
    return cnt;
}

INT8U OSSemQuery(OS_EVENT *pevent, OS_SEM_DATA *p_sem_data)
{
    OS_CPU_SR cpu_sr = 0u;
    INT8U err = OS_EventCheck(pevent, OS_EVENT_TYPE_SEM);

    if (err != OS_ERR_NONE) {
        return err;
    }
    if (p_sem_data == NULL) {
        return OS_ERR_PDATA_NULL;
    }
    OS_ENTER_CRITICAL();
    p_sem_data->OSEventGrp = pevent->OSEventGrp;
    OS_MemCopy(p_sem_data->OSEventTbl, pevent->OSEventTbl, OS_EVENT_TBL_SIZE);
    p_sem_data->OSCnt = pevent->OSEventCnt;
    OS_EXIT_CRITICAL();
    return OS_ERR_NONE;
}

/* Sets the count; refused while tasks wait on a zero count. */
void OSSemSet(OS_EVENT *pevent, INT16U cnt, INT8U *perr)
{
    OS_CPU_SR cpu_sr = 0u;

    *perr = OS_EventCheck(pevent, OS_EVENT_TYPE_SEM);
    if (*perr != OS_ERR_NONE) {
        return;
    }
    OS_ENTER_CRITICAL();
    if (pevent->OSEventCnt > 0u || pevent->OSEventGrp == 0u) {
        pevent->OSEventCnt = cnt;
    } else {
        *perr = OS_ERR_TASK_WAITING;
    }
    OS_EXIT_CRITICAL();
}
