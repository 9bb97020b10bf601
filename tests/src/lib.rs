//! Helpers for the end-to-end tests: the real `hv-trace` binary and bounded
//! QEMU runs. Every QEMU a test starts is stopped by its PID, on success and
//! on failure alike.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repo")
        .to_path_buf()
}

/// A command's stdout and stderr, as text.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A command's output as text, asserting that it succeeded (`what` names it).
pub fn ok(out: Output, what: &str) -> String {
    let t = text(&out);
    assert!(out.status.success(), "{what} failed:\n{t}");
    t
}

/// Asserts that a command failed and that its output says `why` (lower case).
pub fn refused(out: Output, what: &str, why: &str) {
    let t = text(&out);
    assert!(!out.status.success(), "{what} should be refused:\n{t}");
    assert!(
        t.to_lowercase().contains(why),
        "{what}: the refusal should say {why:?}:\n{t}"
    );
}

/// The `hv-trace` binary of this workspace, built once per test process.
pub fn hv_trace_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "-p",
                "hv-trace",
                "--message-format=json-render-diagnostics",
            ])
            .current_dir(repo_root())
            .stderr(Stdio::inherit())
            .output()
            .expect("running cargo build -p hv-trace");
        assert!(out.status.success(), "cargo build -p hv-trace failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["reason"] == "compiler-artifact" && v["target"]["name"] == "hv-trace")
            .find_map(|v| v["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported no hv-trace executable")
    })
}

/// Runs `hv-trace ARGS` with a wall-clock bound; returns its output. Each
/// call gets its own session directory, so tests (and a developer's own
/// `hv-trace run`) never share a running system.
pub fn hv_trace(args: &[&str], limit: Duration) -> Result<Output> {
    let session = tempfile::tempdir()?;
    run_bounded(
        Command::new(hv_trace_bin())
            .args(args)
            .env("HV_TRACE_SESSION", session.path()),
        limit,
    )
}

/// Runs `hv-trace ARGS` in a given session directory (for tests that start
/// a system with `run` and drive it with `probe`, `record`, `stop`).
pub fn hv_trace_in(session: &Path, args: &[&str], limit: Duration) -> Result<Output> {
    run_bounded(
        Command::new(hv_trace_bin()).args(args).env("HV_TRACE_SESSION", session),
        limit,
    )
}

/// Runs a command to completion, killing it (by its PID) at `limit`.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Result<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    let started = Instant::now();
    loop {
        if child.try_wait()?.is_some() {
            return Ok(child.wait_with_output()?);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output()?;
            bail!(
                "{:?} did not finish within {:?}; its output so far:\n{}\n{}",
                cmd.get_program(),
                limit,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a background command printed once it ended (within 120 s), which
/// must be a success.
pub fn finished(mut child: std::process::Child, what: &str) -> String {
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

/// `hv-trace build TARGET --json` → artifact name → path.
pub fn build_artifacts(target: &str, extra: &[&str]) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut args = vec!["build", target, "--json"];
    args.extend_from_slice(extra);
    let out = hv_trace(&args, Duration::from_secs(3600))?;
    if !out.status.success() {
        bail!(
            "hv-trace build {target} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("hv-trace build --json printed no JSON")?;
    Ok(v.as_object().cloned().unwrap_or_default())
}

/// QEMU's HMP monitor of a running session (`monitor.sock`): an oracle for
/// guest memory and address translation.
pub struct Monitor {
    stream: std::os::unix::net::UnixStream,
}

impl Monitor {
    pub fn connect(session: &Path) -> Result<Self> {
        let stream = std::os::unix::net::UnixStream::connect(session.join("monitor.sock"))
            .with_context(|| format!("connecting to {}/monitor.sock", session.display()))?;
        stream.set_read_timeout(Some(Duration::from_millis(100)))?;
        let mut m = Monitor { stream };
        m.read_until_prompt(Duration::from_secs(10))?;
        Ok(m)
    }

    fn read_until_prompt(&mut self, limit: Duration) -> Result<String> {
        use std::io::Read;
        let started = Instant::now();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while started.elapsed() < limit {
            match self.stream.read(&mut buf) {
                Ok(0) => bail!("the monitor closed"),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
            if out.ends_with(b"(qemu) ") {
                return Ok(strip_ansi(&String::from_utf8_lossy(&out)));
            }
        }
        bail!("no monitor prompt within {limit:?}: {}", String::from_utf8_lossy(&out))
    }

    /// Runs one HMP command; its output without the echo and the prompt.
    pub fn cmd(&mut self, command: &str) -> Result<String> {
        use std::io::Write;
        self.stream.write_all(format!("{command}\n").as_bytes())?;
        let text = self.read_until_prompt(Duration::from_secs(30))?;
        // The monitor echoes the line (with cursor movements) before the reply.
        let reply: Vec<&str> = text
            .lines()
            .filter(|l| !l.contains(command) && !l.starts_with("(qemu)"))
            .collect();
        Ok(reply.join("\n"))
    }

    /// Guest physical address of `va` as CPU `cpu` (with both stages) sees it.
    pub fn gva2gpa(&mut self, cpu: u32, va: u64) -> Result<u64> {
        self.cmd(&format!("cpu {cpu}"))?;
        let mut reply = String::new();
        for _ in 0..200 {
            reply = self.cmd(&format!("gva2gpa {va:#x}"))?;
            if let Some(hex) = reply.split("gpa: 0x").nth(1) {
                return Ok(u64::from_str_radix(hex.trim(), 16)?);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let regs = self.cmd("info registers").unwrap_or_default();
        let pstate: Vec<&str> = regs
            .lines()
            .filter(|l| l.contains("PSTATE") || l.contains("PC="))
            .collect();
        bail!("gva2gpa {va:#x}: {reply} (CPU{cpu}: {})", pstate.join(" / "))
    }

    /// Bytes of physical memory (stops the world briefly: pmemsave).
    pub fn read_phys(&mut self, pa: u64, len: usize) -> Result<Vec<u8>> {
        let file = tempfile::NamedTempFile::new()?;
        let reply = self.cmd(&format!("pmemsave {pa:#x} {len} \"{}\"", file.path().display()))?;
        anyhow::ensure!(!reply.contains("rror"), "pmemsave: {reply}");
        Ok(std::fs::read(file.path())?)
    }
}

/// The RTOS VM's IPA → PA offset (hyp-core's partition) and its link offset:
/// its VA `v` lies at PA `v - RTOS_VA_OFFSET + RTOS_PA_OFFSET`.
pub const RTOS_PA_OFFSET: u64 = 0x0100_0000;
pub const RTOS_VA_OFFSET: u64 = 0xFFFF_0000_0000_0000;

/// One context switch from the RTOS's ground-truth log (`OSGtLog`, built
/// with `--ground-truth`: `guests/ucos-ii/bsp/qemu-virt/gt.c`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GtSwitch {
    /// CNTVCT at the switch.
    pub cntvct: u64,
    /// The outgoing task's priority (0xFF at the start).
    pub prev: u8,
    /// The incoming task's priority.
    pub next: u8,
    /// 0 `OSCtxSw` (the outgoing task blocked), 1 `OSIntCtxSw` (it was
    /// preempted), 2 the start.
    pub kind: u8,
    /// `OSTime` at the switch.
    pub ostime: u32,
}

/// The RTOS's ground-truth switches so far, read from its RAM through
/// QEMU (`log_va`: the address of `OSGtLog` in its ELF).
pub fn ground_truth(mon: &mut Monitor, log_va: u64) -> Result<Vec<GtSwitch>> {
    let pa = log_va - RTOS_VA_OFFSET + RTOS_PA_OFFSET;
    let head = mon.read_phys(pa, 32)?;
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    anyhow::ensure!(
        u32_at(&head, 0) == 0x4754_4C47,
        "OSGtLog magic is {:#x}",
        u32_at(&head, 0)
    );
    anyhow::ensure!(u32_at(&head, 4) == 16, "OSGtLog entries are {} bytes", u32_at(&head, 4));
    let n = u32_at(&head, 12).min(u32_at(&head, 8)) as usize;
    let body = mon.read_phys(pa + 32, n * 16)?;
    anyhow::ensure!(body.len() == n * 16, "OSGtLog read short");
    Ok(body
        .chunks(16)
        .map(|e| GtSwitch {
            cntvct: u64::from_le_bytes(e[..8].try_into().unwrap()),
            prev: e[8],
            next: e[9],
            kind: e[10],
            ostime: u32::from_le_bytes(e[12..16].try_into().unwrap()),
        })
        .collect())
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ ... final byte in @..~
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else if c != '\r' {
            out.push(c);
        }
    }
    out
}

/// A system started with `hv-trace run` in its own session, stopped (by
/// `hv-trace stop`, then by killing our child by PID) when dropped.
pub struct System {
    pub session: tempfile::TempDir,
    child: std::process::Child,
}

impl System {
    /// Boots hypervisor + Linux + RTOS with `extra` arguments to `run` and
    /// waits for the control channel.
    pub fn start(extra: &[&str]) -> Result<Self> {
        let session = tempfile::tempdir()?;
        let log = std::fs::File::create(session.path().join("run.log"))?;
        let child = Command::new(hv_trace_bin())
            .args(["run", "--duration", "900"])
            .args(extra)
            .env("HV_TRACE_SESSION", session.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let mut sys = System { session, child };
        let started = Instant::now();
        loop {
            let out = hv_trace_in(sys.session.path(), &["probe", "list"], Duration::from_secs(60))?;
            if out.status.success() {
                return Ok(sys);
            }
            if let Some(status) = sys.child.try_wait()? {
                bail!(
                    "hv-trace run exited ({status}) before the guest answered:\n{}",
                    sys.run_log()
                );
            }
            if started.elapsed() > Duration::from_secs(600) {
                bail!(
                    "the guest's control channel did not answer in 600 s:\n{}",
                    sys.run_log()
                );
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    pub fn path(&self) -> &Path {
        self.session.path()
    }

    /// `hv-trace ARGS` against this system.
    pub fn hv_trace(&self, args: &[&str]) -> Result<Output> {
        hv_trace_in(self.path(), args, Duration::from_secs(600))
    }

    /// `hv-trace record ARGS` against this system, in the background.
    pub fn record_in_background(&self, args: &[&str]) -> std::process::Child {
        Command::new(hv_trace_bin())
            .arg("record")
            .args(args)
            .env("HV_TRACE_SESSION", self.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("hv-trace starts")
    }

    /// Everything `hv-trace run` printed so far (console and hv-trace's own lines).
    pub fn run_log(&self) -> String {
        std::fs::read(self.path().join("run.log"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for System {
    fn drop(&mut self) {
        let _ = hv_trace_in(self.session.path(), &["stop"], Duration::from_secs(60));
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
