//! Faults and load on the real system: what a mixed-criticality system does
//! to the tracer, and what must survive it.

use hv_trace_e2e::{ok, System};
use std::collections::BTreeMap;

/// The module's counters (`/sys/kernel/hvtrace/stats`, `hyp_*` from the
/// hypervisor).
fn stats(sys: &System) -> BTreeMap<String, u64> {
    let text = ok(
        sys.hv_trace(&["exec", "cat", "/sys/kernel/hvtrace/stats"]).unwrap(),
        "stats",
    );
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Centiseconds a fixed shell loop takes in Linux (from /proc/uptime): how
/// much of its CPU Linux's own tasks get.
fn shell_loop_cs(sys: &System) -> u64 {
    let text = ok(
        sys.hv_trace(&[
            "exec",
            "read a _ < /proc/uptime; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; \
             read b _ < /proc/uptime; echo \"$a $b\"",
        ])
        .unwrap(),
        "the shell loop",
    );
    let v: Vec<f64> = text.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    assert_eq!(v.len(), 2, "{text}");
    ((v[1] - v[0]) * 100.0).round() as u64
}

/// A probe in the inner loop of the paper app's busy work hits hundreds of
/// thousands of times a second. With a small ring (64 records) it fills:
/// every record is delivered or dropped, and every drop counted alike by the
/// hypervisor, the module's ring counters and the gaps in the records'
/// sequence numbers; Linux's own tasks are not starved (a drain that held
/// the CPU would leave a shell loop a few percent of it: 20× slower); once
/// the flood ends, tracing is whole again.
#[test]
fn a_flood_of_probe_hits_is_dropped_exactly_and_linux_is_not_starved() {
    let sys = System::start(&["--ring-order", "6"]).unwrap();
    ok(sys.hv_trace(&["probe", "add", "OSCtxSw"]).unwrap(), "probe add OSCtxSw");
    let calm = shell_loop_cs(&sys);
    ok(
        sys.hv_trace(&["exec", "echo 1 > /sys/kernel/hvtrace/enable"]).unwrap(),
        "recording on",
    );
    // App_Work's loop: madd, sub, cmn, b.ne; the probe is on the sub.
    let added = ok(
        sys.hv_trace(&["probe", "add", "App_Work+0x24"]).unwrap(),
        "the flood's probe",
    );
    assert!(added.contains("App_Work+0x24"), "{added}");
    std::thread::sleep(std::time::Duration::from_secs(2));
    let flooded = shell_loop_cs(&sys);
    let during = stats(&sys);
    ok(
        sys.hv_trace(&["probe", "remove", "App_Work+0x24"]).unwrap(),
        "removing the flood",
    );
    // The next switch record after the flood shows its last gap; then
    // recording off, the rings drained.
    std::thread::sleep(std::time::Duration::from_secs(2));
    ok(
        sys.hv_trace(&["exec", "echo 0 > /sys/kernel/hvtrace/enable"]).unwrap(),
        "recording off",
    );
    std::thread::sleep(std::time::Duration::from_secs(1));
    let after = stats(&sys);
    eprintln!(
        "flood: shell loop {calm} cs calm, {flooded} cs flooded; {} hits, {} records, {} drops, {} doorbells",
        after["hyp_probe_hits"], after["hyp_records"], after["hyp_drops"], after["irqs"]
    );
    assert!(
        during["hyp_probe_hits"] > 100_000,
        "a flood: {} hits",
        during["hyp_probe_hits"]
    );
    assert!(after["hyp_drops"] > 0, "a 64-record ring overflows: {after:?}");
    assert_eq!(after["hyp_drops"], after["ring_drops"], "{after:?}");
    assert_eq!(after["hyp_drops"], after["seq_gaps"], "{after:?}");
    assert_eq!(after["hyp_records"], after["records"], "{after:?}");
    assert!(
        flooded <= calm * 8 + 20,
        "Linux's shell loop took {flooded} cs in the flood against {calm} cs without"
    );

    // Tracing recovers: a recording after the flood is whole.
    let out = tempfile::tempdir().unwrap();
    let text = ok(
        sys.hv_trace(&["record", "--duration", "3", "--out", out.path().to_str().unwrap()])
            .unwrap(),
        "record after the flood",
    );
    assert!(
        text.contains("hvtrace rings 0") && !text.contains("incomplete"),
        "{text}"
    );
}
