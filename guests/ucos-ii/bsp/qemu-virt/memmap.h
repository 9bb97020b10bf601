/* memmap.h - QEMU virt memory map as seen by the RTOS (shared by C, asm and
 * the linker script). */
#ifndef MEMMAP_H
#define MEMMAP_H

#define KVA_OFFSET 0xFFFF000000000000 /* VA = PA + KVA_OFFSET (TTBR1, T1SZ=16) */
#define LOAD_PA 0x40100000            /* image load address = entry point    */
#define RTOS_RAM_PA 0x40000000        /* RAM the RTOS owns: 16 MiB           */
#define RTOS_RAM_SIZE 0x01000000
#define GICD_PA 0x08000000
#define GICR_PA 0x080A0000
#define GICR_STRIDE 0x20000
#define UART_PA 0x09000000

#endif
