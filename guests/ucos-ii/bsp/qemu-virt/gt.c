/*
 * gt.c - ground-truth context-switch log (GROUND_TRUTH=1 builds only; the
 * tracer never needs it). Tests stop QEMU and read OSGtLog from memory.
 * Layout: see guests/ucos-ii/README.md. Entries are written until the log
 * is full; count keeps counting every switch.
 */
#include "bsp.h"

#define OS_GT_MAGIC 0x47544C47u /* "GTLG" */
#ifndef OS_GT_CAPACITY
#define OS_GT_CAPACITY 32768u
#endif

typedef struct {
    INT64U cntvct;   /* CNTVCT_EL0 at the switch                    */
    INT8U prev_prio; /* OSPrioCur: outgoing task (0xFF at start)    */
    INT8U next_prio; /* OSPrioHighRdy: incoming task                */
    INT8U kind;      /* 0 OSCtxSw, 1 OSIntCtxSw, 2 OSStartHighRdy   */
    INT8U pad;
    INT32U ostime;   /* OSTime at the switch                        */
} OS_GT_ENTRY;

typedef struct {
    INT32U magic;
    INT32U entry_size;
    INT32U capacity;
    volatile INT32U count; /* switches seen (may exceed capacity) */
    INT64U cntfrq;
    INT32U ticks_per_sec;
    INT32U reserved;
    OS_GT_ENTRY entries[OS_GT_CAPACITY];
} OS_GT_LOG;

OS_GT_LOG OSGtLog;

/* Called from the port's switch paths with IRQs masked, before
 * OSTaskSwHook. */
void OS_CPU_GtLog(INT32U kind)
{
    INT32U n = OSGtLog.count;

    if (OSGtLog.magic != OS_GT_MAGIC) {
        OSGtLog.entry_size = sizeof(OS_GT_ENTRY);
        OSGtLog.capacity = OS_GT_CAPACITY;
        OSGtLog.cntfrq = BSP_CounterFreq();
        OSGtLog.ticks_per_sec = OS_TICKS_PER_SEC;
        OSGtLog.magic = OS_GT_MAGIC;
    }
    if (n < OS_GT_CAPACITY) {
        OS_GT_ENTRY *e = &OSGtLog.entries[n];

        e->cntvct = BSP_CounterGet();
        e->prev_prio = (kind == 2u) ? 0xFFu : OSPrioCur;
        e->next_prio = OSPrioHighRdy;
        e->kind = (INT8U)kind;
        e->pad = 0u;
        e->ostime = OSTime;
    }
    OSGtLog.count = n + 1u;
}
