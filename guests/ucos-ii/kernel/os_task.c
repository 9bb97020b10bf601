/*
 * os_task.c - task management: create, delete, suspend/resume, change
 * priority, names, per-task registers and stack checking.
 */
#include "ucos_ii.h"

/* Looks up the task at *prio (OS_PRIO_SELF: the caller, and *prio becomes
 * its priority). Returns NULL with *perr = err_none for an empty slot or
 * err_reserved for a slot held by a mutex ceiling. Caller holds the
 * critical section. */
OS_TCB *OS_TaskGet(INT8U *prio, INT8U err_none, INT8U err_reserved, INT8U *perr)
{
    OS_TCB *ptcb;

    if (*prio == OS_PRIO_SELF) {
        *prio = OSTCBCur->OSTCBPrio;
    }
    ptcb = OSTCBPrioTbl[*prio];
    if (ptcb == NULL) {
        *perr = err_none;
        return NULL;
    }
    if (ptcb == OS_TCB_RESERVED) {
        *perr = err_reserved;
        return NULL;
    }
    *perr = OS_ERR_NONE;
    return ptcb;
}

/* Checks the priority argument of services that accept OS_PRIO_SELF but
 * refuse the idle task (with idle_err). */
static INT8U OS_TaskPrioCheck(INT8U prio, INT8U idle_err)
{
    if (prio == OS_TASK_IDLE_PRIO) {
        return idle_err;
    }
    if (prio >= OS_LOWEST_PRIO && prio != OS_PRIO_SELF) {
        return OS_ERR_PRIO_INVALID;
    }
    return OS_ERR_NONE;
}

static INT8U OS_TaskCreateCommon(OS_TASK_FN task, void *p_arg, OS_STK *ptos, INT8U prio,
                                 INT16U id, OS_STK *pbos, INT32U stk_size, void *pext,
                                 INT16U opt)
{
    OS_CPU_SR cpu_sr = 0u;
    OS_STK *psp;
    INT8U err;

    if (prio > OS_LOWEST_PRIO) {
        return OS_ERR_PRIO_INVALID;
    }
    OS_ENTER_CRITICAL();
    if (OSIntNesting > 0u) {
        OS_EXIT_CRITICAL();
        return OS_ERR_TASK_CREATE_ISR;
    }
    if (OSTCBPrioTbl[prio] != NULL) {
        OS_EXIT_CRITICAL();
        return OS_ERR_PRIO_EXIST;
    }
    OSTCBPrioTbl[prio] = OS_TCB_RESERVED; /* claim the slot while we build */
    OS_EXIT_CRITICAL();

    if ((opt & OS_TASK_OPT_STK_CHK) != 0u && (opt & OS_TASK_OPT_STK_CLR) != 0u && pbos != NULL) {
        OS_MemClr((INT8U *)pbos, stk_size * sizeof(OS_STK));
    }
    psp = OSTaskStkInit(task, p_arg, ptos, opt);
    err = OS_TCBInit(prio, psp, pbos, id, stk_size, pext, opt);
    if (err == OS_ERR_NONE) {
        if (OSRunning == OS_TRUE) {
            OS_Sched();
        }
    } else {
        OS_ENTER_CRITICAL();
        OSTCBPrioTbl[prio] = NULL;
        OS_EXIT_CRITICAL();
    }
    return err;
}

INT8U OSTaskCreate(OS_TASK_FN task, void *p_arg, OS_STK *ptos, INT8U prio)
{
    return OS_TaskCreateCommon(task, p_arg, ptos, prio, 0u, NULL, 0u, NULL, OS_TASK_OPT_NONE);
}

INT8U OSTaskCreateExt(OS_TASK_FN task, void *p_arg, OS_STK *ptos, INT8U prio, INT16U id,
                      OS_STK *pbos, INT32U stk_size, void *pext, INT16U opt)
{
    return OS_TaskCreateCommon(task, p_arg, ptos, prio, id, pbos, stk_size, pext, opt);
}

INT8U OSTaskDel(INT8U prio)
{
    OS_CPU_SR cpu_sr = 0u;
    OS_TCB *ptcb;
    INT8U err;

    if (OSIntNesting > 0u) {
        return OS_ERR_TASK_DEL_ISR;
    }
    err = OS_TaskPrioCheck(prio, OS_ERR_TASK_DEL_IDLE);
    if (err != OS_ERR_NONE) {
        return err;
    }
    OS_ENTER_CRITICAL();
    ptcb = OS_TaskGet(&prio, OS_ERR_TASK_NOT_EXIST, OS_ERR_TASK_DEL, &err);
    if (ptcb == NULL) {
        OS_EXIT_CRITICAL();
        return err;
    }
    OS_RdyRemove(ptcb);
    if (ptcb->OSTCBEventPtr != NULL) {
        OS_EventTaskRemove(ptcb, ptcb->OSTCBEventPtr);
    }
    if (ptcb->OSTCBFlagNode != NULL) {
        OS_FlagUnlink(ptcb->OSTCBFlagNode);
    }
    ptcb->OSTCBDly = 0u;
    ptcb->OSTCBStat = OS_STAT_RDY;
    ptcb->OSTCBStatPend = OS_STAT_PEND_OK;
    if (OSLockNesting < 255u) { /* no rescheduling while the hook runs */
        OSLockNesting++;
    }
    OS_EXIT_CRITICAL();
    OSTaskDelHook(ptcb);
    OS_ENTER_CRITICAL();
    if (OSLockNesting > 0u) {
        OSLockNesting--;
    }
    OSTaskCtr--;
    OSTCBPrioTbl[prio] = NULL;
    if (ptcb->OSTCBPrev == NULL) {
        OSTCBList = ptcb->OSTCBNext;
    } else {
        ptcb->OSTCBPrev->OSTCBNext = ptcb->OSTCBNext;
    }
    if (ptcb->OSTCBNext != NULL) {
        ptcb->OSTCBNext->OSTCBPrev = ptcb->OSTCBPrev;
    }
    ptcb->OSTCBNext = OSTCBFreeList;
    OSTCBFreeList = ptcb;
    ptcb->OSTCBTaskName = (INT8U *)"?";
    OS_EXIT_CRITICAL();
    if (OSRunning == OS_TRUE) {
        OS_Sched();
    }
    return OS_ERR_NONE;
}

/* Asks the task at prio to delete itself; with OS_PRIO_SELF, tells the
 * caller whether someone asked (OS_ERR_TASK_DEL_REQ) or not. */
INT8U OSTaskDelReq(INT8U prio)
{
    OS_CPU_SR cpu_sr = 0u;
    OS_TCB *ptcb;
    INT8U err = OS_TaskPrioCheck(prio, OS_ERR_TASK_DEL_IDLE);

    if (err != OS_ERR_NONE) {
        return err;
    }
    OS_ENTER_CRITICAL();
    if (prio == OS_PRIO_SELF) {
        err = OSTCBCur->OSTCBDelReq;
    } else {
        ptcb = OS_TaskGet(&prio, OS_ERR_TASK_NOT_EXIST, OS_ERR_TASK_DEL, &err);
        if (ptcb != NULL) {
            ptcb->OSTCBDelReq = OS_ERR_TASK_DEL_REQ;
        }
    }
    OS_EXIT_CRITICAL();
    return err;
}

/* Gives ptcb a new priority, keeping its place in the ready list or in the
 * wait list of the event it waits on. Caller holds the critical section and
 * updates OSTCBPrioTbl. */
void OS_TaskPrioMove(OS_TCB *ptcb, INT8U newprio)
{
    OS_EVENT *pevent = ptcb->OSTCBEventPtr;
    BOOLEAN rdy = (BOOLEAN)((OSRdyTbl[ptcb->OSTCBY] & ptcb->OSTCBBitX) != 0u);
    BOOLEAN waiting = (BOOLEAN)(pevent != NULL &&
                                (pevent->OSEventTbl[ptcb->OSTCBY] & ptcb->OSTCBBitX) != 0u);

    if (rdy == OS_TRUE) {
        OS_RdyRemove(ptcb);
    }
    if (waiting == OS_TRUE) {
        OS_EventTaskRemove(ptcb, pevent);
    }
    ptcb->OSTCBPrio = newprio;
    ptcb->OSTCBY = (INT8U)(newprio >> 3u);
    ptcb->OSTCBX = (INT8U)(newprio & 7u);
    ptcb->OSTCBBitY = (OS_PRIO)(1u << ptcb->OSTCBY);
    ptcb->OSTCBBitX = (OS_PRIO)(1u << ptcb->OSTCBX);
    if (rdy == OS_TRUE) {
        OS_RdyInsert(ptcb);
    }
    if (waiting == OS_TRUE) {
        pevent->OSEventTbl[ptcb->OSTCBY] |= ptcb->OSTCBBitX;
        pevent->OSEventGrp |= ptcb->OSTCBBitY;
    }
}

INT8U OSTaskChangePrio(INT8U oldprio, INT8U newprio)
{
    OS_CPU_SR cpu_sr = 0u;
    OS_TCB *ptcb;
    INT8U err;

    if ((oldprio >= OS_LOWEST_PRIO && oldprio != OS_PRIO_SELF) || newprio >= OS_LOWEST_PRIO) {
        return OS_ERR_PRIO_INVALID;
    }
    OS_ENTER_CRITICAL();
    if (OSTCBPrioTbl[newprio] != NULL) {
        OS_EXIT_CRITICAL();
        return OS_ERR_PRIO_EXIST;
    }
    ptcb = OS_TaskGet(&oldprio, OS_ERR_PRIO, OS_ERR_TASK_NOT_EXIST, &err);
    if (ptcb != NULL) {
        OSTCBPrioTbl[oldprio] = NULL;
        OSTCBPrioTbl[newprio] = ptcb;
        OS_TaskPrioMove(ptcb, newprio);
    }
    OS_EXIT_CRITICAL();
    if (ptcb != NULL && OSRunning == OS_TRUE) {
        OS_Sched();
    }
    return err;
}

INT8U OSTaskSuspend(INT8U prio)
{
    OS_CPU_SR cpu_sr = 0u;
    OS_TCB *ptcb;
    BOOLEAN self = OS_FALSE;
    INT8U err = OS_TaskPrioCheck(prio, OS_ERR_TASK_SUSPEND_IDLE);

    if (err != OS_ERR_NONE) {
        return err;
    }
    OS_ENTER_CRITICAL();
    ptcb = OS_TaskGet(&prio, OS_ERR_TASK_SUSPEND_PRIO, OS_ERR_TASK_NOT_EXIST, &err);
    if (ptcb != NULL) {
        self = (BOOLEAN)(ptcb == OSTCBCur);
        OS_RdyRemove(ptcb);
        ptcb->OSTCBStat |= OS_STAT_SUSPEND;
    }
    OS_EXIT_CRITICAL();
    if (self == OS_TRUE) {
        OS_Sched();
    }
    return err;
}

INT8U OSTaskResume(INT8U prio)
{
    OS_CPU_SR cpu_sr = 0u;
    OS_TCB *ptcb;
    BOOLEAN rdy = OS_FALSE;
    INT8U err;

    if (prio >= OS_LOWEST_PRIO) {
        return OS_ERR_PRIO_INVALID;
    }
    OS_ENTER_CRITICAL();
    ptcb = OS_TaskGet(&prio, OS_ERR_TASK_RESUME_PRIO, OS_ERR_TASK_NOT_EXIST, &err);
    if (ptcb != NULL && (ptcb->OSTCBStat & OS_STAT_SUSPEND) == 0u) {
        err = OS_ERR_TASK_NOT_SUSPENDED;
    } else if (ptcb != NULL) {
        ptcb->OSTCBStat &= (INT8U)~OS_STAT_SUSPEND;
        if (ptcb->OSTCBStat == OS_STAT_RDY && ptcb->OSTCBDly == 0u) {
            OS_RdyInsert(ptcb);
            rdy = OS_TRUE;
        }
    }
    OS_EXIT_CRITICAL();
    if (rdy == OS_TRUE && OSRunning == OS_TRUE) {
        OS_Sched();
    }
    return err;
}

/* Validates prio for the name/query/register services; returns the TCB or
 * NULL with *perr set. Caller holds the critical section. */
static OS_TCB *OS_TaskFind(INT8U prio, INT8U *perr)
{
    if (prio > OS_LOWEST_PRIO && prio != OS_PRIO_SELF) {
        *perr = OS_ERR_PRIO_INVALID;
        return NULL;
    }
    return OS_TaskGet(&prio, OS_ERR_TASK_NOT_EXIST, OS_ERR_TASK_NOT_EXIST, perr);
}

INT8U OSTaskQuery(INT8U prio, OS_TCB *p_task_data)
{
    OS_CPU_SR cpu_sr = 0u;
    OS_TCB *ptcb;
    INT8U err;

    if (p_task_data == NULL) {
        return OS_ERR_PDATA_NULL;
    }
    OS_ENTER_CRITICAL();
    ptcb = OS_TaskFind(prio, &err);
    if (ptcb != NULL) {
        OS_MemCopy((INT8U *)p_task_data, (INT8U *)ptcb, sizeof(OS_TCB));
    }
    OS_EXIT_CRITICAL();
    return (err == OS_ERR_TASK_NOT_EXIST) ? OS_ERR_PRIO : err;
}

/* Counts the untouched (zero) stack entries from the bottom of a task
 * created with OS_TASK_OPT_STK_CHK | OS_TASK_OPT_STK_CLR. */
INT8U OSTaskStkChk(INT8U prio, OS_STK_DATA *p_stk_data)
{
    OS_CPU_SR cpu_sr = 0u;
    OS_TCB *ptcb;
    OS_STK *pstk;
    INT32U nfree = 0u;
    INT32U size;
    INT8U err;

    if (p_stk_data == NULL) {
        return OS_ERR_PDATA_NULL;
    }
    p_stk_data->OSFree = 0u;
    p_stk_data->OSUsed = 0u;
    OS_ENTER_CRITICAL();
    ptcb = OS_TaskFind(prio, &err);
    if (ptcb == NULL) {
        OS_EXIT_CRITICAL();
        return err;
    }
    if ((ptcb->OSTCBOpt & OS_TASK_OPT_STK_CHK) == 0u || ptcb->OSTCBStkBottom == NULL) {
        OS_EXIT_CRITICAL();
        return OS_ERR_TASK_OPT;
    }
    size = ptcb->OSTCBStkSize;
    pstk = ptcb->OSTCBStkBottom;
    OS_EXIT_CRITICAL();
    while (nfree < size && *pstk++ == 0u) {
        nfree++;
    }
    p_stk_data->OSFree = nfree * sizeof(OS_STK);
    p_stk_data->OSUsed = (size - nfree) * sizeof(OS_STK);
    return OS_ERR_NONE;
}

INT8U OSTaskNameGet(INT8U prio, INT8U **pname, INT8U *perr)
{
    OS_CPU_SR cpu_sr = 0u;
    OS_TCB *ptcb = NULL;

    *perr = OS_NameArgCheck(pname, OS_FALSE);
    if (*perr == OS_ERR_NONE) {
        OS_ENTER_CRITICAL();
        ptcb = OS_TaskFind(prio, perr);
        if (ptcb != NULL) {
            *pname = ptcb->OSTCBTaskName;
        }
        OS_EXIT_CRITICAL();
    }
    return (ptcb != NULL) ? (INT8U)OS_StrLen(*pname) : 0u;
}

void OSTaskNameSet(INT8U prio, INT8U *pname, INT8U *perr)
{
    OS_CPU_SR cpu_sr = 0u;
    OS_TCB *ptcb;

    *perr = OS_NameArgCheck(pname, OS_TRUE);
    if (*perr == OS_ERR_NONE) {
        OS_ENTER_CRITICAL();
        ptcb = OS_TaskFind(prio, perr);
        if (ptcb != NULL) {
            ptcb->OSTCBTaskName = pname;
        }
        OS_EXIT_CRITICAL();
    }
}

INT32U OSTaskRegGet(INT8U prio, INT8U id, INT8U *perr)
{
    OS_CPU_SR cpu_sr = 0u;
    OS_TCB *ptcb;
    INT32U value = 0u;

    if (id >= OS_TASK_REG_TBL_SIZE) {
        *perr = OS_ERR_ID_INVALID;
        return 0u;
    }
    OS_ENTER_CRITICAL();
    ptcb = OS_TaskFind(prio, perr);
    if (ptcb != NULL) {
        value = ptcb->OSTCBRegTbl[id];
    }
    OS_EXIT_CRITICAL();
    return value;
}

void OSTaskRegSet(INT8U prio, INT8U id, INT32U value, INT8U *perr)
{
    OS_CPU_SR cpu_sr = 0u;
    OS_TCB *ptcb;

    if (id >= OS_TASK_REG_TBL_SIZE) {
        *perr = OS_ERR_ID_INVALID;
        return;
    }
    OS_ENTER_CRITICAL();
    ptcb = OS_TaskFind(prio, perr);
    if (ptcb != NULL) {
        ptcb->OSTCBRegTbl[id] = value;
    }
    OS_EXIT_CRITICAL();
}
