//! Synthetic traces for tests, benches and demos: a Linux CPU 0 running a few tasks, with the
//! hvtrace module's events for an RTOS on CPU 1 (`rtos_switch`, `rtos_probe`, `clock_sync`).
//!
//! The hvtrace layouts here are this crate's stand-in for the Linux module's format files
//! (same fields and types as the issue specifies); readers never rely on them, they read
//! whatever format the trace embeds.

use std::io::{Seek, Write};
use std::sync::Arc;

use crate::error::Result;
use crate::event::{Cmdlines, Event, Missed};
use crate::format::{standard_common, EventFormat, FieldDef, Value};
use crate::write::dat::{DatHeader, DatWriter};

/// Counter frequency of the synthetic machine (62.5 MHz, QEMU virt's CNTFRQ).
pub const FREQ_HZ: u64 = 62_500_000;
/// Trace clock at counter 0 (ns).
pub const CLOCK_BASE_NS: u64 = 5_000_000_000;
/// Delay between an RTOS event and its injection into ftrace (ns).
pub const INJECT_DELAY_NS: u64 = 7_000;

/// The trace-clock time of a counter value on the synthetic machine.
pub fn counter_ns(counter: u64) -> u64 {
    CLOCK_BASE_NS + counter * (1_000_000_000 / FREQ_HZ)
}

/// `hvtrace:rtos_switch` as the module is expected to define it.
pub fn rtos_switch_format() -> EventFormat {
    EventFormat {
        id: 2001,
        system: "hvtrace".into(),
        name: "rtos_switch".into(),
        common: standard_common(),
        fields: vec![
            FieldDef::int("ts_counter", "u64", 8, 8, false),
            FieldDef::int("rtos_cpu", "u32", 16, 4, false),
            FieldDef::int("prev_prio", "u8", 20, 1, false),
            FieldDef::int("next_prio", "u8", 21, 1, false),
            FieldDef::int("prev_state", "u16", 22, 2, false),
            FieldDef::int("next_state", "u16", 24, 2, false),
            FieldDef::chars("prev_comm", 26, 16),
            FieldDef::chars("next_comm", 42, 16),
            FieldDef::int("seq", "u32", 60, 4, false),
        ],
        print_fmt: "\"cpu=%u %s:%u ==> %s:%u seq=%u\", REC->rtos_cpu, REC->prev_comm, REC->prev_prio, REC->next_comm, REC->next_prio, REC->seq".into(),
    }
}

/// `hvtrace:rtos_probe`.
pub fn rtos_probe_format() -> EventFormat {
    EventFormat {
        id: 2002,
        system: "hvtrace".into(),
        name: "rtos_probe".into(),
        common: standard_common(),
        fields: vec![
            FieldDef::int("ts_counter", "u64", 8, 8, false),
            FieldDef::int("rtos_cpu", "u32", 16, 4, false),
            FieldDef::int("probe_id", "u32", 20, 4, false),
            FieldDef::int("pc", "u64", 24, 8, false),
            FieldDef::int("prio", "u8", 32, 1, false),
            FieldDef::chars("comm", 33, 16),
            FieldDef::int("seq", "u32", 52, 4, false),
            FieldDef::string_loc("what", 56),
        ],
        print_fmt: "\"%s rtos_cpu=%u probe=%u pc=0x%llx comm=%s prio=%u seq=%u\", __get_str(what), REC->rtos_cpu, REC->probe_id, REC->pc, REC->comm, REC->prio, REC->seq".into(),
    }
}

/// `hvtrace:rtos_irq`, as the module defines it.
pub fn rtos_irq_format() -> EventFormat {
    EventFormat {
        id: 2004,
        system: "hvtrace".into(),
        name: "rtos_irq".into(),
        common: standard_common(),
        fields: vec![
            FieldDef::int("ts_counter", "u64", 8, 8, false),
            FieldDef::int("rtos_cpu", "u32", 16, 4, false),
            FieldDef::int("vm", "u32", 20, 4, false),
            FieldDef::int("irq", "u32", 24, 4, false),
            FieldDef::int("seq", "u32", 28, 4, false),
            FieldDef::int("due", "u64", 32, 8, false),
            FieldDef::int("injected", "u64", 40, 8, false),
        ],
        print_fmt: "\"irq=%u vm=%u rtos_cpu=%u due=%llu ts_counter=%llu injected=%llu seq=%u\", REC->irq, REC->vm, REC->rtos_cpu, REC->due, REC->ts_counter, REC->injected, REC->seq".into(),
    }
}

/// `hvtrace:vm_stopped`, as the module defines it.
pub fn vm_stopped_format() -> EventFormat {
    EventFormat {
        id: 2005,
        system: "hvtrace".into(),
        name: "vm_stopped".into(),
        common: standard_common(),
        fields: vec![
            FieldDef::int("ts_counter", "u64", 8, 8, false),
            FieldDef::int("pc", "u64", 16, 8, false),
            FieldDef::int("cpu", "u32", 24, 4, false),
            FieldDef::int("vm", "u32", 28, 4, false),
            FieldDef::int("seq", "u32", 32, 4, false),
        ],
        print_fmt:
            "\"vm=%u cpu=%u pc=0x%llx ts_counter=%llu seq=%u\", REC->vm, REC->cpu, REC->pc, REC->ts_counter, REC->seq"
                .into(),
    }
}

/// `hvtrace:clock_sync`.
pub fn clock_sync_format() -> EventFormat {
    EventFormat {
        id: 2003,
        system: "hvtrace".into(),
        name: "clock_sync".into(),
        common: standard_common(),
        fields: vec![
            FieldDef::int("counter", "u64", 8, 8, false),
            FieldDef::int("trace_clock_ns", "u64", 16, 8, false),
            FieldDef::int("freq_hz", "u64", 24, 8, false),
        ],
        print_fmt: "\"counter=%llu trace_clock_ns=%llu freq_hz=%llu\", REC->counter, REC->trace_clock_ns, REC->freq_hz"
            .into(),
    }
}

/// Formats of a synthetic trace: the kernel's `sched_switch` (id 316) and the hvtrace events.
pub fn formats() -> Vec<Arc<EventFormat>> {
    let mut sw = crate::text::sched_switch_format(316);
    sw.id = 316;
    vec![
        Arc::new(sw),
        Arc::new(rtos_switch_format()),
        Arc::new(rtos_probe_format()),
        Arc::new(clock_sync_format()),
    ]
}

/// RTOS tasks of the synthetic workload: (prio, name).
pub const RTOS_TASKS: &[(u32, &str)] = &[(5, "ctrl_loop"), (10, "sensor"), (63, "uC/OS-II Idle")];

/// Generates a synthetic trace, calling `sink` with events in time order.
///
/// `linux_switches` Linux `sched_switch` events on CPU 0 (three tasks, 50 µs apart); every
/// 1 ms the RTOS on CPU 1 runs `ctrl_loop` (prio 5) for 200 µs, recorded as `rtos_switch`
/// (and a probe hit) injected [`INJECT_DELAY_NS`] later on CPU 0; a `clock_sync` every 10 ms.
pub fn generate(linux_switches: u64, mut sink: impl FnMut(Event) -> Result<()>) -> Result<()> {
    let f = formats();
    let (sw, rs, rp, cs) = (f[0].clone(), f[1].clone(), f[2].clone(), f[3].clone());
    let tasks: [(i32, &str); 3] = [(0, "swapper/0"), (1201, "bash"), (1305, "rtos-ctl")];
    let ev = |format: &Arc<EventFormat>, ts: u64, cpu: u32, pid: i32, fields: Vec<Value>| Event {
        ts_ns: ts,
        cpu,
        pid,
        comm: Arc::from(""),
        format: format.clone(),
        fields,
        flags: 0,
        preempt_count: 0,
        buffer: 0,
        missed_before: Missed::None,
    };
    let s = |x: &str| Value::Str(x.into());
    let mut seq = 0u64;
    let mut pending: std::collections::VecDeque<Event> = std::collections::VecDeque::new();
    let step_ns = 50_000;
    let start_counter = 1_000_000u64;
    let t0 = counter_ns(start_counter);
    for i in 0..linux_switches {
        let ts = t0 + i * step_ns;
        // RTOS activity that happened before `ts` gets injected now.
        let (a, b) = (tasks[(i % 3) as usize], tasks[((i + 1) % 3) as usize]);
        if i % 200 == 0 {
            let counter = start_counter + (i * step_ns) / 16;
            let fields = vec![
                Value::UInt(counter),
                Value::UInt(counter_ns(counter)),
                Value::UInt(FREQ_HZ),
            ];
            pending.push_back(ev(&cs, counter_ns(counter), 0, a.0, fields));
        }
        if i % 20 == 5 {
            // ctrl_loop starts 3 µs before, ends 200 µs later (injected with the next batch).
            let c_in = start_counter + (ts - t0 - 3_000) / 16;
            for (k, (c, prev, next)) in [
                (c_in, (63u32, "uC/OS-II Idle"), (5u32, "ctrl_loop")),
                (c_in + 200_000 / 16, (5, "ctrl_loop"), (63, "uC/OS-II Idle")),
            ]
            .into_iter()
            .enumerate()
            {
                seq += 1;
                let inj = counter_ns(c) + INJECT_DELAY_NS;
                let state = if k == 0 { 0u64 } else { 0x02 };
                pending.push_back(ev(
                    &rs,
                    inj,
                    0,
                    a.0,
                    vec![
                        Value::UInt(c),
                        Value::UInt(1),
                        Value::UInt(prev.0 as u64),
                        Value::UInt(next.0 as u64),
                        Value::UInt(state),
                        Value::UInt(0),
                        s(prev.1),
                        s(next.1),
                        Value::UInt(seq),
                    ],
                ));
                if k == 0 {
                    seq += 1;
                    pending.push_back(ev(
                        &rp,
                        inj + 1,
                        0,
                        a.0,
                        vec![
                            Value::UInt(c + 10),
                            Value::UInt(1),
                            Value::UInt(7),
                            Value::UInt(0x4008_1234),
                            Value::UInt(5),
                            s("ctrl_loop"),
                            Value::UInt(seq),
                            s(&format!("Ctrl_Step cycle={seq} err=-3")),
                        ],
                    ));
                }
            }
        }
        // Emit pending events stamped before this switch, in time order.
        let mut ready: Vec<Event> = Vec::new();
        while let Some(p) = pending.front() {
            if p.ts_ns <= ts {
                ready.push(pending.pop_front().expect("front exists"));
            } else {
                break;
            }
        }
        ready.sort_by_key(|e| e.ts_ns);
        for e in ready {
            sink(e)?;
        }
        let fields = vec![
            s(a.1),
            Value::Int(a.0 as i64),
            Value::Int(120),
            Value::Int(1),
            s(b.1),
            Value::Int(b.0 as i64),
            Value::Int(120),
        ];
        sink(ev(&sw, ts, 0, a.0, fields))?;
    }
    let mut rest: Vec<Event> = pending.into_iter().collect();
    rest.sort_by_key(|e| e.ts_ns);
    for e in rest {
        sink(e)?;
    }
    Ok(())
}

/// Writes a synthetic `.dat` (v6) with `linux_switches` Linux switches to `out`.
pub fn write_dat<W: Write + Seek>(out: W, linux_switches: u64) -> Result<W> {
    let mut cmd = Cmdlines::default();
    cmd.insert(1201, "bash");
    cmd.insert(1305, "rtos-ctl");
    let header = DatHeader {
        cpus: 1,
        buffers: vec![String::new()],
        clock: "local".into(),
        cmdlines: cmd,
        ..Default::default()
    };
    let mut w = DatWriter::new(out, header, &formats())?;
    generate(linux_switches, |e| w.write(&e))?;
    w.finish_into()
}
