/*
 * apps/paper/app.c - the paper's workload: RTOS-Task1..4, released together
 * every APP_PERIOD_MS; Task1 does APP_TASK1_WORK_US of busy work per
 * period and each further task twice the work of the previous one
 * (1x, 2x, 4x, 8x: 15 ms per 50 ms period, 30% load). The amount of work is
 * a fixed iteration count, calibrated once at start-up against the
 * counter. A low-priority reporter prints one line per task every second,
 * so console output never lengthens the tasks' runs.
 *
 * An overload to find, switched at run time (`hv-trace set App_Overload N`):
 * while N > 0, every N-th job of Task4 does a whole period's work more, so
 * it completes after its next release: an overrun, which the app counts.
 *
 * A fault to survive (`hv-trace set App_Fault ADDR`): while ADDR is not 0,
 * Task1's next job reads from it; an address the RTOS does not map is a
 * data abort of its own, which the BSP reports before powering off.
 *
 * A guest that lies to the tracer (`hv-trace set App_Lie N`): while N is
 * not 0, Task1's jobs call App_LiePoint (probe it) with OSTCBCur pointing
 * where a tracer must not follow: 1 NULL, 2 an unmapped address, 3 the GIC
 * distributor (mapped by the RTOS, not RAM of its VM), 4 a TCB whose name
 * pointer is unmapped, 5 a TCB whose name pointer points at itself (no
 * name, no NUL where one should be). Interrupts stay off meanwhile, so the
 * RTOS itself never sees the lie.
 */
#include "app_common.h"
#include "memmap.h"

#define APP_PERIOD_MS 50u
#define APP_TASK1_WORK_US 1000u
#define APP_NTASKS 4u
#define APP_TASK1_PRIO 10u
#define APP_REPORT_PRIO 20u

typedef struct {
    INT32U jobs;
    INT32U overruns;
    INT64U last_ticks; /* counter ticks of the last job, preemption included */
} App_TaskStats;

static App_TaskStats App_Stats[APP_NTASKS];
/* The overload knob (0: off) and the overruns of all tasks. */
volatile INT32U App_Overload;
volatile INT32U App_Overruns;
volatile INT64U App_Fault;
volatile INT64U App_Lie;
static OS_TCB App_FakeTcb;
static INT32U App_ItersPerMs;
static volatile INT32U App_Sink;
static const char *const App_Names[APP_NTASKS] = {
    "RTOS-Task1", "RTOS-Task2", "RTOS-Task3", "RTOS-Task4",
};

/* The busy work: a linear congruential generator, iters steps. */
static void __attribute__((noinline)) App_Work(INT32U iters)
{
    INT32U x = App_Sink;

    while (iters-- > 0u) {
        x = x * 1103515245u + 12345u;
        __asm__ volatile("" : "+r"(x));
    }
    App_Sink = x;
}

/* Where a tracer looks while OSTCBCur lies (probe it). */
void __attribute__((noinline)) App_LiePoint(void)
{
    __asm__ volatile("" : : : "memory");
}

static void App_LieOnce(INT64U mode)
{
    OS_CPU_SR cpu_sr = 0u;
    OS_TCB *saved;
    OS_TCB *lie;

    switch (mode) {
    case 1u: lie = (OS_TCB *)0; break;
    case 2u: lie = (OS_TCB *)0x1000u; break;
    case 3u: lie = (OS_TCB *)(KVA_OFFSET + GICD_PA); break;
    case 4u:
        App_FakeTcb = *OSTCBCur;
        App_FakeTcb.OSTCBTaskName = (INT8U *)0x1000u;
        lie = &App_FakeTcb;
        break;
    case 5u:
        App_FakeTcb = *OSTCBCur;
        App_FakeTcb.OSTCBTaskName = (INT8U *)&App_FakeTcb.OSTCBTaskName;
        lie = &App_FakeTcb;
        break;
    default: return;
    }
    OS_ENTER_CRITICAL();
    saved = OSTCBCur;
    OSTCBCur = lie;
    App_LiePoint();
    OSTCBCur = saved;
    OS_EXIT_CRITICAL();
}

static void App_Calibrate(void)
{
    INT64U freq = BSP_CounterFreq();
    INT64U t0, dt;
    INT32U iters = 1000u;

    App_Work(iters); /* warm up */
    for (;;) {
        t0 = BSP_CounterGet();
        App_Work(iters);
        dt = BSP_CounterGet() - t0;
        if (dt >= freq / 50u || iters >= 0x40000000u) { /* at least 20 ms */
            break;
        }
        iters *= 2u;
    }
    for (int i = 0; i < 3; i++) { /* keep the fastest: emulation is noisy */
        t0 = BSP_CounterGet();
        App_Work(iters);
        t0 = BSP_CounterGet() - t0;
        dt = (t0 < dt) ? t0 : dt;
    }
    App_ItersPerMs = (INT32U)((INT64U)iters * (freq / 1000u) / (dt ? dt : 1u));
}

static void App_PeriodicTask(void *p_arg)
{
    INT32U idx = (INT32U)(INT64U)p_arg;
    INT32U period = APP_PERIOD_MS * OS_TICKS_PER_SEC / 1000u;
    INT32U iters = (App_ItersPerMs * APP_TASK1_WORK_US / 1000u) << idx;
    INT32U next = (OSTimeGet() / period + 1u) * period; /* common release times */
    App_TaskStats *st = &App_Stats[idx];

    for (;;) {
        INT64U t0;
        INT32U overload;

        App_DelayUntil(next);
        t0 = BSP_CounterGet();
        if (idx == 0u && App_Fault != 0u) {
            App_Sink += *(volatile INT32U *)App_Fault;
        }
        if (idx == 0u) {
            App_LieOnce(App_Lie);
        }
        App_Work(iters);
        overload = App_Overload; /* read once: it may change meanwhile */
        if (idx == APP_NTASKS - 1u && overload != 0u && st->jobs % overload == 0u) {
            App_Work(App_ItersPerMs * APP_PERIOD_MS);
        }
        st->last_ticks = BSP_CounterGet() - t0;
        st->jobs++;
        next += period;
        if ((INT32S)(next - OSTimeGet()) <= 0) {
            st->overruns++;
            App_Overruns++;
            next = (OSTimeGet() / period + 1u) * period;
        }
    }
}

static void App_StartTask(void *p_arg)
{
    INT64U freq = BSP_CounterFreq();
    INT32U i;

    (void)p_arg;
    BSP_TickStart();
    OSStatInit();
    App_Calibrate();
    BSP_Printf("paper app: %u work iterations per ms, %u ticks/s, counter %u Hz\n",
               App_ItersPerMs, (INT32U)OS_TICKS_PER_SEC, (INT32U)freq);
    for (i = 0u; i < APP_NTASKS; i++) {
        App_TaskCreate(App_PeriodicTask, (void *)(INT64U)i, (INT8U)(APP_TASK1_PRIO + i),
                       App_Names[i]);
    }
    for (;;) {
        OSTimeDly(OS_TICKS_PER_SEC);
        for (i = 0u; i < APP_NTASKS; i++) {
            BSP_Printf("[%6u ms] %s prio %u: %u jobs, last job %u us, %u overruns\n",
                       OSTimeGet() * 1000u / OS_TICKS_PER_SEC, App_Names[i],
                       APP_TASK1_PRIO + i, App_Stats[i].jobs,
                       (INT32U)(App_Stats[i].last_ticks * 1000000u / freq),
                       App_Stats[i].overruns);
        }
        BSP_Printf("[%6u ms] CPU usage %u%%, %u context switches\n",
                   OSTimeGet() * 1000u / OS_TICKS_PER_SEC, (INT32U)OSCPUUsage, OSCtxSwCtr);
    }
}

int main(void)
{
    return App_Main("paper", App_StartTask, APP_REPORT_PRIO, "RTOS-Report");
}
