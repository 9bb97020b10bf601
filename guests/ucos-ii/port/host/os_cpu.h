/*
 * os_cpu.h - host "port" for unit tests of the portable kernel: tasks are
 * ucontext coroutines on one host thread, interrupts are simulated by
 * calling OSIntEnter/OSTimeTick/OSIntExit (HostTick), and the idle hook
 * advances time, so delays and timeouts run deterministically.
 */
#ifndef OS_CPU_H
#define OS_CPU_H

#include "../aarch64/os_cpu_types.h"

#define OS_STK_GROWTH 1u
#define OS_CRITICAL_METHOD 3u

extern OS_CPU_SR HostIntMasked; /* 1 while "interrupts" are masked */
#define OS_ENTER_CRITICAL() do { cpu_sr = HostIntMasked; HostIntMasked = 1u; } while (0)
#define OS_EXIT_CRITICAL() do { HostIntMasked = cpu_sr; } while (0)

#define OS_TASK_SW() OSCtxSw()

/* Test support */
void HostTick(void);                     /* one simulated tick interrupt */
#define HOST_SW_LOG_SIZE 1024u
extern INT8U HostSwLog[HOST_SW_LOG_SIZE][2]; /* (OSTCBCur, OSTCBHighRdy) prios at OSTaskSwHook */
extern INT32U HostSwCount;
extern INT32U HostIdleTicks;             /* ticks the idle hook may still generate */

#endif
