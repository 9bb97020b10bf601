//! `cargo bench -p trace-convert`: our read + text export against the host's
//! `trace-cmd report > /dev/null` on the same ≥ 1M-event `.dat`, and peak RSS of
//! `trace-convert export` on a 1 GB input (set `TC_BENCH_BIG=0` to skip that part).

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use trace_convert::write::text::{TextOptions, TextWriter};
use trace_convert::write::EventSink;
use trace_convert::Trace;

fn synth(path: &Path, switches: u64) {
    if !path.exists() {
        let t = Instant::now();
        let tmp = path.with_extension("tmp");
        trace_convert::synth::write_dat(BufWriter::new(File::create(&tmp).unwrap()), switches).unwrap();
        std::fs::rename(&tmp, path).unwrap();
        eprintln!("generated {} in {:.1?}", path.display(), t.elapsed());
    }
}

fn ours(path: &Path) -> (Duration, u64) {
    let t = Instant::now();
    let trace = Trace::open(path).unwrap();
    let out = BufWriter::with_capacity(1 << 16, File::create("/dev/null").unwrap());
    let mut w = TextWriter::new(out, trace.meta(), TextOptions::default()).unwrap();
    let mut n = 0;
    for ev in trace.events() {
        w.event(&ev.unwrap()).unwrap();
        n += 1;
    }
    w.finish().unwrap();
    (t.elapsed(), n)
}

fn trace_cmd(path: &Path) -> Option<Duration> {
    let t = Instant::now();
    let st = Command::new("trace-cmd")
        .arg("report")
        .arg(path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    st.success().then(|| t.elapsed())
}

/// Runs `cmd`, polling its VmHWM (peak RSS) until it exits; returns (time, peak KiB).
fn peak_rss(cmd: &mut Command) -> (Duration, u64) {
    let t = Instant::now();
    let mut child = cmd.stdout(Stdio::null()).spawn().unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(s) = std::fs::read_to_string(&status) {
            for l in s.lines() {
                if let Some(v) = l.strip_prefix("VmHWM:") {
                    peak = peak.max(v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0));
                }
            }
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (t.elapsed(), peak)
}

fn main() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let small = dir.join("bench-1m.dat");
    synth(&small, 1_000_000);
    let size = std::fs::metadata(&small).unwrap().len();
    let best = (0..3).map(|_| ours(&small)).min().unwrap();
    println!(
        "input: {} ({} events, {:.1} MB)",
        small.display(),
        best.1,
        size as f64 / 1e6
    );
    println!(
        "trace-convert read + text export: {:.3} s ({:.2} M events/s)",
        best.0.as_secs_f64(),
        best.1 as f64 / best.0.as_secs_f64() / 1e6
    );
    match (0..2).filter_map(|_| trace_cmd(&small)).min() {
        Some(tc) => {
            println!("trace-cmd report > /dev/null:      {:.3} s", tc.as_secs_f64());
            println!(
                "ratio: trace-convert is {:.2}x faster than trace-cmd report (goal >= 2x)",
                tc.as_secs_f64() / best.0.as_secs_f64()
            );
        }
        None => println!("trace-cmd not installed: no ratio"),
    }
    if std::env::var("TC_BENCH_BIG").as_deref() == Ok("0") {
        return;
    }
    let big = dir.join("bench-1g.dat");
    // ~77 bytes per record: 14M Linux switches (+ RTOS events) is a little over 1 GB.
    synth(&big, 14_000_000);
    let bsize = std::fs::metadata(&big).unwrap().len();
    let (t, kib) = peak_rss(Command::new(env!("CARGO_BIN_EXE_trace-convert")).args([
        "export",
        big.to_str().unwrap(),
        "-o",
        "/dev/null",
        "--format",
        "text",
    ]));
    println!(
        "1 GB input ({:.2} GB): trace-convert export to text in {:.1} s, peak RSS {:.1} MB (goal <= 256 MB)",
        bsize as f64 / 1e9,
        t.as_secs_f64(),
        kib as f64 / 1024.0
    );
    let _ = std::fs::remove_file(&big);
}
