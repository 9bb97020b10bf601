/*
 * os_cpu.h - AArch64 (EL1) port: data types, critical sections, and the
 * task-level context switch.
 *
 * Tasks run at EL1 on SP_EL1 with interrupts enabled. The kernel, port and
 * applications are compiled with -mgeneral-regs-only, so no code ever
 * touches FP/SIMD registers (FP/SIMD access stays trapped by CPACR_EL1) and
 * a task's context is its general-purpose registers x0-x30 plus ELR/SPSR.
 */
#ifndef OS_CPU_H
#define OS_CPU_H

#include "os_cpu_types.h"

#define OS_STK_GROWTH 1u /* stacks grow towards lower addresses */

/* Critical sections: method 3, save DAIF in a local 'cpu_sr' and mask IRQs. */
#define OS_CRITICAL_METHOD 3u
#define OS_ENTER_CRITICAL() do { cpu_sr = OS_CPU_SR_Save(); } while (0)
#define OS_EXIT_CRITICAL() do { OS_CPU_SR_Restore(cpu_sr); } while (0)

static inline OS_CPU_SR OS_CPU_SR_Save(void)
{
    OS_CPU_SR sr;

    __asm__ volatile("mrs %0, daif\n\tmsr daifset, #2" : "=r"(sr) : : "memory");
    return sr;
}

static inline void OS_CPU_SR_Restore(OS_CPU_SR sr)
{
    __asm__ volatile("msr daif, %0" : : "r"(sr) : "memory");
}

#define OS_TASK_SW() OSCtxSw()


#endif /* OS_CPU_H */
