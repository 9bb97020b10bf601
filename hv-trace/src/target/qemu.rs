//! The target machine: QEMU `virt` command lines and a console runner that
//! streams the console, bounds the run in time and tells a boot from a failure.

use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// One QEMU machine.
#[derive(Clone, Debug)]
pub struct Machine {
    pub cpus: u32,
    pub memory_mib: u32,
    /// EL2 available (`virtualization=on`): needed for the hypervisor.
    pub virtualization: bool,
    /// ELF started by QEMU's loader (the hypervisor, or a bare guest).
    pub kernel: PathBuf,
    /// Raw images placed at physical addresses (`-device loader`).
    pub blobs: Vec<(PathBuf, u64)>,
    pub extra_args: Vec<String>,
}

impl Machine {
    /// Deterministic guest time: QEMU's `-icount shift=N` (an instruction
    /// takes 2^N ns of guest time).
    pub fn icount(&mut self, shift: u8) {
        self.extra_args
            .extend(["-icount".to_string(), format!("shift={shift},align=off,sleep=on")]);
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new("qemu-system-aarch64");
        let virt = if self.virtualization { ",virtualization=on" } else { "" };
        cmd.arg("-M")
            .arg(format!("virt{virt},gic-version=3"))
            .args(["-cpu", "cortex-a72", "-nographic", "-nic", "none"])
            .arg("-smp")
            .arg(self.cpus.to_string())
            .arg("-m")
            .arg(format!("{}M", self.memory_mib))
            .arg("-kernel")
            .arg(&self.kernel);
        for (file, addr) in &self.blobs {
            cmd.arg("-device")
                .arg(format!("loader,file={},addr={addr:#x},force-raw=on", file.display()));
        }
        cmd.args(&self.extra_args);
        // A developer's knob for diagnostics (e.g. `-d exec -dfilter …` to
        // profile the hypervisor), never set by hv-trace itself.
        if let Ok(extra) = std::env::var("HV_TRACE_QEMU_ARGS") {
            cmd.args(extra.split_whitespace());
        }
        cmd
    }
}

/// How a console run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The machine powered itself off with this exit status.
    Exited(i32),
    /// The time limit was reached and QEMU was stopped.
    TimedOut,
}

/// Runs `machine`, copying its console to `console` and looking for `marker`
/// (the line that proves the system booted). With a limit, QEMU is stopped
/// when it is reached. Errors when QEMU cannot start, exits with a failure,
/// or never prints the marker.
pub fn run_console(
    machine: &Machine,
    limit: Option<Duration>,
    marker: &str,
    console: &mut dyn Write,
) -> Result<Outcome> {
    let mut child = machine
        .command()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting qemu-system-aarch64 (package qemu-system-arm; run scripts/setup.sh)")?;
    let seen = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let stdout = child.stdout.take().expect("piped");
    let reader = spawn_reader(stdout, tx.clone());
    let err_reader = spawn_reader(child.stderr.take().expect("piped"), tx);
    let started = Instant::now();
    let mut line = Vec::new();
    let outcome = loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(chunk) => {
                console.write_all(&chunk)?;
                console.flush()?;
                for &b in &chunk {
                    if b == b'\n' {
                        if String::from_utf8_lossy(&line).contains(marker) {
                            seen.store(true, Ordering::Relaxed);
                        }
                        line.clear();
                    } else {
                        line.push(b);
                    }
                }
                if String::from_utf8_lossy(&line).contains(marker) {
                    seen.store(true, Ordering::Relaxed);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait()?;
                break Outcome::Exited(status.code().unwrap_or(-1));
            }
        }
        if let Some(status) = child.try_wait()? {
            // Drain what is still buffered before reporting.
            while let Ok(chunk) = rx.recv_timeout(Duration::from_millis(200)) {
                console.write_all(&chunk)?;
                if String::from_utf8_lossy(&chunk).contains(marker) {
                    seen.store(true, Ordering::Relaxed);
                }
            }
            break Outcome::Exited(status.code().unwrap_or(-1));
        }
        if limit.is_some_and(|l| started.elapsed() >= l) {
            stop(&mut child);
            break Outcome::TimedOut;
        }
    };
    let _ = reader.join();
    let _ = err_reader.join();
    let booted = seen.load(Ordering::Relaxed);
    match outcome {
        Outcome::Exited(0) if booted => Ok(outcome),
        Outcome::Exited(code) if !booted => {
            bail!("the system did not boot: QEMU exited with status {code} before printing \"{marker}\"")
        }
        Outcome::Exited(code) => bail!("QEMU exited with status {code}"),
        Outcome::TimedOut if booted => Ok(outcome),
        Outcome::TimedOut => bail!(
            "the system did not boot: no \"{marker}\" on the console within {:.0} s (check that the images were built and the machine settings)",
            started.elapsed().as_secs_f64()
        ),
    }
}

fn spawn_reader(mut src: impl Read + Send + 'static, tx: mpsc::Sender<Vec<u8>>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = src.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    })
}

/// Stops a QEMU we started: SIGTERM (QEMU exits cleanly), then SIGKILL.
pub fn stop(child: &mut Child) {
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}
