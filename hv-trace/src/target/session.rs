//! A running target system: QEMU started in the background with a control
//! channel (a virtio console wired to a Unix socket, driven by a shell in the
//! Linux guest) and an HMP monitor socket. Its files live in one session
//! directory so other `hv-trace` commands (`probe`, `record`, `stop`) can
//! reach the system that `hv-trace run` or `hv-trace demo` started.

use crate::target::control::Control;
use crate::target::{paths, qemu};
use anyhow::{bail, Context, Result};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The session directory: `HV_TRACE_SESSION`, or `session` in the cache.
/// One running system per session directory.
pub fn dir() -> PathBuf {
    match std::env::var_os("HV_TRACE_SESSION") {
        Some(d) => PathBuf::from(d),
        None => paths::cache_dir().join("session"),
    }
}

/// A private session directory for this process (`hv-trace-<tag>-<pid>` in
/// the temporary directory), made the current one (`HV_TRACE_SESSION`), so
/// the command never touches a system `hv-trace run` started; removed with
/// everything in it when dropped.
pub struct Private {
    pub dir: PathBuf,
}

impl Private {
    pub fn new(tag: &str) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("hv-trace-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        std::env::set_var("HV_TRACE_SESSION", &dir);
        Ok(Private { dir })
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// QEMU arguments for the control channel, the data port and the monitor of
/// a session in `dir`.
pub fn qemu_args(dir: &Path) -> Vec<String> {
    vec![
        "-device".into(),
        "virtio-serial-device".into(),
        "-chardev".into(),
        format!(
            "socket,id=ctl,path={},server=on,wait=off",
            dir.join("ctl.sock").display()
        ),
        "-device".into(),
        "virtconsole,chardev=ctl,name=hvtrace.ctl".into(),
        // The binary data port: files come home over it (Control::fetch).
        "-chardev".into(),
        format!(
            "socket,id=data,path={},server=on,wait=off",
            dir.join("data.sock").display()
        ),
        "-device".into(),
        "virtserialport,chardev=data,name=hvtrace.data".into(),
        "-monitor".into(),
        format!("unix:{},server=on,wait=off", dir.join("monitor.sock").display()),
    ]
}

/// A system this process started.
pub struct Running {
    child: Child,
    pub dir: PathBuf,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Start `machine` (which must carry `qemu_args(dir())`), copying its
    /// console to `console.log` in the session directory and to `echo`.
    pub fn start(machine: &qemu::Machine, mut echo: Box<dyn Write + Send>) -> Result<Self> {
        let dir = dir();
        if let Some(pid) = live_pid(&dir) {
            bail!("a system is already running (QEMU pid {pid}); stop it first with `hv-trace stop`");
        }
        // Leftovers of an earlier system (other files, such as a caller's
        // log, stay).
        fs::create_dir_all(&dir)?;
        for stale in [
            "qemu.pid",
            "console.log",
            "qemu.stderr",
            "ctl.sock",
            "data.sock",
            "monitor.sock",
            "artifacts.json",
        ] {
            let _ = fs::remove_file(dir.join(stale));
        }
        let stderr = fs::File::create(dir.join("qemu.stderr"))?;
        let mut child = machine
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .context("starting qemu-system-aarch64 (package qemu-system-arm; run scripts/setup.sh)")?;
        fs::write(dir.join("qemu.pid"), child.id().to_string())?;
        let mut log = fs::File::create(dir.join("console.log"))?;
        let mut out = child.stdout.take().expect("piped");
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let _ = log.write_all(&buf[..n]);
                let _ = log.flush();
                let _ = echo.write_all(&buf[..n]);
                let _ = echo.flush();
            }
        });
        Ok(Running {
            child,
            dir,
            reader: Some(reader),
        })
    }

    /// Wait until the console shows `marker` (or QEMU exits, or `timeout`).
    pub fn wait_for(&mut self, marker: &str, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        loop {
            let log = fs::read(self.dir.join("console.log")).unwrap_or_default();
            if String::from_utf8_lossy(&log).contains(marker) {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the system stopped ({status}) before \"{marker}\" appeared; see {}",
                    self.dir.join("console.log").display()
                );
            }
            if started.elapsed() > timeout {
                bail!(
                    "no \"{marker}\" on the console within {} s; see {}",
                    timeout.as_secs(),
                    self.dir.join("console.log").display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait for QEMU to exit by itself up to `timeout`; its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Stop QEMU (SIGTERM, then SIGKILL) and clean the session up.
    pub fn stop(mut self) {
        qemu::stop(&mut self.child);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let _ = fs::remove_file(self.dir.join("qemu.pid"));
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            qemu::stop(&mut self.child);
        }
    }
}

/// The PID of a QEMU of a session that still runs.
pub fn live_pid(dir: &Path) -> Option<u32> {
    let pid: u32 = fs::read_to_string(dir.join("qemu.pid")).ok()?.trim().parse().ok()?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    String::from_utf8_lossy(&cmdline)
        .contains("qemu-system-aarch64")
        .then_some(pid)
}

/// Stop the session's QEMU started by another hv-trace process.
pub fn stop_other() -> Result<()> {
    let dir = dir();
    let Some(pid) = live_pid(&dir) else {
        bail!("no running system (nothing in {})", dir.display())
    };
    // Ask Linux to power off cleanly first (PSCI SYSTEM_OFF ends QEMU); fall
    // back to SIGTERM. The channel stays open while we wait: QEMU takes the
    // guest's input from the socket only when the guest has buffers for it,
    // and drops what is unread when the client goes (so a command sent just
    // before closing never ran, and every stop took the whole wait). An empty
    // line now and then keeps the console moving, as `Control::exec` does.
    let mut ctl = Control::connect(&dir).ok();
    if let Some(c) = ctl.as_mut() {
        let _ = c.send_raw("poweroff -f\n");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut kicked = Instant::now();
    while Instant::now() < deadline && live_pid(&dir).is_some() {
        std::thread::sleep(Duration::from_millis(50));
        if kicked.elapsed() >= Duration::from_millis(300) {
            if let Some(c) = ctl.as_mut() {
                let _ = c.send_raw("\n");
            }
            kicked = Instant::now();
        }
    }
    drop(ctl);
    if live_pid(&dir).is_some() {
        let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && live_pid(&dir).is_some() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    if live_pid(&dir).is_some() {
        bail!("QEMU (pid {pid}) did not stop; end it with `kill -KILL {pid}`");
    }
    let _ = fs::remove_file(dir.join("qemu.pid"));
    Ok(())
}

/// Read everything the console printed so far.
pub fn console_log(dir: &Path) -> String {
    fs::read(dir.join("console.log"))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}
