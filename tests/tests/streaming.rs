//! Streamed recordings on the real system: the guest's agent sends ftrace's
//! pages home over the data port while the RTOS is probed; the host's real
//! trace-cmd reads the file; its RTOS events are exactly what the module
//! emitted; Ctrl-C ends a recording without a duration cleanly; and a
//! recording whose QEMU is killed half way leaves a readable file up to the
//! kill.

use hv_trace_e2e::{hv_trace_bin, ok, System};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `trace-cmd report`'s events of each name in `dat` (and that it read it).
fn trace_cmd_counts(dat: &Path) -> std::collections::BTreeMap<String, u64> {
    let out = Command::new("trace-cmd")
        .args(["report", "-N"])
        .arg(dat)
        .output()
        .expect("the host's trace-cmd runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "trace-cmd report failed on {}: {}",
        dat.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut counts = std::collections::BTreeMap::new();
    for line in text.lines() {
        // `comm-pid [cpu] ts: name: fields`
        let Some((_, rest)) = line.split_once("]") else {
            continue;
        };
        let mut parts = rest.splitn(3, ": ");
        let (Some(_ts), Some(name)) = (parts.next(), parts.next()) else {
            continue;
        };
        *counts.entry(name.trim().to_string()).or_insert(0) += 1;
    }
    counts
}

/// A number after `key` in the record command's summary.
fn figure(text: &str, key: &str) -> u64 {
    let at = text.find(key).unwrap_or_else(|| panic!("{key:?} missing in:\n{text}")) + key.len();
    text[at..]
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| !w.is_empty())
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no number after {key:?} in:\n{text}"))
}

/// `hv-trace record ARGS` against `sys`, in the background.
fn record_in_background(sys: &System, args: &[&str]) -> Child {
    Command::new(hv_trace_bin())
        .arg("record")
        .args(args)
        .env("HV_TRACE_SESSION", sys.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// What a background command printed once it ended (within 120 s), which
/// must be a success.
fn finished(mut child: Child, what: &str) -> String {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(200));
    }
    if child.try_wait().unwrap().is_none() {
        let _ = child.kill();
        panic!("{what}: did not end within 120 s");
    }
    ok(child.wait_with_output().unwrap(), what)
}

#[test]
fn a_streamed_recording_is_whole_and_one_killed_half_way_is_readable() {
    let sys = System::start(&[]).unwrap();
    for site in ["OSCtxSw", "OSIntCtxSw"] {
        ok(sys.hv_trace(&["probe", "add", site]).unwrap(), "probe add");
    }
    let out = hv_trace_e2e::repo_root().join("target/e2e/streaming");
    let _ = std::fs::remove_dir_all(&out);

    // --- a recording with a duration: whole, exact, judged by trace-cmd ----------------
    let whole = out.join("whole");
    let text = ok(
        sys.hv_trace(&["record", "--duration", "6", "--out", whole.to_str().unwrap()])
            .unwrap(),
        "record --duration 6",
    );
    assert!(!text.contains("incomplete"), "{text}");
    let module = figure(&text, "module emitted ");
    assert!(module > 100, "the module emitted {module} RTOS events:\n{text}");
    let counts = trace_cmd_counts(&whole.join("guest.dat"));
    let rtos: u64 = ["rtos_switch", "rtos_probe", "rtos_irq"]
        .iter()
        .map(|n| counts.get(*n).copied().unwrap_or(0))
        .sum();
    assert_eq!(
        rtos, module,
        "trace-cmd's RTOS events equal the module's count: {counts:?}\n{text}"
    );
    assert!(counts.get("sched_switch").copied().unwrap_or(0) > 10, "{counts:?}");
    assert_eq!(figure(&text, "drops: ftrace ring "), 0, "{text}");
    assert_eq!(figure(&text, "hvtrace rings "), 0, "{text}");
    assert_eq!(figure(&text, "stream frames lost "), 0, "{text}");

    // --- without a duration, until Ctrl-C -------------------------------------------
    let until = out.join("until-ctrl-c");
    let child = record_in_background(&sys, &["--out", until.to_str().unwrap()]);
    std::thread::sleep(Duration::from_secs(8));
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let text = finished(child, "record until Ctrl-C");
    assert!(!text.contains("incomplete"), "{text}");
    let counts = trace_cmd_counts(&until.join("guest.dat"));
    assert!(counts.get("rtos_switch").copied().unwrap_or(0) > 50, "{counts:?}");

    // --- QEMU killed half way: the file holds what came before -----------------------
    let killed = out.join("killed");
    let child = record_in_background(&sys, &["--duration", "600", "--out", killed.to_str().unwrap()]);
    std::thread::sleep(Duration::from_secs(10));
    let qemu: u32 = std::fs::read_to_string(sys.path().join("qemu.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    Command::new("kill")
        .args(["-KILL", &qemu.to_string()])
        .status()
        .unwrap();
    let text = finished(child, "record with QEMU killed");
    assert!(
        text.contains("incomplete") && text.contains("stopped answering"),
        "the summary says the recording was cut:\n{text}"
    );
    let counts = trace_cmd_counts(&killed.join("guest.dat"));
    let switches = counts.get("rtos_switch").copied().unwrap_or(0);
    assert!(
        switches > 50,
        "the file holds the RTOS's switches up to the kill: {counts:?}"
    );
}
