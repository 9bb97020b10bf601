/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The interface between hvtrace_shim.c (C glue) and hvtrace_main.rs (Rust
 * logic). The Rust side declares the same functions in its `shim` module.
 */
#ifndef HVTRACE_SHIM_H
#define HVTRACE_SHIM_H

#include <linux/types.h>

/* Implemented in Rust, called by the shim. */
int hvtrace_rs_attach(void *base, size_t len, phys_addr_t phys);
void hvtrace_rs_detach(void);
bool hvtrace_rs_hardirq(void);
bool hvtrace_rs_drain(void);
bool hvtrace_rs_tick(void);
ssize_t hvtrace_rs_show(int attr, char *buf, size_t size);
ssize_t hvtrace_rs_store(int attr, const char *buf, size_t len);

/* Implemented in the shim, called from Rust. */
struct hvtrace_layout_entry {
	const char *name;
	u64 value;
};

const struct hvtrace_layout_entry *hvtrace_shim_layout(size_t *len);
void hvtrace_shim_emit_switch(u64 ts_counter, u32 rtos_cpu, u8 prev_prio,
			      u8 next_prio, u16 prev_state, u16 next_state,
			      const char *prev_comm, const char *next_comm,
			      u32 seq);
bool hvtrace_shim_switch_enabled(void);
bool hvtrace_shim_probe_enabled(void);
bool hvtrace_shim_irq_enabled(void);
void hvtrace_shim_emit_irq(u64 ts_counter, u32 rtos_cpu, u32 vm, u32 irq,
			   u64 due, u64 injected, u32 seq);
void hvtrace_shim_emit_vm_stopped(u64 ts_counter, u32 cpu, u32 vm, u64 pc,
				  u32 seq);
void hvtrace_shim_emit_probe(u64 ts_counter, u32 rtos_cpu, u32 probe_id,
			     u64 pc, u8 prio, const char *comm, u32 seq,
			     const char *what, u32 what_len);
void *hvtrace_shim_ipa_buf_alloc(size_t len);
void hvtrace_shim_ipa_buf_free(void *buf);
u64 hvtrace_shim_ipa_of(const void *buf);
int hvtrace_shim_dt_present(void);
u64 hvtrace_shim_clock_sync(void);
u64 hvtrace_shim_now_ns(void);
void hvtrace_shim_tick_start(unsigned int period_ms);
void hvtrace_shim_tick_stop(void);
int hvtrace_shim_sysfs_create(void);
void hvtrace_shim_sysfs_remove(void);
int hvtrace_shim_driver_register(void);
void hvtrace_shim_driver_unregister(void);

#endif /* HVTRACE_SHIM_H */
