//! The hypervisor's cost per probe hit, counted in instructions by
//! `hv-trace profile-hits` (QEMU single-stepping, exec log of the
//! hypervisor's code). Instruction counts do not depend on how loaded the
//! host is, so this pins the hit path's cost: 437 instructions per Linux hit
//! and 1,081 per RTOS hit today, 2,229 and ~7,900 before the hit path was
//! optimised. `profile-kernel`, which counts a bench workload's instructions
//! the same way, is checked here too.

use hv_trace_e2e::hv_trace;
use std::time::Duration;

/// Room for a first build of every image (kernel included) plus the run.
const LIMIT: Duration = Duration::from_secs(3600);

/// The group of `vm`'s traps of `class` in the report.
fn group<'a>(report: &'a serde_json::Value, vm: &str, class: &str) -> &'a serde_json::Value {
    report["groups"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["vm"] == vm && g["class"] == class))
        .unwrap_or_else(|| panic!("no {vm} {class} group in {report:#}"))
}

#[test]
fn probe_hits_stay_cheap_in_hypervisor_instructions() {
    let o = hv_trace(&["profile-hits", "--json", "--seconds", "2"], LIMIT).unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "hv-trace profile-hits failed:\n{stdout}\n{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("no JSON ({e}):\n{stdout}\n{stderr}"));
    assert_eq!(report["truncated"], false, "{report:#}");

    for (vm, min_hits, max_median) in [("linux", 20, 1_000), ("rtos", 5, 3_000)] {
        let hits = group(&report, vm, "probe_hit");
        let n = hits["traps"].as_u64().unwrap();
        assert!(
            n >= min_hits,
            "only {n} {vm} probe hits in 2 s (want >= {min_hits}): {report:#}"
        );
        let median = hits["median"].as_u64().unwrap();
        assert!(
            median < max_median,
            "a {vm} probe hit costs {median} hypervisor instructions (median), want < {max_median}: {hits:#}"
        );
        // The breakdown adds up to the median hit.
        let sum: u64 = hits["median_trap"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["instructions"].as_u64().unwrap())
            .sum();
        assert_eq!(sum, median, "{hits:#}");
    }
}

/// `hv-trace profile-kernel` counts only context1's timed part: a context1
/// loop is two context switches, so the traced mode shows two probe hits'
/// worth of hypervisor instructions and two records per loop, and the
/// untraced mode next to none.
#[test]
fn profile_kernel_counts_two_hits_per_context1_loop() {
    let args = [
        "profile-kernel",
        "--test",
        "context1",
        "--modes",
        "hyp,traced",
        "--seconds",
        "0.05",
        "--top",
        "5",
        "--json",
    ];
    let o = hv_trace(&args, LIMIT).unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(
        o.status.success(),
        "hv-trace profile-kernel failed:\n{stdout}\n{stderr}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("no JSON ({e}):\n{stdout}\n{stderr}"));
    let mode = |name: &str| {
        report["modes"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["mode"] == name))
            .unwrap_or_else(|| panic!("no {name} mode in {report:#}"))
    };
    let cpu0 = |m: &serde_json::Value, key: &str| m["per_loop"][0][key].as_f64().unwrap();
    let (hyp, traced) = (mode("hyp"), mode("traced"));
    for m in [hyp, traced] {
        assert!(m["loops"].as_u64().unwrap() >= 100, "{m:#}");
    }
    assert!(
        cpu0(hyp, "hyp") < 50.0,
        "untraced context1 traps to the hypervisor: {hyp:#}"
    );
    // Two hits of a few hundred instructions each (437 today).
    let per_loop = cpu0(traced, "hyp");
    assert!(
        (500.0..2_000.0).contains(&per_loop),
        "{per_loop} hypervisor instructions a loop: {traced:#}"
    );
    let loops = traced["loops"].as_u64().unwrap() as f64;
    let written = traced["records"]["written"].as_u64().unwrap() as f64;
    assert!(
        (1.9..2.5).contains(&(written / loops)),
        "{written} records for {loops} loops: {traced:#}"
    );
    // ~7,900 today. Counting the whole run instead of the window would add
    // start-up and exit (~1.5 M instructions) over ~800 loops: ~9,800.
    let total = cpu0(hyp, "total");
    assert!(
        (3_000.0..9_000.0).contains(&total),
        "{total} instructions a context1 loop: {hyp:#}"
    );
}
