/* os_cpu_frame.h - context frame layout shared by os_cpu_a.S and os_cpu_c.c. */
#ifndef OS_CPU_FRAME_H
#define OS_CPU_FRAME_H

#define OS_CPU_FRAME_SIZE_BYTES 272 /* 34 x 8: x0-x30, ELR, SPSR, pad */
#ifdef __ASSEMBLER__
#define OS_CPU_FRAME_SIZE OS_CPU_FRAME_SIZE_BYTES
#endif
#define FRAME_X30 240
#define FRAME_ELR 248
#define FRAME_SPSR 256
#define SPSR_EL1H 0x5 /* M[3:0] = EL1 with SP_EL1; DAIF taken from the value ORed in */

#endif
