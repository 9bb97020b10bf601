/*
 * apps/sync/app.c - a workload for richer traces: a producer feeds a
 * consumer through a mailbox and a queue, two tasks ping-pong on
 * semaphores, a low- and a high-priority task share a mutex (the low one is
 * raised to the mutex's ceiling when the high one waits), and a task waits
 * on event flags posted by the producer and the consumer. A reporter
 * prints one summary line per second.
 */
#include "app_common.h"

#define PRIO_CEILING 5u
#define PRIO_FLAGS 8u
#define PRIO_MUTEX_HIGH 9u
#define PRIO_CONSUMER 11u
#define PRIO_PRODUCER 12u
#define PRIO_PING 13u
#define PRIO_PONG 14u
#define PRIO_MUTEX_LOW 30u
#define PRIO_REPORT 40u

#define FLAG_PRODUCED 0x1u
#define FLAG_CONSUMED 0x2u

static OS_EVENT *Mbox, *Queue, *SemPing, *SemPong, *Mutex, *SemLowHolds;
static OS_FLAG_GRP *Flags;
static void *QueueStorage[8];

static volatile INT32U Produced, Consumed, Pongs, FlagRounds, HighHolds, LowHolds, LowRaised;

static void Check(INT8U err, const char *what)
{
    if (err != OS_ERR_NONE) {
        BSP_Printf("sync app: %s failed: error %u\n", what, (INT32U)err);
    }
}

static void Producer(void *p_arg)
{
    static INT32U items[2];
    INT32U n = 0u;
    INT8U err;

    (void)p_arg;
    for (;;) {
        OSTimeDly(100u * OS_TICKS_PER_SEC / 1000u);
        n++;
        items[n & 1u] = n;
        Check(OSMboxPost(Mbox, &items[n & 1u]), "OSMboxPost");
        Check(OSQPost(Queue, (void *)(INT64U)(2u * n)), "OSQPost");
        Check(OSQPost(Queue, (void *)(INT64U)(2u * n + 1u)), "OSQPost");
        Check(OSSemPost(SemPing), "OSSemPost");
        Produced++;
        App_Spin(300u);
        (void)OSFlagPost(Flags, FLAG_PRODUCED, OS_FLAG_SET, &err);
    }
}

static void Consumer(void *p_arg)
{
    INT8U err;

    (void)p_arg;
    for (;;) {
        INT32U *item = OSMboxPend(Mbox, 0u, &err);
        Check(err, "OSMboxPend");
        (void)OSQPend(Queue, 0u, &err);
        Check(err, "OSQPend");
        (void)OSQPend(Queue, 0u, &err);
        Check(err, "OSQPend");
        if (item != NULL) {
            Consumed++;
        }
        App_Spin(200u);
        (void)OSFlagPost(Flags, FLAG_CONSUMED, OS_FLAG_SET, &err);
    }
}

static void Ping(void *p_arg)
{
    INT8U err;

    (void)p_arg;
    for (;;) {
        OSSemPend(SemPing, 0u, &err);
        Check(err, "OSSemPend(ping)");
        App_Spin(100u);
        Check(OSSemPost(SemPong), "OSSemPost(pong)");
    }
}

static void Pong(void *p_arg)
{
    INT8U err;

    (void)p_arg;
    for (;;) {
        OSSemPend(SemPong, 0u, &err);
        Check(err, "OSSemPend(pong)");
        Pongs++;
    }
}

static void FlagWaiter(void *p_arg)
{
    INT8U err;

    (void)p_arg;
    for (;;) {
        (void)OSFlagPend(Flags, FLAG_PRODUCED | FLAG_CONSUMED,
                         OS_FLAG_WAIT_SET_ALL | OS_FLAG_CONSUME, 0u, &err);
        Check(err, "OSFlagPend");
        FlagRounds++;
    }
}

/* Waits until MutexLow holds the mutex, then wants it too: MutexLow is
 * raised to the ceiling until it lets go. */
static void MutexHigh(void *p_arg)
{
    INT8U err;

    (void)p_arg;
    for (;;) {
        OSSemPend(SemLowHolds, 0u, &err);
        Check(err, "OSSemPend(low holds)");
        OSMutexPend(Mutex, 0u, &err);
        Check(err, "OSMutexPend(high)");
        App_Spin(500u);
        HighHolds++;
        Check(OSMutexPost(Mutex), "OSMutexPost(high)");
    }
}

static void MutexLow(void *p_arg)
{
    INT8U err;

    (void)p_arg;
    for (;;) {
        OSTimeDly(60u * OS_TICKS_PER_SEC / 1000u);
        OSMutexPend(Mutex, 0u, &err);
        Check(err, "OSMutexPend(low)");
        LowHolds++;
        if (LowHolds % 3u == 0u) {
            Check(OSSemPost(SemLowHolds), "OSSemPost(low holds)"); /* MutexHigh runs */
        }
        App_Spin(2000u);
        if (OSTCBCur->OSTCBPrio == PRIO_CEILING) {
            LowRaised++;
        }
        Check(OSMutexPost(Mutex), "OSMutexPost(low)");
    }
}

static void StartTask(void *p_arg)
{
    INT8U err;

    (void)p_arg;
    BSP_TickStart();
    OSStatInit();
    Mbox = OSMboxCreate(NULL);
    Queue = OSQCreate(QueueStorage, 8u);
    SemPing = OSSemCreate(0u);
    SemPong = OSSemCreate(0u);
    SemLowHolds = OSSemCreate(0u);
    Mutex = OSMutexCreate(PRIO_CEILING, &err);
    Check(err, "OSMutexCreate");
    Flags = OSFlagCreate(0u, &err);
    Check(err, "OSFlagCreate");
    OSEventNameSet(Mbox, (INT8U *)"SYNC-Mbox", &err);
    OSEventNameSet(Queue, (INT8U *)"SYNC-Queue", &err);
    OSEventNameSet(Mutex, (INT8U *)"SYNC-Mutex", &err);
    OSFlagNameSet(Flags, (INT8U *)"SYNC-Flags", &err);
    App_TaskCreate(FlagWaiter, NULL, PRIO_FLAGS, "SYNC-FlagWaiter");
    App_TaskCreate(MutexHigh, NULL, PRIO_MUTEX_HIGH, "SYNC-MutexHigh");
    App_TaskCreate(Consumer, NULL, PRIO_CONSUMER, "SYNC-Consumer");
    App_TaskCreate(Producer, NULL, PRIO_PRODUCER, "SYNC-Producer");
    App_TaskCreate(Ping, NULL, PRIO_PING, "SYNC-Ping");
    App_TaskCreate(Pong, NULL, PRIO_PONG, "SYNC-Pong");
    App_TaskCreate(MutexLow, NULL, PRIO_MUTEX_LOW, "SYNC-MutexLow");
    for (;;) {
        OSTimeDly(OS_TICKS_PER_SEC);
        BSP_Printf("[%6u ms] sync: produced %u consumed %u pongs %u flag rounds %u | mutex "
                   "high %u low %u (low raised to ceiling %u times) | CPU %u%%\n",
                   OSTimeGet() * 1000u / OS_TICKS_PER_SEC, Produced, Consumed, Pongs,
                   FlagRounds, HighHolds, LowHolds, LowRaised, (INT32U)OSCPUUsage);
    }
}

int main(void)
{
    return App_Main("sync", StartTask, PRIO_REPORT, "SYNC-Report");
}
