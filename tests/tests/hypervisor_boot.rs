//! The hypervisor boots at EL2 in QEMU: alone it prints its banner and powers
//! the machine off by itself (QEMU exits 0); with the RTOS image it runs the
//! RTOS on CPU1 behind stage-2 — driven through the real CLI.

use hv_trace_e2e::{build_artifacts, hv_trace, run_bounded};
use std::path::Path;
use std::process::Command;
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
fn hypervisor_alone_shows_banner_and_powers_off_cleanly() {
    let built = build_artifacts("hypervisor", &[]).unwrap();
    let elf = built["hypervisor"].as_str().unwrap();
    let out = run_bounded(
        Command::new("qemu-system-aarch64").args([
            "-M",
            "virt,virtualization=on,gic-version=3",
            "-cpu",
            "cortex-a72",
            "-smp",
            "2",
            "-m",
            "1G",
            "-nographic",
            "-nic",
            "none",
            "-kernel",
            elf,
        ]),
        Duration::from_secs(60),
    )
    .unwrap();
    let console = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "QEMU should exit 0 by PSCI SYSTEM_OFF: {:?}\n{console}",
        out.status
    );
    assert!(
        console.contains("hv-trace hypervisor 0.1.0 starting at EL2 on CPU0"),
        "{console}"
    );
    assert!(console.contains("PSCI SYSTEM_OFF"), "{console}");
}

#[test]
fn run_boots_the_rtos_on_cpu1_behind_stage2() {
    let out = hv_trace(&["run", "--duration", "8"], Duration::from_secs(600)).unwrap();
    let console = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "hv-trace run failed:\n{console}\n{log}");
    assert!(
        console.contains("hv-trace hypervisor 0.1.0 starting at EL2 on CPU0"),
        "{console}"
    );
    assert!(
        console.contains("VM 1 (rtos): IPA 0x40000000..0x41000000 -> PA 0x41000000"),
        "{console}"
    );
    assert!(console.contains("CPU1: entering VM 1 (rtos)"), "{console}");
    // The RTOS's own output, through the emulated UART, tagged with its VM.
    for task in ["RTOS-Task1", "RTOS-Task2", "RTOS-Task3", "RTOS-Task4"] {
        assert!(
            console.lines().any(|l| l.starts_with("[rtos] ") && l.contains(task)),
            "{task} missing:\n{console}"
        );
    }
    assert!(log.contains("stopped after 8.0 s"), "{log}");
}

#[test]
fn run_rejects_a_nonsense_duration() {
    let out = hv_trace(&["run", "--duration", "0"], Duration::from_secs(60)).unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--duration must be a positive number"));
}
