/*
 * bsp.c - board support for QEMU virt: PL011 console (DR and FR only, so
 * that a hypervisor can trap-and-emulate it), GICv3 set-up for the tick's
 * PPI, the EL1 virtual timer tick, IRQ dispatch and fault reports.
 */
#include <stdarg.h>
#include "bsp.h"
#include "memmap.h"

#define DEV(pa) ((volatile INT8U *)(KVA_OFFSET + (INT64U)(pa)))
#define REG32(base, off) (*(volatile INT32U *)((base) + (off)))
#define REG64(base, off) (*(volatile INT64U *)((base) + (off)))

#define UART_DR 0x00
#define UART_FR 0x18
#define UART_FR_TXFF (1u << 5)

#define GICD_CTLR 0x0000
#define GICD_CTLR_RWP (1u << 31)
#define GICD_CTLR_ARE (1u << 4)
#define GICD_CTLR_GRP1 (1u << 1)
#define GICR_WAKER 0x0014
#define GICR_TYPER 0x0008
#define GICR_TYPER_LAST (1ull << 4)
#define GICR_SGI 0x10000 /* SGI/PPI frame */
#define GICR_IGROUPR0 0x0080
#define GICR_ISENABLER0 0x0100
#define GICR_IPRIORITYR 0x0400

#define TICK_INTID 27u /* EL1 virtual timer PPI */

#define SYSREG_READ(name) ({ INT64U v_; __asm__ volatile("mrs %0, " name : "=r"(v_)); v_; })
#define SYSREG_WRITE(name, v) __asm__ volatile("msr " name ", %0" : : "r"((INT64U)(v)) : "memory")
#define ISB() __asm__ volatile("isb" ::: "memory")

static INT64U BSP_TickPeriod; /* counter ticks per OS tick */
static INT64U BSP_TickNext;   /* absolute compare value of the next tick */
static volatile INT8U *BSP_Redist;

/* ---------------------------------------------------------------- console */
static void BSP_Putc(char c)
{
    volatile INT8U *uart = DEV(UART_PA);

    while ((REG32(uart, UART_FR) & UART_FR_TXFF) != 0u) {
    }
    REG32(uart, UART_DR) = (INT32U)(INT8U)c;
}

typedef struct {
    char buf[160];
    INT32U len;
} BSP_Line;

static void BSP_LinePut(BSP_Line *l, char c)
{
    if (l->len < sizeof(l->buf)) {
        l->buf[l->len++] = c;
    }
}

static void BSP_LineNum(BSP_Line *l, INT64U v, INT32U base, INT32U width, char pad, BOOLEAN neg)
{
    char tmp[24];
    INT32U n = 0u;

    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v != 0u);
    if (neg) {
        tmp[n++] = '-';
    }
    while (n < width && n < sizeof(tmp)) {
        tmp[n++] = pad;
    }
    while (n > 0u) {
        BSP_LinePut(l, tmp[--n]);
    }
}

/* printf subset: %c %s %d %u %x %p with l/ll, width and 0 padding. A line
 * is formatted first and written with the scheduler locked, so lines from
 * different tasks never interleave. */
void BSP_Printf(const char *fmt, ...)
{
    BSP_Line l;
    va_list ap;
    INT32U i;

    l.len = 0u;
    va_start(ap, fmt);
    for (; *fmt != '\0'; fmt++) {
        INT32U width = 0u, longs = 0u;
        char pad = ' ';

        if (*fmt != '%') {
            BSP_LinePut(&l, *fmt);
            continue;
        }
        fmt++;
        if (*fmt == '0') {
            pad = '0';
            fmt++;
        }
        while (*fmt >= '0' && *fmt <= '9') {
            width = width * 10u + (INT32U)(*fmt++ - '0');
        }
        while (*fmt == 'l') {
            longs++;
            fmt++;
        }
        switch (*fmt) {
        case 'c':
            BSP_LinePut(&l, (char)va_arg(ap, int));
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            while (s != NULL && *s != '\0') {
                BSP_LinePut(&l, *s++);
            }
            break;
        }
        case 'd': {
            INT64S v = longs ? va_arg(ap, long long) : va_arg(ap, int);
            BSP_LineNum(&l, (INT64U)(v < 0 ? -v : v), 10u, width, pad, (BOOLEAN)(v < 0));
            break;
        }
        case 'u':
        case 'x': {
            INT64U v = longs ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned int);
            BSP_LineNum(&l, v, (*fmt == 'u') ? 10u : 16u, width, pad, OS_FALSE);
            break;
        }
        case 'p':
            BSP_LinePut(&l, '0');
            BSP_LinePut(&l, 'x');
            BSP_LineNum(&l, (INT64U)va_arg(ap, void *), 16u, 16u, '0', OS_FALSE);
            break;
        default:
            BSP_LinePut(&l, *fmt);
            break;
        }
    }
    va_end(ap);
    OSSchedLock();
    for (i = 0u; i < l.len; i++) {
        if (l.buf[i] == '\n') {
            BSP_Putc('\r');
        }
        BSP_Putc(l.buf[i]);
    }
    OSSchedUnlock();
}

/* -------------------------------------------------------------------- GIC */

/* Finds this CPU's redistributor by comparing GICR_TYPER's affinity with
 * MPIDR_EL1 (bare QEMU: CPU0; under the hypervisor: physical CPU1). */
static volatile INT8U *BSP_FindRedist(void)
{
    INT64U mpidr = SYSREG_READ("mpidr_el1");
    INT32U aff = (INT32U)(((mpidr >> 8) & 0xFF000000u) | (mpidr & 0x00FFFFFFu));
    volatile INT8U *r = DEV(GICR_PA);

    for (;;) {
        INT64U typer = REG64(r, GICR_TYPER);
        if ((INT32U)(typer >> 32) == aff) {
            return r;
        }
        if ((typer & GICR_TYPER_LAST) != 0u) {
            BSP_Printf("BSP: no GIC redistributor for MPIDR %llx\n", mpidr);
            return NULL;
        }
        r += GICR_STRIDE;
    }
}

void BSP_Init(void)
{
    volatile INT8U *gicd = DEV(GICD_PA);
    INT32U ctlr = REG32(gicd, GICD_CTLR);

    if ((ctlr & (GICD_CTLR_ARE | GICD_CTLR_GRP1)) != (GICD_CTLR_ARE | GICD_CTLR_GRP1)) {
        REG32(gicd, GICD_CTLR) = ctlr | GICD_CTLR_ARE | GICD_CTLR_GRP1;
        while ((REG32(gicd, GICD_CTLR) & GICD_CTLR_RWP) != 0u) {
        }
    }
    BSP_Redist = BSP_FindRedist();
    if (BSP_Redist != NULL) {
        volatile INT8U *sgi = BSP_Redist + GICR_SGI;

        REG32(BSP_Redist, GICR_WAKER) &= ~(1u << 1); /* ProcessorSleep = 0 */
        while ((REG32(BSP_Redist, GICR_WAKER) & (1u << 2)) != 0u) { /* ChildrenAsleep */
        }
        REG32(sgi, GICR_IGROUPR0) |= 1u << TICK_INTID;
        sgi[GICR_IPRIORITYR + TICK_INTID] = 0x80u;
        REG32(sgi, GICR_ISENABLER0) = 1u << TICK_INTID;
    }
    SYSREG_WRITE("S3_0_C12_C12_5", SYSREG_READ("S3_0_C12_C12_5") | 1u); /* ICC_SRE_EL1.SRE */
    ISB();
    SYSREG_WRITE("S3_0_C4_C6_0", 0xF0u);  /* ICC_PMR_EL1 */
    SYSREG_WRITE("S3_0_C12_C12_3", 0u);   /* ICC_BPR1_EL1 */
    SYSREG_WRITE("S3_0_C12_C12_7", 1u);   /* ICC_IGRPEN1_EL1 */
    ISB();
}

/* ------------------------------------------------------------------ timer */
INT64U BSP_CounterGet(void)
{
    ISB();
    return SYSREG_READ("cntvct_el0");
}

INT64U BSP_CounterFreq(void)
{
    return SYSREG_READ("cntfrq_el0");
}

/* Programs an absolute compare value per tick (CNTV_CVAL_EL0), so the tick
 * rate does not drift with interrupt latency. */
void BSP_TickStart(void)
{
    BSP_TickPeriod = BSP_CounterFreq() / OS_TICKS_PER_SEC;
    BSP_TickNext = BSP_CounterGet() + BSP_TickPeriod;
    SYSREG_WRITE("cntv_cval_el0", BSP_TickNext);
    SYSREG_WRITE("cntv_ctl_el0", 1u); /* ENABLE, not masked */
    ISB();
}

/* Called by the port's IRQ entry between the nesting count and OSIntExit. */
void OS_CPU_IRQHandler(void)
{
    INT64U iar = SYSREG_READ("S3_0_C12_C12_0"); /* ICC_IAR1_EL1 */
    INT32U intid = (INT32U)(iar & 0xFFFFFFu);

    if (intid >= 1020u && intid <= 1023u) {
        return; /* spurious */
    }
    if (intid == TICK_INTID) {
        BSP_TickNext += BSP_TickPeriod;
        SYSREG_WRITE("cntv_cval_el0", BSP_TickNext);
        ISB();
        OSTimeTick();
    }
    SYSREG_WRITE("S3_0_C12_C12_1", iar); /* ICC_EOIR1_EL1 */
}

/* -------------------------------------------------------------- faults */
/*
 * A fault the RTOS cannot recover from: report it, then power off (PSCI
 * SYSTEM_OFF through the SMC conduit), as a board would reset. Under the
 * hv-trace hypervisor that stops this VM only, and says so in the trace;
 * a port of another BSP does the same in its fault handler.
 */
void OS_CPU_FaultHandler(INT64U *frame)
{
    BSP_Printf("FAULT: ESR=%llx ELR=%llx FAR=%llx SPSR=%llx task prio %u\n",
               SYSREG_READ("esr_el1"), frame[31], SYSREG_READ("far_el1"), frame[32],
               (INT32U)OSPrioCur);
    /* PSCI SYSTEM_OFF (x0 is set here, not earlier: the call above uses it). */
    __asm__ volatile("mov x0, %0\n\tsmc #0" : : "r"(0x84000008ul) : "x0", "x1", "x2", "x3", "memory");
}

/* gcc may emit calls to these for structure copies and initialisation. */
void *memset(void *dst, int c, unsigned long n)
{
    INT8U *d = dst;

    while (n-- > 0u) {
        *d++ = (INT8U)c;
    }
    return dst;
}

void *memcpy(void *dst, const void *src, unsigned long n)
{
    INT8U *d = dst;
    const INT8U *s = src;

    while (n-- > 0u) {
        *d++ = *s++;
    }
    return dst;
}
