/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The hvtrace ftrace events. Field names and types are a contract with
 * trace-convert: change them only together.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM hvtrace

#if !defined(_HVTRACE_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _HVTRACE_TRACE_H

#include <linux/tracepoint.h>

#define HVTRACE_COMM_LEN 16

/* An RTOS context switch, stamped with the shared counter. */
TRACE_EVENT(rtos_switch,
	TP_PROTO(u64 ts_counter, u32 rtos_cpu, u8 prev_prio, u8 next_prio,
		 u16 prev_state, u16 next_state, const char *prev_comm,
		 const char *next_comm, u32 seq),
	TP_ARGS(ts_counter, rtos_cpu, prev_prio, next_prio, prev_state,
		next_state, prev_comm, next_comm, seq),
	TP_STRUCT__entry(
		__field(u64, ts_counter)
		__field(u32, rtos_cpu)
		__field(u8, prev_prio)
		__field(u8, next_prio)
		__field(u16, prev_state)
		__field(u16, next_state)
		__array(char, prev_comm, HVTRACE_COMM_LEN)
		__array(char, next_comm, HVTRACE_COMM_LEN)
		__field(u32, seq)
	),
	TP_fast_assign(
		__entry->ts_counter = ts_counter;
		__entry->rtos_cpu = rtos_cpu;
		__entry->prev_prio = prev_prio;
		__entry->next_prio = next_prio;
		__entry->prev_state = prev_state;
		__entry->next_state = next_state;
		memcpy(__entry->prev_comm, prev_comm, HVTRACE_COMM_LEN);
		memcpy(__entry->next_comm, next_comm, HVTRACE_COMM_LEN);
		__entry->seq = seq;
	),
	TP_printk("rtos_cpu=%u prev_comm=%s prev_prio=%u prev_state=0x%x ==> next_comm=%s next_prio=%u next_state=0x%x seq=%u ts_counter=%llu",
		  __entry->rtos_cpu, __entry->prev_comm, __entry->prev_prio,
		  __entry->prev_state, __entry->next_comm, __entry->next_prio,
		  __entry->next_state, __entry->seq,
		  (unsigned long long)__entry->ts_counter)
);

/* A hit of a plain probe: `what` is its label and the values it fetched,
 * `name=value` as kprobe events print them. */
TRACE_EVENT(rtos_probe,
	TP_PROTO(u64 ts_counter, u32 rtos_cpu, u32 probe_id, u64 pc, u8 prio,
		 const char *comm, u32 seq, const char *what, u32 what_len),
	TP_ARGS(ts_counter, rtos_cpu, probe_id, pc, prio, comm, seq, what,
		what_len),
	TP_STRUCT__entry(
		__field(u64, ts_counter)
		__field(u32, rtos_cpu)
		__field(u32, probe_id)
		__field(u64, pc)
		__field(u8, prio)
		__array(char, comm, HVTRACE_COMM_LEN)
		__field(u32, seq)
		/* what_len bytes, no NUL: the module knows the length. */
		__string_len(what, what, what_len)
	),
	TP_fast_assign(
		__entry->ts_counter = ts_counter;
		__entry->rtos_cpu = rtos_cpu;
		__entry->probe_id = probe_id;
		__entry->pc = pc;
		__entry->prio = prio;
		memcpy(__entry->comm, comm, HVTRACE_COMM_LEN);
		__entry->seq = seq;
		__assign_str(what);
	),
	TP_printk("%s rtos_cpu=%u probe=%u pc=0x%llx comm=%s prio=%u seq=%u ts_counter=%llu",
		  __get_str(what), __entry->rtos_cpu, __entry->probe_id,
		  (unsigned long long)__entry->pc, __entry->comm,
		  __entry->prio, __entry->seq,
		  (unsigned long long)__entry->ts_counter)
);

/* An interrupt of a VM as the hypervisor passed it on (counter ticks): when
 * it was due (the virtual timer's compare value, 0 for others), when it
 * reached EL2 (ts_counter) and when it was injected into the VM. */
TRACE_EVENT(rtos_irq,
	TP_PROTO(u64 ts_counter, u32 rtos_cpu, u32 vm, u32 irq, u64 due,
		 u64 injected, u32 seq),
	TP_ARGS(ts_counter, rtos_cpu, vm, irq, due, injected, seq),
	TP_STRUCT__entry(
		__field(u64, ts_counter)
		__field(u32, rtos_cpu)
		__field(u32, vm)
		__field(u32, irq)
		__field(u32, seq)
		__field(u64, due)
		__field(u64, injected)
	),
	TP_fast_assign(
		__entry->ts_counter = ts_counter;
		__entry->rtos_cpu = rtos_cpu;
		__entry->vm = vm;
		__entry->irq = irq;
		__entry->seq = seq;
		__entry->due = due;
		__entry->injected = injected;
	),
	TP_printk("irq=%u vm=%u rtos_cpu=%u due=%llu ts_counter=%llu injected=%llu seq=%u",
		  __entry->irq, __entry->vm, __entry->rtos_cpu,
		  (unsigned long long)__entry->due,
		  (unsigned long long)__entry->ts_counter,
		  (unsigned long long)__entry->injected, __entry->seq)
);

/* A VM stopped (counter ticks): it faulted outside its partition or asked
 * to power off; the hypervisor refuses its probes from now on. */
TRACE_EVENT(vm_stopped,
	TP_PROTO(u64 ts_counter, u32 cpu, u32 vm, u64 pc, u32 seq),
	TP_ARGS(ts_counter, cpu, vm, pc, seq),
	TP_STRUCT__entry(
		__field(u64, ts_counter)
		__field(u64, pc)
		__field(u32, cpu)
		__field(u32, vm)
		__field(u32, seq)
	),
	TP_fast_assign(
		__entry->ts_counter = ts_counter;
		__entry->pc = pc;
		__entry->cpu = cpu;
		__entry->vm = vm;
		__entry->seq = seq;
	),
	TP_printk("vm=%u cpu=%u pc=0x%llx ts_counter=%llu seq=%u",
		  __entry->vm, __entry->cpu, (unsigned long long)__entry->pc,
		  (unsigned long long)__entry->ts_counter, __entry->seq)
);

/* The shared counter and the ftrace clock, read together with IRQs off. */
TRACE_EVENT(clock_sync,
	TP_PROTO(u64 counter, u64 trace_clock_ns, u64 freq_hz),
	TP_ARGS(counter, trace_clock_ns, freq_hz),
	TP_STRUCT__entry(
		__field(u64, counter)
		__field(u64, trace_clock_ns)
		__field(u64, freq_hz)
	),
	TP_fast_assign(
		__entry->counter = counter;
		__entry->trace_clock_ns = trace_clock_ns;
		__entry->freq_hz = freq_hz;
	),
	TP_printk("counter=%llu trace_clock_ns=%llu freq_hz=%llu",
		  (unsigned long long)__entry->counter,
		  (unsigned long long)__entry->trace_clock_ns,
		  (unsigned long long)__entry->freq_hz)
);

#endif /* _HVTRACE_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE hvtrace_trace
#include <trace/define_trace.h>
