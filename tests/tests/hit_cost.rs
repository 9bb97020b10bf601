//! The hypervisor's cost per probe hit, counted in instructions by
//! `hv-trace profile-hits` (QEMU single-stepping, exec log of the
//! hypervisor's code). Instruction counts do not depend on how loaded the
//! host is, so this pins the hit path's cost: about 650 instructions per
//! Linux hit and 2,100 per RTOS hit today, 2,229 and ~7,900 before the hit
//! path was optimised.

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
