/*
 * os_mbox.c - message mailboxes (one pointer-sized message).
 */
#include "ucos_ii.h"

OS_EVENT *OSMboxCreate(void *pmsg)
{
    OS_EVENT *pevent;

    if (OSIntNesting > 0u) {
        return NULL;
    }
    pevent = OS_EventAlloc(OS_EVENT_TYPE_MBOX);
    if (pevent != NULL) {
        pevent->OSEventPtr = pmsg;
    }
    return pevent;
}

OS_EVENT *OSMboxDel(OS_EVENT *pevent, INT8U opt, INT8U *perr)
{
    return OS_EventDel(pevent, OS_EVENT_TYPE_MBOX, OS_STAT_MBOX, opt, perr);
}

void *OSMboxPend(OS_EVENT *pevent, INT32U timeout, INT8U *perr)
{
    OS_CPU_SR cpu_sr = 0u;
    void *pmsg;

    *perr = OS_EventPendCheck(pevent, OS_EVENT_TYPE_MBOX);
    if (*perr != OS_ERR_NONE) {
        return NULL;
    }
    OS_ENTER_CRITICAL();
    pmsg = pevent->OSEventPtr;
    if (pmsg != NULL) {
        pevent->OSEventPtr = NULL;
        OS_EXIT_CRITICAL();
        return pmsg;
    }
    *perr = OS_EventPend(pevent, OS_STAT_MBOX, timeout, &pmsg, cpu_sr);
    return pmsg;
}

INT8U OSMboxPendAbort(OS_EVENT *pevent, INT8U opt, INT8U *perr)
{
    return OS_EventPendAbort(pevent, OS_EVENT_TYPE_MBOX, OS_STAT_MBOX, opt, perr);
}

INT8U OSMboxPost(OS_EVENT *pevent, void *pmsg)
{
    return OSMboxPostOpt(pevent, pmsg, OS_POST_OPT_NONE);
}

/* Hands pmsg to the highest-priority waiter (every waiter with
 * OS_POST_OPT_BROADCAST), or leaves it in the mailbox if nobody waits. */
INT8U OSMboxPostOpt(OS_EVENT *pevent, void *pmsg, INT8U opt)
{
    OS_CPU_SR cpu_sr = 0u;
    INT8U err = OS_EventCheck(pevent, OS_EVENT_TYPE_MBOX);

    if (err != OS_ERR_NONE) {
        return err;
    }
    if (pmsg == NULL) {
        return OS_ERR_POST_NULL_PTR;
    }
    OS_ENTER_CRITICAL();
    if (OS_EventPostWaiters(pevent, pmsg, OS_STAT_MBOX, opt, cpu_sr) == OS_TRUE) {
        return OS_ERR_NONE;
    }
    if (pevent->OSEventPtr != NULL) {
        err = OS_ERR_MBOX_FULL;
    } else {
        pevent->OSEventPtr = pmsg;
    }
    OS_EXIT_CRITICAL();
    return err;
}

void *OSMboxAccept(OS_EVENT *pevent)
{
    OS_CPU_SR cpu_sr = 0u;
    void *pmsg;

    if (OS_EventCheck(pevent, OS_EVENT_TYPE_MBOX) != OS_ERR_NONE) {
        return NULL;
    }
    OS_ENTER_CRITICAL();
    pmsg = pevent->OSEventPtr;
    pevent->OSEventPtr = NULL;
    OS_EXIT_CRITICAL();
    return pmsg;
}

INT8U OSMboxQuery(OS_EVENT *pevent, OS_MBOX_DATA *p_mbox_data)
{
    OS_CPU_SR cpu_sr = 0u;
    INT8U err = OS_EventCheck(pevent, OS_EVENT_TYPE_MBOX);

    if (err != OS_ERR_NONE) {
        return err;
    }
    if (p_mbox_data == NULL) {
        return OS_ERR_PDATA_NULL;
    }
    OS_ENTER_CRITICAL();
    p_mbox_data->OSEventGrp = pevent->OSEventGrp;
    OS_MemCopy(p_mbox_data->OSEventTbl, pevent->OSEventTbl, OS_EVENT_TBL_SIZE);
    p_mbox_data->OSMsg = pevent->OSEventPtr;
    OS_EXIT_CRITICAL();
    return OS_ERR_NONE;
}
