//! `hv-trace bench` end to end: the real binary boots the real systems in
//! QEMU (one at a time) and runs the guest workloads; plus the refusals that
//! must come before anything is built or booted.

use hv_trace_e2e::hv_trace;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// One QEMU at a time from this file (the machine has 2 cores).
static QEMU: Mutex<()> = Mutex::new(());

/// Room for a first build of every image (kernel included) plus the runs.
const LIMIT: Duration = Duration::from_secs(3600);

/// summary.csv rows as (test, mode) → median score.
fn medians(dir: &Path) -> Vec<(String, String, f64)> {
    let csv = std::fs::read_to_string(dir.join("summary.csv")).expect("summary.csv written");
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with("test,mode,runs,median_score"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), f[1].to_string(), f[3].parse().expect("a number"))
        })
        .collect()
}

#[test]
fn short_bench_writes_table_csv_and_svg_with_sane_scores() {
    let _one = QEMU.lock().unwrap_or_else(|e| e.into_inner());
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("res");
    let o = hv_trace(
        &[
            "bench",
            "--tests",
            "context1",
            "--modes",
            "native,hyp",
            "--seconds",
            "1",
            "--runs",
            "1",
            "--out",
            dir.to_str().unwrap(),
        ],
        LIMIT,
    )
    .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "hv-trace bench failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("context1") && stdout.contains("native") && stdout.contains("hyp"),
        "{stdout}"
    );
    assert!(stdout.contains("overhead"), "{stdout}");
    let rows = medians(&dir);
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (test, mode, score) in &rows {
        assert_eq!(test, "context1");
        // context1 under TCG does thousands of round trips a second: a
        // score (÷ 4000 × 10) far outside this range means a broken parse.
        assert!((0.5..1000.0).contains(score), "{mode}: score {score}");
    }
    let samples = std::fs::read_to_string(dir.join("samples.csv")).unwrap();
    assert_eq!(samples.lines().count(), 3, "{samples}");
    let svg = std::fs::read_to_string(dir.join("bench.svg")).unwrap();
    assert!(svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"), "{svg}");
    assert_eq!(svg.matches("<title>").count(), 2, "{svg}");
    assert!(dir.join("table.txt").is_file());
}

#[test]
fn cmd_with_a_score_regex_is_a_workload() {
    let _one = QEMU.lock().unwrap_or_else(|e| e.into_inner());
    let out = tempfile::tempdir().unwrap();
    let o = hv_trace(
        &[
            "bench",
            "--modes",
            "native",
            "--runs",
            "2",
            "--cmd",
            "echo start; echo \"result: $((6 * 7)).5 units\"",
            "--score-regex",
            r"result: ([0-9.]+) units",
            "--out",
            out.path().to_str().unwrap(),
        ],
        LIMIT,
    )
    .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "hv-trace bench --cmd failed:\n{stdout}\n{stderr}");
    assert_eq!(
        medians(out.path()),
        vec![("cmd".to_string(), "native".to_string(), 42.5)]
    );
}

#[test]
fn bad_regex_and_unknown_test_are_refused_before_anything_boots() {
    let out = tempfile::tempdir().unwrap();
    let o = hv_trace(
        &[
            "bench",
            "--cmd",
            "true",
            "--score-regex",
            "(unclosed",
            "--out",
            out.path().to_str().unwrap(),
        ],
        Duration::from_secs(60),
    )
    .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        stderr.contains("--score-regex \"(unclosed\" is not a valid regular expression"),
        "{stderr}"
    );

    let o = hv_trace(&["bench", "--tests", "context1,context9"], Duration::from_secs(60)).unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        stderr.contains("unknown test \"context9\"") && stderr.contains("context1"),
        "{stderr}"
    );

    let o = hv_trace(&["bench", "--modes", "native,turbo"], Duration::from_secs(60)).unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(stderr.contains("unknown mode \"turbo\""), "{stderr}");
}
