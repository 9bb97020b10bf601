/*
 * start.S - entry at the image's first byte (PA 0x40100000), MMU off, at
 * EL1 (or EL2 on bare QEMU with virtualization=on: we drop to EL1 first).
 * Builds nothing at run time: the stage-1 tables below are static data.
 * Turns the MMU and caches on with an identity map in TTBR0 just for the
 * jump, continues at the linked upper-half VA via TTBR1, then disables
 * TTBR0 walks (TCR_EL1.EPD0) and calls main().
 */
#include "memmap.h"

#define SCTLR_EL1_RES1 0x30D00800
#define SCTLR_M (1 << 0)
#define SCTLR_C (1 << 2)
#define SCTLR_SA (1 << 3)
#define SCTLR_I (1 << 12)

/* MAIR: attr0 normal write-back RW-allocate, attr1 Device-nGnRE */
#define MAIR_VALUE 0x04FF
/* TCR: 48-bit VA both halves, 4K granule, WB-WA inner-shareable walks */
#define TCR_VALUE ((16 << 0) | (1 << 8) | (1 << 10) | (3 << 12) | (0 << 14) | \
                   (16 << 16) | (1 << 24) | (1 << 26) | (3 << 28) | (2 << 30))
#define TCR_EPD0 (1 << 7)

/* Descriptor attributes */
#define DESC_TABLE 0x3
#define DESC_BLOCK 0x1
#define DESC_PAGE 0x3
#define ATTR_AF (1 << 10)
#define ATTR_ISH (3 << 8)
#define ATTR_NORMAL ((0 << 2) | ATTR_AF | ATTR_ISH)
#define ATTR_DEVICE ((1 << 2) | ATTR_AF | (3 << 53)) /* + PXN, UXN */

    .section .text.boot, "ax"
    .global _start
    .type   _start, %function
_start:
    mrs     x0, CurrentEL
    lsr     x0, x0, #2
    cmp     x0, #2
    b.ne    el1_entry
    /* EL2: give EL1 the timers and the GIC system registers, then drop. */
    mov     x0, #(1 << 31)                  /* HCR_EL2.RW: EL1 is AArch64 */
    msr     hcr_el2, x0
    mrs     x0, cnthctl_el2
    orr     x0, x0, #3                      /* EL1PCTEN | EL1PCEN */
    msr     cnthctl_el2, x0
    msr     cntvoff_el2, xzr
    mrs     x0, S3_4_C12_C9_5               /* ICC_SRE_EL2 */
    mov     x1, #0x9                        /* SRE | Enable (EL1 may use SRE) */
    orr     x0, x0, x1
    msr     S3_4_C12_C9_5, x0
    isb
    mov     x0, #0x33FF                     /* CPTR_EL2: no traps */
    msr     cptr_el2, x0
    msr     vttbr_el2, xzr
    ldr     x0, =SCTLR_EL1_RES1
    msr     sctlr_el1, x0
    mov     x0, #0x3C5                      /* EL1h, DAIF masked */
    msr     spsr_el2, x0
    adr     x0, el1_entry
    msr     elr_el2, x0
    eret

el1_entry:
    msr     daifset, #0xF
    msr     cpacr_el1, xzr                  /* FP/SIMD trapped: we never use it */
    ldr     x0, =MAIR_VALUE
    msr     mair_el1, x0
    ldr     x0, =TCR_VALUE
    mrs     x1, id_aa64mmfr0_el1
    and     x1, x1, #7                      /* PARange -> IPS */
    cmp     x1, #5
    mov     x2, #5
    csel    x1, x1, x2, ls
    orr     x0, x0, x1, lsl #32
    msr     tcr_el1, x0
    adrp    x0, idmap_l0                    /* PC-relative: physical addresses */
    msr     ttbr0_el1, x0
    adrp    x0, kernel_l0
    msr     ttbr1_el1, x0
    isb
    tlbi    vmalle1
    ic      iallu
    dsb     nsh
    isb
    ldr     x0, =(SCTLR_EL1_RES1 | SCTLR_M | SCTLR_C | SCTLR_SA | SCTLR_I)
    msr     sctlr_el1, x0
    isb
    ldr     x0, =high_entry                 /* literal: the linked (high) VA */
    br      x0

high_entry:
    ldr     x0, =__boot_stack_top
    mov     sp, x0
    ldr     x0, =OS_CPU_Vectors
    msr     vbar_el1, x0
    mrs     x0, tcr_el1
    orr     x0, x0, #TCR_EPD0               /* identity map no longer needed */
    msr     tcr_el1, x0
    isb
    tlbi    vmalle1
    dsb     nsh
    isb
    ldr     x0, =__bss_start
    ldr     x1, =__bss_end
1:  cmp     x0, x1
    b.hs    2f
    stp     xzr, xzr, [x0], #16
    b       1b
2:  bl      main
3:  wfi
    b       3b
    .size   _start, . - _start
    .ltorg

/*
 * Stage-1 tables (4K granule, 4 levels, static). Entries hold physical
 * addresses: symbol - KVA_OFFSET.
 *  TTBR0 (identity, boot only): L0[0] -> L1[1] -> L2[0] = 2 MiB block at
 *      0x4000_0000 (holds the image's first bytes).
 *  TTBR1: L0[0] -> L1[0] -> dev_l2: 0x0800_0000..0x08FF_FFFF (GIC) and
 *                                    0x0900_0000 (UART), Device-nGnRE
 *                  L1[1] -> ram_l2: [0] -> ram_l3 (4K pages for
 *                                    0x4000_0000..0x401F_FFFF),
 *                                    [1..7] 2 MiB blocks up to 0x40FF_FFFF.
 * Nothing outside the RTOS's 16 MiB of RAM and the devices is mapped.
 */
    .macro table next
    .quad   (\next - KVA_OFFSET) + DESC_TABLE
    .endm
    .macro zeros n
    .fill   \n, 8, 0
    .endm

    .section .data.pgtbl, "aw"
    .balign 4096
idmap_l0:
    table   idmap_l1
    zeros   511
idmap_l1:
    zeros   1
    table   idmap_l2
    zeros   510
idmap_l2:
    .quad   RTOS_RAM_PA + ATTR_NORMAL + DESC_BLOCK
    zeros   511

    .global kernel_l0
kernel_l0:
    table   kernel_l1
    zeros   511
kernel_l1:
    table   dev_l2
    table   ram_l2
    zeros   510
dev_l2:
    zeros   (GICD_PA >> 21)
    .set    pa, GICD_PA
    .rept   8
    .quad   pa + ATTR_DEVICE + DESC_BLOCK
    .set    pa, pa + 0x200000
    .endr
    .quad   UART_PA + ATTR_DEVICE + DESC_BLOCK
    zeros   512 - (GICD_PA >> 21) - 9
ram_l2:
    table   ram_l3
    .set    pa, RTOS_RAM_PA + 0x200000
    .rept   7
    .quad   pa + ATTR_NORMAL + DESC_BLOCK
    .set    pa, pa + 0x200000
    .endr
    zeros   512 - 8
ram_l3:
    .set    pa, RTOS_RAM_PA
    .rept   512
    .quad   pa + ATTR_NORMAL + DESC_PAGE
    .set    pa, pa + 0x1000
    .endr

    .section .bss.boot_stack, "aw", %nobits
    .balign 16
    .space  16384
__boot_stack_top:
