/* bsp.h - board support for QEMU virt (and the hv-trace hypervisor's VM). */
#ifndef BSP_H
#define BSP_H

#include "ucos_ii.h"

void BSP_Init(void);             /* GICv3 redistributor + CPU interface        */
void BSP_TickStart(void);        /* start the OS tick (call from the first task) */
INT64U BSP_CounterGet(void);     /* CNTVCT_EL0                                  */
INT64U BSP_CounterFreq(void);    /* CNTFRQ_EL0                                  */
void BSP_Printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
