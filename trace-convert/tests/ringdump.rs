//! hvtrace ring dumps (guest-probe's ABI) read, merged and written as sched_switch.

use std::sync::Arc;

use guest_probe::abi::ring::OwnedRing;
use guest_probe::abi::{Record, RecordKind};
use trace_convert::pipeline::prepare;
use trace_convert::{InputKind, Trace};

fn rec(kind: RecordKind, ts: u64, pc: u64, prev: (u8, &str), next: (u8, &str), seq: u32) -> Record {
    let mut r = Record {
        timestamp: ts,
        pc,
        kind: kind as u16,
        probe_id: 7,
        vm: 1,
        cpu: 1,
        prev_prio: prev.0,
        next_prio: next.0,
        prev_state: 0,
        next_state: 0,
        seq,
        prev_name: [0; 16],
        next_name: [0; 16],
    };
    r.prev_name[..prev.1.len()].copy_from_slice(prev.1.as_bytes());
    r.next_name[..next.1.len()].copy_from_slice(next.1.as_bytes());
    r
}

/// A one-ring dump: two clock syncs (62.5 MHz: 16 ns/tick from 5 s), a switch, a probe hit,
/// a lost-records marker and a switch back.
pub fn dump() -> Vec<u8> {
    let ring = OwnedRing::new(16, 1).unwrap();
    let mut p = ring.ring().producer();
    let idle = (63, "uC/OS-II Idle");
    let ctl = (5, "ctrl_loop");
    for r in [
        rec(RecordKind::ClockSync, 1000, 5_000_016_000, idle, idle, 1),
        rec(RecordKind::ContextSwitch, 2000, 0, idle, ctl, 2),
        rec(RecordKind::ProbeHit, 2100, 0x4008_0000, ctl, (0, ""), 3),
        rec(RecordKind::Lost, 2200, 4, idle, idle, 4),
        rec(RecordKind::ContextSwitch, 3000, 0, ctl, idle, 9),
        rec(RecordKind::ClockSync, 1_001_000, 5_016_016_000, idle, idle, 10),
    ] {
        p.push(&r).unwrap();
    }
    ring.to_bytes()
}

#[test]
fn ring_dump_reads_as_hvtrace_events_on_the_counter_clock() {
    let t = Trace::from_bytes(Arc::new(dump())).unwrap();
    assert_eq!(t.kind(), InputKind::RingDump);
    let evs: Vec<_> = t.events().map(|e| e.unwrap()).collect();
    assert_eq!(evs.len(), 5);
    assert_eq!(evs[1].name(), "rtos_switch");
    assert_eq!(evs[1].ts_ns, 5_000_032_000);
    assert_eq!(evs[1].str("next_comm"), Some("ctrl_loop"));
    assert_eq!(evs[2].int("pc"), Some(0x4008_0000));
    assert_eq!(evs[3].missed_before, trace_convert::Missed::Count(4));
}

#[test]
fn merged_ring_dump_gives_sched_switch_on_the_rtos_cpu() {
    let traces = [Trace::from_bytes(Arc::new(dump())).unwrap()];
    let (meta, events) = prepare(&traces, true).unwrap();
    assert!(meta.cpus >= 2);
    let sw: Vec<_> = events
        .map(|e| e.unwrap())
        .filter(|e| e.is("sched", "sched_switch"))
        .collect();
    assert_eq!(sw.len(), 2);
    assert_eq!((sw[0].cpu, sw[0].ts_ns), (1, 5_000_032_000));
    assert_eq!(sw[0].int("next_pid"), Some(101_005));
    assert_eq!(sw[1].int("prev_pid"), Some(101_005));
}

#[test]
fn corrupt_ring_dump_names_offset() {
    let mut d = dump();
    d[0] ^= 0xff;
    // No longer a dump: the text reader refuses binary data at offset 0.
    let e = Trace::from_bytes(Arc::new(d)).unwrap_err().to_string();
    assert!(e.contains("offset 0x0"), "{e}");
    let d = dump();
    let e = Trace::from_bytes(Arc::new(d[..300].to_vec())).unwrap_err().to_string();
    assert!(e.contains("offset") && e.contains("truncated"), "{e}");
}
