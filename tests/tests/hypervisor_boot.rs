//! The hypervisor boots at EL2 in QEMU, prints its banner and powers the
//! machine off by itself (QEMU exits 0) — driven through the real CLI.

use hv_trace_e2e::{build_artifacts, hv_trace};
use std::path::Path;
use std::time::Duration;

#[test]
fn build_hypervisor_json_names_an_existing_elf() {
    let built = build_artifacts("hypervisor", &[]).unwrap();
    let path = built["hypervisor"].as_str().expect("a path");
    assert!(Path::new(path).is_absolute(), "{path}");
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..4], b"\x7fELF");
    assert_eq!(u16::from_le_bytes([bytes[18], bytes[19]]), 183, "EM_AARCH64");
}

#[test]
fn run_shows_banner_and_powers_off_cleanly() {
    let out = hv_trace(&["run", "--duration", "30"], Duration::from_secs(300)).unwrap();
    let console = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "hv-trace run failed:\n{console}\n{log}");
    assert!(
        console.contains("hv-trace hypervisor 0.1.0 starting at EL2 on CPU0"),
        "{console}"
    );
    assert!(console.contains("PSCI SYSTEM_OFF"), "{console}");
    assert!(
        log.contains("the system powered off"),
        "QEMU should exit by itself: {log}"
    );
}

#[test]
fn run_rejects_a_nonsense_duration() {
    let out = hv_trace(&["run", "--duration", "0"], Duration::from_secs(60)).unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--duration must be a positive number"));
}
