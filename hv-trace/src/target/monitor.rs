//! QEMU's HMP monitor (a Unix socket of the session): the commands that
//! switch QEMU's exec log on and off. Replies are discarded; a command is done
//! when the `(qemu) ` prompt comes back.

use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// QEMU's HMP monitor; its replies (echo with terminal escapes) are discarded.
pub struct Monitor(UnixStream);

impl Monitor {
    pub fn connect(sock: &Path) -> Result<Self> {
        let stream =
            UnixStream::connect(sock).with_context(|| format!("connecting to QEMU's monitor {}", sock.display()))?;
        stream.set_read_timeout(Some(Duration::from_millis(100)))?;
        let mut m = Monitor(stream);
        m.prompt()?;
        Ok(m)
    }

    /// Read until the `(qemu) ` prompt.
    fn prompt(&mut self) -> Result<()> {
        let started = Instant::now();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while started.elapsed() < Duration::from_secs(30) {
            match self.0.read(&mut buf) {
                Ok(0) => bail!("QEMU's monitor closed"),
                Ok(n) => seen.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => return Err(e).context("reading QEMU's monitor"),
            }
            if seen.ends_with(b"(qemu) ") {
                return Ok(());
            }
        }
        bail!("QEMU's monitor showed no prompt within 30 s")
    }

    pub fn cmd(&mut self, command: &str) -> Result<()> {
        self.0
            .write_all(format!("{command}\n").as_bytes())
            .with_context(|| format!("sending `{command}` to QEMU's monitor"))?;
        self.prompt().with_context(|| format!("monitor command `{command}`"))
    }
}
