/* os_cfg.h - configuration for the host unit tests (big host stacks). */
#ifndef OS_CFG_H
#define OS_CFG_H

#define OS_LOWEST_PRIO 63u
#define OS_MAX_TASKS 8u
#define OS_MAX_EVENTS 8u
#define OS_MAX_FLAGS 2u
#define OS_MAX_QS 2u
#define OS_FLAGS_NBITS 16u
#define OS_TASK_REG_TBL_SIZE 1u
#define OS_TICKS_PER_SEC 100u
#define OS_CPU_HOST_STK_SIZE 16384u /* every task's stack, in OS_STK entries */
#define OS_TASK_IDLE_STK_SIZE OS_CPU_HOST_STK_SIZE
#define OS_TASK_STAT_STK_SIZE OS_CPU_HOST_STK_SIZE

#endif
