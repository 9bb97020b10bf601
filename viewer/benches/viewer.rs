//! `cargo bench -p viewer`: a merged trace of ≥ 10M events (synth + trace-convert's merge,
//! written once and cached), then, in a fresh child process so the figures are the viewer's
//! alone: open + index + first frame, zoom and pan redraws (timeline, event list and task
//! table each frame), and peak resident memory against the file size.
//!
//! Goals (issue 9): first frame ≤ 2 s, redraw ≤ 50 ms per frame, memory ≤ 2× the file.
//! `VIEWER_BENCH_SWITCHES` changes the size (default 8,000,000 Linux switches ≈ 10.04M events).
//!
//! Then the live view's refresh on a trace the size of a 10-minute streamed demo (600,000
//! switches ≈ 751k events): what a refresh costs now (`LiveIndex`: the events since the last
//! refresh, then a copy of the index) against re-indexing the trace so far (what a refresh
//! did before), measured in the same run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use viewer::index::Loaded;
use viewer::App;

const CHILD: &str = "VIEWER_BENCH_CHILD";
const LIVE_CHILD: &str = "VIEWER_BENCH_LIVE";

/// The live view's refresh against re-indexing, in its own process.
fn live_child(path: &Path) {
    let trace = trace_convert::Trace::open(path).unwrap();
    let meta = trace.meta().clone();
    let mut live = viewer::LiveIndex::new(&meta);
    let events: Vec<_> = trace.events().map(|e| e.unwrap()).collect();
    // Everything but the last half second arrived earlier; time the refresh that adds it.
    let t_end = events.last().map_or(0, |e| e.ts_ns);
    let split = events.partition_point(|e| e.ts_ns + 500_000_000 < t_end);
    for ev in &events[..split] {
        live.add(ev);
    }
    let mut refresh = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let mut l2 = live.index();
        refresh.push(t.elapsed());
        l2.path.clear();
    }
    let t = Instant::now();
    for ev in &events[split..] {
        live.add(ev);
    }
    let idx = live.index();
    let last = t.elapsed();
    refresh.sort();
    let mut reindex = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let i = viewer::TraceIndex::open(path).unwrap();
        reindex.push(t.elapsed());
        assert_eq!(i.events, idx.events, "the live index holds every event");
    }
    reindex.sort();
    let (a, b) = (refresh[2].as_secs_f64(), reindex[1].as_secs_f64());
    println!(
        "live refresh           {:.1} ms median (copy of the index, {} events), {:.1} ms with the last 0.5 s's {} events; re-indexing the same: {:.0} ms = {:.0}×",
        a * 1e3,
        idx.events,
        last.as_secs_f64() * 1e3,
        events.len() - split,
        b * 1e3,
        b / a
    );
}

fn vm_hwm_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn frame(term: &mut Terminal<TestBackend>, app: &App) -> Duration {
    let t = Instant::now();
    term.draw(|f| viewer::ui::draw(f, app)).unwrap();
    t.elapsed()
}

fn key(app: &mut App, c: KeyCode) {
    app.on_key(KeyEvent::new(c, KeyModifiers::NONE));
}

/// The measured part, in its own process.
fn child(path: &Path) {
    let (w, h) = (160u16, 48u16);
    // What `run_app` does: wait up to the budget, then draw what is indexed so far.
    let t = Instant::now();
    let loader = viewer::index::Loader::start(path).unwrap();
    let (index, partial) = match loader.first(viewer::FIRST_FRAME_BUDGET).unwrap() {
        Loaded::Full(i) => (i, false),
        Loaded::Partial(i) => (i, true),
    };
    let mut app = App::new(Arc::new(index));
    app.size = (w, h);
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    frame(&mut term, &app);
    let first = t.elapsed();
    let shown = (app.index.events, app.index.span());
    // As run_app does: the partial index is dropped before the whole one is assembled.
    if partial {
        app.swap_index(|| loader.wait()).unwrap();
    }
    let full = t.elapsed();
    assert_eq!(
        app.view_span,
        app.index.span(),
        "the whole-trace view grows with the index"
    );
    frame(&mut term, &app);
    let size = std::fs::metadata(path).unwrap().len();
    println!("events                 {}", app.index.events);
    println!("file                   {:.1} MB", size as f64 / 1e6);
    println!(
        "open + first frame     {:.3} s   (goal ≤ 2 s; {} : {} events, {:.1}% of the trace's time span)",
        first.as_secs_f64(),
        if partial { "partial index" } else { "whole index" },
        shown.0,
        shown.1 as f64 * 100.0 / app.index.span().max(1) as f64
    );
    println!("whole index ready      {:.3} s", full.as_secs_f64());

    // Zoom in from the whole trace down to a few µs per column, pan, zoom back out: every
    // step is a redraw of timeline + event list; then the same with the task table.
    let mut times = Vec::new();
    app.goto(app.index.t0 + app.index.span() / 3);
    for panel in ['e', 't'] {
        if panel == 't' {
            key(&mut app, KeyCode::Char('t'));
            key(&mut app, KeyCode::Char('0'));
        }
        for _ in 0..18 {
            key(&mut app, KeyCode::Char('+'));
            times.push(frame(&mut term, &app));
        }
        for _ in 0..10 {
            key(&mut app, KeyCode::Char('>'));
            times.push(frame(&mut term, &app));
            key(&mut app, KeyCode::Char('<'));
            times.push(frame(&mut term, &app));
        }
        for _ in 0..18 {
            key(&mut app, KeyCode::Char('-'));
            times.push(frame(&mut term, &app));
        }
        // Panning at the widest zoom: the costliest frames.
        for _ in 0..5 {
            key(&mut app, KeyCode::End);
            times.push(frame(&mut term, &app));
            key(&mut app, KeyCode::Home);
            times.push(frame(&mut term, &app));
        }
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mean = times.iter().map(|d| ms(*d)).sum::<f64>() / times.len() as f64;
    println!(
        "zoom/pan redraw        mean {:.2} ms, median {:.2} ms, max {:.2} ms over {} frames ({w}×{h})   (goal ≤ 50 ms)",
        mean,
        ms(times[times.len() / 2]),
        ms(*times.last().unwrap()),
        times.len()
    );
    let rss = vm_hwm_kib() * 1024;
    println!(
        "peak RSS               {:.1} MB = {:.2}× the file   (goal ≤ 2×; index heap {:.1} MB)",
        rss as f64 / 1e6,
        rss as f64 / size as f64,
        app.index.heap_bytes() as f64 / 1e6
    );
    let ok = first <= Duration::from_secs(2) && ms(*times.last().unwrap()) <= 50.0 && rss <= 2 * size;
    println!("{}", if ok { "all goals met" } else { "GOAL MISSED" });
    if !ok {
        std::process::exit(1);
    }
}

fn main() {
    if let Ok(p) = std::env::var(CHILD) {
        child(Path::new(&p));
        return;
    }
    if let Ok(p) = std::env::var(LIVE_CHILD) {
        live_child(Path::new(&p));
        return;
    }
    let switches: u64 = std::env::var("VIEWER_BENCH_SWITCHES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8_000_000);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("viewer-bench-{switches}.dat"));
    if !path.exists() {
        let t = Instant::now();
        viewer::fixture::write_merged(&path, switches, 100_000).unwrap();
        eprintln!("generated {} in {:.1?}", path.display(), t.elapsed());
    }
    let exe = std::env::current_exe().unwrap();
    let st = Command::new(&exe).env(CHILD, &path).status().unwrap();
    let demo = dir.join("viewer-bench-600000.dat");
    if !demo.exists() {
        viewer::fixture::write_merged(&demo, 600_000, 100_000).unwrap();
    }
    let live = Command::new(&exe).env(LIVE_CHILD, &demo).status().unwrap();
    std::process::exit(if live.success() { st.code().unwrap_or(1) } else { 1 });
}
