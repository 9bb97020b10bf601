//! Recording both OSes (the hvtrace events and the scheduler's): streamed
//! home while it runs ([`record`], the default), or with the real trace-cmd
//! in the Linux guest and the file brought home at the end
//! ([`record_with_trace_cmd`]).

use crate::progress::Step;
use crate::target::control::Control;
use crate::target::hvtrace;
use crate::target::stream::{self, Selection, Streaming};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the background recording leaves its exit status and its output.
const STATUS: &str = "/tmp/hv-trace-record.status";
const LOG: &str = "/tmp/hv-trace-record.log";

/// The events every recording takes: both OSes' switches and wake-ups.
pub const EVENTS: &str = "-e hvtrace -e sched:sched_switch -e sched:sched_wakeup";

/// Record `duration` seconds with the real trace-cmd in the guest (hvtrace
/// and scheduler events), optionally with a shell `load` running meanwhile;
/// brings the file home as `out/guest.dat` when trace-cmd is done.
pub fn record_with_trace_cmd(ctl: &mut Control, duration: f64, out: &Path, load: Option<&str>) -> Result<PathBuf> {
    anyhow::ensure!(
        duration.is_finite() && duration > 0.0,
        "--duration must be a positive number of seconds"
    );
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    hvtrace::enable(ctl, true)?;
    let load = load.map(|l| format!("( {l} ) & LOAD=$!; ")).unwrap_or_default();
    let stop_load = if load.is_empty() {
        ""
    } else {
        "; kill $LOAD 2>/dev/null; wait 2>/dev/null; true"
    };
    let cmd = format!("{load}trace-cmd record -q {EVENTS} -o /tmp/guest.dat sleep {duration}{stop_load}");
    let limit = Duration::from_secs_f64(duration) + Duration::from_secs(120);
    let step = Step::start(format!("recording {duration} s in the guest with trace-cmd"));
    // In the background, its status in a file, so that the recording can be
    // watched: once a second the RTOS records the module has turned into
    // events and its drops (read with shell builtins only: no process of
    // ours appears in the trace).
    ctl.run(
        &format!(
            // `{ … & }`: the channel's own `{ CMD ; }` cannot end in `& ;`.
            "rm -f {STATUS} {LOG}; {{ ( {{ {cmd} ; }} > {LOG} 2>&1; echo $? > {STATUS} ) < /dev/null > /dev/null 2>&1 & }}"
        ),
        Duration::from_secs(30),
    )?;
    let started = std::time::Instant::now();
    let status = loop {
        std::thread::sleep(Duration::from_secs(1));
        let out = ctl.run(
            &format!(
                "if [ -f {STATUS} ]; then read -r s < {STATUS}; echo \"status $s\"; fi; \
                 while read -r l; do case $l in records*|drops*) echo \"$l\";; esac; done < {}/stats",
                hvtrace::SYSFS
            ),
            Duration::from_secs(30),
        )?;
        let stats = hvtrace::parse_stats(&out);
        step.detail(&format!(
            "{:.0}/{duration} s, {} RTOS records, {} drops",
            started.elapsed().as_secs_f64().min(duration),
            stats.get("records").copied().unwrap_or(0),
            stats.get("drops").copied().unwrap_or(0)
        ));
        if let Some(s) = stats.get("status") {
            break *s;
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "trace-cmd did not finish within {} s in the guest",
            limit.as_secs()
        );
    };
    if status != 0 {
        let log = ctl
            .run(&format!("cat {LOG}"), Duration::from_secs(30))
            .unwrap_or_default();
        bail!("trace-cmd record failed in the guest (status {status}): {}", log.trim());
    }
    step.finish("done");
    let step = Step::start("bringing guest.dat home");
    let bytes = ctl.fetch("/tmp/guest.dat", Duration::from_secs(300))?;
    let path = out.join("guest.dat");
    trace_convert::output::write_atomically(&path, &bytes)?;
    let how = ctl.last_transfer.map_or_else(String::new, |t| {
        format!(" over the {}, {:.2} MB/s", t.channel, t.rate_mb_s())
    });
    step.finish(&format!("{} KiB{how}", bytes.len() / 1024));
    Ok(path)
}

/// Where a streamed recording keeps what arrives, inside its output directory.
pub const CAPTURE_DIR: &str = "capture";
/// The recording's process, in the session directory (for `hv-trace stop`).
pub const RECORD_PID: &str = "record.pid";

/// Ends a recording of the session in `dir` (`hv-trace record`, `view
/// --live`) as Ctrl-C would, and waits until its file is written; false if
/// none was running.
pub fn end_running(dir: &Path) -> bool {
    let Some(pid) = fs::read_to_string(dir.join(RECORD_PID))
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
    else {
        return false;
    };
    let ours = |pid: u32| {
        fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains("hv-trace"))
    };
    if !ours(pid) {
        let _ = fs::remove_file(dir.join(RECORD_PID));
        return false;
    }
    let _ = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline && ours(pid) {
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}
const LOAD_PID: &str = "/tmp/hv-trace-load.pid";

/// What a streamed recording brought home.
#[derive(Debug, Clone)]
pub struct Streamed {
    /// `out/guest.dat`.
    pub path: PathBuf,
    /// The capture's figures.
    pub stats: trace_convert::capture::CaptureStats,
    /// The module's RTOS events (switches, probe hits, interrupt timings)
    /// while it recorded, when the guest answered at both ends.
    pub module_events: Option<u64>,
    /// The module's ring drops meanwhile.
    pub module_drops: Option<u64>,
    /// The guest's MemAvailable before and after, in kB.
    pub mem_available_kb: (Option<u64>, Option<u64>),
    /// Seconds recorded.
    pub seconds: f64,
    /// Seconds the stream ran (to its end, after the recording's: the
    /// buffers drain).
    pub stream_seconds: f64,
    /// Why the recording is not all the guest had, if it is not (the guest
    /// died, the stream was damaged).
    pub incomplete: Option<String>,
    /// `out/merged.dat` when it was merged while recording (the live view).
    pub merged: Option<PathBuf>,
}

/// Records both OSes, streamed home while it runs: `duration` seconds, or
/// until Ctrl-C (or until the guest stops answering), optionally with a
/// shell `load` meanwhile. The capture grows in `out/capture/`; the result
/// is `out/guest.dat`, also when the guest died half way (as far as it came).
pub fn record(
    ctl: &mut Control,
    duration: Option<f64>,
    out: &Path,
    load: Option<&str>,
    selection: &Selection,
) -> Result<Streamed> {
    if let Some(d) = duration {
        anyhow::ensure!(
            d.is_finite() && d > 0.0,
            "--duration must be a positive number of seconds"
        );
    }
    let mut rec = Recording::start(ctl, out, load, selection)?;
    let what = match duration {
        Some(d) => format!("recording {d} s, streamed home"),
        None => "recording until Ctrl-C, streamed home".to_string(),
    };
    let step = Step::start(what);
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let elapsed = rec.seconds();
        if duration.is_some_and(|d| elapsed >= d) || rec.interrupted() {
            break;
        }
        if !rec.poll(ctl) {
            break;
        }
        let limit = duration.map_or(String::new(), |d| format!("/{d:.0}"));
        step.detail(&format!("{elapsed:.0}{limit} s, {}", rec.progress()));
    }
    let streamed = rec.finish(ctl)?;
    step.finish(&format!(
        "{}{}",
        stream::progress_line(
            &streamed.stats,
            streamed.stream_seconds,
            streamed.module_drops.unwrap_or(0)
        ),
        if streamed.incomplete.is_some() {
            " (incomplete)"
        } else {
            ""
        }
    ));
    Ok(streamed)
}

/// A streamed recording in progress: started, watched, finished.
pub struct Recording {
    streaming: Streaming,
    /// Set by SIGINT (Ctrl-C, or `hv-trace stop`): end the recording.
    interrupted: Arc<AtomicBool>,
    sigint: signal_hook::SigId,
    /// `record.pid` in the session directory, naming this process.
    pid_file: PathBuf,
    out: PathBuf,
    load: bool,
    before: Counters,
    mem_before: Option<u64>,
    module_drops: u64,
    guest_alive: bool,
    started: Instant,
}

impl Recording {
    /// Sets the guest up and starts streaming into `out/capture/` what
    /// `selection` says, with RTOS records on and `load` running.
    pub fn start(ctl: &mut Control, out: &Path, load: Option<&str>, selection: &Selection) -> Result<Recording> {
        fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let capture_dir = out.join(CAPTURE_DIR);
        if capture_dir.exists() {
            anyhow::ensure!(
                capture_dir.join("meta/end").exists() || !capture_dir.join("meta").exists(),
                "{} holds a recording that did not end; keep it with `hv-trace export assemble {} -o OUT.dat`, \
                 or remove it, then record again",
                capture_dir.display(),
                capture_dir.display()
            );
            fs::remove_dir_all(&capture_dir).with_context(|| format!("removing the old {}", capture_dir.display()))?;
        }
        let mem_before = mem_available_kb(ctl);
        // RTOS records flow only between the two counter readings, so the
        // module's count and the file's can be compared exactly.
        hvtrace::enable(ctl, false)?;
        let before = quiet_counters(ctl)?;
        let streaming = Streaming::start(ctl, &capture_dir, selection)?;
        hvtrace::enable(ctl, true)?;
        if let Some(load) = load {
            ctl.run(
                &format!("{{ ( {load} ) < /dev/null > /dev/null 2>&1 & }}; echo $! > {LOAD_PID}"),
                Duration::from_secs(30),
            )?;
        }
        // Free for other commands until the first poll.
        ctl.release();
        let interrupted = Arc::new(AtomicBool::new(false));
        let sigint = signal_hook::flag::register(signal_hook::consts::SIGINT, interrupted.clone())?;
        // `hv-trace stop` ends this recording (SIGINT) before the system.
        let pid_file = ctl.session_dir().join(RECORD_PID);
        fs::write(&pid_file, std::process::id().to_string())?;
        Ok(Recording {
            streaming,
            interrupted,
            sigint,
            pid_file,
            out: out.to_path_buf(),
            load: load.is_some(),
            before,
            mem_before,
            module_drops: 0,
            guest_alive: true,
            started: Instant::now(),
        })
    }

    /// Whether SIGINT asked to end the recording.
    pub fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::Relaxed)
    }

    /// Seconds since the start.
    pub fn seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Reads the module's drops, then lets go of the control channel (other
    /// commands may use it between polls); false once the guest no longer
    /// answers or its stream has ended.
    pub fn poll(&mut self, ctl: &mut Control) -> bool {
        if self.streaming.finished() {
            self.guest_alive = false;
            return false;
        }
        match ctl.exec(
            &format!(
                "while read -r l; do case $l in drops*) echo \"$l\";; esac; done < {}/stats",
                hvtrace::SYSFS
            ),
            Duration::from_secs(10),
        ) {
            Ok(o) => {
                // Free for `hv-trace exec`, `probe add`… until the next poll.
                ctl.release();
                let drops = hvtrace::parse_stats(&o.text).get("drops").copied().unwrap_or(0);
                self.module_drops = drops.saturating_sub(self.before.drops);
                true
            }
            Err(_) => {
                self.guest_alive = false;
                false
            }
        }
    }

    /// The progress line: MB, events per OS, drops, rate.
    pub fn progress(&self) -> String {
        stream::progress_line(&self.streaming.stats(), self.streaming.seconds(), self.module_drops)
    }

    /// What has arrived so far.
    pub fn stats(&self) -> trace_convert::capture::CaptureStats {
        self.streaming.stats()
    }

    /// The capture's directory.
    pub fn capture_dir(&self) -> &Path {
        self.streaming.dir()
    }

    /// Whether the guest stopped answering or its stream ended by itself.
    pub fn guest_gone(&self) -> bool {
        !self.guest_alive || self.streaming.finished()
    }

    /// Stops the load, RTOS records and the stream, and writes
    /// `out/guest.dat` from the capture (as far as it came if the guest died).
    pub fn finish(self, ctl: &mut Control) -> Result<Streamed> {
        let seconds = self.seconds();
        signal_hook::low_level::unregister(self.sigint);
        let _ = fs::remove_file(&self.pid_file);
        let guest_alive = self.guest_alive && !self.streaming.finished();
        let capture_dir = self.streaming.dir().to_path_buf();
        let stream_started = Instant::now() - Duration::from_secs_f64(self.streaming.seconds());
        let (capture, after, mem_after) = if guest_alive {
            let stopped = finish_in_guest(ctl, self.load);
            let after = stopped.as_ref().ok().copied();
            let capture = self.streaming.stop(Some(ctl))?;
            // As before a recording: the module's events on, ftrace's off.
            let _ = hvtrace::enable(ctl, true);
            let _ = ctl.run(Selection::reset_command(), Duration::from_secs(30));
            if let Err(e) = stopped {
                eprintln!("[hv-trace] the guest did not answer at the end: {e:#}");
            }
            (capture, after, mem_available_kb(ctl))
        } else {
            (self.streaming.stop(None)?, None, None)
        };
        let mut incomplete = capture.stats.incomplete();
        if !guest_alive {
            incomplete = Some(format!(
                "the guest stopped answering after {seconds:.1} s; {}",
                incomplete.unwrap_or_default()
            ));
        }
        for c in &capture.complaints {
            eprintln!("[hv-trace] stream: {c}");
        }
        let path = self.out.join("guest.dat");
        trace_convert::capture::assemble(&capture_dir, &path)
            .with_context(|| format!("writing {} from {}", path.display(), capture_dir.display()))?;
        let before = self.before;
        Ok(Streamed {
            path,
            stats: capture.stats,
            module_events: after.map(|a| a.events - before.events),
            module_drops: after.map(|a| a.drops - before.drops),
            mem_available_kb: (self.mem_before, mem_after),
            seconds,
            stream_seconds: stream_started.elapsed().as_secs_f64(),
            incomplete,
            merged: None,
        })
    }
}

/// The module's RTOS event counters at a quiet moment.
#[derive(Debug, Clone, Copy)]
struct Counters {
    events: u64,
    drops: u64,
}

/// Waits until the module has drained every ring (the hypervisor writes
/// nothing with recording off), then reads its counters.
fn quiet_counters(ctl: &mut Control) -> Result<Counters> {
    let started = Instant::now();
    loop {
        let text = hvtrace::stats_text(ctl)?;
        let drained = text
            .lines()
            .filter(|l| l.contains(" fill="))
            .all(|l| l.split_whitespace().any(|w| w == "fill=0"));
        if drained || started.elapsed() > Duration::from_secs(5) {
            let s: BTreeMap<String, u64> = hvtrace::parse_stats(&text);
            let get = |k: &str| s.get(k).copied().unwrap_or(0);
            return Ok(Counters {
                events: get("rtos_switch") + get("rtos_probe") + get("rtos_irq"),
                drops: get("drops"),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The end of a recording in the guest: the load stopped, RTOS records off
/// and drained, the counters read.
fn finish_in_guest(ctl: &mut Control, load: bool) -> Result<Counters> {
    if load {
        ctl.run(
            &format!("kill $(cat {LOAD_PID}) 2>/dev/null; rm -f {LOAD_PID}; true"),
            Duration::from_secs(30),
        )?;
    }
    hvtrace::enable(ctl, false)?;
    quiet_counters(ctl)
}

/// The guest's MemAvailable in kB.
fn mem_available_kb(ctl: &mut Control) -> Option<u64> {
    let text = ctl
        .run("grep MemAvailable /proc/meminfo", Duration::from_secs(10))
        .ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}

impl Streamed {
    /// The summary a user reads after a recording.
    pub fn render(&self) -> String {
        let s = &self.stats;
        let mut t = format!(
            "streamed {:.1} s: {:.2} MB in {} pages ({:.0} kB/s over {:.1} s); events: RTOS {}, Linux {}\n",
            self.seconds,
            s.bytes as f64 / 1e6,
            s.pages,
            s.bytes as f64 / self.stream_seconds.max(1e-3) / 1e3,
            self.stream_seconds,
            s.rtos_events,
            s.linux_events
        );
        let module = self.module_events.map_or("n/a".to_string(), |n| n.to_string());
        t += &format!(
            "drops: ftrace ring {} (+{} pages with an unknown count), hvtrace rings {}, stream frames lost {}; module emitted {module} RTOS events\n",
            s.missed_events,
            s.missed_unknown,
            self.module_drops.map_or("n/a".to_string(), |d| d.to_string()),
            s.lost_frames
        );
        if let Some(m) = self.module_events.filter(|&m| m != s.rtos_events) {
            let ftrace_drops = s.missed_events + s.missed_unknown;
            t += &format!(
                "the file has {} of the module's {m} RTOS events: {}\n",
                s.rtos_events,
                if ftrace_drops > 0 {
                    "the others are among ftrace's ring drops (its buffer overflowed)"
                } else {
                    "the others were lost without a count: please report this"
                }
            );
        }
        if let (Some(a), Some(b)) = self.mem_available_kb {
            t += &format!(
                "guest MemAvailable: {a} kB before, {b} kB after ({:+} kB)\n",
                b as i64 - a as i64
            );
        }
        if let Some(why) = &self.incomplete {
            t += &format!("incomplete: {why}\n");
        }
        t
    }
}
