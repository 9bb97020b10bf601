//! The partitioned system in QEMU: Linux and the RTOS run at once, Linux's
//! `poweroff` ends QEMU cleanly, and a VM that reaches for another VM's
//! memory is stopped while the other keeps running.

use hv_trace_e2e::hv_trace;
use std::process::Command;
use std::time::Duration;

#[test]
fn linux_and_rtos_run_together_and_poweroff_ends_qemu_with_0() {
    let out = hv_trace(
        &["run", "--duration", "600", "--linux-script", "poweroff"],
        Duration::from_secs(900),
    )
    .unwrap();
    let console = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "hv-trace run failed:\n{console}\n{log}");
    assert!(
        console.contains("hv-trace linux: init done"),
        "Linux did not reach init:\n{console}"
    );
    let rtos_lines = console
        .lines()
        .filter(|l| l.starts_with("[rtos] ") && l.contains("RTOS-Task"))
        .count();
    assert!(
        rtos_lines >= 4,
        "the RTOS printed no task output while Linux booted:\n{console}"
    );
    assert!(console.contains("VM linux asked for SYSTEM_OFF"), "{console}");
    assert!(
        log.contains("the system powered off"),
        "QEMU should exit by itself: {log}"
    );
}

/// Assembles `source` into a guest ELF in `dir` that runs in the RTOS's
/// place (linked at its image's address, IPA 0x4010_0000).
fn guest_elf(dir: &std::path::Path, source: &str) -> std::path::PathBuf {
    let (src, obj, elf) = (dir.join("guest.s"), dir.join("guest.o"), dir.join("guest.elf"));
    std::fs::write(&src, source).unwrap();
    let ok = Command::new("aarch64-linux-gnu-as")
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .status()
        .unwrap();
    assert!(ok.success(), "assembling {}", src.display());
    let ok = Command::new("aarch64-linux-gnu-ld")
        .args(["-Ttext=0x40100000", "-e", "_start"])
        .arg(&obj)
        .arg("-o")
        .arg(&elf)
        .status()
        .unwrap();
    assert!(ok.success(), "linking {}", elf.display());
    elf
}

/// A guest in the RTOS's place that prints a line, then reads Linux's memory.
const INTRUDER: &str = r#"
    .global _start
_start:
    ldr     x1, =0x09000000
    adr     x2, msg
1:  ldrb    w3, [x2], #1
    cbz     w3, 2f
    str     w3, [x1]
    b       1b
2:  ldr     x4, =0x44000000
    ldr     x0, [x4]
    adr     x2, escaped
3:  ldrb    w3, [x2], #1
    cbz     w3, 4f
    str     w3, [x1]
    b       3b
4:  b       4b
msg:     .asciz "intruder: reading Linux memory at 0x44000000\n"
escaped: .asciz "intruder: the read went through\n"
"#;

#[test]
fn a_vm_reading_another_vms_memory_is_stopped_and_linux_keeps_running() {
    let dir = tempfile::tempdir().unwrap();
    let elf = guest_elf(dir.path(), INTRUDER);
    let out = hv_trace(
        &[
            "run",
            "--duration",
            "600",
            "--linux-script",
            "poweroff",
            "--rtos-elf",
            elf.to_str().unwrap(),
        ],
        Duration::from_secs(900),
    )
    .unwrap();
    let console = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "hv-trace run failed:\n{console}\n{log}");
    assert!(
        console.contains("[rtos] intruder: reading Linux memory at 0x44000000"),
        "{console}"
    );
    assert!(
        console.contains("VM 1 (rtos) on CPU1: read of IPA 0x44000000 outside its memory map"),
        "the hypervisor must name the refused access:\n{console}"
    );
    assert!(
        !console.contains("the read went through"),
        "isolation broken:\n{console}"
    );
    // Linux was not disturbed: it booted to init and powered off cleanly.
    assert!(console.contains("hv-trace linux: init done"), "{console}");
    assert!(log.contains("the system powered off"), "{log}");
}

/// 10,000 random hypercalls from Linux (the module's `hypercall_fuzz`, root
/// only): the hypervisor answers every one, neither VM stops, and the RTOS
/// keeps running its tasks.
#[test]
fn random_hypercalls_from_linux_never_crash_the_hypervisor_nor_disturb_the_rtos() {
    let sys = hv_trace_e2e::System::start(&[]).unwrap();
    let rtos_lines = |log: &str| {
        log.lines()
            .filter(|l| l.starts_with("[rtos] ") && l.contains("RTOS-Task4"))
            .count()
    };
    let before = rtos_lines(&sys.run_log());
    let out = sys
        .hv_trace(&[
            "exec",
            "echo 10000 > /sys/kernel/hvtrace/hypercall_fuzz; dmesg | grep hypercall_fuzz",
        ])
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("hypercall_fuzz: 10000 random hypercalls"), "{said}");
    std::thread::sleep(Duration::from_secs(3));
    let log = sys.run_log();
    for bad in ["VM stopped", "PANIC", "stopping this core", "unhandled trap"] {
        assert!(!log.contains(bad), "{bad}:\n{log}");
    }
    assert!(rtos_lines(&log) >= before + 2, "the RTOS stopped reporting:\n{log}");
    // Linux is fine too: the control channel answers.
    let out = sys.hv_trace(&["exec", "echo", "still-here"]).unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("still-here"));
    // Output without a final newline runs into the end marker's line: it is
    // output all the same, the status comes through, nothing waits.
    let out = sys.hv_trace(&["exec", "printf no-newline; (exit 3)"]).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "no-newline");
    assert_eq!(out.status.code(), Some(3));
    eprintln!("{}", said.trim());
    // Regression: `hv-trace stop` always took its whole 10 s wait and then
    // sent QEMU SIGTERM ("terminating on signal 15"): its poweroff never
    // reached the guest. Linux powers off, and QEMU ends by itself.
    let started = std::time::Instant::now();
    let out = sys.hv_trace(&["stop"]).unwrap();
    let took = started.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let qemu = std::fs::read_to_string(sys.path().join("qemu.stderr")).unwrap_or_default();
    assert!(!qemu.contains("terminating on signal"), "QEMU was killed: {qemu}");
    assert!(took < Duration::from_secs(8), "hv-trace stop took {took:?}");
    eprintln!("hv-trace stop: {:.1} s", took.as_secs_f64());
}

#[test]
fn four_core_layout_runs_linux_on_three_cores_and_the_rtos_on_the_fourth() {
    let out = hv_trace(
        &["run", "--cores", "4", "--duration", "600", "--linux-script", "poweroff"],
        Duration::from_secs(900),
    )
    .unwrap();
    let console = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{console}");
    assert!(console.contains("4 cores, partition 4-core"), "{console}");
    assert!(console.contains("CPU3: entering VM 1 (rtos)"), "{console}");
    assert!(
        console.contains("CPU2: entering VM 0 (linux)"),
        "Linux starts its own secondaries:\n{console}"
    );
    let init = console
        .lines()
        .find(|l| l.contains("hv-trace linux: init done"))
        .unwrap_or_default();
    // The hypervisor's RTOS lines share the UART with Linux, so text may follow
    // on the same line: look for Linux's count, not the line's end.
    assert!(init.contains(", 3 cpu)"), "Linux should see three cores: {init:?}");
    assert!(
        console
            .lines()
            .any(|l| l.starts_with("[rtos] ") && l.contains("RTOS-Task1")),
        "{console}"
    );
}

/// A guest in the RTOS's place that waits until the instruction at `site`
/// is probed (it reads the word back and sees an `HVC`), then writes new
/// code over it, and from then on prints the word at `site` as hex.
const REWRITER: &str = r#"
    .global _start
    .global site
_start:
    ldr     x1, =0x09000000
    adr     x2, ready
    bl      puts
    adr     x6, site
site:
    nop
    ldr     w7, [x6]
    mov     w9, #0x0002
    movk    w9, #0xd400, lsl #16
    and     w8, w7, #0xffe0001f
    cmp     w8, w9
    b.ne    site
    // Probed: write `mov x5, #7` over the HVC, as self-modifying code does.
    mov     w10, #0x00e5
    movk    w10, #0xd280, lsl #16
    str     w10, [x6]
    dc      cvau, x6
    dsb     ish
    ic      ivau, x6
    dsb     ish
    isb
    adr     x2, rewrote
    bl      puts
1:  adr     x2, word
    bl      puts
    ldr     w7, [x6]
    mov     x11, #28
2:  lsr     w12, w7, w11
    and     w12, w12, #0xf
    cmp     w12, #10
    add     w13, w12, #'0'
    add     w14, w12, #('a' - 10)
    csel    w12, w13, w14, lt
    str     w12, [x1]
    subs    x11, x11, #4
    b.ge    2b
    mov     w12, #'\n'
    str     w12, [x1]
    mov     x15, #0x4000000
3:  subs    x15, x15, #1
    b.ne    3b
    b       1b
puts:
    ldrb    w3, [x2], #1
    cbz     w3, 4f
    str     w3, [x1]
    b       puts
4:  ret
ready:   .asciz "rewriter: ready\n"
rewrote: .asciz "rewriter: rewrote the probed word\n"
word:    .asciz "rewriter: site="
"#;

/// Regression: removing a probe wrote the word it had displaced back over
/// whatever the guest had written there since (self-modifying code, a
/// module loaded over a probed area, freed init code).
#[test]
fn removing_a_probe_leaves_code_the_guest_rewrote() {
    let dir = tempfile::tempdir().unwrap();
    let elf = guest_elf(dir.path(), REWRITER);
    let sys = hv_trace_e2e::System::start(&["--rtos-elf", elf.to_str().unwrap()]).unwrap();
    assert!(sys.run_log().contains("rewriter: ready"), "{}", sys.run_log());
    let out = sys
        .hv_trace(&["probe", "add", "site", "--vm", "rtos", "--kind", "plain"])
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let started = std::time::Instant::now();
    while !sys.run_log().contains("rewriter: site=") && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = sys.hv_trace(&["probe", "remove", "site", "--vm", "rtos"]).unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Later lines of the guest still show its own code at the site.
    let before = sys.run_log().matches("rewriter: site=").count();
    let started = std::time::Instant::now();
    while sys.run_log().matches("rewriter: site=").count() < before + 2 && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = sys.run_log();
    assert!(log.contains("rewriter: rewrote the probed word"), "{log}");
    assert!(
        log.contains("the guest rewrote the word (0xd28000e5, not the probe's HVC); left as it is"),
        "the hypervisor must say so:\n{log}"
    );
    let last = log
        .lines()
        .rev()
        .find_map(|l| l.split("rewriter: site=").nth(1))
        .unwrap();
    assert_eq!(last.trim(), "d28000e5", "the guest's code was overwritten:\n{log}");
    // Linux runs on.
    let out = sys.hv_trace(&["exec", "echo", "linux-alive"]).unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("linux-alive"));
}

/// Regression: once the RTOS's VM was stopped (it faulted), `probe add`
/// waited for its halted core and failed with "busy", and `probe list` did
/// not say why. Now the hypervisor refuses with "stopped" at once.
#[test]
fn a_stopped_vm_says_so_and_refuses_probes() {
    let dir = tempfile::tempdir().unwrap();
    let elf = guest_elf(dir.path(), INTRUDER);
    let sys = hv_trace_e2e::System::start(&["--rtos-elf", elf.to_str().unwrap()]).unwrap();
    assert!(sys.run_log().contains("VM stopped"), "{}", sys.run_log());
    let out = sys
        .hv_trace(&["probe", "add", "_start", "--vm", "rtos", "--kind", "plain"])
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("the VM is stopped"), "{err}");
    let out = sys.hv_trace(&["probe", "list"]).unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(list.contains("vm=1 stopped"), "{list}");
    // Linux runs on, and its own probes still work.
    let out = sys.hv_trace(&["probe", "add", "__switch_to", "--vm", "linux"]).unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
