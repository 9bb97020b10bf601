/* os_cfg.h - kernel configuration shared by the apps (uC/OS-II names). */
#ifndef OS_CFG_H
#define OS_CFG_H

#define OS_LOWEST_PRIO 63u       /* idle task priority; at most 63            */
#define OS_MAX_TASKS 16u         /* application tasks (plus idle and stat)    */
#define OS_MAX_EVENTS 16u        /* semaphores + mutexes + mailboxes + queues */
#define OS_MAX_FLAGS 4u          /* event flag groups                         */
#define OS_MAX_QS 4u             /* message queues                            */
#define OS_FLAGS_NBITS 16u       /* width of OS_FLAGS                         */
#define OS_TASK_REG_TBL_SIZE 1u  /* per-task registers (OSTaskRegGet/Set)     */
#define OS_TASK_IDLE_STK_SIZE 512u /* in OS_STK (8-byte) entries              */
#define OS_TASK_STAT_STK_SIZE 512u
#ifndef OS_TICKS_PER_SEC
#define OS_TICKS_PER_SEC 1000u
#endif

#endif
