//! The host's real `trace-cmd` (3.x) is the judge: our reader must agree with `trace-cmd report`
//! on files trace-cmd wrote (v6, v7, v7 + zstd), and trace-cmd must read the `.dat` files we
//! write, including RTOS switches synthesized as `sched_switch`.
//!
//! Tests that need `trace-cmd` print a note and pass when it is not installed
//! (`scripts/setup.sh` installs it).

use std::path::{Path, PathBuf};
use std::process::Command;

use trace_convert::pipeline::{prepare, write_events, Format};
use trace_convert::write::text::TextOptions;
use trace_convert::Trace;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

const FIXTURES: &[&str] = &["tc-v6.dat", "tc-v7.dat", "tc-v7-zstd.dat"];

fn trace_cmd(args: &[&str]) -> Option<String> {
    let out = match Command::new("trace-cmd").args(args).output() {
        Ok(o) => o,
        Err(_) => {
            eprintln!("note: trace-cmd is not installed; skipping the comparison");
            return None;
        }
    };
    assert!(
        out.status.success(),
        "trace-cmd {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).expect("trace-cmd prints UTF-8"))
}

/// Our text rendering of `path`.
fn ours(path: &Path, opts: TextOptions) -> String {
    let t = Trace::open(path).unwrap();
    let out = tempfile::NamedTempFile::new().unwrap();
    let (meta, events) = prepare(std::slice::from_ref(&t), false).unwrap();
    write_events(&meta, events, Format::Text, out.path(), opts).unwrap();
    std::fs::read_to_string(out.path()).unwrap()
}

/// Splits a `-R` line into (header, fields) with integers normalised (`001` == `1`).
fn normalise(report: &str) -> Vec<(String, Vec<String>)> {
    report
        .lines()
        .filter(|l| !l.starts_with("cpus=") && !l.contains("EVENTS DROPPED"))
        .map(|l| {
            let (head, body) = match l.find(": ").and_then(|i| l[i + 2..].find(": ").map(|j| i + 2 + j)) {
                Some(j) => (&l[..j], &l[j + 1..]),
                None => (l, ""),
            };
            let head = head.split_whitespace().collect::<Vec<_>>().join(" ");
            let fields = body
                .split_whitespace()
                .map(|kv| match kv.split_once('=') {
                    Some((k, v)) => match v.parse::<i64>() {
                        Ok(n) => format!("{k}={n}"),
                        Err(_) => kv.to_string(),
                    },
                    None => kv.to_string(),
                })
                .collect();
            (head, fields)
        })
        .collect()
}

#[test]
fn text_export_equals_trace_cmd_report_on_trace_cmd_files() {
    for f in FIXTURES {
        let p = fixture(f);
        let Some(want) = trace_cmd(&["report", p.to_str().unwrap()]) else {
            return;
        };
        let got = ours(&p, TextOptions::default());
        assert_eq!(got.lines().count(), want.lines().count(), "{f}");
        for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
            assert_eq!(g, w, "{f} line {}", i + 1);
        }
    }
}

/// Regression: a trace_marker text (`char buf[]`, size 0) was read empty,
/// its own newline ended the line, and a file without saved cmdlines (a
/// stream cut by a crash) named tasks `<...>` where trace-cmd names them from
/// the switches and wake-ups before.
#[test]
fn a_streamed_file_cut_short_reads_as_trace_cmd_reads_it() {
    let p = fixture("stream-cut.dat");
    let got = ours(&p, TextOptions::default());
    assert!(
        got.contains("print:                0xffff8000800f4f64: HELLO-LIVE\n"),
        "the marker's text, on one line"
    );
    let Some(want) = trace_cmd(&["report", p.to_str().unwrap()]) else {
        return;
    };
    assert_eq!(got.lines().count(), want.lines().count());
    for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
        assert_eq!(g, w, "line {}", i + 1);
    }
}

#[test]
fn raw_fields_and_ns_timestamps_equal_trace_cmd_report_raw() {
    for f in FIXTURES {
        let p = fixture(f);
        let Some(want) = trace_cmd(&["report", "-t", "-R", p.to_str().unwrap()]) else {
            return;
        };
        let got = ours(&p, TextOptions { nsec: true, raw: true });
        let (g, w) = (normalise(&got), normalise(&want));
        assert!(g.len() > 1000, "{f}: only {} events", g.len());
        assert_eq!(g, w, "{f}");
    }
}

#[test]
fn v6_and_v7_fixtures_hold_the_same_events() {
    let all: Vec<Vec<_>> = FIXTURES
        .iter()
        .map(|f| {
            let t = Trace::open(fixture(f)).unwrap();
            t.events()
                .map(|e| e.unwrap())
                .map(|e| (e.ts_ns, e.cpu, e.pid, e.buffer, e.fields))
                .collect()
        })
        .collect();
    assert_eq!(all[0], all[1]);
    assert_eq!(all[0], all[2]);
    let t = Trace::open(fixture("tc-v7-zstd.dat")).unwrap();
    let m = t.meta();
    assert_eq!(m.dat_version, Some(7));
    assert_eq!(m.compression.as_ref().map(|c| c.0.as_str()), Some("zstd"));
    assert_eq!(m.buffers.len(), 2);
    assert_eq!(m.buffers[1].name, "tcinst");
    // trace-cmd 3.1.6 records "local" even for this mono-clock instance.
    assert!(m.buffers[1].clock.is_some());
    assert!(m.kallsyms.lines().count() >= 100);
    assert!(m.format("sched", "sched_switch").is_some());
    assert!(m.format("ftrace", "function").is_some());
    let irq = m.format("irq", "irq_handler_entry").unwrap();
    assert!(matches!(
        irq.field("name").unwrap().1.kind,
        trace_convert::FieldKind::DataLoc { string: true, .. }
    ));
}

#[test]
fn our_v6_output_reads_the_same_in_trace_cmd_and_in_our_reader() {
    for f in FIXTURES {
        let src = fixture(f);
        let out = tempfile::Builder::new().suffix(".dat").tempfile().unwrap();
        let t = Trace::open(&src).unwrap();
        let (meta, events) = prepare(std::slice::from_ref(&t), false).unwrap();
        write_events(&meta, events, Format::Dat, out.path(), TextOptions::default()).unwrap();
        let Some(theirs) = trace_cmd(&["report", "-t", "-R", out.path().to_str().unwrap()]) else {
            return;
        };
        let ours_raw = ours(out.path(), TextOptions { nsec: true, raw: true });
        assert_eq!(normalise(&ours_raw), normalise(&theirs), "{f}");
        // And the same events as the original file, drops included.
        let orig = trace_cmd(&["report", src.to_str().unwrap()]).unwrap();
        let again = trace_cmd(&["report", out.path().to_str().unwrap()]).unwrap();
        assert_eq!(orig, again, "{f}");
    }
}

fn synthetic_merged(format: Format, switches: u64) -> (tempfile::NamedTempFile, tempfile::NamedTempFile) {
    let input = tempfile::Builder::new().suffix(".dat").tempfile().unwrap();
    trace_convert::synth::write_dat(std::fs::File::create(input.path()).unwrap(), switches).unwrap();
    let out = tempfile::NamedTempFile::new().unwrap();
    let t = Trace::open(input.path()).unwrap();
    let (meta, events) = prepare(std::slice::from_ref(&t), true).unwrap();
    write_events(
        &meta,
        events,
        format,
        out.path(),
        TextOptions { nsec: true, raw: false },
    )
    .unwrap();
    (input, out)
}

#[test]
fn merged_rtos_switches_decode_as_kernel_sched_switch_in_trace_cmd() {
    use trace_convert::synth::{counter_ns, INJECT_DELAY_NS};
    let (input, merged) = synthetic_merged(Format::Dat, 2000);
    let Some(rep) = trace_cmd(&["report", "-t", merged.path().to_str().unwrap()]) else {
        return;
    };
    assert!(
        rep.starts_with("cpus=2\n"),
        "the RTOS CPU must be declared: {}",
        &rep[..40]
    );
    let rtos: Vec<&str> = rep
        .lines()
        .filter(|l| l.contains("[001]") && l.contains("sched_switch:"))
        .collect();
    assert_eq!(rtos.len(), 200, "one switch in and one out per RTOS period");
    // The kernel's sched_switch layout, decoded by trace-cmd's sched plugin.
    assert!(
        rtos[0].ends_with("uC/OS-II Idle:101063 [63] R ==> ctrl_loop:101005 [5]"),
        "{}",
        rtos[0]
    );
    assert!(
        rtos[1].ends_with("ctrl_loop:101005 [5] S ==> uC/OS-II Idle:101063 [63]"),
        "{}",
        rtos[1]
    );
    assert!(
        rtos[0].trim_start().starts_with("uC/OS-II Idle-101063 [001]"),
        "{}",
        rtos[0]
    );
    // Raw fields as the kernel names them.
    let raw = trace_cmd(&["report", "-t", "-R", merged.path().to_str().unwrap()]).unwrap();
    let first = raw
        .lines()
        .find(|l| l.contains("[001]") && l.contains("sched_switch:"))
        .unwrap();
    for kv in [
        "prev_comm=uC/OS-II",
        "prev_pid=101063",
        "prev_prio=63",
        "prev_state=0",
        "next_comm=ctrl_loop",
        "next_pid=101005",
        "next_prio=5",
    ] {
        assert!(first.contains(kv), "{kv} missing in {first}");
    }
    // Re-stamped at the exact counter time, not at injection time.
    let t = Trace::open(input.path()).unwrap();
    let first_switch = t
        .events()
        .map(|e| e.unwrap())
        .find(|e| e.name() == "rtos_switch")
        .unwrap();
    let exact = counter_ns(first_switch.int("ts_counter").unwrap() as u64);
    assert_eq!(first_switch.ts_ns, exact + INJECT_DELAY_NS);
    let stamp = format!("{}.{:09}:", exact / 1_000_000_000, exact % 1_000_000_000);
    assert!(rtos[0].contains(&stamp), "{stamp} not in {}", rtos[0]);
    // The hvtrace originals are kept (moved to the RTOS CPU) and clock_sync stays on CPU 0.
    assert_eq!(rep.lines().filter(|l| l.contains("rtos_switch:")).count(), 200);
    assert_eq!(
        rep.lines()
            .filter(|l| l.contains("rtos_probe:") && l.contains("[001]"))
            .count(),
        100
    );
    assert!(rep.lines().any(|l| l.contains("[000]") && l.contains("clock_sync:")));
    // Our reader sees the same merged file.
    let m = Trace::open(merged.path()).unwrap();
    assert_eq!(m.meta().cmdlines.get(101005).map(|s| &**s), Some("ctrl_loop"));
    let n = m.events().filter(|e| e.as_ref().unwrap().cpu == 1).count();
    assert_eq!(n, 500);
}

#[test]
fn merged_json_has_rtos_task_slices_and_probe_instants() {
    let (_input, out) = synthetic_merged(Format::Json, 1000);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(out.path()).unwrap()).unwrap();
    let evs = v["traceEvents"].as_array().unwrap();
    let slices: Vec<_> = evs.iter().filter(|e| e["ph"] == "X" && e["tid"] == 1).collect();
    assert!(slices
        .iter()
        .any(|e| e["name"] == "ctrl_loop (101005)" && e["dur"].as_f64().unwrap() > 199.0));
    // A probe hit is named after its probe, with its fetched values typed.
    let hit = evs
        .iter()
        .find(|e| e["ph"] == "i" && e["name"] == "Ctrl_Step" && e["tid"] == 1)
        .expect("a probe instant named after its probe");
    assert!(hit["args"]["cycle"].is_u64(), "{hit}");
    assert_eq!(hit["args"]["err"], -3, "{hit}");
    assert!(evs.iter().any(|e| e["ph"] == "M" && e["args"]["name"] == "CPU 1"));
}

#[test]
fn text_reader_reads_trace_cmd_report_output() {
    let p = fixture("tc-v6.dat");
    let Some(rep) = trace_cmd(&["report", "-t", p.to_str().unwrap()]) else {
        return;
    };
    let txt = Trace::from_bytes(std::sync::Arc::new(rep.into_bytes())).unwrap();
    let dat = Trace::open(&p).unwrap();
    let a: Vec<_> = txt.events().map(|e| e.unwrap()).collect();
    let b: Vec<_> = dat.events().map(|e| e.unwrap()).collect();
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            (x.ts_ns, x.cpu, x.pid, x.name(), x.buffer),
            (y.ts_ns, y.cpu, y.pid, y.name(), y.buffer)
        );
        if x.name() == "sched_switch" {
            for f in ["prev_pid", "prev_prio", "prev_state", "next_pid", "next_prio"] {
                assert_eq!(
                    x.int(f),
                    y.int(f).map(|v| if f == "prev_state" { v & 0xff } else { v }),
                    "{f}"
                );
            }
            assert_eq!(x.str("next_comm"), y.str("next_comm"));
        }
        if x.name() == "irq_handler_entry" {
            assert_eq!(x.str("name"), y.str("name"));
        }
    }
    assert_eq!(
        a.iter()
            .filter(|e| e.missed_before != trace_convert::Missed::None)
            .count(),
        b.iter()
            .filter(|e| e.missed_before != trace_convert::Missed::None)
            .count()
    );
}

#[test]
fn cli_info_and_stats_run() {
    let (input, _) = synthetic_merged(Format::Text, 500);
    trace_convert::cli::run(["trace-convert", "info", input.path().to_str().unwrap()]).unwrap();
    let t = Trace::open(input.path()).unwrap();
    let traces = [t];
    let (meta, events) = prepare(&traces, true).unwrap();
    let (info, stats) = trace_convert::stats::collect(&meta, events).unwrap();
    assert_eq!(info.cpus, 2);
    assert!(info.per_type["sched:sched_switch"] > 500);
    let ctl = &stats.tasks[&101005];
    assert_eq!(ctl.comm, "ctrl_loop");
    assert_eq!(ctl.runs.n, 25);
    assert!(ctl.periodic());
    assert_eq!(ctl.period.avg(), 1_000_000);
    assert_eq!(ctl.runs.min, 200_000);
    assert_eq!(ctl.response.max, 200_000);
}

/// `trace-cmd report --stat` and the options `trace-cmd dump --options`
/// lists, without the lines that say where data lies in the file.
fn stat_and_options(path: &Path) -> Option<(String, Vec<String>)> {
    let p = path.to_str().unwrap();
    let stat = trace_cmd(&["report", "--stat", "-i", p])?
        .lines()
        .filter(|l| !l.contains("data recorded at") && !l.contains("bytes in size"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut options: Vec<String> = trace_cmd(&["dump", "--options", "-i", p])?
        .split("[Option ")
        .skip(1)
        .filter(|o| !o.starts_with("BUFFER"))
        .map(|o| o.trim().to_string())
        .collect();
    options.sort();
    Some((stat, options))
}

/// Regression: a .dat written from a .dat lost its CPU statistics (with the
/// overruns), its trace id, the recording tool's version and the list of
/// clocks: `trace-cmd report --stat` said "No stats in this file".
#[test]
fn a_dat_written_from_a_dat_keeps_its_options() {
    for name in FIXTURES {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.dat");
        let t = Trace::open(fixture(name)).unwrap();
        let (meta, events) = prepare(std::slice::from_ref(&t), false).unwrap();
        write_events(&meta, events, Format::Dat, &out, TextOptions::default()).unwrap();
        let Some(want) = stat_and_options(&fixture(name)) else {
            return;
        };
        let got = stat_and_options(&out).unwrap();
        assert!(want.0.contains("overrun: 345"), "{name}: {}", want.0);
        assert_eq!(got.0, want.0, "{name}: report --stat");
        // v7 files hold compression and section options a v6 file has no
        // place for; every option of a v6 input comes through.
        for o in &want.1 {
            let v6_kind = ["TRACECLOCK", "UNAME", "VERSION", "TRACEID", "CPUSTAT", "CPUCOUNT"]
                .iter()
                .any(|k| o.starts_with(k));
            if v6_kind {
                assert!(got.1.contains(o), "{name}: option missing from the output:\n{o}");
            }
        }
        if *name == "tc-v6.dat" {
            assert_eq!(got.1, want.1, "{name}: dump --options");
        }
    }
}

/// Events `trace-cmd report` prints differently on purpose or by mistake,
/// and why; every other line of a foreign trace must be identical.
const NAMED_DIFFERENCES: &[(&str, &str)] = &[
    // libtraceevent drops the parentheses of `REC->flags & (A | B | …)` in
    // __print_flags and prints flags the event does not have (D|P|I for
    // 0xf800000); we print the flags of the masked value.
    ("timer_start:", "libtraceevent's masked __print_flags"),
];

/// A trace of our guest's Linux 6.12 (aarch64) with timer, workqueue, irq,
/// sched, kmem, signal, task, ipi, filemap and mmap events, recorded by
/// trace-cmd 3.1.6 in the guest (v7, zstd): our text must be `trace-cmd
/// report`'s, line for line, but for the named differences.
/// Regression: 213 of its 693 lines differed (`%ps`/`%pS` not resolved
/// through kallsyms, `(1 << n)` and enum-name keys of `__print_symbolic`,
/// sched_waking in the sched plugin's form, the kmem plugin's caller prefix,
/// `(nil)` pointers, unsigned casts and `__builtin_expect` in IS_ERR_VALUE,
/// the hrtimer plugin's layout).
#[test]
fn a_foreign_kernel_trace_reads_as_trace_cmd_report_reads_it() {
    let path = fixture("guest-many.dat");
    let Some(theirs) = trace_cmd(&["report", "-i", path.to_str().unwrap()]) else {
        return;
    };
    let ours = ours(&path, TextOptions::default());
    let (t, o): (Vec<&str>, Vec<&str>) = (theirs.lines().collect(), ours.lines().collect());
    assert_eq!(t.len(), o.len(), "line counts");
    let mut named = 0;
    for (a, b) in t.iter().zip(&o) {
        if a == b {
            continue;
        }
        assert!(
            NAMED_DIFFERENCES.iter().any(|(ev, _)| a.contains(ev)),
            "an unexplained difference:\ntrace-cmd: {a}\nours:      {b}"
        );
        named += 1;
    }
    eprintln!("{} lines, {named} differ, all of named kinds", t.len());
    assert!(named * 50 < t.len(), "{named} of {} lines differ", t.len());
}

/// Regression: `--raw` printed every number in decimal, where `trace-cmd
/// report -R` prints pointers in hex (`(nil)` for null) and an `unsigned
/// long` as the function it points into. Events whose raw lines trace-cmd
/// still prints its own way (plugins, typedef'd longs such as pgoff_t) are
/// not compared.
#[test]
fn raw_lines_of_a_foreign_trace_print_numbers_as_trace_cmd_does() {
    let path = fixture("guest-many.dat");
    let Some(theirs) = trace_cmd(&["report", "-R", "-i", path.to_str().unwrap()]) else {
        return;
    };
    let ours = ours(&path, TextOptions { nsec: false, raw: true });
    let mut compared = 0;
    for (a, b) in theirs.lines().zip(ours.lines()) {
        if [
            "kmalloc:",
            "kfree:",
            "sched_switch:",
            "irq_handler_entry:",
            "hrtimer_init:",
        ]
        .iter()
        .any(|e| a.contains(e))
        {
            assert_eq!(
                a.split_whitespace().collect::<Vec<_>>(),
                b.split_whitespace().collect::<Vec<_>>()
            );
            compared += 1;
        }
    }
    assert!(compared > 50, "{compared}");
}
