/* app_common.c - helpers shared by the apps. */
#include "app_common.h"

#define APP_MAX_TASKS 12u

static OS_STK App_Stacks[APP_MAX_TASKS][APP_STK_SIZE] __attribute__((aligned(16)));
static INT32U App_StacksUsed;

void App_TaskCreate(OS_TASK_FN fn, void *arg, INT8U prio, const char *name)
{
    OS_STK *stk;
    INT8U err;

    if (App_StacksUsed >= APP_MAX_TASKS) {
        BSP_Printf("app: out of task stacks for %s\n", name);
        return;
    }
    stk = App_Stacks[App_StacksUsed++];
    err = OSTaskCreateExt(fn, arg, &stk[APP_STK_SIZE - 1u], prio, prio, stk, APP_STK_SIZE,
                          NULL, OS_TASK_OPT_STK_CHK | OS_TASK_OPT_STK_CLR);
    if (err == OS_ERR_NONE) {
        OSTaskNameSet(prio, (INT8U *)name, &err);
    }
    if (err != OS_ERR_NONE) {
        BSP_Printf("app: creating %s failed: error %u\n", name, (INT32U)err);
    }
}

void App_DelayUntil(INT32U t)
{
    INT32U now = OSTimeGet();

    if ((INT32S)(t - now) > 0) {
        OSTimeDly(t - now);
    }
}

void App_Spin(INT32U us)
{
    INT64U end = BSP_CounterGet() + BSP_CounterFreq() * us / 1000000u;

    while (BSP_CounterGet() < end) {
    }
}

int App_Main(const char *app, OS_TASK_FN start, INT8U prio, const char *name)
{
    BSP_Printf("uC/OS-II-compatible kernel (hv-trace), API V%u.%02u, app: %s\n",
               OSVersion() / 10000u, OSVersion() / 100u % 100u, app);
    BSP_Init();
    OSInit();
    App_TaskCreate(start, NULL, prio, name);
    OSStart();
    return 0;
}
