/*
 * test_kernel.c - host unit tests of the portable kernel (kernel/) on the
 * host test port (port/host): ready list, highest-priority lookup, delays,
 * semaphores, mutexes (priority ceiling), mailboxes, queues, event flags,
 * task services and their error codes.
 *
 * Each test runs in its own forked process (the kernel is global state and
 * OSStart never returns); a test passes when it calls Done() or returns.
 * Usage: test_kernel [name...]   (no names: all tests)
 */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "ucos_ii.h"

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)
#define CHECK_EQ(a, b)                                                                 \
    do {                                                                               \
        long long a_ = (long long)(a), b_ = (long long)(b);                            \
        if (a_ != b_) {                                                                \
            fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", __FILE__,      \
                    __LINE__, #a, a_, #b, b_);                                         \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

static OS_STK Stk[OS_MAX_TASKS + 1u][OS_CPU_HOST_STK_SIZE];
static INT32U NStk;
static char Order[64];
static INT32U NOrder;
static INT8U err;

static void Spawn(OS_TASK_FN fn, INT8U prio)
{
    OS_STK *s = Stk[NStk++];

    CHECK_EQ(OSTaskCreate(fn, NULL, &s[OS_CPU_HOST_STK_SIZE - 1u], prio), OS_ERR_NONE);
}

static void Mark(char c)
{
    Order[NOrder++] = c;
    Order[NOrder] = '\0';
}

static void Done(void)
{
    exit(0);
}

/* Sleeps until everything else has had its turn (time only advances when
 * all tasks are blocked). */
static void Park(void)
{
    for (;;) {
        OSTimeDly(1000u);
    }
}

/* ------------------------------------------------------------ static tests */
static void test_unmap_table(void)
{
    INT32U v, bit;

    for (v = 1u; v < 256u; v++) {
        for (bit = 0u; (v & (1u << bit)) == 0u; bit++) {
        }
        CHECK_EQ(OSUnMapTbl[v], bit);
    }
    CHECK_EQ(OSUnMapTbl[0], 0);
}

static void test_error_codes(void)
{
    CHECK_EQ(OS_ERR_NONE, 0);
    CHECK_EQ(OS_ERR_EVENT_TYPE, 1);
    CHECK_EQ(OS_ERR_PEND_ISR, 2);
    CHECK_EQ(OS_ERR_PEVENT_NULL, 4);
    CHECK_EQ(OS_ERR_TIMEOUT, 10);
    CHECK_EQ(OS_ERR_PEND_LOCKED, 13);
    CHECK_EQ(OS_ERR_PEND_ABORT, 14);
    CHECK_EQ(OS_ERR_MBOX_FULL, 20);
    CHECK_EQ(OS_ERR_Q_FULL, 30);
    CHECK_EQ(OS_ERR_Q_EMPTY, 31);
    CHECK_EQ(OS_ERR_PRIO_EXIST, 40);
    CHECK_EQ(OS_ERR_PRIO_INVALID, 42);
    CHECK_EQ(OS_ERR_SEM_OVF, 51);
    CHECK_EQ(OS_ERR_TASK_DEL_IDLE, 62);
    CHECK_EQ(OS_ERR_TASK_NO_MORE_TCB, 66);
    CHECK_EQ(OS_ERR_TASK_NOT_EXIST, 67);
    CHECK_EQ(OS_ERR_TASK_NOT_SUSPENDED, 68);
    CHECK_EQ(OS_ERR_TASK_WAITING, 73);
    CHECK_EQ(OS_ERR_TIME_ZERO_DLY, 84);
    CHECK_EQ(OS_ERR_NOT_MUTEX_OWNER, 100);
    CHECK_EQ(OS_ERR_FLAG_NOT_RDY, 112);
    CHECK_EQ(OS_ERR_PCP_LOWER, 120);
    CHECK_EQ(offsetof(OS_TCB, OSTCBStkPtr), 0);
}

static void Nop(void *p)
{
    (void)p;
    Park();
}

static void test_ready_list(void)
{
    INT32U i;

    OSInit();
    CHECK_EQ(OSTaskCtr, 2);                  /* idle + statistics */
    CHECK_EQ(OSRdyGrp, 1u << 7);             /* 62 and 63 */
    CHECK_EQ(OSRdyTbl[7], (1u << 6) | (1u << 7));
    Spawn(Nop, 40);
    Spawn(Nop, 12);
    Spawn(Nop, 5);
    CHECK_EQ(OSRdyGrp, (1u << 0) | (1u << 1) | (1u << 5) | (1u << 7));
    CHECK_EQ(OSRdyTbl[1], 1u << 4);
    CHECK_EQ(OSRdyTbl[5], 1u << 0);
    OS_SchedNew();
    CHECK_EQ(OSPrioHighRdy, 5);
    OS_RdyRemove(OSTCBPrioTbl[5]);
    CHECK_EQ(OSRdyGrp & 1u, 0);
    OS_SchedNew();
    CHECK_EQ(OSPrioHighRdy, 12);
    OS_RdyRemove(OSTCBPrioTbl[12]);
    OS_RdyRemove(OSTCBPrioTbl[40]);
    OS_SchedNew();
    CHECK_EQ(OSPrioHighRdy, OS_TASK_STAT_PRIO);
    OS_RdyInsert(OSTCBPrioTbl[40]);
    OS_SchedNew();
    CHECK_EQ(OSPrioHighRdy, 40);
    /* OSTCBList holds the newest task first and ends with idle. */
    CHECK_EQ(OSTCBList->OSTCBPrio, 5);
    CHECK_EQ(OSTCBPrioTbl[OS_TASK_IDLE_PRIO]->OSTCBNext, NULL);
    CHECK_EQ(OSTCBPrioTbl[12]->OSTCBBitX, 1u << 4);
    CHECK_EQ(OSTCBPrioTbl[12]->OSTCBY, 1);
    /* Creation errors */
    CHECK_EQ(OSTaskCreate(Nop, NULL, &Stk[NStk][OS_CPU_HOST_STK_SIZE - 1u], 12), OS_ERR_PRIO_EXIST);
    CHECK_EQ(OSTaskCreate(Nop, NULL, &Stk[NStk][OS_CPU_HOST_STK_SIZE - 1u], 64), OS_ERR_PRIO_INVALID);
    for (i = 0u; i < OS_MAX_TASKS - 3u; i++) {
        Spawn(Nop, (INT8U)(20u + i));
    }
    CHECK_EQ(OSTaskCreate(Nop, NULL, &Stk[NStk][OS_CPU_HOST_STK_SIZE - 1u], 30),
             OS_ERR_TASK_NO_MORE_TCB);
    CHECK_EQ(OSTCBPrioTbl[30], NULL);        /* the reserved slot was released */
}

/* ------------------------------------------------- scheduling and hooks */
static OS_EVENT *Sem;

static void SemHigh(void *p)
{
    (void)p;
    Mark('H');
    OSSemPend(Sem, 0u, &err);
    CHECK_EQ(err, OS_ERR_NONE);
    Mark('h');
    CHECK_EQ(strcmp(Order, "HLh"), 0);
    /* switch hook saw (outgoing, incoming) = start, 10->20, 20->10 */
    CHECK_EQ(HostSwCount, 3);
    CHECK_EQ(HostSwLog[0][1], 10);
    CHECK_EQ(HostSwLog[1][0], 10);
    CHECK_EQ(HostSwLog[1][1], 20);
    CHECK_EQ(HostSwLog[2][0], 20);
    CHECK_EQ(HostSwLog[2][1], 10);
    CHECK_EQ(OSCtxSwCtr, 2);
    CHECK_EQ(OSTCBCur->OSTCBCtxSwCtr, 1);
    Done();
}

static void SemLow(void *p)
{
    (void)p;
    Mark('L');
    CHECK_EQ(OSSemPost(Sem), OS_ERR_NONE); /* preempted here by SemHigh */
    CHECK(0);
}

static void test_preemption_and_switch_hook(void)
{
    OSInit();
    Sem = OSSemCreate(0u);
    Spawn(SemLow, 20);
    Spawn(SemHigh, 10);
    OSStart();
}

static void DelayA(void *p)
{
    INT32U t0;

    (void)p;
    t0 = OSTimeGet();
    OSTimeDly(5u);
    CHECK_EQ(OSTimeGet() - t0, 5);
    Mark('A');
    CHECK_EQ(strcmp(Order, "BbA"), 0);
    CHECK_EQ(OSTimeDlyHMSM(0u, 0u, 0u, 0u), OS_ERR_TIME_ZERO_DLY);
    CHECK_EQ(OSTimeDlyHMSM(0u, 60u, 0u, 0u), OS_ERR_TIME_INVALID_MINUTES);
    CHECK_EQ(OSTimeDlyHMSM(0u, 0u, 60u, 0u), OS_ERR_TIME_INVALID_SECONDS);
    CHECK_EQ(OSTimeDlyHMSM(0u, 0u, 0u, 1000u), OS_ERR_TIME_INVALID_MS);
    t0 = OSTimeGet();
    CHECK_EQ(OSTimeDlyHMSM(0u, 0u, 1u, 50u), OS_ERR_NONE); /* 105 ticks at 100 Hz */
    CHECK_EQ(OSTimeGet() - t0, 105);
    CHECK_EQ(OSTimeDlyResume(11), OS_ERR_TIME_NOT_DLY); /* B ended its delay */
    CHECK_EQ(OSTimeDlyResume(30), OS_ERR_TASK_NOT_EXIST);
    Done();
}

static void DelayB(void *p)
{
    (void)p;
    Mark('B');
    OSTimeDly(2u);
    Mark('b');
    OSTaskSuspend(OS_PRIO_SELF);
}

static void test_delays(void)
{
    OSInit();
    Spawn(DelayA, 10);
    Spawn(DelayB, 11);
    OSStart();
}

/* ------------------------------------------------------------- semaphores */
static void SemErrors(void *p)
{
    OS_EVENT *mbox = OSMboxCreate(NULL);
    INT32U t0;

    (void)p;
    OSSemPend(NULL, 0u, &err);
    CHECK_EQ(err, OS_ERR_PEVENT_NULL);
    OSSemPend(mbox, 0u, &err);
    CHECK_EQ(err, OS_ERR_EVENT_TYPE);
    t0 = OSTimeGet();
    OSSemPend(Sem, 3u, &err);
    CHECK_EQ(err, OS_ERR_TIMEOUT);
    CHECK_EQ(OSTimeGet() - t0, 3);
    CHECK_EQ(Sem->OSEventGrp, 0); /* removed from the wait list */
    CHECK_EQ(OSSemAccept(Sem), 0);
    CHECK_EQ(OSSemPost(Sem), OS_ERR_NONE);
    CHECK_EQ(OSSemPost(Sem), OS_ERR_NONE);
    CHECK_EQ(OSSemAccept(Sem), 2);
    OSSemPend(Sem, 0u, &err); /* count 1 left: no wait */
    CHECK_EQ(err, OS_ERR_NONE);
    OSSemSet(Sem, 65535u, &err);
    CHECK_EQ(OSSemPost(Sem), OS_ERR_SEM_OVF);
    OSSemSet(Sem, 0u, &err);
    OSSchedLock();
    OSSemPend(Sem, 0u, &err);
    CHECK_EQ(err, OS_ERR_PEND_LOCKED);
    OSSchedUnlock();
    /* Deleting with a waiter: refused, then forced (the waiter is aborted). */
    Mark('1');
    OSSemPend(Sem, 0u, &err); /* SemWaiter below runs, then deletes */
    CHECK_EQ(err, OS_ERR_PEND_ABORT);
    Mark('4');
    CHECK_EQ(strcmp(Order, "1234"), 0);
    Done();
}

static void SemDeleter(void *p)
{
    OS_SEM_DATA d;

    (void)p;
    OSTimeDly(10u);
    Mark('2');
    CHECK_EQ(OSSemQuery(Sem, &d), OS_ERR_NONE);
    CHECK_EQ(d.OSEventGrp, 1u << 1); /* prio 10 waits */
    CHECK(OSSemDel(Sem, OS_DEL_NO_PEND, &err) == Sem);
    CHECK_EQ(err, OS_ERR_TASK_WAITING);
    CHECK(OSSemDel(Sem, 9u, &err) == Sem);
    CHECK_EQ(err, OS_ERR_INVALID_OPT);
    Mark('3');
    CHECK(OSSemDel(Sem, OS_DEL_ALWAYS, &err) == NULL);
    CHECK(0);
}

static void test_semaphore(void)
{
    OSInit();
    Sem = OSSemCreate(0u);
    Spawn(SemErrors, 10);
    Spawn(SemDeleter, 20);
    OSStart();
}

static void AbortWaiter(void *p)
{
    (void)p;
    OSSemPend(Sem, 0u, &err);
    CHECK_EQ(err, OS_ERR_PEND_ABORT);
    Mark((char)('a' + OSTCBCur->OSTCBPrio - 10));
    Park();
}

static void Aborter(void *p)
{
    (void)p;
    CHECK_EQ(OSSemPendAbort(Sem, OS_PEND_OPT_NONE, &err), 1);
    CHECK_EQ(err, OS_ERR_PEND_ABORT);
    CHECK_EQ(strcmp(Order, "a"), 0);   /* the highest-priority waiter only */
    CHECK_EQ(OSSemPendAbort(Sem, OS_PEND_OPT_BROADCAST, &err), 2);
    CHECK_EQ(strcmp(Order, "abc"), 0);
    CHECK_EQ(OSSemPendAbort(Sem, OS_PEND_OPT_NONE, &err), 0);
    CHECK_EQ(err, OS_ERR_NONE);
    Done();
}

static void test_semaphore_pend_abort(void)
{
    OSInit();
    Sem = OSSemCreate(0u);
    Spawn(AbortWaiter, 10);
    Spawn(AbortWaiter, 11);
    Spawn(AbortWaiter, 12);
    Spawn(Aborter, 20);
    OSStart();
}

/* ---------------------------------------------------------------- mutexes */
static OS_EVENT *Mtx;

static void MutexLow(void *p)
{
    OS_MUTEX_DATA d;

    (void)p;
    OSMutexPend(Mtx, 0u, &err);
    CHECK_EQ(err, OS_ERR_NONE);
    Mark('L');
    OSTimeDly(3u); /* MutexHigh pends meanwhile and raises us */
    CHECK_EQ(OSTCBCur->OSTCBPrio, 5);
    CHECK(OSTCBPrioTbl[5] == OSTCBCur);
    CHECK(OSTCBPrioTbl[20] == OS_TCB_RESERVED);
    CHECK_EQ(OSMutexQuery(Mtx, &d), OS_ERR_NONE);
    CHECK_EQ(d.OSOwnerPrio, 20);
    CHECK_EQ(d.OSMutexPIP, 5);
    CHECK_EQ(d.OSValue, OS_FALSE);
    Mark('l');
    CHECK_EQ(OSMutexPost(Mtx), OS_ERR_NONE); /* back to 20; MutexHigh runs */
    CHECK_EQ(OSTCBCur->OSTCBPrio, 20);
    Mark('r');
    CHECK_EQ(strcmp(Order, "LHlhr"), 0);
    Done();
}

static void MutexHigh(void *p)
{
    OS_MUTEX_DATA d;

    (void)p;
    OSTimeDly(1u);
    CHECK_EQ(OSMutexPost(Mtx), OS_ERR_NOT_MUTEX_OWNER);
    CHECK_EQ(OSMutexAccept(Mtx, &err), OS_FALSE);
    Mark('H');
    OSMutexPend(Mtx, 0u, &err);
    CHECK_EQ(err, OS_ERR_NONE);
    Mark('h');
    CHECK_EQ(OSTCBPrioTbl[20]->OSTCBPrio, 20);
    CHECK_EQ(OSMutexQuery(Mtx, &d), OS_ERR_NONE);
    CHECK_EQ(d.OSOwnerPrio, 10);
    CHECK_EQ(OSMutexPost(Mtx), OS_ERR_NONE);
    CHECK_EQ(OSMutexQuery(Mtx, &d), OS_ERR_NONE);
    CHECK_EQ(d.OSValue, OS_TRUE);
    OSTaskSuspend(OS_PRIO_SELF);
}

static void test_mutex_priority_ceiling(void)
{
    OS_EVENT *m2;

    OSInit();
    Mtx = OSMutexCreate(5u, &err);
    CHECK_EQ(err, OS_ERR_NONE);
    CHECK(OSTCBPrioTbl[5] == OS_TCB_RESERVED);
    CHECK(OSMutexCreate(5u, &err) == NULL);
    CHECK_EQ(err, OS_ERR_PRIO_EXIST);
    CHECK(OSMutexCreate(OS_LOWEST_PRIO, &err) == NULL);
    CHECK_EQ(err, OS_ERR_PRIO_INVALID);
    CHECK_EQ(OSTaskCreate(Nop, NULL, &Stk[0][OS_CPU_HOST_STK_SIZE - 1u], 5), OS_ERR_PRIO_EXIST);
    m2 = OSMutexCreate(OS_PRIO_MUTEX_CEIL_DIS, &err);
    CHECK_EQ(err, OS_ERR_NONE);
    CHECK(OSMutexDel(m2, OS_DEL_NO_PEND, &err) == NULL);
    Spawn(MutexHigh, 10);
    Spawn(MutexLow, 20);
    OSStart();
}

static void MutexAboveCeiling(void *p)
{
    (void)p;
    OSMutexPend(Mtx, 0u, &err); /* prio 3 is above the ceiling 5 */
    CHECK_EQ(err, OS_ERR_PCP_LOWER);
    CHECK_EQ(OSMutexPost(Mtx), OS_ERR_NONE);
    CHECK_EQ(OSMutexAccept(Mtx, &err), OS_TRUE);
    CHECK_EQ(err, OS_ERR_PCP_LOWER);
    Done();
}

static void test_mutex_pcp_lower(void)
{
    OSInit();
    Mtx = OSMutexCreate(5u, &err);
    Spawn(MutexAboveCeiling, 3);
    OSStart();
}

/* -------------------------------------------------------------- mailboxes */
static OS_EVENT *Mbox;
static int MsgA = 1, MsgB = 2;

static void MboxWaiter(void *p)
{
    void *m;

    (void)p;
    m = OSMboxPend(Mbox, 0u, &err);
    CHECK_EQ(err, OS_ERR_NONE);
    CHECK(m == &MsgB);
    Mark((char)('a' + OSTCBCur->OSTCBPrio - 10));
    Park();
}

static void MboxMain(void *p)
{
    OS_MBOX_DATA d;
    void *m;

    (void)p;
    CHECK_EQ(OSMboxPost(Mbox, &MsgA), OS_ERR_NONE);
    CHECK_EQ(OSMboxPost(Mbox, &MsgB), OS_ERR_MBOX_FULL);
    CHECK_EQ(OSMboxPost(Mbox, NULL), OS_ERR_POST_NULL_PTR);
    CHECK_EQ(OSMboxQuery(Mbox, &d), OS_ERR_NONE);
    CHECK(d.OSMsg == &MsgA);
    m = OSMboxPend(Mbox, 0u, &err);
    CHECK(m == &MsgA && err == OS_ERR_NONE);
    CHECK(OSMboxAccept(Mbox) == NULL);
    m = OSMboxPend(Mbox, 2u, &err);
    CHECK(m == NULL && err == OS_ERR_TIMEOUT);
    Spawn(MboxWaiter, 10);
    Spawn(MboxWaiter, 11);
    CHECK_EQ(OSMboxPostOpt(Mbox, &MsgB, OS_POST_OPT_BROADCAST), OS_ERR_NONE);
    CHECK_EQ(strcmp(Order, "ab"), 0);
    CHECK(OSMboxAccept(Mbox) == NULL); /* delivered, not stored */
    Done();
}

static void test_mailbox(void)
{
    OSInit();
    Mbox = OSMboxCreate(NULL);
    Spawn(MboxMain, 20);
    OSStart();
}

/* ----------------------------------------------------------------- queues */
static OS_EVENT *Q;
static void *QStorage[3];
static int QMsg[4];

static void QWaiter(void *p)
{
    void *m;

    (void)p;
    m = OSQPend(Q, 0u, &err);
    CHECK(m == &QMsg[3] && err == OS_ERR_NONE);
    Mark('w');
    Park();
}

static void QMain(void *p)
{
    OS_Q_DATA d;
    INT32U i;

    (void)p;
    CHECK_EQ(OSQPost(Q, &QMsg[1]), OS_ERR_NONE);
    CHECK_EQ(OSQPost(Q, &QMsg[2]), OS_ERR_NONE);
    CHECK_EQ(OSQPostFront(Q, &QMsg[0]), OS_ERR_NONE);
    CHECK_EQ(OSQPost(Q, &QMsg[3]), OS_ERR_Q_FULL);
    CHECK_EQ(OSQQuery(Q, &d), OS_ERR_NONE);
    CHECK_EQ(d.OSNMsgs, 3);
    CHECK_EQ(d.OSQSize, 3);
    CHECK(d.OSMsg == &QMsg[0]);
    for (i = 0u; i < 3u; i++) {
        CHECK(OSQPend(Q, 0u, &err) == &QMsg[i]);
        CHECK_EQ(err, OS_ERR_NONE);
    }
    CHECK(OSQAccept(Q, &err) == NULL);
    CHECK_EQ(err, OS_ERR_Q_EMPTY);
    CHECK(OSQPend(Q, 4u, &err) == NULL);
    CHECK_EQ(err, OS_ERR_TIMEOUT);
    CHECK_EQ(OSQPost(Q, &QMsg[1]), OS_ERR_NONE);
    CHECK_EQ(OSQFlush(Q), OS_ERR_NONE);
    CHECK(OSQAccept(Q, &err) == NULL);
    Spawn(QWaiter, 10);
    CHECK_EQ(OSQPost(Q, &QMsg[3]), OS_ERR_NONE); /* straight to the waiter */
    CHECK_EQ(strcmp(Order, "w"), 0);
    CHECK(OSQDel(Q, OS_DEL_NO_PEND, &err) == NULL);
    CHECK_EQ(err, OS_ERR_NONE);
    CHECK(OSQCreate(QStorage, 3u) != NULL); /* the OS_Q went back to the pool */
    CHECK(OSQCreate(QStorage, 3u) != NULL);
    CHECK(OSQCreate(QStorage, 3u) == NULL); /* OS_MAX_QS = 2 */
    Done();
}

static void test_queue(void)
{
    OSInit();
    Q = OSQCreate(QStorage, 3u);
    CHECK(Q != NULL);
    Spawn(QMain, 20);
    OSStart();
}

/* ------------------------------------------------------------ event flags */
static OS_FLAG_GRP *Flags;

static void FlagWaiter(void *p)
{
    OS_FLAGS f;

    (void)p;
    f = OSFlagPend(Flags, 0x3u, OS_FLAG_WAIT_SET_ALL | OS_FLAG_CONSUME, 0u, &err);
    CHECK_EQ(err, OS_ERR_NONE);
    CHECK_EQ(f, 0x3);
    CHECK_EQ(OSFlagPendGetFlagsRdy(), 0x3);
    Mark('W');
    CHECK_EQ(OSFlagQuery(Flags, &err), 0x4); /* 0x3 consumed, 0x4 stays */
    f = OSFlagPend(Flags, 0x18u, OS_FLAG_WAIT_SET_ANY, 2u, &err);
    CHECK_EQ(err, OS_ERR_TIMEOUT);
    CHECK_EQ(f, 0);
    CHECK(Flags->OSFlagWaitList == NULL);
    CHECK_EQ(OSFlagAccept(Flags, 0x1u, OS_FLAG_WAIT_SET_ANY, &err), 0);
    CHECK_EQ(err, OS_ERR_FLAG_NOT_RDY);
    CHECK_EQ(OSFlagAccept(Flags, 0x3u, OS_FLAG_WAIT_CLR_ALL, &err), 0x3);
    CHECK_EQ(err, OS_ERR_NONE);
    CHECK_EQ(OSFlagAccept(Flags, 0x4u, OS_FLAG_WAIT_SET_ALL | OS_FLAG_CONSUME, &err), 0x4);
    CHECK_EQ(OSFlagQuery(Flags, &err), 0);
    (void)OSFlagPend(Flags, 0x1u, 7u, 0u, &err);
    CHECK_EQ(err, OS_ERR_FLAG_WAIT_TYPE);
    (void)OSFlagPost(Flags, 0x1u, 5u, &err);
    CHECK_EQ(err, OS_ERR_FLAG_INVALID_OPT);
    (void)OSFlagPost(NULL, 0x1u, OS_FLAG_SET, &err);
    CHECK_EQ(err, OS_ERR_FLAG_INVALID_PGRP);
    Done();
}

static void FlagPoster(void *p)
{
    (void)p;
    (void)OSFlagPost(Flags, 0x1u, OS_FLAG_SET, &err);
    Mark('1'); /* not enough for SET_ALL */
    (void)OSFlagPost(Flags, 0x6u, OS_FLAG_SET, &err);
    CHECK_EQ(strcmp(Order, "1W"), 0); /* FlagWaiter preempted us at once */
    Park();
}

static void test_event_flags(void)
{
    OSInit();
    Flags = OSFlagCreate(0u, &err);
    CHECK_EQ(err, OS_ERR_NONE);
    Spawn(FlagWaiter, 10);
    Spawn(FlagPoster, 20);
    OSStart();
}

/* --------------------------------------------------- suspend, resume, del */
static INT32U Runs;

static void Sleeper(void *p)
{
    (void)p;
    for (;;) {
        OSTimeDly(3u);
        Runs++;
    }
}

static void Controller(void *p)
{
    (void)p;
    CHECK_EQ(OSTaskSuspend(10), OS_ERR_NONE);
    OSTimeDly(5u); /* the sleeper's delay runs out while suspended */
    CHECK_EQ(Runs, 0);
    CHECK_EQ(OSTaskResume(10), OS_ERR_NONE); /* runs at once */
    CHECK_EQ(Runs, 1);
    CHECK_EQ(OSTaskResume(10), OS_ERR_TASK_NOT_SUSPENDED);
    CHECK_EQ(OSTaskResume(30), OS_ERR_TASK_RESUME_PRIO);
    CHECK_EQ(OSTaskSuspend(OS_TASK_IDLE_PRIO), OS_ERR_TASK_SUSPEND_IDLE);
    CHECK_EQ(OSTaskSuspend(30), OS_ERR_TASK_SUSPEND_PRIO);
    CHECK_EQ(OSTaskDel(OS_TASK_IDLE_PRIO), OS_ERR_TASK_DEL_IDLE);
    CHECK_EQ(OSTaskDelReq(10), OS_ERR_NONE);
    CHECK_EQ(OSTaskDel(10), OS_ERR_NONE);
    CHECK_EQ(OSTaskDel(10), OS_ERR_TASK_NOT_EXIST);
    CHECK_EQ(OSTaskCtr, 3);
    Done();
}

static void test_suspend_resume_delete(void)
{
    OSInit();
    Spawn(Sleeper, 10);
    Spawn(Controller, 20);
    OSStart();
}

static void PendForever(void *p)
{
    (void)p;
    OSSemPend(Sem, 0u, &err);
    CHECK(0);
}

static void DeleteWaiter(void *p)
{
    INT8U *name;

    (void)p;
    CHECK_EQ(Sem->OSEventGrp, 1u << 1);
    CHECK_EQ(OSTaskNameGet(10, &name, &err), 4);
    CHECK_EQ(strcmp((char *)name, "Pend"), 0);
    CHECK_EQ(OSTaskDel(10), OS_ERR_NONE);
    CHECK_EQ(Sem->OSEventGrp, 0); /* gone from the wait list */
    CHECK_EQ(OSTaskNameGet(10, &name, &err), 0);
    CHECK_EQ(err, OS_ERR_TASK_NOT_EXIST);
    CHECK_EQ(OSTaskChangePrio(OS_PRIO_SELF, 7), OS_ERR_NONE);
    CHECK_EQ(OSTCBCur->OSTCBPrio, 7);
    CHECK(OSTCBPrioTbl[20] == NULL);
    CHECK_EQ(OSTaskChangePrio(7, OS_TASK_STAT_PRIO), OS_ERR_PRIO_EXIST);
    CHECK_EQ(OSTaskChangePrio(7, OS_LOWEST_PRIO), OS_ERR_PRIO_INVALID);
    Done();
}

static void test_delete_pending_task(void)
{
    OSInit();
    Sem = OSSemCreate(0u);
    Spawn(PendForever, 10);
    OSTaskNameSet(10, (INT8U *)"Pend", &err);
    CHECK_EQ(err, OS_ERR_NONE);
    Spawn(DeleteWaiter, 20);
    OSStart();
}

/* ----------------------------------------------------------------- runner */
typedef struct {
    const char *name;
    void (*fn)(void);
} Test;

static const Test Tests[] = {
    {"unmap_table", test_unmap_table},
    {"error_codes", test_error_codes},
    {"ready_list", test_ready_list},
    {"preemption_and_switch_hook", test_preemption_and_switch_hook},
    {"delays", test_delays},
    {"semaphore", test_semaphore},
    {"semaphore_pend_abort", test_semaphore_pend_abort},
    {"mutex_priority_ceiling", test_mutex_priority_ceiling},
    {"mutex_pcp_lower", test_mutex_pcp_lower},
    {"mailbox", test_mailbox},
    {"queue", test_queue},
    {"event_flags", test_event_flags},
    {"suspend_resume_delete", test_suspend_resume_delete},
    {"delete_pending_task", test_delete_pending_task},
};

static int Selected(const char *name, int argc, char **argv)
{
    int i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], name) == 0) {
            return 1;
        }
    }
    return argc <= 1;
}

int main(int argc, char **argv)
{
    unsigned i, failed = 0u, run = 0u;

    for (i = 0u; i < sizeof(Tests) / sizeof(Tests[0]); i++) {
        pid_t pid;
        int status;

        if (!Selected(Tests[i].name, argc, argv)) {
            continue;
        }
        run++;
        fflush(stdout);
        pid = fork();
        if (pid == 0) {
            alarm(10u);
            Tests[i].fn();
            exit(0);
        }
        waitpid(pid, &status, 0);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            printf("test %s ... ok\n", Tests[i].name);
        } else {
            failed++;
            if (WIFSIGNALED(status)) {
                printf("test %s ... FAILED (signal %d)\n", Tests[i].name, WTERMSIG(status));
            } else {
                printf("test %s ... FAILED (exit %d)\n", Tests[i].name, WEXITSTATUS(status));
            }
        }
    }
    printf("%u tests, %u failed\n", run, failed);
    return (failed == 0u && run > 0u) ? 0 : 1;
}
