/*
 * ucos_ii.h - public interface of hv-trace's uC/OS-II-compatible kernel.
 *
 * This is an independent implementation of the uC/OS-II V2.9x application
 * programming interface, written from its published description: the same
 * type, structure-member, global-variable, function and error-code names
 * and values, so that application code and tools that know uC/OS-II (such
 * as hv-trace's tracer, which reads OS_TCB through DWARF) work unchanged.
 *
 * The port supplies os_cpu.h (types, critical sections, OS_TASK_SW) and the
 * application supplies os_cfg.h (sizes and tick rate).
 */
#ifndef UCOS_II_H
#define UCOS_II_H

#include "os_cfg.h"
#include "os_cpu.h"

#define OS_VERSION 29200u /* API level implemented: V2.92.00 */

#ifndef NULL
#define NULL ((void *)0)
#endif
#define OS_FALSE 0u
#define OS_TRUE 1u

/* ---------------------------------------------------------------------
 * Derived configuration
 * ------------------------------------------------------------------- */
#define OS_TASK_IDLE_PRIO OS_LOWEST_PRIO
#define OS_TASK_STAT_PRIO (OS_LOWEST_PRIO - 1u)
#define OS_N_SYS_TASKS 2u
#define OS_PRIO_SELF 0xFFu
#define OS_EVENT_TBL_SIZE ((OS_LOWEST_PRIO) / 8u + 1u)
#define OS_RDY_TBL_SIZE ((OS_LOWEST_PRIO) / 8u + 1u)
#define OS_TASK_IDLE_ID 65535u
#define OS_TASK_STAT_ID 65534u
#define OS_TCB_RESERVED ((OS_TCB *)1)

#if OS_LOWEST_PRIO > 63u
#error "this kernel supports at most 64 priorities (OS_LOWEST_PRIO <= 63)"
#endif
typedef INT8U OS_PRIO;

#if OS_FLAGS_NBITS == 8u
typedef INT8U OS_FLAGS;
#elif OS_FLAGS_NBITS == 16u
typedef INT16U OS_FLAGS;
#else
typedef INT32U OS_FLAGS;
#endif

/* Task status (OSTCBStat) */
#define OS_STAT_RDY 0x00u
#define OS_STAT_SEM 0x01u
#define OS_STAT_MBOX 0x02u
#define OS_STAT_Q 0x04u
#define OS_STAT_SUSPEND 0x08u
#define OS_STAT_MUTEX 0x10u
#define OS_STAT_FLAG 0x20u
#define OS_STAT_MULTI 0x80u
#define OS_STAT_PEND_ANY (OS_STAT_SEM | OS_STAT_MBOX | OS_STAT_Q | OS_STAT_MUTEX | OS_STAT_FLAG)

/* Pend outcome (OSTCBStatPend) */
#define OS_STAT_PEND_OK 0u
#define OS_STAT_PEND_TO 1u
#define OS_STAT_PEND_ABORT 2u

/* Event control block types */
#define OS_EVENT_TYPE_UNUSED 0u
#define OS_EVENT_TYPE_MBOX 1u
#define OS_EVENT_TYPE_Q 2u
#define OS_EVENT_TYPE_SEM 3u
#define OS_EVENT_TYPE_MUTEX 4u
#define OS_EVENT_TYPE_FLAG 5u

/* Event flag wait types and options */
#define OS_FLAG_WAIT_CLR_ALL 0u
#define OS_FLAG_WAIT_CLR_AND 0u
#define OS_FLAG_WAIT_CLR_ANY 1u
#define OS_FLAG_WAIT_CLR_OR 1u
#define OS_FLAG_WAIT_SET_ALL 2u
#define OS_FLAG_WAIT_SET_AND 2u
#define OS_FLAG_WAIT_SET_ANY 3u
#define OS_FLAG_WAIT_SET_OR 3u
#define OS_FLAG_CONSUME 0x80u
#define OS_FLAG_CLR 0u
#define OS_FLAG_SET 1u

/* Delete, pend and post options */
#define OS_DEL_NO_PEND 0u
#define OS_DEL_ALWAYS 1u
#define OS_PEND_OPT_NONE 0u
#define OS_PEND_OPT_BROADCAST 1u
#define OS_POST_OPT_NONE 0x00u
#define OS_POST_OPT_BROADCAST 0x01u
#define OS_POST_OPT_FRONT 0x02u
#define OS_POST_OPT_NO_SCHED 0x04u

/* Task options (OSTaskCreateExt) */
#define OS_TASK_OPT_NONE 0x0000u
#define OS_TASK_OPT_STK_CHK 0x0001u
#define OS_TASK_OPT_STK_CLR 0x0002u
#define OS_TASK_OPT_SAVE_FP 0x0004u

/* Mutex encoding in OSEventCnt: ceiling priority in the upper byte, owner
 * priority (or OS_MUTEX_AVAILABLE) in the lower byte. */
#define OS_MUTEX_KEEP_LOWER_8 0x00FFu
#define OS_MUTEX_KEEP_UPPER_8 0xFF00u
#define OS_MUTEX_AVAILABLE 0x00FFu
#define OS_PRIO_MUTEX_CEIL_DIS 0xFFu

/* ---------------------------------------------------------------------
 * Error codes (numeric values as published for uC/OS-II V2.9x)
 * ------------------------------------------------------------------- */
#define OS_ERR_NONE 0u
#define OS_ERR_EVENT_TYPE 1u
#define OS_ERR_PEND_ISR 2u
#define OS_ERR_POST_NULL_PTR 3u
#define OS_ERR_PEVENT_NULL 4u
#define OS_ERR_POST_ISR 5u
#define OS_ERR_QUERY_ISR 6u
#define OS_ERR_INVALID_OPT 7u
#define OS_ERR_ID_INVALID 8u
#define OS_ERR_PDATA_NULL 9u
#define OS_ERR_TIMEOUT 10u
#define OS_ERR_EVENT_NAME_TOO_LONG 11u
#define OS_ERR_PNAME_NULL 12u
#define OS_ERR_PEND_LOCKED 13u
#define OS_ERR_PEND_ABORT 14u
#define OS_ERR_DEL_ISR 15u
#define OS_ERR_CREATE_ISR 16u
#define OS_ERR_NAME_GET_ISR 17u
#define OS_ERR_NAME_SET_ISR 18u
#define OS_ERR_ILLEGAL_CREATE_RUN_TIME 19u
#define OS_ERR_MBOX_FULL 20u
#define OS_ERR_Q_FULL 30u
#define OS_ERR_Q_EMPTY 31u
#define OS_ERR_PRIO_EXIST 40u
#define OS_ERR_PRIO 41u
#define OS_ERR_PRIO_INVALID 42u
#define OS_ERR_SCHED_LOCKED 50u
#define OS_ERR_SEM_OVF 51u
#define OS_ERR_TASK_CREATE_ISR 60u
#define OS_ERR_TASK_DEL 61u
#define OS_ERR_TASK_DEL_IDLE 62u
#define OS_ERR_TASK_DEL_REQ 63u
#define OS_ERR_TASK_DEL_ISR 64u
#define OS_ERR_TASK_NAME_TOO_LONG 65u
#define OS_ERR_TASK_NO_MORE_TCB 66u
#define OS_ERR_TASK_NOT_EXIST 67u
#define OS_ERR_TASK_NOT_SUSPENDED 68u
#define OS_ERR_TASK_OPT 69u
#define OS_ERR_TASK_RESUME_PRIO 70u
#define OS_ERR_TASK_SUSPEND_IDLE 71u
#define OS_ERR_TASK_SUSPEND_PRIO 72u
#define OS_ERR_TASK_WAITING 73u
#define OS_ERR_TIME_NOT_DLY 80u
#define OS_ERR_TIME_INVALID_MINUTES 81u
#define OS_ERR_TIME_INVALID_SECONDS 82u
#define OS_ERR_TIME_INVALID_MS 83u
#define OS_ERR_TIME_ZERO_DLY 84u
#define OS_ERR_TIME_DLY_ISR 85u
#define OS_ERR_NOT_MUTEX_OWNER 100u
#define OS_ERR_FLAG_INVALID_PGRP 110u
#define OS_ERR_FLAG_WAIT_TYPE 111u
#define OS_ERR_FLAG_NOT_RDY 112u
#define OS_ERR_FLAG_INVALID_OPT 113u
#define OS_ERR_FLAG_GRP_DEPLETED 114u
#define OS_ERR_FLAG_NAME_TOO_LONG 115u
#define OS_ERR_PCP_LOWER 120u
#define OS_ERR_PIP_LOWER OS_ERR_PCP_LOWER /* older name of the same code */

/* ---------------------------------------------------------------------
 * Kernel objects
 * ------------------------------------------------------------------- */
typedef struct os_event {
    INT8U OSEventType;                   /* OS_EVENT_TYPE_xxx                     */
    void *OSEventPtr;                    /* free-list link, message, queue, owner */
    INT16U OSEventCnt;                   /* semaphore count / mutex encoding      */
    OS_PRIO OSEventGrp;                  /* waiting-task group bitmap             */
    OS_PRIO OSEventTbl[OS_EVENT_TBL_SIZE]; /* waiting-task bitmap                 */
    INT8U *OSEventName;
} OS_EVENT;

typedef struct os_flag_grp {
    INT8U OSFlagType;      /* OS_EVENT_TYPE_FLAG or UNUSED             */
    void *OSFlagWaitList;  /* first OS_FLAG_NODE waiting (or free link) */
    OS_FLAGS OSFlagFlags;  /* current flags                           */
    INT8U *OSFlagName;
} OS_FLAG_GRP;

typedef struct os_flag_node {
    void *OSFlagNodeNext;
    void *OSFlagNodePrev;
    void *OSFlagNodeTCB;     /* waiting task's OS_TCB */
    void *OSFlagNodeFlagGrp; /* group waited on       */
    OS_FLAGS OSFlagNodeFlags;
    INT8U OSFlagNodeWaitType;
} OS_FLAG_NODE;

typedef struct os_q {
    struct os_q *OSQPtr; /* free-list link */
    void **OSQStart;
    void **OSQEnd;
    void **OSQIn;
    void **OSQOut;
    INT16U OSQSize;
    INT16U OSQEntries;
} OS_Q;

typedef struct os_sem_data {
    INT16U OSCnt;
    OS_PRIO OSEventTbl[OS_EVENT_TBL_SIZE];
    OS_PRIO OSEventGrp;
} OS_SEM_DATA;

typedef struct os_mutex_data {
    OS_PRIO OSEventTbl[OS_EVENT_TBL_SIZE];
    OS_PRIO OSEventGrp;
    BOOLEAN OSValue;   /* OS_TRUE if available */
    INT8U OSOwnerPrio; /* 0xFF if no owner     */
    INT8U OSMutexPIP;  /* ceiling priority     */
} OS_MUTEX_DATA;

typedef struct os_mbox_data {
    void *OSMsg;
    OS_PRIO OSEventTbl[OS_EVENT_TBL_SIZE];
    OS_PRIO OSEventGrp;
} OS_MBOX_DATA;

typedef struct os_q_data {
    void *OSMsg;
    INT16U OSNMsgs;
    INT16U OSQSize;
    OS_PRIO OSEventTbl[OS_EVENT_TBL_SIZE];
    OS_PRIO OSEventGrp;
} OS_Q_DATA;

typedef struct os_stk_data {
    INT32U OSFree; /* bytes */
    INT32U OSUsed; /* bytes */
} OS_STK_DATA;

/* Task control block: member names, types and order as in uC/OS-II V2.9x
 * with every optional member enabled except multi-pend. */
typedef struct os_tcb {
    OS_STK *OSTCBStkPtr;      /* saved stack pointer: MUST stay first */
    void *OSTCBExtPtr;        /* user extension                       */
    OS_STK *OSTCBStkBottom;   /* lowest valid stack address           */
    INT32U OSTCBStkSize;      /* in OS_STK units                      */
    INT16U OSTCBOpt;          /* OS_TASK_OPT_xxx                      */
    INT16U OSTCBId;
    struct os_tcb *OSTCBNext; /* doubly linked list of created tasks  */
    struct os_tcb *OSTCBPrev;
    OS_EVENT *OSTCBEventPtr;  /* event waited on                      */
    void *OSTCBMsg;           /* message received                     */
    OS_FLAG_NODE *OSTCBFlagNode;
    OS_FLAGS OSTCBFlagsRdy;   /* flags that made the task ready       */
    INT32U OSTCBDly;          /* ticks left to wait (0: none)         */
    INT8U OSTCBStat;          /* OS_STAT_xxx                          */
    INT8U OSTCBStatPend;      /* OS_STAT_PEND_xxx                     */
    INT8U OSTCBPrio;
    INT8U OSTCBX;             /* prio & 7                             */
    INT8U OSTCBY;             /* prio >> 3                            */
    OS_PRIO OSTCBBitX;        /* 1 << OSTCBX                          */
    OS_PRIO OSTCBBitY;        /* 1 << OSTCBY                          */
    INT8U OSTCBDelReq;
    INT32U OSTCBCtxSwCtr;     /* times switched in                    */
    INT32U OSTCBCyclesTot;
    INT32U OSTCBCyclesStart;
    OS_STK *OSTCBStkBase;
    INT32U OSTCBStkUsed;
    INT8U *OSTCBTaskName;
    INT32U OSTCBRegTbl[OS_TASK_REG_TBL_SIZE];
} OS_TCB;

typedef void (*OS_TASK_FN)(void *p_arg);

/* ---------------------------------------------------------------------
 * Global state
 * ------------------------------------------------------------------- */
#ifdef OS_GLOBALS
#define OS_EXT
#else
#define OS_EXT extern
#endif

OS_EXT INT32U OSCtxSwCtr;
OS_EXT OS_EVENT *OSEventFreeList;
OS_EXT OS_EVENT OSEventTbl[OS_MAX_EVENTS];
OS_EXT OS_FLAG_GRP OSFlagTbl[OS_MAX_FLAGS];
OS_EXT OS_FLAG_GRP *OSFlagFreeList;
OS_EXT INT8U OSCPUUsage;
OS_EXT INT32U OSIdleCtrMax;
OS_EXT INT32U OSIdleCtrRun;
OS_EXT BOOLEAN OSStatRdy;
OS_EXT OS_STK OSTaskStatStk[OS_TASK_STAT_STK_SIZE];
OS_EXT INT8U OSIntNesting;
OS_EXT INT8U OSLockNesting;
OS_EXT INT8U OSPrioCur;
OS_EXT INT8U OSPrioHighRdy;
OS_EXT OS_PRIO OSRdyGrp;
OS_EXT OS_PRIO OSRdyTbl[OS_RDY_TBL_SIZE];
OS_EXT BOOLEAN OSRunning;
OS_EXT INT8U OSTaskCtr;
OS_EXT volatile INT32U OSIdleCtr;
OS_EXT OS_STK OSTaskIdleStk[OS_TASK_IDLE_STK_SIZE];
OS_EXT OS_TCB *OSTCBCur;
OS_EXT OS_TCB *OSTCBFreeList;
OS_EXT OS_TCB *OSTCBHighRdy;
OS_EXT OS_TCB *OSTCBList;
OS_EXT OS_TCB *OSTCBPrioTbl[OS_LOWEST_PRIO + 1u];
OS_EXT OS_TCB OSTCBTbl[OS_MAX_TASKS + OS_N_SYS_TASKS];
OS_EXT INT8U OSTickStepState;
OS_EXT OS_Q *OSQFreeList;
OS_EXT OS_Q OSQTbl[OS_MAX_QS];
OS_EXT volatile INT32U OSTime;

extern INT8U const OSUnMapTbl[256];

/* ---------------------------------------------------------------------
 * Application services
 * ------------------------------------------------------------------- */
void OSInit(void);
void OSStart(void);
void OSIntEnter(void);
void OSIntExit(void);
void OSSchedLock(void);
void OSSchedUnlock(void);
void OSStatInit(void);
INT16U OSVersion(void);
INT8U OSEventNameGet(OS_EVENT *pevent, INT8U **pname, INT8U *perr);
void OSEventNameSet(OS_EVENT *pevent, INT8U *pname, INT8U *perr);

INT8U OSTaskCreate(OS_TASK_FN task, void *p_arg, OS_STK *ptos, INT8U prio);
INT8U OSTaskCreateExt(OS_TASK_FN task, void *p_arg, OS_STK *ptos, INT8U prio, INT16U id,
                      OS_STK *pbos, INT32U stk_size, void *pext, INT16U opt);
INT8U OSTaskDel(INT8U prio);
INT8U OSTaskDelReq(INT8U prio);
INT8U OSTaskChangePrio(INT8U oldprio, INT8U newprio);
INT8U OSTaskSuspend(INT8U prio);
INT8U OSTaskResume(INT8U prio);
INT8U OSTaskQuery(INT8U prio, OS_TCB *p_task_data);
INT8U OSTaskStkChk(INT8U prio, OS_STK_DATA *p_stk_data);
INT8U OSTaskNameGet(INT8U prio, INT8U **pname, INT8U *perr);
void OSTaskNameSet(INT8U prio, INT8U *pname, INT8U *perr);
INT32U OSTaskRegGet(INT8U prio, INT8U id, INT8U *perr);
void OSTaskRegSet(INT8U prio, INT8U id, INT32U value, INT8U *perr);

void OSTimeDly(INT32U ticks);
INT8U OSTimeDlyHMSM(INT8U hours, INT8U minutes, INT8U seconds, INT16U ms);
INT8U OSTimeDlyResume(INT8U prio);
INT32U OSTimeGet(void);
void OSTimeSet(INT32U ticks);
void OSTimeTick(void);

OS_EVENT *OSSemCreate(INT16U cnt);
OS_EVENT *OSSemDel(OS_EVENT *pevent, INT8U opt, INT8U *perr);
void OSSemPend(OS_EVENT *pevent, INT32U timeout, INT8U *perr);
INT8U OSSemPendAbort(OS_EVENT *pevent, INT8U opt, INT8U *perr);
INT8U OSSemPost(OS_EVENT *pevent);
INT16U OSSemAccept(OS_EVENT *pevent);
INT8U OSSemQuery(OS_EVENT *pevent, OS_SEM_DATA *p_sem_data);
void OSSemSet(OS_EVENT *pevent, INT16U cnt, INT8U *perr);

OS_EVENT *OSMutexCreate(INT8U prio, INT8U *perr);
OS_EVENT *OSMutexDel(OS_EVENT *pevent, INT8U opt, INT8U *perr);
void OSMutexPend(OS_EVENT *pevent, INT32U timeout, INT8U *perr);
INT8U OSMutexPost(OS_EVENT *pevent);
BOOLEAN OSMutexAccept(OS_EVENT *pevent, INT8U *perr);
INT8U OSMutexQuery(OS_EVENT *pevent, OS_MUTEX_DATA *p_mutex_data);

OS_EVENT *OSMboxCreate(void *pmsg);
OS_EVENT *OSMboxDel(OS_EVENT *pevent, INT8U opt, INT8U *perr);
void *OSMboxPend(OS_EVENT *pevent, INT32U timeout, INT8U *perr);
INT8U OSMboxPendAbort(OS_EVENT *pevent, INT8U opt, INT8U *perr);
INT8U OSMboxPost(OS_EVENT *pevent, void *pmsg);
INT8U OSMboxPostOpt(OS_EVENT *pevent, void *pmsg, INT8U opt);
void *OSMboxAccept(OS_EVENT *pevent);
INT8U OSMboxQuery(OS_EVENT *pevent, OS_MBOX_DATA *p_mbox_data);

OS_EVENT *OSQCreate(void **start, INT16U size);
OS_EVENT *OSQDel(OS_EVENT *pevent, INT8U opt, INT8U *perr);
void *OSQPend(OS_EVENT *pevent, INT32U timeout, INT8U *perr);
INT8U OSQPendAbort(OS_EVENT *pevent, INT8U opt, INT8U *perr);
INT8U OSQPost(OS_EVENT *pevent, void *pmsg);
INT8U OSQPostFront(OS_EVENT *pevent, void *pmsg);
INT8U OSQPostOpt(OS_EVENT *pevent, void *pmsg, INT8U opt);
void *OSQAccept(OS_EVENT *pevent, INT8U *perr);
INT8U OSQFlush(OS_EVENT *pevent);
INT8U OSQQuery(OS_EVENT *pevent, OS_Q_DATA *p_q_data);

OS_FLAG_GRP *OSFlagCreate(OS_FLAGS flags, INT8U *perr);
OS_FLAG_GRP *OSFlagDel(OS_FLAG_GRP *pgrp, INT8U opt, INT8U *perr);
OS_FLAGS OSFlagPend(OS_FLAG_GRP *pgrp, OS_FLAGS flags, INT8U wait_type, INT32U timeout,
                    INT8U *perr);
OS_FLAGS OSFlagPost(OS_FLAG_GRP *pgrp, OS_FLAGS flags, INT8U opt, INT8U *perr);
OS_FLAGS OSFlagAccept(OS_FLAG_GRP *pgrp, OS_FLAGS flags, INT8U wait_type, INT8U *perr);
OS_FLAGS OSFlagQuery(OS_FLAG_GRP *pgrp, INT8U *perr);
OS_FLAGS OSFlagPendGetFlagsRdy(void);
INT8U OSFlagNameGet(OS_FLAG_GRP *pgrp, INT8U **pname, INT8U *perr);
void OSFlagNameSet(OS_FLAG_GRP *pgrp, INT8U *pname, INT8U *perr);

/* ---------------------------------------------------------------------
 * Kernel-internal services (shared between kernel files)
 * ------------------------------------------------------------------- */
void OS_Sched(void);
void OS_SchedNew(void);
void OS_TaskIdle(void *p_arg);
void OS_TaskStat(void *p_arg);
void OS_TaskReturn(void);
INT8U OS_TCBInit(INT8U prio, OS_STK *ptos, OS_STK *pbos, INT16U id, INT32U stk_size,
                 void *pext, INT16U opt);
void OS_RdyInsert(OS_TCB *ptcb);
void OS_RdyRemove(OS_TCB *ptcb);
void OS_EventWaitListInit(OS_EVENT *pevent);
void OS_EventTaskWait(OS_EVENT *pevent);
INT8U OS_EventTaskRdy(OS_EVENT *pevent, void *pmsg, INT8U msk, INT8U pend_stat);
void OS_EventTaskRemove(OS_TCB *ptcb, OS_EVENT *pevent);
INT8U OS_EventHighestPrio(OS_EVENT *pevent);
OS_EVENT *OS_EventAlloc(INT8U type);
void OS_EventFree(OS_EVENT *pevent);
INT8U OS_EventCheck(OS_EVENT *pevent, INT8U type);
INT8U OS_EventPend(OS_EVENT *pevent, INT8U stat, INT32U timeout, void **pmsg, OS_CPU_SR cpu_sr);
INT8U OS_EventPendAbort(OS_EVENT *pevent, INT8U type, INT8U stat, INT8U opt, INT8U *perr);
BOOLEAN OS_EventPostWaiters(OS_EVENT *pevent, void *pmsg, INT8U stat, INT8U opt,
                            OS_CPU_SR cpu_sr);
INT8U OS_EventReadyAll(OS_EVENT *pevent, INT8U stat, INT8U pend_stat, BOOLEAN all);
OS_EVENT *OS_EventDel(OS_EVENT *pevent, INT8U type, INT8U stat, INT8U opt, INT8U *perr);
void OS_TaskPrioMove(OS_TCB *ptcb, INT8U newprio);
INT16U OS_StrLen(INT8U *psrc);
INT8U OS_EventPendCheck(OS_EVENT *pevent, INT8U type);
INT8U OS_NameArgCheck(const void *pname, BOOLEAN set);
OS_TCB *OS_TaskGet(INT8U *prio, INT8U err_none, INT8U err_reserved, INT8U *perr);
BOOLEAN OS_TimeExpire(OS_TCB *ptcb);
void OS_FlagInit(void);
void OS_FlagUnlink(OS_FLAG_NODE *pnode);
void OS_QInit(void);
void OS_MemClr(INT8U *pdest, INT32U size);
void OS_MemCopy(INT8U *pdest, INT8U *psrc, INT32U size);

/* ---------------------------------------------------------------------
 * Port interface (os_cpu_a.S / os_cpu_c.c)
 * ------------------------------------------------------------------- */
void OSStartHighRdy(void);
void OSCtxSw(void);
void OSIntCtxSw(void);
OS_STK *OSTaskStkInit(OS_TASK_FN task, void *p_arg, OS_STK *ptos, INT16U opt);

void OSInitHookBegin(void);
void OSInitHookEnd(void);
void OSTaskCreateHook(OS_TCB *ptcb);
void OSTaskDelHook(OS_TCB *ptcb);
void OSTaskIdleHook(void);
void OSTaskReturnHook(OS_TCB *ptcb);
void OSTaskStatHook(void);
void OSTaskSwHook(void);
void OSTCBInitHook(OS_TCB *ptcb);
void OSTimeTickHook(void);

#endif /* UCOS_II_H */
