// SPDX-License-Identifier: GPL-2.0
/*
 * hvtrace_shim.c: the C glue for what Linux 6.12's Rust cannot express yet.
 *
 * Everything here is plumbing: the platform driver and its OF match, the
 * reserved-memory mapping, the threaded IRQ, the sysfs directory, the
 * periodic clock-sync work and the TRACE_EVENT definitions. Every decision
 * (what a record means, what a sysfs write asks for, which hypercall to
 * issue, what to count) is made by the Rust side through the hvtrace_rs_*
 * functions; the Rust side calls back through the hvtrace_shim_* functions.
 */
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/kobject.h>
#include <linux/mod_devicetable.h>
#include <linux/module.h>
#include <linux/of.h>
#include <linux/of_reserved_mem.h>
#include <linux/platform_device.h>
#include <linux/sched.h>
#include <linux/sysfs.h>
#include <linux/trace_clock.h>
#include <linux/workqueue.h>
#include <asm/barrier.h>
#include <asm/sysreg.h>

#include "hvtrace_abi.h"
#include "hvtrace_shim.h"

#define CREATE_TRACE_POINTS
#include "hvtrace_trace.h"

/* The layout as the C compiler sees hvtrace_abi.h, for the Rust side's check. */
#define OFF(s, f) { #s "." #f, offsetof(struct s, f) }
#define SIZE(s) { "sizeof(" #s ")", sizeof(struct s) }
#define VAL(m) { #m, (u64)(m) }

static const struct hvtrace_layout_entry hvtrace_layout[] = {
	SIZE(hvtrace_record),
	OFF(hvtrace_record, timestamp),
	OFF(hvtrace_record, pc),
	OFF(hvtrace_record, kind),
	OFF(hvtrace_record, probe_id),
	OFF(hvtrace_record, vm),
	OFF(hvtrace_record, cpu),
	OFF(hvtrace_record, prev_prio),
	OFF(hvtrace_record, next_prio),
	OFF(hvtrace_record, prev_state),
	OFF(hvtrace_record, next_state),
	OFF(hvtrace_record, seq),
	OFF(hvtrace_record, prev_name),
	OFF(hvtrace_record, next_name),
	SIZE(hvtrace_ring_header),
	OFF(hvtrace_ring_header, magic),
	OFF(hvtrace_ring_header, abi_major),
	OFF(hvtrace_ring_header, abi_minor),
	OFF(hvtrace_ring_header, record_size),
	OFF(hvtrace_ring_header, capacity),
	OFF(hvtrace_ring_header, cpu),
	OFF(hvtrace_ring_header, seq_base),
	OFF(hvtrace_ring_header, head),
	OFF(hvtrace_ring_header, tail),
	OFF(hvtrace_ring_header, drops),
	VAL(HVTRACE_ABI_MAJOR),
	VAL(HVTRACE_ABI_MINOR),
	VAL(HVTRACE_RECORD_SIZE),
	VAL(HVTRACE_NAME_LEN),
	VAL(HVTRACE_RING_MAGIC),
	VAL(HVTRACE_RING_HEADER_SIZE),
	VAL(HVTRACE_MAX_DATA_SLOTS),
	VAL(HVTRACE_HIT_RETURN),
	VAL(HVTRACE_FETCH_PLAN_MAX),
	VAL(HVTRACE_HVC_VERSION),
	VAL(HVTRACE_HVC_PROBE_ADD),
	VAL(HVTRACE_HVC_PROBE_REMOVE),
	VAL(HVTRACE_HVC_PROBE_LIST),
	VAL(HVTRACE_HVC_PROBE_PLAN),
	VAL(HVTRACE_HVC_MEM_WRITE),
	VAL(HVTRACE_HVC_IRQ_TIMING),
	VAL(HVTRACE_HVC_TRACE_ENABLE),
	VAL(HVTRACE_HVC_RING_INFO),
	VAL(HVTRACE_HVC_STATS),
	VAL(HVTRACE_HVC_TEST_EMIT),
	VAL(HVTRACE_ENOTSUPP),
	VAL(HVTRACE_EINVAL),
	VAL(HVTRACE_ENOSPC),
	VAL(HVTRACE_ENOENT),
	VAL(HVTRACE_EEXIST),
	VAL(HVTRACE_EUNSAFE),
	VAL(HVTRACE_EUNMAPPED),
	VAL(HVTRACE_EPERM),
	VAL(HVTRACE_EBUSY),
	VAL(HVTRACE_ESTOPPED),
	VAL(HVTRACE_PROBE_PLAIN),
	VAL(HVTRACE_PROBE_CONTEXT_SWITCH),
	VAL(HVTRACE_PROBE_ENTRY),
	VAL(HVTRACE_PROBE_RETURN),
	VAL(HVTRACE_REC_CONTEXT_SWITCH),
	VAL(HVTRACE_REC_PROBE_HIT),
	VAL(HVTRACE_REC_CLOCK_SYNC),
	VAL(HVTRACE_REC_LOST),
	VAL(HVTRACE_REC_IRQ_TIMING),
	VAL(HVTRACE_REC_VM_STOPPED),
	VAL(HVTRACE_STAT_PROBE_HITS),
	VAL(HVTRACE_STAT_RECORDS),
	VAL(HVTRACE_STAT_DROPS),
	VAL(HVTRACE_STAT_IRQS),
	VAL(HVTRACE_STAT_HYPERCALLS),
	VAL(HVTRACE_STAT_STEPS),
	VAL(HVTRACE_STAT_RERUNS),
	VAL(HVTRACE_STAT_TRACING),
	VAL(HVTRACE_STATE_UNREADABLE),
	VAL(HVTRACE_PROBE_IMM_FLAG),
};

const struct hvtrace_layout_entry *hvtrace_shim_layout(size_t *len)
{
	*len = ARRAY_SIZE(hvtrace_layout);
	return hvtrace_layout;
}

/* Tracepoint emitters (trace_* are static inlines of this file). */
void hvtrace_shim_emit_switch(u64 ts_counter, u32 rtos_cpu, u8 prev_prio,
			      u8 next_prio, u16 prev_state, u16 next_state,
			      const char *prev_comm, const char *next_comm,
			      u32 seq)
{
	trace_rtos_switch(ts_counter, rtos_cpu, prev_prio, next_prio,
			  prev_state, next_state, prev_comm, next_comm, seq);
}

bool hvtrace_shim_switch_enabled(void)
{
	return trace_rtos_switch_enabled();
}

bool hvtrace_shim_probe_enabled(void)
{
	return trace_rtos_probe_enabled();
}

bool hvtrace_shim_irq_enabled(void)
{
	return trace_rtos_irq_enabled();
}

void hvtrace_shim_emit_irq(u64 ts_counter, u32 rtos_cpu, u32 vm, u32 irq,
			   u64 due, u64 injected, u32 seq)
{
	trace_rtos_irq(ts_counter, rtos_cpu, vm, irq, due, injected, seq);
}

void hvtrace_shim_emit_vm_stopped(u64 ts_counter, u32 cpu, u32 vm, u64 pc,
				  u32 seq)
{
	trace_vm_stopped(ts_counter, cpu, vm, pc, seq);
}

void hvtrace_shim_emit_probe(u64 ts_counter, u32 rtos_cpu, u32 probe_id,
			     u64 pc, u8 prio, const char *comm, u32 seq,
			     const char *what, u32 what_len)
{
	trace_rtos_probe(ts_counter, rtos_cpu, probe_id, pc, prio, comm, seq,
			 what, what_len);
}

/*
 * A buffer the hypervisor reads or writes by address (Linux's IPA is its
 * PA): kmalloc memory is physically contiguous, module data and vmap'd
 * stacks are not.
 */
void *hvtrace_shim_ipa_buf_alloc(size_t len)
{
	return kzalloc(len, GFP_KERNEL);
}

void hvtrace_shim_ipa_buf_free(void *buf)
{
	kfree(buf);
}

u64 hvtrace_shim_ipa_of(const void *buf)
{
	return virt_to_phys(buf);
}

/*
 * Reads the counter (CNTVCT_EL0, equal to the physical counter: the
 * hypervisor keeps CNTVOFF_EL2 = 0) and the ftrace clock at the same instant
 * with IRQs off, emits clock_sync, and returns the ftrace clock value.
 */
/* Whether the device tree describes the hv-trace hypervisor's device: only
 * then may the module issue hypercalls (without our hypervisor an HVC goes
 * to whatever owns EL2, e.g. Linux's own stub, with other semantics). */
int hvtrace_shim_dt_present(void)
{
	struct device_node *np = of_find_compatible_node(NULL, NULL, "hv-trace,hvtrace");

	if (!np)
		return 0;
	of_node_put(np);
	return 1;
}

u64 hvtrace_shim_clock_sync(void)
{
	unsigned long flags;
	u64 counter, ns, freq;

	local_irq_save(flags);
	isb();
	counter = read_sysreg(cntvct_el0);
	ns = trace_clock_local();
	local_irq_restore(flags);
	freq = read_sysreg(cntfrq_el0);
	trace_clock_sync(counter, ns, freq);
	return ns;
}

/* The ftrace clock now (for rate limits). */
u64 hvtrace_shim_now_ns(void)
{
	return trace_clock_local();
}

/* --- periodic clock sync ------------------------------------------------ */

static unsigned int hvtrace_tick_ms = 100;

static void hvtrace_tick_fn(struct work_struct *work);
static DECLARE_DELAYED_WORK(hvtrace_tick, hvtrace_tick_fn);

static void hvtrace_tick_fn(struct work_struct *work)
{
	if (hvtrace_rs_tick())
		schedule_delayed_work(&hvtrace_tick,
				      msecs_to_jiffies(hvtrace_tick_ms));
}

/* Runs the tick now and then every period_ms while hvtrace_rs_tick() says so. */
void hvtrace_shim_tick_start(unsigned int period_ms)
{
	hvtrace_tick_ms = period_ms;
	mod_delayed_work(system_wq, &hvtrace_tick, 0);
}

/* Stops the tick and waits for a running one (process context only). */
void hvtrace_shim_tick_stop(void)
{
	cancel_delayed_work_sync(&hvtrace_tick);
}

/* --- sysfs: /sys/kernel/hvtrace ------------------------------------------ */

struct hvtrace_attr {
	struct kobj_attribute ka;
	int id;
};

static ssize_t hvtrace_attr_show(struct kobject *kobj,
				 struct kobj_attribute *ka, char *buf)
{
	return hvtrace_rs_show(container_of(ka, struct hvtrace_attr, ka)->id,
			       buf, PAGE_SIZE);
}

static ssize_t hvtrace_attr_store(struct kobject *kobj,
				  struct kobj_attribute *ka, const char *buf,
				  size_t len)
{
	return hvtrace_rs_store(container_of(ka, struct hvtrace_attr, ka)->id,
				buf, len);
}

/* Ids shared with hvtrace_main.rs (`Attr`). */
#define HVTRACE_ATTR(_name, _id, _mode)                                       \
	static struct hvtrace_attr hvtrace_attr_##_name = {                   \
		.ka = __ATTR(_name, _mode,                                    \
			     ((_mode) & 0444) ? hvtrace_attr_show : NULL,     \
			     ((_mode) & 0222) ? hvtrace_attr_store : NULL),   \
		.id = _id,                                                    \
	}

HVTRACE_ATTR(version, 0, 0400);
HVTRACE_ATTR(enable, 1, 0600);
HVTRACE_ATTR(probes, 2, 0600);
HVTRACE_ATTR(stats, 3, 0400);
HVTRACE_ATTR(test_emit, 4, 0200);
HVTRACE_ATTR(hypercall_fuzz, 5, 0200);

static struct attribute *hvtrace_attrs[] = {
	&hvtrace_attr_version.ka.attr,
	&hvtrace_attr_enable.ka.attr,
	&hvtrace_attr_probes.ka.attr,
	&hvtrace_attr_stats.ka.attr,
	&hvtrace_attr_test_emit.ka.attr,
	&hvtrace_attr_hypercall_fuzz.ka.attr,
	NULL,
};

static const struct attribute_group hvtrace_group = {
	.attrs = hvtrace_attrs,
};

static struct kobject *hvtrace_kobj;

int hvtrace_shim_sysfs_create(void)
{
	int ret;

	hvtrace_kobj = kobject_create_and_add("hvtrace", kernel_kobj);
	if (!hvtrace_kobj)
		return -ENOMEM;
	ret = sysfs_create_group(hvtrace_kobj, &hvtrace_group);
	if (ret) {
		kobject_put(hvtrace_kobj);
		hvtrace_kobj = NULL;
	}
	return ret;
}

/* Removes the directory; returns once no show/store is running. */
void hvtrace_shim_sysfs_remove(void)
{
	if (!hvtrace_kobj)
		return;
	sysfs_remove_group(hvtrace_kobj, &hvtrace_group);
	kobject_put(hvtrace_kobj);
	hvtrace_kobj = NULL;
}

/* --- the platform driver ---------------------------------------------- */

struct hvtrace_dev {
	void *base;
	int irq;
	bool bound;
};

static struct hvtrace_dev hvtrace_dev;

static irqreturn_t hvtrace_hardirq(int irq, void *data)
{
	return hvtrace_rs_hardirq() ? IRQ_WAKE_THREAD : IRQ_HANDLED;
}

static irqreturn_t hvtrace_thread(int irq, void *data)
{
	static bool shares_cpu;

	/*
	 * IRQ threads run SCHED_FIFO: under a flood of RTOS records this one
	 * would hold Linux's CPU for as long as the flood lasts. At the normal
	 * policy it takes its share, and what it cannot drain in time is
	 * dropped, counted, by the hypervisor.
	 */
	if (!shares_cpu) {
		sched_set_normal(current, 0);
		shares_cpu = true;
	}
	while (hvtrace_rs_drain())
		cond_resched();
	return IRQ_HANDLED;
}

static int hvtrace_probe(struct platform_device *pdev)
{
	struct device *dev = &pdev->dev;
	struct device_node *np;
	struct reserved_mem *rmem;
	int irq, ret;

	np = of_parse_phandle(dev->of_node, "memory-region", 0);
	if (!np)
		return dev_err_probe(dev, -ENODEV,
				     "no memory-region phandle in the hvtrace node\n");
	rmem = of_reserved_mem_lookup(np);
	of_node_put(np);
	if (!rmem)
		return dev_err_probe(dev, -ENODEV,
				     "memory-region is not a reserved-memory region\n");
	hvtrace_dev.base = memremap(rmem->base, rmem->size, MEMREMAP_WB);
	if (!hvtrace_dev.base)
		return dev_err_probe(dev, -ENOMEM, "cannot map the ring region %pa\n",
				     &rmem->base);
	ret = hvtrace_rs_attach(hvtrace_dev.base, rmem->size, rmem->base);
	if (ret)
		goto unmap;
	irq = platform_get_irq(pdev, 0);
	if (irq < 0) {
		ret = dev_err_probe(dev, irq, "no doorbell interrupt\n");
		goto detach;
	}
	ret = request_threaded_irq(irq, hvtrace_hardirq, hvtrace_thread,
				   IRQF_ONESHOT, "hvtrace", &hvtrace_dev);
	if (ret) {
		dev_err_probe(dev, ret, "cannot request IRQ %d\n", irq);
		goto detach;
	}
	hvtrace_dev.irq = irq;
	hvtrace_dev.bound = true;
	dev_info(dev, "ring region %pa (%pa bytes) mapped, doorbell IRQ %d\n",
		 &rmem->base, &rmem->size, irq);
	return 0;
detach:
	hvtrace_rs_detach();
unmap:
	memunmap(hvtrace_dev.base);
	hvtrace_dev.base = NULL;
	return ret;
}

static void hvtrace_remove(struct platform_device *pdev)
{
	free_irq(hvtrace_dev.irq, &hvtrace_dev);
	hvtrace_rs_detach();
	memunmap(hvtrace_dev.base);
	hvtrace_dev.base = NULL;
	hvtrace_dev.bound = false;
}

static const struct of_device_id hvtrace_of_match[] = {
	{ .compatible = "hv-trace,hvtrace" },
	{ }
};
MODULE_DEVICE_TABLE(of, hvtrace_of_match);

static struct platform_driver hvtrace_driver = {
	.probe = hvtrace_probe,
	.remove = hvtrace_remove,
	.driver = {
		.name = "hvtrace",
		.of_match_table = hvtrace_of_match,
	},
};

/* Registers the driver; returns whether a device was bound. */
int hvtrace_shim_driver_register(void)
{
	int ret = platform_driver_register(&hvtrace_driver);

	if (ret)
		return ret;
	if (!hvtrace_dev.bound) {
		platform_driver_unregister(&hvtrace_driver);
		return -ENODEV;
	}
	return 0;
}

void hvtrace_shim_driver_unregister(void)
{
	platform_driver_unregister(&hvtrace_driver);
}
