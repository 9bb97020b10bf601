/*
 * os_flag.c - event flag groups. Tasks wait for all or any of a set of
 * flags to be set (or cleared); each waiting task is described by an
 * OS_FLAG_NODE on its own stack, linked into the group's wait list.
 */
#include "ucos_ii.h"

static INT8U OSFlagUnnamed[] = "?";

void OS_FlagInit(void)
{
    INT32U i;

    OS_MemClr((INT8U *)OSFlagTbl, sizeof(OSFlagTbl));
    OSFlagFreeList = NULL;
    for (i = OS_MAX_FLAGS; i > 0u; i--) {
        OSFlagTbl[i - 1u].OSFlagType = OS_EVENT_TYPE_UNUSED;
        OSFlagTbl[i - 1u].OSFlagWaitList = OSFlagFreeList;
        OSFlagTbl[i - 1u].OSFlagName = OSFlagUnnamed;
        OSFlagFreeList = &OSFlagTbl[i - 1u];
    }
}

/* Which of the wanted flags satisfy wait_type in current: returns OS_TRUE
 * when the wait is over, with the satisfying flags in *prdy. */
static BOOLEAN OS_FlagTest(OS_FLAGS current, OS_FLAGS flags, INT8U wait_type, OS_FLAGS *prdy)
{
    OS_FLAGS rdy;

    switch (wait_type) {
    case OS_FLAG_WAIT_SET_ALL:
        rdy = (OS_FLAGS)(current & flags);
        *prdy = rdy;
        return (BOOLEAN)(rdy == flags);
    case OS_FLAG_WAIT_SET_ANY:
        rdy = (OS_FLAGS)(current & flags);
        *prdy = rdy;
        return (BOOLEAN)(rdy != 0u);
    case OS_FLAG_WAIT_CLR_ALL:
        rdy = (OS_FLAGS)(~current & flags);
        *prdy = rdy;
        return (BOOLEAN)(rdy == flags);
    default: /* OS_FLAG_WAIT_CLR_ANY */
        rdy = (OS_FLAGS)(~current & flags);
        *prdy = rdy;
        return (BOOLEAN)(rdy != 0u);
    }
}

/* Consumes the flags that ended a wait: set flags are cleared and cleared
 * flags are set. Caller holds the critical section. */
static void OS_FlagConsume(OS_FLAG_GRP *pgrp, OS_FLAGS rdy, INT8U wait_type)
{
    if (wait_type == OS_FLAG_WAIT_SET_ALL || wait_type == OS_FLAG_WAIT_SET_ANY) {
        pgrp->OSFlagFlags &= (OS_FLAGS)~rdy;
    } else {
        pgrp->OSFlagFlags |= rdy;
    }
}

static INT8U OS_FlagCheck(OS_FLAG_GRP *pgrp)
{
    if (pgrp == NULL) {
        return OS_ERR_FLAG_INVALID_PGRP;
    }
    if (pgrp->OSFlagType != OS_EVENT_TYPE_FLAG) {
        return OS_ERR_EVENT_TYPE;
    }
    return OS_ERR_NONE;
}

void OS_FlagUnlink(OS_FLAG_NODE *pnode)
{
    OS_FLAG_NODE *prev = (OS_FLAG_NODE *)pnode->OSFlagNodePrev;
    OS_FLAG_NODE *next = (OS_FLAG_NODE *)pnode->OSFlagNodeNext;

    if (prev == NULL) {
        ((OS_FLAG_GRP *)pnode->OSFlagNodeFlagGrp)->OSFlagWaitList = next;
    } else {
        prev->OSFlagNodeNext = next;
    }
    if (next != NULL) {
        next->OSFlagNodePrev = prev;
    }
    ((OS_TCB *)pnode->OSFlagNodeTCB)->OSTCBFlagNode = NULL;
}

/* Ends the wait of the task behind pnode with flags_rdy and pend_stat;
 * returns OS_TRUE if the task became ready. */
static BOOLEAN OS_FlagTaskRdy(OS_FLAG_NODE *pnode, OS_FLAGS flags_rdy, INT8U pend_stat)
{
    OS_TCB *ptcb = (OS_TCB *)pnode->OSFlagNodeTCB;

    ptcb->OSTCBDly = 0u;
    ptcb->OSTCBFlagsRdy = flags_rdy;
    ptcb->OSTCBStat &= (INT8U)~OS_STAT_FLAG;
    ptcb->OSTCBStatPend = pend_stat;
    OS_FlagUnlink(pnode);
    if (ptcb->OSTCBStat == OS_STAT_RDY) {
        OS_RdyInsert(ptcb);
        return OS_TRUE;
    }
    return OS_FALSE;
}

OS_FLAG_GRP *OSFlagCreate(OS_FLAGS flags, INT8U *perr)
{
    OS_CPU_SR cpu_sr = 0u;
    OS_FLAG_GRP *pgrp;

    if (OSIntNesting > 0u) {
        *perr = OS_ERR_CREATE_ISR;
        return NULL;
    }
    OS_ENTER_CRITICAL();
    pgrp = OSFlagFreeList;
    if (pgrp == NULL) {
        OS_EXIT_CRITICAL();
        *perr = OS_ERR_FLAG_GRP_DEPLETED;
        return NULL;
    }
    OSFlagFreeList = (OS_FLAG_GRP *)pgrp->OSFlagWaitList;
    pgrp->OSFlagType = OS_EVENT_TYPE_FLAG;
    pgrp->OSFlagFlags = flags;
    pgrp->OSFlagWaitList = NULL;
    pgrp->OSFlagName = OSFlagUnnamed;
    OS_EXIT_CRITICAL();
    *perr = OS_ERR_NONE;
    return pgrp;
}

OS_FLAG_GRP *OSFlagDel(OS_FLAG_GRP *pgrp, INT8U opt, INT8U *perr)
{
    OS_CPU_SR cpu_sr = 0u;
    BOOLEAN waiting;

    if (OSIntNesting > 0u) {
        *perr = OS_ERR_DEL_ISR;
        return pgrp;
    }
    *perr = OS_FlagCheck(pgrp);
    if (*perr != OS_ERR_NONE) {
        return pgrp;
    }
    if (opt != OS_DEL_NO_PEND && opt != OS_DEL_ALWAYS) {
        *perr = OS_ERR_INVALID_OPT;
        return pgrp;
    }
    OS_ENTER_CRITICAL();
    waiting = (BOOLEAN)(pgrp->OSFlagWaitList != NULL);
    if (waiting == OS_TRUE && opt == OS_DEL_NO_PEND) {
        OS_EXIT_CRITICAL();
        *perr = OS_ERR_TASK_WAITING;
        return pgrp;
    }
    while (pgrp->OSFlagWaitList != NULL) {
        (void)OS_FlagTaskRdy((OS_FLAG_NODE *)pgrp->OSFlagWaitList, 0u, OS_STAT_PEND_ABORT);
    }
    pgrp->OSFlagType = OS_EVENT_TYPE_UNUSED;
    pgrp->OSFlagFlags = 0u;
    pgrp->OSFlagName = OSFlagUnnamed;
    pgrp->OSFlagWaitList = OSFlagFreeList;
    OSFlagFreeList = pgrp;
    OS_EXIT_CRITICAL();
    if (waiting == OS_TRUE) {
        OS_Sched();
    }
    return NULL;
}

/* Checks wait_type (with OS_FLAG_CONSUME stripped into *pconsume). */
static INT8U OS_FlagWaitType(INT8U *wait_type, BOOLEAN *pconsume)
{
    *pconsume = (BOOLEAN)((*wait_type & OS_FLAG_CONSUME) != 0u);
    *wait_type &= (INT8U)~OS_FLAG_CONSUME;
    return (*wait_type > OS_FLAG_WAIT_SET_ANY) ? OS_ERR_FLAG_WAIT_TYPE : OS_ERR_NONE;
}

OS_FLAGS OSFlagPend(OS_FLAG_GRP *pgrp, OS_FLAGS flags, INT8U wait_type, INT32U timeout,
                    INT8U *perr)
{
    OS_CPU_SR cpu_sr = 0u;
    OS_FLAG_NODE node;
    OS_TCB *ptcb = OSTCBCur;
    OS_FLAGS rdy;
    BOOLEAN consume;

    if (OSIntNesting > 0u) {
        *perr = OS_ERR_PEND_ISR;
        return 0u;
    }
    if (OSLockNesting > 0u) {
        *perr = OS_ERR_PEND_LOCKED;
        return 0u;
    }
    *perr = OS_FlagCheck(pgrp);
    if (*perr == OS_ERR_NONE) {
        *perr = OS_FlagWaitType(&wait_type, &consume);
    }
    if (*perr != OS_ERR_NONE) {
        return 0u;
    }
    OS_ENTER_CRITICAL();
    if (OS_FlagTest(pgrp->OSFlagFlags, flags, wait_type, &rdy) == OS_TRUE) {
        if (consume == OS_TRUE) {
            OS_FlagConsume(pgrp, rdy, wait_type);
        }
        ptcb->OSTCBFlagsRdy = rdy;
        OS_EXIT_CRITICAL();
        return rdy;
    }
    node.OSFlagNodeFlags = flags;
    node.OSFlagNodeWaitType = wait_type;
    node.OSFlagNodeTCB = ptcb;
    node.OSFlagNodeFlagGrp = pgrp;
    node.OSFlagNodePrev = NULL;
    node.OSFlagNodeNext = pgrp->OSFlagWaitList;
    if (node.OSFlagNodeNext != NULL) {
        ((OS_FLAG_NODE *)node.OSFlagNodeNext)->OSFlagNodePrev = &node;
    }
    pgrp->OSFlagWaitList = &node;
    ptcb->OSTCBFlagNode = &node;
    ptcb->OSTCBStat |= OS_STAT_FLAG;
    ptcb->OSTCBStatPend = OS_STAT_PEND_OK;
    ptcb->OSTCBDly = timeout;
    OS_RdyRemove(ptcb);
    OS_EXIT_CRITICAL();
    OS_Sched();
    OS_ENTER_CRITICAL();
    if (ptcb->OSTCBStatPend != OS_STAT_PEND_OK) {
        *perr = (ptcb->OSTCBStatPend == OS_STAT_PEND_ABORT) ? OS_ERR_PEND_ABORT : OS_ERR_TIMEOUT;
        if (ptcb->OSTCBFlagNode != NULL) { /* timed out: still linked */
            OS_FlagUnlink(&node);
        }
        ptcb->OSTCBStat = OS_STAT_RDY;
        ptcb->OSTCBStatPend = OS_STAT_PEND_OK;
        OS_EXIT_CRITICAL();
        return 0u;
    }
    rdy = ptcb->OSTCBFlagsRdy;
    if (consume == OS_TRUE) {
        OS_FlagConsume(pgrp, rdy, wait_type);
    }
    OS_EXIT_CRITICAL();
    return rdy;
}

OS_FLAGS OSFlagPendGetFlagsRdy(void)
{
    OS_CPU_SR cpu_sr = 0u;
    OS_FLAGS flags;

    OS_ENTER_CRITICAL();
    flags = OSTCBCur->OSTCBFlagsRdy;
    OS_EXIT_CRITICAL();
    return flags;
}

/* Sets (OS_FLAG_SET) or clears (OS_FLAG_CLR) flags and ends the wait of
 * every task whose condition now holds. Returns the new flags. */
OS_FLAGS OSFlagPost(OS_FLAG_GRP *pgrp, OS_FLAGS flags, INT8U opt, INT8U *perr)
{
    OS_CPU_SR cpu_sr = 0u;
    OS_FLAG_NODE *pnode;
    OS_FLAG_NODE *next;
    OS_FLAGS rdy;
    OS_FLAGS now;
    BOOLEAN sched = OS_FALSE;

    *perr = OS_FlagCheck(pgrp);
    if (*perr != OS_ERR_NONE) {
        return 0u;
    }
    if (opt != OS_FLAG_SET && opt != OS_FLAG_CLR) {
        *perr = OS_ERR_FLAG_INVALID_OPT;
        return 0u;
    }
    OS_ENTER_CRITICAL();
    if (opt == OS_FLAG_SET) {
        pgrp->OSFlagFlags |= flags;
    } else {
        pgrp->OSFlagFlags &= (OS_FLAGS)~flags;
    }
    for (pnode = (OS_FLAG_NODE *)pgrp->OSFlagWaitList; pnode != NULL; pnode = next) {
        next = (OS_FLAG_NODE *)pnode->OSFlagNodeNext;
        if (OS_FlagTest(pgrp->OSFlagFlags, pnode->OSFlagNodeFlags, pnode->OSFlagNodeWaitType,
                        &rdy) == OS_TRUE) {
            if (OS_FlagTaskRdy(pnode, rdy, OS_STAT_PEND_OK) == OS_TRUE) {
                sched = OS_TRUE;
            }
        }
    }
    now = pgrp->OSFlagFlags;
    OS_EXIT_CRITICAL();
    if (sched == OS_TRUE) {
        OS_Sched();
    }
    return now;
}

OS_FLAGS OSFlagAccept(OS_FLAG_GRP *pgrp, OS_FLAGS flags, INT8U wait_type, INT8U *perr)
{
    OS_CPU_SR cpu_sr = 0u;
    OS_FLAGS rdy;
    BOOLEAN consume;

    *perr = OS_FlagCheck(pgrp);
    if (*perr == OS_ERR_NONE) {
        *perr = OS_FlagWaitType(&wait_type, &consume);
    }
    if (*perr != OS_ERR_NONE) {
        return 0u;
    }
    OS_ENTER_CRITICAL();
    if (OS_FlagTest(pgrp->OSFlagFlags, flags, wait_type, &rdy) == OS_TRUE) {
        if (consume == OS_TRUE) {
            OS_FlagConsume(pgrp, rdy, wait_type);
        }
    } else {
        *perr = OS_ERR_FLAG_NOT_RDY;
    }
    OS_EXIT_CRITICAL();
    return rdy;
}

OS_FLAGS OSFlagQuery(OS_FLAG_GRP *pgrp, INT8U *perr)
{
    OS_CPU_SR cpu_sr = 0u;
    OS_FLAGS flags;

    *perr = OS_FlagCheck(pgrp);
    if (*perr != OS_ERR_NONE) {
        return 0u;
    }
    OS_ENTER_CRITICAL();
    flags = pgrp->OSFlagFlags;
    OS_EXIT_CRITICAL();
    return flags;
}

INT8U OSFlagNameGet(OS_FLAG_GRP *pgrp, INT8U **pname, INT8U *perr)
{
    *perr = OS_FlagCheck(pgrp);
    if (*perr == OS_ERR_NONE) {
        *perr = OS_NameArgCheck(pname, OS_FALSE);
    }
    if (*perr != OS_ERR_NONE) {
        return 0u;
    }
    *pname = pgrp->OSFlagName;
    return (INT8U)OS_StrLen(*pname);
}

void OSFlagNameSet(OS_FLAG_GRP *pgrp, INT8U *pname, INT8U *perr)
{
    *perr = OS_FlagCheck(pgrp);
    if (*perr == OS_ERR_NONE) {
        *perr = OS_NameArgCheck(pname, OS_TRUE);
    }
    if (*perr == OS_ERR_NONE) {
        pgrp->OSFlagName = pname;
    }
}
