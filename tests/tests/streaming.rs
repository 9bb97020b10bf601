//! Streamed recordings on the real system: the guest's agent sends ftrace's
//! pages home over the data port while the RTOS is probed; the host's real
//! trace-cmd reads the file; its RTOS events are exactly what the module
//! emitted; Ctrl-C ends a recording without a duration cleanly; a
//! recording whose hv-trace is killed leaves no agent behind for the next;
//! and a recording whose QEMU is killed half way leaves a readable file up
//! to the kill. The live view shows what happens after it started, and the
//! merge it makes while the data streams in is the offline merge's file.

use hv_trace_e2e::{finished, hv_trace_bin, ok, System};
use std::path::Path;
use std::process::Command;
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
    let child = sys.record_in_background(&["--out", until.to_str().unwrap()]);
    std::thread::sleep(Duration::from_secs(8));
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let text = finished(child, "record until Ctrl-C");
    assert!(!text.contains("incomplete"), "{text}");
    let counts = trace_cmd_counts(&until.join("guest.dat"));
    assert!(counts.get("rtos_switch").copied().unwrap_or(0) > 50, "{counts:?}");

    // --- hv-trace itself killed: the next recording takes over the port ----------------
    let mut orphan = sys.record_in_background(&["--out", out.join("host-killed").to_str().unwrap()]);
    std::thread::sleep(Duration::from_secs(5));
    orphan.kill().unwrap();
    orphan.wait().unwrap();
    let next = out.join("after-host-killed");
    let text = ok(
        sys.hv_trace(&["record", "--duration", "3", "--out", next.to_str().unwrap()])
            .unwrap(),
        "record after a killed one",
    );
    assert!(!text.contains("incomplete"), "{text}");
    let left = ok(
        sys.hv_trace(&[
            "exec",
            "ps | grep hvtrace-strea[m] | wc -l; cat /sys/kernel/tracing/tracing_on",
        ])
        .unwrap(),
        "the guest after the recordings",
    );
    assert_eq!(
        left.split_whitespace().collect::<Vec<_>>(),
        ["0", "0"],
        "no agent left, tracing off"
    );

    // --- QEMU killed half way: the file holds what came before -----------------------
    let killed = out.join("killed");
    let child = sys.record_in_background(&["--duration", "600", "--out", killed.to_str().unwrap()]);
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

/// A tmux session running `cmd` (160×40), killed when dropped.
struct Tmux(String);

impl Tmux {
    fn start(cmd: &str) -> Tmux {
        let name = format!("hvt-live-{}", std::process::id());
        let st = Command::new("tmux")
            .args(["new-session", "-d", "-s", &name, "-x", "160", "-y", "40", cmd])
            .status()
            .expect("tmux runs (scripts/setup.sh installs it)");
        assert!(st.success(), "tmux new-session");
        Tmux(name)
    }

    fn screen(&self) -> String {
        let o = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.0])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn key(&self, key: &str) {
        assert!(Command::new("tmux")
            .args(["send-keys", "-t", &self.0, key])
            .status()
            .unwrap()
            .success());
    }

    /// The screen once `pred` holds, and how long that took; panics with
    /// the screen after `limit`.
    fn wait(&self, what: &str, limit: Duration, pred: impl Fn(&str) -> bool) -> (String, Duration) {
        let started = Instant::now();
        loop {
            let s = self.screen();
            if pred(&s) {
                return (s, started.elapsed());
            }
            assert!(started.elapsed() < limit, "no {what} on screen within {limit:?}:\n{s}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.0]).status();
    }
}

/// Writes `text` to ftrace's trace_marker in the guest (the live view holds
/// no channel between its polls, so this runs meanwhile).
fn mark(sys: &System, text: &str) {
    ok(
        sys.hv_trace(&["exec", &format!("echo {text} > /sys/kernel/tracing/trace_marker")])
            .unwrap(),
        "writing a marker",
    );
}

#[test]
fn the_live_view_shows_what_happens_after_it_started_within_two_seconds() {
    let sys = System::start(&[]).unwrap();
    for site in ["OSCtxSw", "OSIntCtxSw"] {
        ok(sys.hv_trace(&["probe", "add", site]).unwrap(), "probe add");
    }
    let out = hv_trace_e2e::repo_root().join("target/e2e/live");
    let _ = std::fs::remove_dir_all(&out);
    let tmux = Tmux::start(&format!(
        "HV_TRACE_SESSION={} {} view --live --out {}; echo LIVE-EXITED $?; sleep 120",
        sys.path().display(),
        hv_trace_bin().display(),
        out.display()
    ));
    // The RTOS's CPU with its tasks' runs drawn (RTOS events come ~1 s
    // behind Linux's: the merge waits until their clock is settled).
    tmux.wait("the RTOS's CPU, live", Duration::from_secs(60), |s| {
        s.contains("LIVE, following")
            && s.contains("RTOS CPU1")
            && s.lines()
                .any(|l| l.starts_with(" CPU1") && l.contains(['░', '▒', '▓', '█']))
    });

    // A marker written now shows on the timeline within 2 s, labelled.
    mark(&sys, "HVT-MARK-1");
    let (_, took) = tmux.wait("the first marker", Duration::from_secs(10), |s| {
        s.contains("HVT-MARK-1")
    });
    eprintln!("the marker was on screen {took:?} after it was written");
    assert!(took < Duration::from_secs(2), "the marker took {took:?} to show");

    // Scrolling back stops following; End follows again, and what arrived
    // meanwhile is there.
    tmux.key("Home");
    tmux.wait("the paused state", Duration::from_secs(5), |s| {
        s.contains("LIVE, paused")
    });
    mark(&sys, "HVT-MARK-2");
    std::thread::sleep(Duration::from_secs(2));
    tmux.key("End");
    tmux.wait("the second marker after End", Duration::from_secs(5), |s| {
        s.contains("LIVE, following") && s.contains("HVT-MARK-2")
    });

    // Quitting ends the recording: its file has both markers.
    tmux.key("q");
    let (screen, _) = tmux.wait("the end of the recording", Duration::from_secs(120), |s| {
        s.contains("LIVE-EXITED")
    });
    assert!(screen.contains("LIVE-EXITED 0"), "{screen}");
    let report = Command::new("trace-cmd")
        .arg("report")
        .arg(out.join("guest.dat"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(
        text.contains("HVT-MARK-1") && text.contains("HVT-MARK-2"),
        "guest.dat holds both markers"
    );

    // The merge made while it streamed in is the merge of the finished file,
    // byte for byte, and trace-cmd reads it: RTOS switches as sched_switch.
    let offline = out.join("offline-merged.dat");
    ok(
        sys.hv_trace(&[
            "export",
            "merge",
            out.join("guest.dat").to_str().unwrap(),
            "-o",
            offline.to_str().unwrap(),
        ])
        .unwrap(),
        "export merge",
    );
    let live = std::fs::read(out.join("merged.dat")).expect("the live view wrote merged.dat");
    assert!(
        live == std::fs::read(&offline).unwrap(),
        "merged.dat written live differs from the offline merge of guest.dat"
    );
    let merged = trace_cmd_counts(&out.join("merged.dat"));
    let rtos = trace_cmd_counts(&out.join("guest.dat"))
        .get("rtos_switch")
        .copied()
        .unwrap_or(0);
    assert!(rtos > 20, "{merged:?}");
    assert_eq!(merged.get("rtos_switch").copied(), Some(rtos), "{merged:?}");
    assert!(merged.get("sched_switch").copied().unwrap_or(0) >= rtos, "{merged:?}");

    // `hv-trace stop` ends a recording without a duration cleanly, then the system.
    let stopped = out.join("stopped");
    let child = sys.record_in_background(&["--out", stopped.to_str().unwrap()]);
    std::thread::sleep(Duration::from_secs(6));
    let said = ok(sys.hv_trace(&["stop"]).unwrap(), "hv-trace stop");
    assert!(said.contains("the recording ended"), "{said}");
    let text = finished(child, "record ended by hv-trace stop");
    assert!(!text.contains("incomplete"), "{text}");
    assert!(
        trace_cmd_counts(&stopped.join("guest.dat"))
            .get("rtos_switch")
            .copied()
            .unwrap_or(0)
            > 50
    );
}
