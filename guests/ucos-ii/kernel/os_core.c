/*
 * os_core.c - kernel core: global state, ready list, scheduler, interrupt
 * bookkeeping, idle and statistics tasks, and the event wait-list machinery
 * shared by semaphores, mutexes, mailboxes and queues.
 *
 * Ready list: priority p is ready when bit (p & 7) of OSRdyTbl[p >> 3] is
 * set; bit (p >> 3) of OSRdyGrp says that OSRdyTbl[p >> 3] is non-zero.
 * The highest-priority ready task (lowest number) is then found with two
 * lookups in OSUnMapTbl, which maps a byte to the index of its lowest set
 * bit. Event wait lists use the same two-level bitmap.
 */
#define OS_GLOBALS
#include "ucos_ii.h"

/* Index of the least significant set bit of each byte value (0 for 0). */
INT8U const OSUnMapTbl[256] = {
    0u, 0u, 1u, 0u, 2u, 0u, 1u, 0u, 3u, 0u, 1u, 0u, 2u, 0u, 1u, 0u,
    4u, 0u, 1u, 0u, 2u, 0u, 1u, 0u, 3u, 0u, 1u, 0u, 2u, 0u, 1u, 0u,
    5u, 0u, 1u, 0u, 2u, 0u, 1u, 0u, 3u, 0u, 1u, 0u, 2u, 0u, 1u, 0u,
    4u, 0u, 1u, 0u, 2u, 0u, 1u, 0u, 3u, 0u, 1u, 0u, 2u, 0u, 1u, 0u,
    6u, 0u, 1u, 0u, 2u, 0u, 1u, 0u, 3u, 0u, 1u, 0u, 2u, 0u, 1u, 0u,
    4u, 0u, 1u, 0u, 2u, 0u, 1u, 0u, 3u, 0u, 1u, 0u, 2u, 0u, 1u, 0u,
    5u, 0u, 1u, 0u, 2u, 0u, 1u, 0u, 3u, 0u, 1u, 0u, 2u, 0u, 1u, 0u,
    4u, 0u, 1u, 0u, 2u, 0u, 1u, 0u, 3u, 0u, 1u, 0u, 2u, 0u, 1u, 0u,
    7u, 0u, 1u, 0u, 2u, 0u, 1u, 0u, 3u, 0u, 1u, 0u, 2u, 0u, 1u, 0u,
    4u, 0u, 1u, 0u, 2u, 0u, 1u, 0u, 3u, 0u, 1u, 0u, 2u, 0u, 1u, 0u,
    5u, 0u, 1u, 0u, 2u, 0u, 1u, 0u, 3u, 0u, 1u, 0u, 2u, 0u, 1u, 0u,
    4u, 0u, 1u, 0u, 2u, 0u, 1u, 0u, 3u, 0u, 1u, 0u, 2u, 0u, 1u, 0u,
    6u, 0u, 1u, 0u, 2u, 0u, 1u, 0u, 3u, 0u, 1u, 0u, 2u, 0u, 1u, 0u,
    4u, 0u, 1u, 0u, 2u, 0u, 1u, 0u, 3u, 0u, 1u, 0u, 2u, 0u, 1u, 0u,
    5u, 0u, 1u, 0u, 2u, 0u, 1u, 0u, 3u, 0u, 1u, 0u, 2u, 0u, 1u, 0u,
    4u, 0u, 1u, 0u, 2u, 0u, 1u, 0u, 3u, 0u, 1u, 0u, 2u, 0u, 1u, 0u,
};

static INT8U OSUnnamed[] = "?";

/* ---------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------- */
void OS_MemClr(INT8U *pdest, INT32U size)
{
    while (size-- > 0u) {
        *pdest++ = 0u;
    }
}

void OS_MemCopy(INT8U *pdest, INT8U *psrc, INT32U size)
{
    while (size-- > 0u) {
        *pdest++ = *psrc++;
    }
}

INT16U OS_StrLen(INT8U *psrc)
{
    INT16U len = 0u;

    while (*psrc++ != 0u) {
        len++;
    }
    return len;
}

INT16U OSVersion(void)
{
    return OS_VERSION;
}

/* ---------------------------------------------------------------------
 * Ready list
 * ------------------------------------------------------------------- */
void OS_RdyInsert(OS_TCB *ptcb)
{
    OSRdyGrp |= ptcb->OSTCBBitY;
    OSRdyTbl[ptcb->OSTCBY] |= ptcb->OSTCBBitX;
}

void OS_RdyRemove(OS_TCB *ptcb)
{
    OSRdyTbl[ptcb->OSTCBY] &= (OS_PRIO)~ptcb->OSTCBBitX;
    if (OSRdyTbl[ptcb->OSTCBY] == 0u) {
        OSRdyGrp &= (OS_PRIO)~ptcb->OSTCBBitY;
    }
}

/* Highest priority recorded in a two-level bitmap (group must be non-zero). */
static INT8U OS_BitmapHighest(OS_PRIO grp, OS_PRIO const *tbl)
{
    INT8U y = OSUnMapTbl[grp];

    return (INT8U)((y << 3u) + OSUnMapTbl[tbl[y]]);
}

/* Sets OSPrioHighRdy to the highest-priority ready task. */
void OS_SchedNew(void)
{
    OSPrioHighRdy = OS_BitmapHighest(OSRdyGrp, OSRdyTbl);
}

/* Picks the highest-priority ready task into OSTCBHighRdy; returns OS_TRUE
 * (and counts the switch) if it is not the current task. */
static BOOLEAN OS_SchedPick(void)
{
    OS_SchedNew();
    OSTCBHighRdy = OSTCBPrioTbl[OSPrioHighRdy];
    if (OSPrioHighRdy == OSPrioCur) {
        return OS_FALSE;
    }
    OSTCBHighRdy->OSTCBCtxSwCtr++;
    OSCtxSwCtr++;
    return OS_TRUE;
}

/* Task-level rescheduling: switches to the highest-priority ready task when
 * it is not the current one, unless called from an ISR or locked. */
void OS_Sched(void)
{
    OS_CPU_SR cpu_sr = 0u;

    OS_ENTER_CRITICAL();
    if (OSIntNesting == 0u && OSLockNesting == 0u && OS_SchedPick() == OS_TRUE) {
        OS_TASK_SW();
    }
    OS_EXIT_CRITICAL();
}

void OSSchedLock(void)
{
    OS_CPU_SR cpu_sr = 0u;

    if (OSRunning == OS_TRUE) {
        OS_ENTER_CRITICAL();
        if (OSIntNesting == 0u && OSLockNesting < 255u) {
            OSLockNesting++;
        }
        OS_EXIT_CRITICAL();
    }
}

void OSSchedUnlock(void)
{
    OS_CPU_SR cpu_sr = 0u;

    if (OSRunning == OS_TRUE) {
        OS_ENTER_CRITICAL();
        if (OSIntNesting == 0u && OSLockNesting > 0u) {
            OSLockNesting--;
            if (OSLockNesting == 0u) {
                OS_EXIT_CRITICAL();
                OS_Sched();
                return;
            }
        }
        OS_EXIT_CRITICAL();
    }
}

/* ---------------------------------------------------------------------
 * Interrupt bookkeeping
 * ------------------------------------------------------------------- */
void OSIntEnter(void)
{
    if (OSRunning == OS_TRUE && OSIntNesting < 255u) {
        OSIntNesting++;
    }
}

/* Called at the end of every ISR: when the outermost ISR made a
 * higher-priority task ready, switch to it instead of returning to the
 * interrupted task (which stays ready and resumes later). */
void OSIntExit(void)
{
    OS_CPU_SR cpu_sr = 0u;

    if (OSRunning == OS_TRUE) {
        OS_ENTER_CRITICAL();
        if (OSIntNesting > 0u) {
            OSIntNesting--;
        }
        if (OSIntNesting == 0u && OSLockNesting == 0u && OS_SchedPick() == OS_TRUE) {
            OSIntCtxSw();
        }
        OS_EXIT_CRITICAL();
    }
}

/* ---------------------------------------------------------------------
 * Event control blocks and wait lists
 * ------------------------------------------------------------------- */
void OS_EventWaitListInit(OS_EVENT *pevent)
{
    INT8U i;

    pevent->OSEventGrp = 0u;
    for (i = 0u; i < OS_EVENT_TBL_SIZE; i++) {
        pevent->OSEventTbl[i] = 0u;
    }
}

OS_EVENT *OS_EventAlloc(INT8U type)
{
    OS_CPU_SR cpu_sr = 0u;
    OS_EVENT *pevent;

    OS_ENTER_CRITICAL();
    pevent = OSEventFreeList;
    if (pevent != NULL) {
        OSEventFreeList = (OS_EVENT *)pevent->OSEventPtr;
        pevent->OSEventType = type;
        pevent->OSEventPtr = NULL;
        pevent->OSEventCnt = 0u;
        pevent->OSEventName = OSUnnamed;
        OS_EventWaitListInit(pevent);
    }
    OS_EXIT_CRITICAL();
    return pevent;
}

/* Returns an event to the free list; the caller holds the critical section. */
void OS_EventFree(OS_EVENT *pevent)
{
    pevent->OSEventType = OS_EVENT_TYPE_UNUSED;
    pevent->OSEventCnt = 0u;
    pevent->OSEventName = OSUnnamed;
    OS_EventWaitListInit(pevent);
    pevent->OSEventPtr = OSEventFreeList;
    OSEventFreeList = pevent;
}

INT8U OS_EventCheck(OS_EVENT *pevent, INT8U type)
{
    if (pevent == NULL) {
        return OS_ERR_PEVENT_NULL;
    }
    if (pevent->OSEventType != type) {
        return OS_ERR_EVENT_TYPE;
    }
    return OS_ERR_NONE;
}

/* Preconditions shared by every pend service. */
INT8U OS_EventPendCheck(OS_EVENT *pevent, INT8U type)
{
    INT8U err = OS_EventCheck(pevent, type);

    if (err != OS_ERR_NONE) {
        return err;
    }
    if (OSIntNesting > 0u) {
        return OS_ERR_PEND_ISR;
    }
    if (OSLockNesting > 0u) {
        return OS_ERR_PEND_LOCKED;
    }
    return OS_ERR_NONE;
}

INT8U OS_EventHighestPrio(OS_EVENT *pevent)
{
    return OS_BitmapHighest(pevent->OSEventGrp, pevent->OSEventTbl);
}

/* Moves the current task from the ready list to pevent's wait list. */
void OS_EventTaskWait(OS_EVENT *pevent)
{
    OS_TCB *ptcb = OSTCBCur;

    ptcb->OSTCBEventPtr = pevent;
    pevent->OSEventTbl[ptcb->OSTCBY] |= ptcb->OSTCBBitX;
    pevent->OSEventGrp |= ptcb->OSTCBBitY;
    OS_RdyRemove(ptcb);
}

void OS_EventTaskRemove(OS_TCB *ptcb, OS_EVENT *pevent)
{
    pevent->OSEventTbl[ptcb->OSTCBY] &= (OS_PRIO)~ptcb->OSTCBBitX;
    if (pevent->OSEventTbl[ptcb->OSTCBY] == 0u) {
        pevent->OSEventGrp &= (OS_PRIO)~ptcb->OSTCBBitY;
    }
}

/* Wakes the highest-priority task waiting on pevent, hands it pmsg and the
 * pend outcome, and returns its priority. The task becomes ready unless it
 * is also suspended. Caller holds the critical section and knows the wait
 * list is not empty. */
INT8U OS_EventTaskRdy(OS_EVENT *pevent, void *pmsg, INT8U msk, INT8U pend_stat)
{
    INT8U prio = OS_EventHighestPrio(pevent);
    OS_TCB *ptcb = OSTCBPrioTbl[prio];

    OS_EventTaskRemove(ptcb, pevent);
    ptcb->OSTCBDly = 0u;
    ptcb->OSTCBMsg = pmsg;
    ptcb->OSTCBStat &= (INT8U)~msk;
    ptcb->OSTCBStatPend = pend_stat;
    if ((ptcb->OSTCBStat & OS_STAT_SUSPEND) == OS_STAT_RDY) {
        OS_RdyInsert(ptcb);
    }
    return prio;
}

/* Wakes one (all == OS_FALSE) or every waiter of pevent with pend_stat;
 * returns how many were woken. Caller holds the critical section. */
INT8U OS_EventReadyAll(OS_EVENT *pevent, INT8U stat, INT8U pend_stat, BOOLEAN all)
{
    INT8U n = 0u;

    while (pevent->OSEventGrp != 0u) {
        (void)OS_EventTaskRdy(pevent, NULL, stat, pend_stat);
        n++;
        if (all == OS_FALSE) {
            break;
        }
    }
    return n;
}

/* If tasks wait on pevent, hands pmsg to the highest-priority one (to all
 * with OS_POST_OPT_BROADCAST), leaves the critical section whose saved
 * state is cpu_sr, reschedules (unless OS_POST_OPT_NO_SCHED) and returns
 * OS_TRUE. Otherwise returns OS_FALSE, still inside the critical section. */
BOOLEAN OS_EventPostWaiters(OS_EVENT *pevent, void *pmsg, INT8U stat, INT8U opt,
                            OS_CPU_SR cpu_sr)
{
    if (pevent->OSEventGrp == 0u) {
        return OS_FALSE;
    }
    do {
        (void)OS_EventTaskRdy(pevent, pmsg, stat, OS_STAT_PEND_OK);
    } while ((opt & OS_POST_OPT_BROADCAST) != 0u && pevent->OSEventGrp != 0u);
    OS_EXIT_CRITICAL();
    if ((opt & OS_POST_OPT_NO_SCHED) == 0u) {
        OS_Sched();
    }
    return OS_TRUE;
}

/* Blocks the current task on pevent for at most timeout ticks (0: forever).
 * Called inside the critical section whose saved state is cpu_sr; returns
 * outside it with the outcome (OS_ERR_NONE, OS_ERR_TIMEOUT or
 * OS_ERR_PEND_ABORT) and, in *pmsg, the message received (NULL if none). */
INT8U OS_EventPend(OS_EVENT *pevent, INT8U stat, INT32U timeout, void **pmsg, OS_CPU_SR cpu_sr)
{
    OS_TCB *ptcb = OSTCBCur;
    void *msg = NULL;
    INT8U err;

    ptcb->OSTCBStat |= stat;
    ptcb->OSTCBStatPend = OS_STAT_PEND_OK;
    ptcb->OSTCBDly = timeout;
    OS_EventTaskWait(pevent);
    OS_EXIT_CRITICAL();
    OS_Sched();
    OS_ENTER_CRITICAL();
    switch (ptcb->OSTCBStatPend) {
    case OS_STAT_PEND_OK:
        msg = ptcb->OSTCBMsg;
        err = OS_ERR_NONE;
        break;
    case OS_STAT_PEND_ABORT:
        err = OS_ERR_PEND_ABORT;
        break;
    default: /* timed out: still in the wait list */
        OS_EventTaskRemove(ptcb, pevent);
        err = OS_ERR_TIMEOUT;
        break;
    }
    ptcb->OSTCBStat = OS_STAT_RDY;
    ptcb->OSTCBStatPend = OS_STAT_PEND_OK;
    ptcb->OSTCBEventPtr = NULL;
    ptcb->OSTCBMsg = NULL;
    OS_EXIT_CRITICAL();
    if (pmsg != NULL) {
        *pmsg = msg;
    }
    return err;
}

/* Common body of OSSemPendAbort, OSMboxPendAbort and OSQPendAbort. */
INT8U OS_EventPendAbort(OS_EVENT *pevent, INT8U type, INT8U stat, INT8U opt, INT8U *perr)
{
    OS_CPU_SR cpu_sr = 0u;
    INT8U n;

    *perr = OS_EventCheck(pevent, type);
    if (*perr != OS_ERR_NONE) {
        return 0u;
    }
    OS_ENTER_CRITICAL();
    n = OS_EventReadyAll(pevent, stat, OS_STAT_PEND_ABORT,
                         (BOOLEAN)(opt == OS_PEND_OPT_BROADCAST));
    OS_EXIT_CRITICAL();
    if (n > 0u) {
        OS_Sched();
        *perr = OS_ERR_PEND_ABORT;
    }
    return n;
}

/* Common body of OSSemDel, OSMboxDel and OSQDel. Returns NULL when the
 * event was deleted, pevent otherwise. */
OS_EVENT *OS_EventDel(OS_EVENT *pevent, INT8U type, INT8U stat, INT8U opt, INT8U *perr)
{
    OS_CPU_SR cpu_sr = 0u;
    BOOLEAN waiting;

    if (OSIntNesting > 0u) {
        *perr = OS_ERR_DEL_ISR;
        return pevent;
    }
    *perr = OS_EventCheck(pevent, type);
    if (*perr != OS_ERR_NONE) {
        return pevent;
    }
    OS_ENTER_CRITICAL();
    waiting = (BOOLEAN)(pevent->OSEventGrp != 0u);
    switch (opt) {
    case OS_DEL_NO_PEND:
        if (waiting == OS_TRUE) {
            OS_EXIT_CRITICAL();
            *perr = OS_ERR_TASK_WAITING;
            return pevent;
        }
        break;
    case OS_DEL_ALWAYS:
        (void)OS_EventReadyAll(pevent, stat, OS_STAT_PEND_ABORT, OS_TRUE);
        break;
    default:
        OS_EXIT_CRITICAL();
        *perr = OS_ERR_INVALID_OPT;
        return pevent;
    }
    OS_EventFree(pevent);
    OS_EXIT_CRITICAL();
    if (waiting == OS_TRUE) {
        OS_Sched();
    }
    *perr = OS_ERR_NONE;
    return NULL;
}

/* Argument checks shared by the name get/set services. */
INT8U OS_NameArgCheck(const void *pname, BOOLEAN set)
{
    if (pname == NULL) {
        return OS_ERR_PNAME_NULL;
    }
    if (OSIntNesting > 0u) {
        return (set == OS_TRUE) ? OS_ERR_NAME_SET_ISR : OS_ERR_NAME_GET_ISR;
    }
    return OS_ERR_NONE;
}

INT8U OSEventNameGet(OS_EVENT *pevent, INT8U **pname, INT8U *perr)
{
    *perr = (pevent == NULL) ? OS_ERR_PEVENT_NULL : OS_NameArgCheck(pname, OS_FALSE);
    if (*perr != OS_ERR_NONE) {
        return 0u;
    }
    *pname = pevent->OSEventName;
    return (INT8U)OS_StrLen(*pname);
}

void OSEventNameSet(OS_EVENT *pevent, INT8U *pname, INT8U *perr)
{
    *perr = (pevent == NULL) ? OS_ERR_PEVENT_NULL : OS_NameArgCheck(pname, OS_TRUE);
    if (*perr == OS_ERR_NONE) {
        pevent->OSEventName = pname;
    }
}

/* ---------------------------------------------------------------------
 * Task control blocks
 * ------------------------------------------------------------------- */

/* Takes a free OS_TCB for a new task at prio whose initial stack pointer is
 * ptos, links it into OSTCBList and makes it ready. */
INT8U OS_TCBInit(INT8U prio, OS_STK *ptos, OS_STK *pbos, INT16U id, INT32U stk_size,
                 void *pext, INT16U opt)
{
    OS_CPU_SR cpu_sr = 0u;
    OS_TCB *ptcb;

    OS_ENTER_CRITICAL();
    ptcb = OSTCBFreeList;
    if (ptcb == NULL) {
        OS_EXIT_CRITICAL();
        return OS_ERR_TASK_NO_MORE_TCB;
    }
    OSTCBFreeList = ptcb->OSTCBNext;
    OS_EXIT_CRITICAL();

    OS_MemClr((INT8U *)ptcb, sizeof(OS_TCB));
    ptcb->OSTCBStkPtr = ptos;
    ptcb->OSTCBPrio = prio;
    ptcb->OSTCBStat = OS_STAT_RDY;
    ptcb->OSTCBStatPend = OS_STAT_PEND_OK;
    ptcb->OSTCBDly = 0u;
    ptcb->OSTCBExtPtr = pext;
    ptcb->OSTCBStkSize = stk_size;
    ptcb->OSTCBStkBottom = pbos;
    ptcb->OSTCBOpt = opt;
    ptcb->OSTCBId = id;
    ptcb->OSTCBDelReq = OS_ERR_NONE;
    ptcb->OSTCBY = (INT8U)(prio >> 3u);
    ptcb->OSTCBX = (INT8U)(prio & 7u);
    ptcb->OSTCBBitY = (OS_PRIO)(1u << ptcb->OSTCBY);
    ptcb->OSTCBBitX = (OS_PRIO)(1u << ptcb->OSTCBX);
    ptcb->OSTCBStkBase = ptos;
    ptcb->OSTCBTaskName = OSUnnamed;

    OSTCBInitHook(ptcb);
    OSTaskCreateHook(ptcb);

    OS_ENTER_CRITICAL();
    OSTCBPrioTbl[prio] = ptcb;
    ptcb->OSTCBNext = OSTCBList;
    ptcb->OSTCBPrev = NULL;
    if (OSTCBList != NULL) {
        OSTCBList->OSTCBPrev = ptcb;
    }
    OSTCBList = ptcb;
    OS_RdyInsert(ptcb);
    OSTaskCtr++;
    OS_EXIT_CRITICAL();
    return OS_ERR_NONE;
}

/* ---------------------------------------------------------------------
 * Initialisation and start
 * ------------------------------------------------------------------- */
static void OS_InitMisc(void)
{
    OSTime = 0u;
    OSIntNesting = 0u;
    OSLockNesting = 0u;
    OSTaskCtr = 0u;
    OSRunning = OS_FALSE;
    OSCtxSwCtr = 0u;
    OSIdleCtr = 0u;
    OSIdleCtrRun = 0u;
    OSIdleCtrMax = 0u;
    OSStatRdy = OS_FALSE;
    OSCPUUsage = 0u;
}

static void OS_InitRdyList(void)
{
    INT8U i;

    OSRdyGrp = 0u;
    for (i = 0u; i < OS_RDY_TBL_SIZE; i++) {
        OSRdyTbl[i] = 0u;
    }
    OSPrioCur = 0u;
    OSPrioHighRdy = 0u;
    OSTCBHighRdy = NULL;
    OSTCBCur = NULL;
}

static void OS_InitTCBList(void)
{
    INT32U i;

    OS_MemClr((INT8U *)OSTCBTbl, sizeof(OSTCBTbl));
    OS_MemClr((INT8U *)OSTCBPrioTbl, sizeof(OSTCBPrioTbl));
    for (i = 0u; i + 1u < OS_MAX_TASKS + OS_N_SYS_TASKS; i++) {
        OSTCBTbl[i].OSTCBNext = &OSTCBTbl[i + 1u];
        OSTCBTbl[i].OSTCBTaskName = OSUnnamed;
    }
    OSTCBTbl[i].OSTCBNext = NULL;
    OSTCBTbl[i].OSTCBTaskName = OSUnnamed;
    OSTCBList = NULL;
    OSTCBFreeList = &OSTCBTbl[0];
}

static void OS_InitEventList(void)
{
    INT32U i;

    OS_MemClr((INT8U *)OSEventTbl, sizeof(OSEventTbl));
    OSEventFreeList = NULL;
    for (i = OS_MAX_EVENTS; i > 0u; i--) {
        OS_EventFree(&OSEventTbl[i - 1u]);
    }
}

static void OS_CreateSysTask(OS_TASK_FN task, OS_STK *stk, INT32U size, INT8U prio, INT16U id,
                             char *name)
{
    INT8U err;

    (void)OSTaskCreateExt(task, NULL, &stk[size - 1u], prio, id, &stk[0], size, NULL,
                          OS_TASK_OPT_STK_CHK | OS_TASK_OPT_STK_CLR);
    OSTaskNameSet(prio, (INT8U *)name, &err);
}

void OSInit(void)
{
    OSInitHookBegin();
    OS_InitMisc();
    OS_InitRdyList();
    OS_InitTCBList();
    OS_InitEventList();
    OS_FlagInit();
    OS_QInit();
    OS_CreateSysTask(OS_TaskIdle, OSTaskIdleStk, OS_TASK_IDLE_STK_SIZE, OS_TASK_IDLE_PRIO,
                     OS_TASK_IDLE_ID, "uC/OS-II Idle");
    OS_CreateSysTask(OS_TaskStat, OSTaskStatStk, OS_TASK_STAT_STK_SIZE, OS_TASK_STAT_PRIO,
                     OS_TASK_STAT_ID, "uC/OS-II Stat");
    OSInitHookEnd();
}

/* Starts multitasking with the highest-priority task created so far. */
void OSStart(void)
{
    if (OSRunning == OS_FALSE) {
        OS_SchedNew();
        OSPrioCur = OSPrioHighRdy;
        OSTCBHighRdy = OSTCBPrioTbl[OSPrioHighRdy];
        OSTCBCur = OSTCBHighRdy;
        OSStartHighRdy();
    }
}

/* ---------------------------------------------------------------------
 * System tasks
 * ------------------------------------------------------------------- */

/* Runs when nothing else is ready. OSIdleCtr counts its iterations; the
 * statistics task turns that into OSCPUUsage. */
void OS_TaskIdle(void *p_arg)
{
    OS_CPU_SR cpu_sr = 0u;

    (void)p_arg;
    for (;;) {
        OS_ENTER_CRITICAL();
        OSIdleCtr++;
        OS_EXIT_CRITICAL();
        OSTaskIdleHook();
    }
}

/* Measures how often the idle task runs in 1/10 s with nothing else to do.
 * Call once from the first task, before creating the others. */
void OSStatInit(void)
{
    OS_CPU_SR cpu_sr = 0u;

    OSTimeDly(2u);
    OS_ENTER_CRITICAL();
    OSIdleCtr = 0u;
    OS_EXIT_CRITICAL();
    OSTimeDly(OS_TICKS_PER_SEC / 10u);
    OS_ENTER_CRITICAL();
    OSIdleCtrMax = OSIdleCtr;
    OSStatRdy = OS_TRUE;
    OS_EXIT_CRITICAL();
}

/* Every 1/10 s: OSCPUUsage = 100 - 100 * idle count / maximum idle count. */
void OS_TaskStat(void *p_arg)
{
    OS_CPU_SR cpu_sr = 0u;
    INT32U max;

    (void)p_arg;
    while (OSStatRdy == OS_FALSE) {
        OSTimeDly(2u * OS_TICKS_PER_SEC / 10u);
    }
    max = OSIdleCtrMax / 100u;
    for (;;) {
        OS_ENTER_CRITICAL();
        OSIdleCtrRun = OSIdleCtr;
        OSIdleCtr = 0u;
        OS_EXIT_CRITICAL();
        if (max == 0u) {
            OSCPUUsage = 0u;
        } else if (OSIdleCtrRun / max >= 100u) {
            OSCPUUsage = 0u;
        } else {
            OSCPUUsage = (INT8U)(100u - OSIdleCtrRun / max);
        }
        OSTaskStatHook();
        OSTimeDly(OS_TICKS_PER_SEC / 10u);
    }
}

/* Where a task function that returns ends up: the task deletes itself. */
void OS_TaskReturn(void)
{
    OSTaskReturnHook(OSTCBCur);
    (void)OSTaskDel(OS_PRIO_SELF);
    for (;;) {
        OSTimeDly(OS_TICKS_PER_SEC);
    }
}
