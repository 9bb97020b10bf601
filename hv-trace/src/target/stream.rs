//! Streaming a recording home while it runs: the guest's agent
//! (`hvtrace-stream`, `guests/linux/agent`) sends ftrace's ring-buffer pages
//! over the binary data port as they fill; a thread here feeds them to a
//! [`Capture`] on disk, so a recording is bounded by the host's disk, not
//! the guest's RAM, and what arrived before a crash is kept.

use crate::target::control::{Control, GUEST_DATA_PORT};
use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use trace_convert::capture::{Capture, CaptureStats};

/// The agent's pid file and log in the guest.
const AGENT_PID: &str = "/tmp/hvtrace-stream.pid";
const AGENT_LOG: &str = "/tmp/hvtrace-stream.log";
/// How often the agent looks for new pages when there were none (ms): the
/// newest events reach the host within about this.
pub const AGENT_INTERVAL_MS: u32 = 100;
/// How often the host writes a byte to the port: the guest's virtio console
/// hands over queued output when the host writes (its agent reads them).
const KICK: Duration = Duration::from_millis(20);

/// The events a streamed recording always enables: both OSes' switches and
/// wake-ups, and every hvtrace event (as `record::EVENTS` for trace-cmd).
pub const STREAM_EVENTS: &str = "hvtrace:* sched:sched_switch sched:sched_wakeup";

/// What ftrace records besides [`STREAM_EVENTS`]: more events
/// (`irq:*`, `timer:hrtimer_start`), and a tracer (`function`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    events: Vec<String>,
    tracer: Option<String>,
}

impl Selection {
    /// Checks the names (ftrace's `system:event` with `*`, a tracer's name):
    /// they go into the guest's shell.
    pub fn new(events: &[String], tracer: Option<&str>) -> Result<Selection> {
        let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_:*".contains(&b));
        for e in events {
            anyhow::ensure!(
                plain(e),
                "--event {e:?}: an ftrace event is SYSTEM:EVENT (`irq:*`, `timer:hrtimer_start`), letters, digits, _ and * only"
            );
        }
        if let Some(t) = tracer {
            anyhow::ensure!(
                plain(t) && !t.contains([':', '*']),
                "--tracer {t:?}: a tracer's name (`function`, `function_graph`; the guest's available_tracers lists them)"
            );
        }
        Ok(Selection {
            events: events.to_vec(),
            tracer: tracer.map(str::to_string),
        })
    }

    /// The shell command that sets ftrace up (tracing off, the events and
    /// tracer, the `local` clock, an empty buffer, tracing on), run in
    /// /sys/kernel/tracing.
    fn setup_command(&self) -> String {
        let extra = self
            .events
            .iter()
            .map(|e| format!(" && echo '{e}' >> set_event"))
            .collect::<String>();
        let tracer = self.tracer.as_deref().unwrap_or("nop");
        format!(
            "echo 0 > tracing_on && echo > set_event && echo nop > current_tracer && echo local > trace_clock && \
             echo {STREAM_EVENTS} > set_event{extra} && echo {tracer} > current_tracer && echo > trace && echo 1 > tracing_on"
        )
    }

    /// After the recording: the events and tracer off again.
    pub fn reset_command() -> &'static str {
        "cd /sys/kernel/tracing && echo nop > current_tracer && echo > set_event && cd /"
    }
}

/// A stream being received.
pub struct Streaming {
    thread: Option<JoinHandle<Result<Capture>>>,
    stats: Arc<Mutex<CaptureStats>>,
    stop: Arc<AtomicBool>,
    started: Instant,
    dir: PathBuf,
}

impl Streaming {
    /// Sets up ftrace in the guest (the events of [`STREAM_EVENTS`] and
    /// `selection`'s, the `local` clock, an empty buffer, tracing on) and
    /// starts the agent, with the capture in `dir`.
    pub fn start(ctl: &mut Control, dir: &Path, selection: &Selection) -> Result<Streaming> {
        let sock_path = ctl.data_sock().to_path_buf();
        anyhow::ensure!(
            sock_path.exists(),
            "this session has no data port ({}): restart it with `hv-trace run`",
            sock_path.display()
        );
        let mut capture = Capture::create(dir).with_context(|| format!("starting a capture in {}", dir.display()))?;
        let mut sock = UnixStream::connect(&sock_path)
            .with_context(|| format!("connecting to the data port {}", sock_path.display()))?;
        // An agent a dead hv-trace left behind holds the port (it would stop
        // by itself 10 s after the host stopped reading): it ends now, if
        // the pid is still that agent's; what it still sends is dropped below.
        ctl.run(
            &format!(
                "if [ -f {AGENT_PID} ]; then p=$(cat {AGENT_PID}); \
                 if [ \"$(cat /proc/$p/comm 2>/dev/null)\" = hvtrace-stream ]; then kill -TERM $p; \
                 for i in $(seq 50); do kill -0 $p 2>/dev/null || break; usleep 100000; done; \
                 kill -KILL $p 2>/dev/null; fi; rm -f {AGENT_PID}; fi; true"
            ),
            Duration::from_secs(30),
        )
        .context("ending an earlier streaming agent in the guest")?;
        // Whatever an interrupted transfer left in the port goes first (until
        // it is quiet for 0.2 s, at most 10 s).
        sock.set_read_timeout(Some(Duration::from_millis(200)))?;
        let mut junk = [0u8; 1 << 16];
        let draining = Instant::now();
        while draining.elapsed() < Duration::from_secs(10) && matches!(sock.read(&mut junk), Ok(n) if n > 0) {
            let _ = sock.write_all(b"\n");
        }
        ctl.run(
            &format!("cd /sys/kernel/tracing && {} && cd /", selection.setup_command()),
            Duration::from_secs(30),
        )
        .context("setting up ftrace in the guest (an event or tracer it does not have?)")?;
        let stats = Arc::new(Mutex::new(CaptureStats::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (stats, stop) = (stats.clone(), stop.clone());
            std::thread::spawn(move || {
                receive(&mut sock, &mut capture, &stats, &stop)?;
                Ok(capture)
            })
        };
        ctl.run(
            &format!(
                "rm -f {AGENT_PID}; {{ hvtrace-stream {GUEST_DATA_PORT} {AGENT_INTERVAL_MS} > {AGENT_LOG} 2>&1 < /dev/null & }}; echo $! > {AGENT_PID}"
            ),
            Duration::from_secs(30),
        )
        .context("starting the streaming agent in the guest")?;
        Ok(Streaming {
            thread: Some(thread),
            stats,
            stop,
            started: Instant::now(),
            dir: dir.to_path_buf(),
        })
    }

    /// What has arrived so far.
    pub fn stats(&self) -> CaptureStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Seconds since the stream started.
    pub fn seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Whether the receiver has stopped (the stream ended, or the port closed:
    /// the guest or QEMU died).
    pub fn finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Asks the agent to stop (it turns tracing off, sends what is left and
    /// its totals) and waits for the stream's end; the capture. With the
    /// guest gone, the capture as far as it came.
    pub fn stop(mut self, ctl: Option<&mut Control>) -> Result<Capture> {
        if let Some(ctl) = ctl {
            if !self.finished() {
                if let Err(e) = ctl.run(&format!("kill -TERM $(cat {AGENT_PID})"), Duration::from_secs(30)) {
                    eprintln!("[hv-trace] could not stop the streaming agent: {e:#}");
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop.store(true, Ordering::Release);
        let thread = self.thread.take().context("the stream was already stopped")?;
        let capture = thread
            .join()
            .map_err(|_| anyhow::anyhow!("the stream's receiver failed"))??;
        Ok(capture)
    }

    /// The capture's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Reads the port into the capture until the stream ends, the port closes,
/// or `stop`; writes a kick byte now and then.
fn receive(sock: &mut UnixStream, capture: &mut Capture, stats: &Mutex<CaptureStats>, stop: &AtomicBool) -> Result<()> {
    sock.set_read_timeout(Some(KICK))?;
    let mut buf = vec![0u8; 1 << 16];
    let mut last_kick = Instant::now();
    let mut last_sync = Instant::now();
    loop {
        if stop.load(Ordering::Acquire) {
            break;
        }
        match sock.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let ended = capture.feed(&buf[..n])?;
                if let Ok(mut s) = stats.lock() {
                    *s = capture.stats.clone();
                }
                if ended {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => bail!("reading the data port: {e}"),
        }
        if last_kick.elapsed() >= KICK {
            // A closed port (QEMU gone) shows up as the next read's end.
            let _ = sock.write_all(b"\n");
            last_kick = Instant::now();
        }
        if last_sync.elapsed() >= Duration::from_secs(1) {
            capture.sync()?;
            last_sync = Instant::now();
        }
    }
    capture.sync()?;
    if let Ok(mut s) = stats.lock() {
        *s = capture.stats.clone();
    }
    Ok(())
}

/// A progress line's text: bytes, events per OS, drops, rate.
pub fn progress_line(s: &CaptureStats, seconds: f64, module_drops: u64) -> String {
    let drops = s.missed_events + s.missed_unknown + module_drops + s.lost_frames;
    format!(
        "{:.1} MB, RTOS {} · Linux {} events, {} drops, {:.0} kB/s",
        s.bytes as f64 / 1e6,
        s.rtos_events,
        s.linux_events,
        drops,
        s.bytes as f64 / seconds.max(1e-3) / 1e3
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_selection_takes_event_patterns_and_a_tracer_and_refuses_shell_text() {
        let s = Selection::new(&["irq:*".into(), "timer:hrtimer_start".into()], Some("function")).unwrap();
        let cmd = s.setup_command();
        assert!(
            cmd.contains("echo 'irq:*' >> set_event && echo 'timer:hrtimer_start' >> set_event"),
            "{cmd}"
        );
        assert!(cmd.contains("echo function > current_tracer"), "{cmd}");
        assert!(Selection::default()
            .setup_command()
            .contains("echo nop > current_tracer && echo > trace"));
        for bad in ["irq:*; reboot", "$(x)", "a b", ""] {
            assert!(Selection::new(&[bad.into()], None).is_err(), "{bad}");
        }
        assert!(Selection::new(&[], Some("function;ls")).is_err());
        assert!(Selection::new(&[], Some("sched:*")).is_err());
    }

    #[test]
    fn the_progress_line_says_bytes_events_drops_and_rate() {
        let s = CaptureStats {
            bytes: 2_500_000,
            rtos_events: 1200,
            linux_events: 3400,
            missed_events: 2,
            ..Default::default()
        };
        assert_eq!(
            progress_line(&s, 10.0, 1),
            "2.5 MB, RTOS 1200 · Linux 3400 events, 3 drops, 250 kB/s"
        );
    }
}
