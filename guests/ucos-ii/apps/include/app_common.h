/* app_common.h - helpers shared by the apps. */
#ifndef APP_COMMON_H
#define APP_COMMON_H

#include "bsp.h"

#define APP_STK_SIZE 1024u /* OS_STK entries (8 KiB) per task */

/* Creates a task with its own stack from the app's pool, named name, with
 * stack checking enabled. */
void App_TaskCreate(OS_TASK_FN fn, void *arg, INT8U prio, const char *name);

/* Sleeps until OSTime reaches t (returns at once if already past). */
void App_DelayUntil(INT32U t);

/* The common main(): banner, BSP and kernel initialisation, the start task
 * (which must call BSP_TickStart and OSStatInit), OSStart. */
int App_Main(const char *app, OS_TASK_FN start, INT8U prio, const char *name);

/* Busy-waits (keeps the CPU) for us microseconds of counter time. */
void App_Spin(INT32U us);

#endif
