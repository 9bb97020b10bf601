//! Faults and load on the real system: what a mixed-criticality system does
//! to the tracer, and what must survive it.

use hv_trace_e2e::{finished, ok, refused, System};
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

/// A figure from /proc/meminfo, in kB.
fn meminfo_kb(sys: &System, key: &str) -> u64 {
    let text = ok(sys.hv_trace(&["exec", "cat", "/proc/meminfo"]).unwrap(), "meminfo");
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in:\n{text}"))
}

/// `rmmod hvtrace` / `insmod` 100 times while the RTOS's switches keep
/// coming with their doorbells (a 64-record ring, so the gaps while no
/// module is loaded overflow it): no crash; tracing and the probes carry on
/// across every reload (the hypervisor owns them); every record the
/// hypervisor wrote is delivered by one module or another, and every one it
/// could not write is counted alike by the hypervisor and the rings'
/// headers; the rings end empty, and the module's memory comes back.
#[test]
fn the_module_comes_and_goes_while_records_keep_coming() {
    let sys = System::start(&["--ring-order", "6"]).unwrap();
    for site in ["OSCtxSw", "OSIntCtxSw"] {
        ok(sys.hv_trace(&["probe", "add", site]).unwrap(), "probe add");
    }
    ok(
        sys.hv_trace(&["exec", "echo 1 > /sys/kernel/hvtrace/enable"]).unwrap(),
        "recording on",
    );
    // One reload first, so the figures compare like with like (the first
    // unload of the boot-time module frees what loading it from the
    // initramfs kept).
    ok(
        sys.hv_trace(&["exec", "rmmod hvtrace && insmod /lib/modules/hvtrace.ko"])
            .unwrap(),
        "a first reload",
    );
    let vmalloc = meminfo_kb(&sys, "VmallocUsed");
    let slab = meminfo_kb(&sys, "Slab");
    // Out for 20 ms (a few records wait) or 700 ms (the ring overflows).
    for round in 0..4 {
        let text = ok(
            sys.hv_trace(&[
                "exec",
                "for i in $(seq 25); do rmmod hvtrace || exit 1; \
                 if [ $((i % 2)) = 0 ]; then usleep 700000; else usleep 20000; fi; \
                 insmod /lib/modules/hvtrace.ko || exit 2; usleep 50000; done; echo ROUND-OK",
            ])
            .unwrap(),
            "rmmod/insmod",
        );
        assert!(text.contains("ROUND-OK"), "round {round}: {text}");
    }
    let on = ok(
        sys.hv_trace(&["exec", "cat /sys/kernel/hvtrace/enable"]).unwrap(),
        "enable",
    );
    assert_eq!(on.trim(), "1", "a module loaded while tracing is on says so");
    let listed = ok(sys.hv_trace(&["probe", "list"]).unwrap(), "probe list");
    assert!(listed.contains("OSCtxSw") && listed.contains("OSIntCtxSw"), "{listed}");
    ok(
        sys.hv_trace(&["exec", "echo 0 > /sys/kernel/hvtrace/enable"]).unwrap(),
        "recording off",
    );
    std::thread::sleep(std::time::Duration::from_secs(1));
    let after = stats(&sys);
    let log = ok(
        sys.hv_trace(&["exec", "dmesg | grep 'unloaded after'"]).unwrap(),
        "dmesg",
    );
    let unloads: Vec<u64> = log
        .lines()
        .filter_map(|l| {
            l.split_once("hvtrace unloaded after ")?
                .1
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(unloads.len(), 101, "every unload said what it delivered:\n{log}");
    let delivered: u64 = unloads.iter().sum::<u64>() + after["records"];
    eprintln!(
        "100 reloads: {} records written, {delivered} delivered by 102 modules, {} dropped ({} in the rings' headers); \
         VmallocUsed {vmalloc} → {} kB, Slab {slab} → {} kB",
        after["hyp_records"],
        after["hyp_drops"],
        after["ring_drops"],
        meminfo_kb(&sys, "VmallocUsed"),
        meminfo_kb(&sys, "Slab"),
    );
    assert_eq!(
        delivered, after["hyp_records"],
        "every record written was delivered: {after:?}"
    );
    assert!(
        after["hyp_drops"] > 0,
        "700 ms without a module overflows 64 records: {after:?}"
    );
    assert_eq!(after["hyp_drops"], after["ring_drops"], "{after:?}");
    let text = ok(
        sys.hv_trace(&["exec", "cat", "/sys/kernel/hvtrace/stats"]).unwrap(),
        "stats",
    );
    let rings: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("ring") && l.contains(" cpu="))
        .collect();
    assert!(
        !rings.is_empty() && rings.iter().all(|l| l.contains(" fill=0 ")),
        "{text}"
    );
    assert_eq!(
        meminfo_kb(&sys, "VmallocUsed"),
        vmalloc,
        "the module's memory came back"
    );
    // While no module drained, the hypervisor said so on the console.
    let console = sys.run_log();
    let said: Vec<u64> = console
        .lines()
        .filter_map(|l| {
            l.split_once("trace rings full: ")?
                .1
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert!(
        !said.is_empty() && said.iter().all(|&n| n > 0 && n <= after["hyp_drops"]),
        "the hypervisor's drop reports {said:?} (drops {})",
        after["hyp_drops"]
    );
    let slab_now = meminfo_kb(&sys, "Slab");
    assert!(slab_now < slab + 512, "Slab grew from {slab} to {slab_now} kB");
    // The RTOS never noticed.
    assert!(!console.contains("panic") && !console.contains("Oops"), "{console}");
    let rtos_overruns = console
        .lines()
        .rfind(|l| l.contains("[rtos]") && l.contains("overruns"))
        .unwrap_or_default();
    assert!(rtos_overruns.contains(" 0 overruns"), "{rtos_overruns}");
}

/// What `cmd` printed in the guest, whatever its status.
fn text_of(sys: &System, cmd: &str) -> String {
    hv_trace_e2e::text(&sys.hv_trace(&["exec", cmd]).unwrap())
}

/// RTOS report lines (`[rtos] … overruns`) after the first line containing `mark`.
fn rtos_reports_after<'a>(console: &'a str, mark: &str) -> Vec<&'a str> {
    let from = console
        .find(mark)
        .unwrap_or_else(|| panic!("no {mark:?} in:\n{console}"));
    console[from..]
        .lines()
        .filter(|l| l.contains("[rtos]") && l.contains("overruns"))
        .collect()
}

/// Linux panics while the RTOS is probed and its records flow: the RTOS
/// keeps its deadlines and its console, and the hypervisor runs on.
#[test]
fn linux_dies_and_the_rtos_lives_on() {
    let sys = System::start(&["--ring-order", "6"]).unwrap();
    ok(sys.hv_trace(&["probe", "add", "OSCtxSw"]).unwrap(), "probe add OSCtxSw");
    ok(
        sys.hv_trace(&["exec", "echo 1 > /sys/kernel/hvtrace/enable"]).unwrap(),
        "recording on",
    );
    ok(
        sys.hv_trace(&["exec", "(sleep 1; echo c > /proc/sysrq-trigger) > /dev/null 2>&1 &"])
            .unwrap(),
        "a panic in a second",
    );
    // Wait for the panic, then 25 s of the RTOS alone.
    let started = std::time::Instant::now();
    while !sys.run_log().contains("Kernel panic") {
        assert!(
            started.elapsed().as_secs() < 60,
            "Linux did not panic:\n{}",
            sys.run_log()
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    std::thread::sleep(std::time::Duration::from_secs(25));
    let console = sys.run_log();
    let reports = rtos_reports_after(&console, "Kernel panic");
    // Four tasks a second: ≥ 20 s of reports after the panic, no overrun.
    assert!(
        reports.len() >= 80,
        "{} RTOS reports after the panic:\n{console}",
        reports.len()
    );
    assert!(
        reports.iter().all(|l| l.trim_end().ends_with(" 0 overruns")),
        "an RTOS task overran after Linux died:\n{}",
        reports.join("\n")
    );
    // The hypervisor ran on without a complaint: a panicked Linux still
    // takes its interrupts (panic() loops with them on), so its module's
    // hard-IRQ half keeps draining the ring and nothing is dropped here;
    // records nobody drains at all are counted and said on the console
    // (see the module test: `trace rings full`).
    let after = &console[console.find("Kernel panic").unwrap()..];
    assert!(!after.contains("[hyp E]"), "{after}");
    eprintln!(
        "after Linux's panic: {} RTOS reports, all without overruns",
        reports.len()
    );
}

/// The RTOS faults on its own (a data abort its BSP reports, then powers
/// off): only its VM stops; the trace recorded meanwhile shows it stop, the
/// probe listing says so, new probes on it are refused, and Linux runs on.
#[test]
fn the_rtos_dies_and_linux_lives_on() {
    let sys = System::start(&[]).unwrap();
    ok(sys.hv_trace(&["probe", "add", "OSCtxSw"]).unwrap(), "probe add OSCtxSw");
    let out = tempfile::tempdir().unwrap();
    let rec = sys.record_in_background(&["--duration", "8", "--out", out.path().to_str().unwrap()]);
    // The fault comes once the recording streams (its agent runs), 2 s in.
    let started = std::time::Instant::now();
    while !text_of(&sys, "pidof hvtrace-stream")
        .chars()
        .any(|c| c.is_ascii_digit())
    {
        assert!(started.elapsed().as_secs() < 60, "the recording did not start");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    ok(
        sys.hv_trace(&["set", "App_Fault", "0x1000"]).unwrap(),
        "a fault for the RTOS",
    );
    let summary = finished(rec, "the recording across the fault");
    // The stop is not an RTOS task's event: the file's count still equals the module's.
    assert!(!summary.contains("lost without a count"), "{summary}");
    let console = sys.run_log();
    assert!(
        console.contains("FAULT: ESR="),
        "the RTOS reported its fault:\n{console}"
    );
    assert!(
        console
            .lines()
            .any(|l| l.contains("asked to power off or reset (PSCI) at pc") && l.contains("VM stopped")),
        "the hypervisor stopped the RTOS's VM:\n{console}"
    );
    let report = std::process::Command::new("trace-cmd")
        .arg("report")
        .arg(out.path().join("guest.dat"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&report.stdout);
    let stop = text
        .lines()
        .find(|l| l.contains("vm_stopped:"))
        .unwrap_or_else(|| panic!("no vm_stopped event in the recording ({summary})"));
    assert!(stop.contains("vm=1"), "{stop}");
    // The RTOS's switches end at the stop.
    let last_switch = text.lines().filter(|l| l.contains("rtos_switch:")).count();
    assert!(last_switch > 50, "{summary}");
    let listed = ok(sys.hv_trace(&["probe", "list"]).unwrap(), "probe list");
    assert!(listed.contains("stopped"), "{listed}");
    refused(
        sys.hv_trace(&["probe", "add", "OSTimeDly"]).unwrap(),
        "a probe in the stopped RTOS",
        "stopped",
    );
    // Linux runs on, its trace too.
    let alive = ok(sys.hv_trace(&["exec", "echo", "still-here"]).unwrap(), "Linux");
    assert!(alive.contains("still-here"));
    let after = tempfile::tempdir().unwrap();
    let text = ok(
        sys.hv_trace(&["record", "--duration", "2", "--out", after.path().to_str().unwrap()])
            .unwrap(),
        "a recording of Linux alone",
    );
    assert!(!text.contains("incomplete"), "{text}");
    eprintln!("the RTOS stopped: {stop}");
}

/// The RTOS lies to the tracer while it is probed (the paper app's
/// `App_Lie`: OSTCBCur NULL, unmapped, on a device outside the VM's RAM, a
/// TCB whose name pointer is unmapped, one whose name pointer points at
/// itself): every hit that could not read the task says so
/// (`<unreadable>`, counted), nothing else is read, the names stay bounded,
/// and both OSes run on, the RTOS without an overrun.
#[test]
fn a_guest_that_lies_to_the_tracer_is_not_followed() {
    let sys = System::start(&[]).unwrap();
    for site in ["OSCtxSw", "App_LiePoint"] {
        ok(sys.hv_trace(&["probe", "add", site]).unwrap(), "probe add");
    }
    let out = tempfile::tempdir().unwrap();
    let rec = sys.record_in_background(&["--duration", "14", "--out", out.path().to_str().unwrap()]);
    std::thread::sleep(std::time::Duration::from_secs(3));
    let mut unreadable = Vec::new();
    let count = |sys: &System| stats(sys).get("tcb_unreadable").copied().unwrap_or(0);
    for mode in 1..=5 {
        ok(sys.hv_trace(&["set", "App_Lie", &mode.to_string()]).unwrap(), "a lie");
        // The previous lie's last hits are drained first.
        std::thread::sleep(std::time::Duration::from_millis(400));
        let before = count(&sys);
        std::thread::sleep(std::time::Duration::from_millis(1500));
        unreadable.push(count(&sys) - before);
    }
    ok(sys.hv_trace(&["set", "App_Lie", "0"]).unwrap(), "the truth");
    let summary = finished(rec, "the recording across the lies");
    eprintln!("hits marked unreadable per lie (NULL, unmapped, device, name unmapped, name loops): {unreadable:?}");
    // Each lie of an unreadable task is marked, about 20 a second (each of
    // Task1's jobs); a name that points at itself is read, bounded.
    for (mode, n) in unreadable.iter().enumerate().take(4) {
        assert!(*n >= 10, "lie {}: {n} hits marked unreadable", mode + 1);
    }
    assert!(
        unreadable[4] <= 1,
        "a readable (if odd) name is not a fault: {unreadable:?}"
    );
    let report = std::process::Command::new("trace-cmd")
        .args(["report", "-N"])
        .arg(out.path().join("guest.dat"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&report.stdout);
    let lies: Vec<&str> = text.lines().filter(|l| l.contains("rtos_probe:")).collect();
    let marked = lies.iter().filter(|l| l.contains("comm=<unreadable>")).count() as u64;
    assert_eq!(marked, count(&sys), "the trace holds every marked hit ({summary})");
    assert!(lies.len() as u64 > marked, "and the hits that read a task");
    assert!(
        lies.iter().all(|l| {
            let comm = l.split("comm=").nth(1).unwrap_or("");
            comm.split(" prio=").next().unwrap_or("").len() <= 15 * 4
        }),
        "names stay bounded"
    );
    let console = sys.run_log();
    assert!(!console.contains("[hyp E]") && !console.contains("FAULT:"), "{console}");
    let last = console
        .lines()
        .rfind(|l| l.contains("[rtos]") && l.contains("overruns"))
        .unwrap_or_default();
    assert!(last.contains(" 0 overruns"), "{last}");
    let alive = ok(sys.hv_trace(&["exec", "echo", "still-here"]).unwrap(), "Linux");
    assert!(alive.contains("still-here"));
}
