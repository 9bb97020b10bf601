//! The real `hv-trace-view` binary in a real terminal (tmux, 120×40) on a merged trace:
//! keys go in with `send-keys`, the screen comes back with `capture-pane -p`.
//! Skips (passing, with a note) when tmux is not installed.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hv-trace-view");

fn have_tmux() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

struct Session(String);

impl Session {
    fn start(args: &str) -> Session {
        Session::start_cmd(&format!("{BIN} {args}"))
    }

    /// Runs the shell command `cmd` in a new 120×40 session.
    fn start_cmd(cmd: &str) -> Session {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!(
            "viewer-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let st = Command::new("tmux")
            .args(["new-session", "-d", "-s", &name, "-x", "120", "-y", "40"])
            .arg(cmd)
            .status()
            .unwrap();
        assert!(st.success());
        Session(name)
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            let st = Command::new("tmux")
                .args(["send-keys", "-t", &self.0, k])
                .status()
                .unwrap();
            assert!(st.success());
        }
    }

    /// Types `s` literally.
    fn type_text(&self, s: &str) {
        let st = Command::new("tmux")
            .args(["send-keys", "-t", &self.0, "-l", s])
            .status()
            .unwrap();
        assert!(st.success());
    }

    fn screen(&self) -> String {
        let o = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.0])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Waits until the screen satisfies `pred`; panics with the screen after 10 s.
    fn wait(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let t = Instant::now();
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            if t.elapsed() > Duration::from_secs(10) {
                panic!("timed out waiting for {what}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn alive(&self) -> bool {
        Command::new("tmux")
            .args(["has-session", "-t", &self.0])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

fn line_with<'a>(screen: &'a str, prefix: &str) -> &'a str {
    screen
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line {prefix:?} in\n{screen}"))
}

fn status(screen: &str) -> &str {
    screen.lines().last().unwrap_or("")
}

/// Column (in characters) of `c` in `line`.
fn col(line: &str, c: char) -> Option<usize> {
    line.chars().position(|x| x == c)
}

#[test]
fn zoom_pan_search_markers_in_a_real_terminal() {
    if !have_tmux() {
        eprintln!("tmux not installed: skipping the terminal test");
        return;
    }
    let file = common::merged();
    let s = Session::start(&file.display().to_string());
    let scr = s.wait("first frame", |x| x.contains("zoom 99.950 ms"));
    assert!(scr.lines().nth(1).unwrap().starts_with("── Linux CPU0 ──"), "{scr}");
    assert!(line_with(&scr, "── RTOS CPU1").len() > 20);
    assert!(
        status(&scr).contains("merged.dat │ span 99.950 ms │ cur 5.016000"),
        "{scr}"
    );

    // Zoom: five halvings around the cursor (at the start).
    s.keys(&["+", "+", "+", "+", "+"]);
    let scr = s.wait("zoom", |x| status(x).contains("zoom 3.123 ms"));
    assert!(scr.starts_with("3.123 ms"), "{scr}");
    // At 3.1 ms the RTOS row shows ctrl_loop blocks by name (200 µs ≈ 7 columns of 104).
    assert!(line_with(&scr, " CPU1").contains("ctrl_lo"), "{scr}");

    // Pan right by half a window: the cursor moves with the window.
    s.keys(&[">"]);
    let scr = s.wait("pan", |x| status(x).contains("cur 5.017561"));
    assert!(status(&scr).contains("zoom 3.123 ms"));
    s.keys(&["<"]);
    s.wait("pan back", |x| status(x).contains("cur 5.016000"));

    // Search a task: the cursor lands on the start of its next run, drawn under the cursor.
    s.keys(&["/"]);
    s.type_text("ctrl_loop");
    s.keys(&["Enter"]);
    let scr = s.wait("search", |x| {
        status(x).contains("/ctrl_loop: task ctrl_loop on CPU1 at 5.016246")
    });
    let axis = scr.lines().next().unwrap();
    let cursor_col = col(axis, '▼').unwrap();
    let rtos: Vec<char> = line_with(&scr, ">CPU1").chars().collect();
    assert_eq!(rtos[cursor_col], 'c', "cursor column {cursor_col} in\n{scr}");
    // The event list's current line is at that time, and the switch to ctrl_loop is there.
    let lines: Vec<&str> = scr.lines().collect();
    let cur = lines
        .iter()
        .position(|l| l.starts_with(">5.016246  1"))
        .unwrap_or_else(|| panic!("{scr}"));
    assert!(
        lines[cur..cur + 3]
            .iter()
            .any(|l| l.contains("sched_switch uC/OS-II Idle:101063 ==> ctrl_loop:101005")),
        "{scr}"
    );
    // n: the next run, 1 ms later.
    s.keys(&["n"]);
    s.wait("search next", |x| status(x).contains("at 5.017246"));

    // Markers: A here, B ten columns right; both on the axis, Δt in the status line.
    s.keys(&["a", "L", "b"]);
    let scr = s.wait("markers", |x| status(x).contains("A-B Δ"));
    let axis = scr.lines().next().unwrap();
    let (a, b) = (col(axis, 'A').unwrap(), col(axis, 'B').unwrap());
    assert_eq!(b - a, 10, "{axis}");
    // Ten columns of 3.123438 ms / 104 columns (120 minus a 16-column label).
    assert!(status(&scr).contains("A-B Δ300.330 us"), "{}", status(&scr));

    // Help, then quit.
    s.keys(&["?"]);
    s.wait("help", |x| x.contains("zoom in/out at cursor"));
    s.keys(&["Escape"]);
    s.wait("help closed", |x| !x.contains("zoom in/out at cursor"));
    s.keys(&["q"]);
    let t = Instant::now();
    while s.alive() && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!s.alive(), "q quits");
}

#[test]
fn no_color_and_80x24_in_a_real_terminal() {
    if !have_tmux() {
        eprintln!("tmux not installed: skipping the terminal test");
        return;
    }
    let file = common::merged();
    let s = Session::start(&format!("{}", file.display()));
    Command::new("tmux")
        .args(["resize-window", "-t", &s.0, "-x", "80", "-y", "24"])
        .status()
        .unwrap();
    let scr = s.wait("80x24 frame", |x| {
        x.lines().count() >= 24 && x.lines().nth(1).is_some_and(|l| l.chars().count() == 80)
    });
    assert!(status(&scr).contains("cur 5.016000"), "{scr}");
    drop(s);
    let s = Session::start_cmd(&format!("env NO_COLOR=1 {BIN} {}", file.display()));
    let scr = s.wait("first frame", |x| x.contains("zoom 99.950 ms"));
    s.keys(&["g"]);
    s.type_text("+246us");
    s.keys(&["Enter", "+", "+", "+", "+", "+", "+", "+"]);
    let scr2 = s.wait("zoomed", |x| status(x).contains("zoom 780.860 us"));
    // Without color the blocks carry `=` fill after the name.
    assert!(line_with(&scr2, " CPU1").contains("ctrl_loop="), "{scr}\n{scr2}");
}

#[test]
fn missing_and_corrupt_files_exit_nonzero_with_a_message() {
    let o = Command::new(BIN).arg("/nonexistent/trace.dat").output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("hv-trace-view: cannot open /nonexistent/trace.dat"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.dat");
    let mut bytes = std::fs::read(common::real("tc-v7.dat")).unwrap();
    bytes.truncate(3000);
    std::fs::write(&p, &bytes).unwrap();
    let o = Command::new(BIN).arg(&p).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.dat") && !err.contains("panicked"), "{err}");
    let o = Command::new(BIN).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "no argument: usage");
}
