/* os_cpu_types.h - uC/OS-II's portable integer types for LP64 targets
 * (AArch64; the host test port on x86-64 shares them). */
#ifndef OS_CPU_TYPES_H
#define OS_CPU_TYPES_H

typedef unsigned char BOOLEAN;
typedef unsigned char INT8U;
typedef signed char INT8S;
typedef unsigned short INT16U;
typedef signed short INT16S;
typedef unsigned int INT32U;
typedef signed int INT32S;
typedef unsigned long long INT64U;
typedef signed long long INT64S;
typedef float FP32;
typedef double FP64;

typedef INT64U OS_STK;    /* one stack entry: 64 bits      */
typedef INT64U OS_CPU_SR; /* saved DAIF (critical section) */

#endif
