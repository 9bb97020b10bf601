/*
 * os_q.c - message queues: a circular buffer of pointers supplied by the
 * application, described by an OS_Q that the event's OSEventPtr points to.
 */
#include "ucos_ii.h"

void OS_QInit(void)
{
    INT32U i;

    OS_MemClr((INT8U *)OSQTbl, sizeof(OSQTbl));
    OSQFreeList = NULL;
    for (i = OS_MAX_QS; i > 0u; i--) {
        OSQTbl[i - 1u].OSQPtr = OSQFreeList;
        OSQFreeList = &OSQTbl[i - 1u];
    }
}

OS_EVENT *OSQCreate(void **start, INT16U size)
{
    OS_CPU_SR cpu_sr = 0u;
    OS_EVENT *pevent;
    OS_Q *pq;

    if (OSIntNesting > 0u) {
        return NULL;
    }
    pevent = OS_EventAlloc(OS_EVENT_TYPE_Q);
    if (pevent == NULL) {
        return NULL;
    }
    OS_ENTER_CRITICAL();
    pq = OSQFreeList;
    if (pq == NULL) {
        OS_EventFree(pevent);
        OS_EXIT_CRITICAL();
        return NULL;
    }
    OSQFreeList = pq->OSQPtr;
    pq->OSQStart = start;
    pq->OSQEnd = &start[size];
    pq->OSQIn = start;
    pq->OSQOut = start;
    pq->OSQSize = size;
    pq->OSQEntries = 0u;
    pevent->OSEventPtr = pq;
    OS_EXIT_CRITICAL();
    return pevent;
}

OS_EVENT *OSQDel(OS_EVENT *pevent, INT8U opt, INT8U *perr)
{
    OS_CPU_SR cpu_sr = 0u;
    OS_Q *pq = (pevent != NULL) ? (OS_Q *)pevent->OSEventPtr : NULL;
    OS_EVENT *left = OS_EventDel(pevent, OS_EVENT_TYPE_Q, OS_STAT_Q, opt, perr);

    if (left == NULL && pq != NULL) {
        OS_ENTER_CRITICAL();
        pq->OSQPtr = OSQFreeList;
        OSQFreeList = pq;
        OS_EXIT_CRITICAL();
    }
    return left;
}

/* Removes the oldest message; caller holds the critical section and knows
 * the queue is not empty. */
static void *OS_QTake(OS_Q *pq)
{
    void *pmsg = *pq->OSQOut++;

    pq->OSQEntries--;
    if (pq->OSQOut == pq->OSQEnd) {
        pq->OSQOut = pq->OSQStart;
    }
    return pmsg;
}

void *OSQPend(OS_EVENT *pevent, INT32U timeout, INT8U *perr)
{
    OS_CPU_SR cpu_sr = 0u;
    OS_Q *pq;
    void *pmsg;

    *perr = OS_EventPendCheck(pevent, OS_EVENT_TYPE_Q);
    if (*perr != OS_ERR_NONE) {
        return NULL;
    }
    OS_ENTER_CRITICAL();
    pq = (OS_Q *)pevent->OSEventPtr;
    if (pq->OSQEntries > 0u) {
        pmsg = OS_QTake(pq);
        OS_EXIT_CRITICAL();
        return pmsg;
    }
    *perr = OS_EventPend(pevent, OS_STAT_Q, timeout, &pmsg, cpu_sr);
    return pmsg;
}

INT8U OSQPendAbort(OS_EVENT *pevent, INT8U opt, INT8U *perr)
{
    return OS_EventPendAbort(pevent, OS_EVENT_TYPE_Q, OS_STAT_Q, opt, perr);
}

INT8U OSQPost(OS_EVENT *pevent, void *pmsg)
{
    return OSQPostOpt(pevent, pmsg, OS_POST_OPT_NONE);
}

INT8U OSQPostFront(OS_EVENT *pevent, void *pmsg)
{
    return OSQPostOpt(pevent, pmsg, OS_POST_OPT_FRONT);
}

/* Hands pmsg to the highest-priority waiter (every waiter with
 * OS_POST_OPT_BROADCAST); if nobody waits, queues it at the back (FIFO) or,
 * with OS_POST_OPT_FRONT, at the front (LIFO). */
INT8U OSQPostOpt(OS_EVENT *pevent, void *pmsg, INT8U opt)
{
    OS_CPU_SR cpu_sr = 0u;
    INT8U err = OS_EventCheck(pevent, OS_EVENT_TYPE_Q);
    OS_Q *pq;

    if (err != OS_ERR_NONE) {
        return err;
    }
    OS_ENTER_CRITICAL();
    if (OS_EventPostWaiters(pevent, pmsg, OS_STAT_Q, opt, cpu_sr) == OS_TRUE) {
        return OS_ERR_NONE;
    }
    pq = (OS_Q *)pevent->OSEventPtr;
    if (pq->OSQEntries >= pq->OSQSize) {
        OS_EXIT_CRITICAL();
        return OS_ERR_Q_FULL;
    }
    if ((opt & OS_POST_OPT_FRONT) != 0u) {
        if (pq->OSQOut == pq->OSQStart) {
            pq->OSQOut = pq->OSQEnd;
        }
        *--pq->OSQOut = pmsg;
    } else {
        *pq->OSQIn++ = pmsg;
        if (pq->OSQIn == pq->OSQEnd) {
            pq->OSQIn = pq->OSQStart;
        }
    }
    pq->OSQEntries++;
    OS_EXIT_CRITICAL();
    return OS_ERR_NONE;
}

void *OSQAccept(OS_EVENT *pevent, INT8U *perr)
{
    OS_CPU_SR cpu_sr = 0u;
    OS_Q *pq;
    void *pmsg = NULL;

    *perr = OS_EventCheck(pevent, OS_EVENT_TYPE_Q);
    if (*perr != OS_ERR_NONE) {
        return NULL;
    }
    OS_ENTER_CRITICAL();
    pq = (OS_Q *)pevent->OSEventPtr;
    if (pq->OSQEntries > 0u) {
        pmsg = OS_QTake(pq);
    } else {
        *perr = OS_ERR_Q_EMPTY;
    }
    OS_EXIT_CRITICAL();
    return pmsg;
}

INT8U OSQFlush(OS_EVENT *pevent)
{
    OS_CPU_SR cpu_sr = 0u;
    INT8U err = OS_EventCheck(pevent, OS_EVENT_TYPE_Q);
    OS_Q *pq;

    if (err != OS_ERR_NONE) {
        return err;
    }
    OS_ENTER_CRITICAL();
    pq = (OS_Q *)pevent->OSEventPtr;
    pq->OSQIn = pq->OSQStart;
    pq->OSQOut = pq->OSQStart;
    pq->OSQEntries = 0u;
    OS_EXIT_CRITICAL();
    return OS_ERR_NONE;
}

INT8U OSQQuery(OS_EVENT *pevent, OS_Q_DATA *p_q_data)
{
    OS_CPU_SR cpu_sr = 0u;
    INT8U err = OS_EventCheck(pevent, OS_EVENT_TYPE_Q);
    OS_Q *pq;

    if (err != OS_ERR_NONE) {
        return err;
    }
    if (p_q_data == NULL) {
        return OS_ERR_PDATA_NULL;
    }
    OS_ENTER_CRITICAL();
    p_q_data->OSEventGrp = pevent->OSEventGrp;
    OS_MemCopy(p_q_data->OSEventTbl, pevent->OSEventTbl, OS_EVENT_TBL_SIZE);
    pq = (OS_Q *)pevent->OSEventPtr;
    p_q_data->OSMsg = (pq->OSQEntries > 0u) ? *pq->OSQOut : NULL;
    p_q_data->OSNMsgs = pq->OSQEntries;
    p_q_data->OSQSize = pq->OSQSize;
    OS_EXIT_CRITICAL();
    return OS_ERR_NONE;
}
