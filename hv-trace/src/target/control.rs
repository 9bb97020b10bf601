//! The control channel: a shell in the Linux guest on a virtio console
//! (`hvtrace.ctl`, a Unix socket on the host), driven line by line. Commands
//! run with their status; measured commands can run with the channel idle
//! ("quiet runs"); files come home through it.

use crate::target::session::Running;
use anyhow::{bail, Context, Result};
use base64::Engine;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `cmd` as one shell group, `{ cmd ; }`, also when it ends in `&` or `;`
/// (`{ sleep 1 & ; }` is a syntax error: the line would never answer).
fn grouped(cmd: &str) -> String {
    let body = cmd.trim_end();
    let body = body.strip_suffix(';').map(str::trim_end).unwrap_or(body);
    if body.ends_with('&') && !body.ends_with("&&") {
        format!("{{ {body} }}")
    } else {
        format!("{{ {body} ; }}")
    }
}

/// The control channel: a shell in the Linux guest on its virtio console.
pub struct Control {
    /// The connection, made again after [`Control::release`].
    stream: Option<BufReader<UnixStream>>,
    /// `ctl.sock`.
    sock: PathBuf,
    serial: u64,
    /// The session's binary data port (`hvtrace.data`, a second virtio
    /// console port) on the host.
    data_sock: PathBuf,
    /// How the last `fetch` came home: the channel and the time it took.
    pub last_transfer: Option<Transfer>,
}

/// How a file came home.
#[derive(Clone, Copy, Debug)]
pub struct Transfer {
    /// `data port` or `console (base64)`.
    pub channel: &'static str,
    pub bytes: u64,
    pub seconds: f64,
}

impl Transfer {
    /// Megabytes (10^6 bytes) a second.
    pub fn rate_mb_s(&self) -> f64 {
        self.bytes as f64 / self.seconds.max(1e-9) / 1e6
    }
}

/// The guest's end of the data port (made by the guest's init).
pub const GUEST_DATA_PORT: &str = "/dev/hvtrace-data";

/// What a command in the guest printed, and its exit status.
pub struct Output {
    pub status: i32,
    pub text: String,
}

/// Where an armed quiet run waits, writes its output, and marks its status.
const QUIET_GATE: &str = "/tmp/hv-trace-quiet.go";
const QUIET_OUT: &str = "/tmp/hv-trace-quiet.out";
const QUIET_STATUS: &str = "@@hvt-status ";

/// A command armed by [`Control::arm_quiet`].
pub struct QuietRun {
    marker: String,
}

impl QuietRun {
    /// Starts the command and waits, without touching the control channel,
    /// until it says on the serial console that it is done.
    pub fn release(&self, ctl: &mut Control, running: &mut Running, timeout: Duration) -> Result<()> {
        ctl.run(&format!("echo go > {QUIET_GATE}"), Duration::from_secs(60))
            .context("starting the armed command")?;
        running.wait_for(&self.marker, timeout)
    }

    /// The finished command's output and exit status.
    pub fn output(self, ctl: &mut Control) -> Result<Output> {
        let text = ctl.run(
            &format!("cat {QUIET_OUT}; rm -f {QUIET_GATE} {QUIET_OUT}"),
            Duration::from_secs(60),
        )?;
        Ok(split_status(&text))
    }
}

/// A quiet run's output and the status line it ends with (-1 if missing).
fn split_status(text: &str) -> Output {
    match text.rfind(QUIET_STATUS) {
        Some(at) => Output {
            status: text[at + QUIET_STATUS.len()..].trim().parse().unwrap_or(-1),
            text: text[..at].to_string(),
        },
        None => Output {
            status: -1,
            text: text.to_string(),
        },
    }
}

impl Control {
    pub fn connect(dir: &Path) -> Result<Self> {
        let sock = dir.join("ctl.sock");
        let stream = UnixStream::connect(&sock).with_context(|| {
            format!(
                "connecting to the guest's control channel {}: is `hv-trace run` running?",
                sock.display()
            )
        })?;
        Ok(Control {
            stream: Some(BufReader::new(stream)),
            sock,
            serial: 0,
            data_sock: dir.join("data.sock"),
            last_transfer: None,
        })
    }

    /// The session's directory.
    pub fn session_dir(&self) -> &Path {
        self.sock.parent().unwrap_or(Path::new("."))
    }

    /// The session's data port on the host.
    pub fn data_sock(&self) -> &Path {
        &self.data_sock
    }

    /// Lets go of the channel (one client at a time), so that other
    /// commands (`hv-trace exec`, `probe add`) can use it meanwhile; the next
    /// command connects again.
    pub fn release(&mut self) {
        self.stream = None;
    }

    fn stream(&mut self) -> Result<&mut BufReader<UnixStream>> {
        if self.stream.is_none() {
            let s = UnixStream::connect(&self.sock).with_context(|| {
                format!(
                    "connecting again to the guest's control channel {}",
                    self.sock.display()
                )
            })?;
            self.stream = Some(BufReader::new(s));
        }
        Ok(self.stream.as_mut().expect("connected above"))
    }

    pub(crate) fn send_raw(&mut self, text: &str) -> Result<()> {
        self.stream()?.get_mut().write_all(text.as_bytes())?;
        Ok(())
    }

    /// Run a shell command in the guest; stdout and stderr together.
    pub fn exec(&mut self, cmd: &str, timeout: Duration) -> Result<Output> {
        self.exec_kicking(cmd, timeout, Duration::from_millis(200))
    }

    /// `exec`, kicking the console after each `kick` without output.
    fn exec_kicking(&mut self, cmd: &str, timeout: Duration, kick: Duration) -> Result<Output> {
        self.serial += 1;
        let marker = format!("@@hvt-{}-{}@@", std::process::id(), self.serial);
        self.stream()?.get_mut().set_read_timeout(Some(kick))?;
        // One line per command (the guest's agent evals line by line); the
        // end marker carries its status; output before the start marker is
        // left over from earlier commands.
        anyhow::ensure!(!cmd.contains('\n'), "guest commands are single lines");
        self.send_raw(&format!(
            "echo \"{marker}<\"; {} 2>&1; echo \"{marker} $?\"\n",
            grouped(cmd)
        ))?;
        let started = Instant::now();
        let mut text = String::new();
        let mut started_output = false;
        let mut line = Vec::new();
        loop {
            if started.elapsed() > timeout {
                bail!("the guest did not finish `{cmd}` within {} s", timeout.as_secs());
            }
            match self.stream()?.read_until(b'\n', &mut line) {
                Ok(0) => bail!("the control channel closed while running `{cmd}`"),
                Ok(_) if line.ends_with(b"\n") => {
                    let l = String::from_utf8_lossy(&line).into_owned();
                    line.clear();
                    // Output that does not end in a newline runs into the
                    // end marker's line: what precedes the marker is output.
                    let (before, marked) = match l.find(&marker) {
                        Some(at) => (&l[..at], Some(l[at + marker.len()..].trim_end())),
                        None => (l.as_str(), None),
                    };
                    match marked {
                        Some("<") => started_output = true,
                        Some(rest) if started_output => {
                            text.push_str(before);
                            let status = rest.trim().parse().unwrap_or(-1);
                            return Ok(Output { status, text });
                        }
                        _ if started_output => text.push_str(before),
                        _ => {}
                    }
                }
                Ok(_) => {}
                // The guest's virtio console delivers pending output when the
                // host writes to it: an empty line (a no-op command) kicks it.
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    self.send_raw("\n")?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Arms `cmd` to run in the guest with this channel idle, for runs
    /// that are measured: while `exec` waits it wakes the guest's console
    /// every 200 ms of wall time (its output only flows after host input),
    /// which puts interrupts and wake-ups into the run, more of them the
    /// slower the host. The armed command waits in the background on a FIFO;
    /// [`QuietRun::release`] starts it and watches the serial console for
    /// its end.
    pub fn arm_quiet(&mut self, cmd: &str) -> Result<QuietRun> {
        anyhow::ensure!(!cmd.contains('\n'), "guest commands are single lines");
        self.serial += 1;
        let marker = format!("@@hvt-quiet-{}-{}@@", std::process::id(), self.serial);
        // The control shell runs `{ CMD ; }`, so the background job is a
        // group of its own; the marker goes out twice because the RTOS's
        // lines share the UART and can cut one.
        self.run(
            &format!(
                "rm -f {QUIET_GATE} {QUIET_OUT} && mkfifo {QUIET_GATE} && {{ ( read go < {QUIET_GATE}; {{ {cmd} ; }} > {QUIET_OUT} 2>&1; echo \"{QUIET_STATUS}$?\" >> {QUIET_OUT}; echo '{marker}' > /dev/ttyAMA0; echo '{marker}' > /dev/ttyAMA0 ) < /dev/null > /dev/null 2>&1 & }}"
            ),
            Duration::from_secs(60),
        )
        .context("arming a command in the guest")?;
        Ok(QuietRun { marker })
    }

    /// Runs `cmd` like [`Control::exec`], but with the channel idle while it
    /// runs (see [`Control::arm_quiet`]).
    pub fn exec_quiet(&mut self, running: &mut Running, cmd: &str, timeout: Duration) -> Result<Output> {
        let armed = self.arm_quiet(cmd)?;
        armed.release(self, running, timeout)?;
        armed.output(self)
    }

    /// Run a command that must succeed; its output.
    pub fn run(&mut self, cmd: &str, timeout: Duration) -> Result<String> {
        let out = self.exec(cmd, timeout)?;
        if out.status != 0 {
            bail!(
                "`{cmd}` failed in the guest (status {}): {}",
                out.status,
                out.text.trim()
            );
        }
        Ok(out.text)
    }

    /// Copies a file out of the guest, checked: the guest states its size
    /// and SHA-256 first, and a copy that arrives different is sent again
    /// (up to [`FETCH_ATTEMPTS`] times). A file that cannot be brought home
    /// intact is an error, never damaged bytes. The bytes travel over the
    /// binary data port when the system has one (`HV_TRACE_FETCH=console`
    /// forces the control shell's base64, for comparison).
    pub fn fetch(&mut self, guest_path: &str, timeout: Duration) -> Result<Vec<u8>> {
        anyhow::ensure!(
            !guest_path.is_empty() && !guest_path.contains(|c: char| c.is_whitespace() || "'\"$`;&|".contains(c)),
            "cannot fetch {guest_path:?}: a guest path without spaces or shell characters is needed"
        );
        let stated = self
            .run(&format!("wc -c < {guest_path} && sha256sum {guest_path}"), timeout)
            .with_context(|| format!("reading the size and SHA-256 of {guest_path} in the guest"))?;
        let expected = Stated::parse(&stated)
            .with_context(|| format!("the guest's size and SHA-256 of {guest_path}: {:?}", stated.trim()))?;
        let started = Instant::now();
        let console = std::env::var("HV_TRACE_FETCH").is_ok_and(|v| v == "console");
        let (channel, bytes) = if !console && self.has_data_port() {
            let bytes = fetch_verified(guest_path, &expected, |_| {
                self.receive(guest_path, expected.size, timeout)
            })?;
            ("data port", bytes)
        } else {
            let bytes = fetch_verified(guest_path, &expected, |_| {
                let text = self.run(&format!("base64 {guest_path}"), timeout)?;
                let joined: String = text.split_whitespace().collect();
                Ok(base64::engine::general_purpose::STANDARD
                    .decode(joined)
                    .map_err(|e| format!("its base64 does not decode ({e})")))
            })?;
            ("console (base64)", bytes)
        };
        self.last_transfer = Some(Transfer {
            channel,
            bytes: bytes.len() as u64,
            seconds: started.elapsed().as_secs_f64(),
        });
        Ok(bytes)
    }

    /// Whether the session has a data port and the guest its end of it.
    fn has_data_port(&mut self) -> bool {
        self.data_sock.exists()
            && self
                .exec(&format!("test -c {GUEST_DATA_PORT}"), Duration::from_secs(10))
                .is_ok_and(|o| o.status == 0)
    }

    /// One copy of `guest_path` (`size` bytes) over the data port: the
    /// guest writes a start line with a fresh marker, then the file; the host
    /// skips anything before the marker (left from an interrupted transfer)
    /// and takes `size` bytes after it.
    fn receive(
        &mut self,
        guest_path: &str,
        size: u64,
        timeout: Duration,
    ) -> Result<std::result::Result<Vec<u8>, String>> {
        self.serial += 1;
        let marker = format!("@@hvt-data-{}-{}@@\n", std::process::id(), self.serial);
        let mut sock = UnixStream::connect(&self.data_sock)
            .with_context(|| format!("connecting to the data port {}", self.data_sock.display()))?;
        sock.set_read_timeout(Some(Duration::from_millis(200)))?;
        let expect = marker.clone().into_bytes();
        let reader = std::thread::spawn(move || read_after_marker(&mut sock, &expect, size, timeout));
        // The guest's virtio ports hand their output over when the host
        // writes to a port: kick often while the file flows.
        let sent = self.exec_kicking(
            // The marker is [@a-z0-9-] only: a safe printf format.
            &format!(
                "{{ printf '{}\\n'; cat {guest_path}; }} > {GUEST_DATA_PORT}",
                marker.trim_end()
            ),
            timeout,
            Duration::from_millis(2),
        );
        let received = reader
            .join()
            .map_err(|_| anyhow::anyhow!("the data port's reader failed"))?;
        let sent = sent?;
        if sent.status != 0 {
            bail!(
                "the guest could not write {guest_path} to its data port: {}",
                sent.text.trim()
            );
        }
        Ok(received)
    }
}

/// Times a file is sent before its transfer is given up.
pub const FETCH_ATTEMPTS: u32 = 3;

/// What the guest says of a file before sending it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stated {
    pub size: u64,
    pub sha256: [u8; 32],
}

impl Stated {
    /// From `wc -c` and `sha256sum` output: `SIZE\nHEX  PATH\n`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let size = lines.next()?.parse().ok()?;
        let hex = lines.next()?.split_whitespace().next()?;
        if hex.len() != 64 {
            return None;
        }
        let mut sha256 = [0u8; 32];
        for (i, b) in sha256.iter_mut().enumerate() {
            *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Stated { size, sha256 })
    }

    /// Why `bytes` are not the stated file, or None if they are.
    pub fn mismatch(&self, bytes: &[u8]) -> Option<String> {
        use sha2::{Digest, Sha256};
        if bytes.len() as u64 != self.size {
            return Some(format!("{} bytes arrived, the guest has {}", bytes.len(), self.size));
        }
        let got: [u8; 32] = Sha256::digest(bytes).into();
        (got != self.sha256).then(|| "its SHA-256 differs from the guest's".to_string())
    }
}

/// Reads `stream` until `marker`, then `size` bytes; `Err` (a damaged copy)
/// when they do not all arrive within `timeout`.
fn read_after_marker(
    stream: &mut UnixStream,
    marker: &[u8],
    size: u64,
    timeout: Duration,
) -> std::result::Result<Vec<u8>, String> {
    use std::io::Read;
    let started = Instant::now();
    let mut seen: Vec<u8> = Vec::new();
    let mut data: Option<Vec<u8>> = None;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        if let Some(d) = &data {
            if d.len() as u64 >= size {
                let mut d = data.take().unwrap_or_default();
                d.truncate(size as usize);
                return Ok(d);
            }
        }
        if started.elapsed() > timeout {
            let got = data.as_ref().map_or(0, Vec::len);
            return Err(format!(
                "{got} of {size} bytes arrived on the data port in {} s",
                timeout.as_secs()
            ));
        }
        match stream.read(&mut buf) {
            Ok(0) => {
                let got = data.as_ref().map_or(0, Vec::len);
                return Err(format!("the data port closed after {got} of {size} bytes"));
            }
            Ok(n) => match &mut data {
                Some(d) => d.extend_from_slice(&buf[..n]),
                None => {
                    seen.extend_from_slice(&buf[..n]);
                    if let Some(at) = seen.windows(marker.len()).position(|w| w == marker) {
                        data = Some(seen.split_off(at + marker.len()));
                    } else if seen.len() > marker.len() {
                        // Keep only what could still hold the start of the marker.
                        seen.drain(..seen.len() - marker.len());
                    }
                }
            },
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => return Err(format!("reading the data port: {e}")),
        }
    }
}

/// Receives `path` with `send(attempt)` until a copy matches what the guest
/// stated, at most [`FETCH_ATTEMPTS`] times. `send` gives the bytes of one
/// copy, `Ok(Err(why))` for a copy that came damaged (undecodable, cut
/// short), or `Err` when the channel itself failed.
pub fn fetch_verified(
    path: &str,
    expected: &Stated,
    mut send: impl FnMut(u32) -> Result<std::result::Result<Vec<u8>, String>>,
) -> Result<Vec<u8>> {
    let mut why = String::new();
    for attempt in 1..=FETCH_ATTEMPTS {
        why = match send(attempt)? {
            Ok(bytes) => match expected.mismatch(&bytes) {
                None => return Ok(bytes),
                Some(why) => why,
            },
            Err(why) => why,
        };
        if attempt < FETCH_ATTEMPTS {
            eprintln!("[hv-trace] {path} arrived damaged ({why}); sending it again ({attempt} of {FETCH_ATTEMPTS})");
        }
    }
    bail!(
        "{path} could not be brought home intact in {FETCH_ATTEMPTS} attempts (last: {why}); \
         nothing was written; the file is still in the guest (`hv-trace exec ls -l {path}`)"
    )
}

/// Wait for the guest's control shell to answer (after boot).
pub fn wait_control(dir: &Path, timeout: Duration) -> Result<Control> {
    let started = Instant::now();
    loop {
        if let Ok(mut c) = Control::connect(dir) {
            if let Ok(out) = c.exec("echo ready", Duration::from_secs(5)) {
                if out.text.contains("ready") {
                    return Ok(c);
                }
            }
        }
        if started.elapsed() > timeout {
            bail!(
                "the guest's control channel did not answer within {} s",
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_command_is_one_valid_group() {
        assert_eq!(grouped("ls /"), "{ ls / ; }");
        assert_eq!(grouped("sleep 1 &"), "{ sleep 1 & }");
        assert_eq!(
            grouped("(sleep 1; reboot) > /dev/null 2>&1 & "),
            "{ (sleep 1; reboot) > /dev/null 2>&1 & }"
        );
        assert_eq!(grouped("true;"), "{ true ; }");
        assert_eq!(grouped("a && b"), "{ a && b ; }");
        // What sh says of each: no syntax error.
        for cmd in ["ls /", "sleep 0 &", "true;", "true && true", "false || true"] {
            let st = std::process::Command::new("sh")
                .arg("-n")
                .arg("-c")
                .arg(grouped(cmd))
                .status()
                .unwrap();
            assert!(st.success(), "{cmd:?} → {:?}", grouped(cmd));
        }
    }

    use super::*;

    fn stated(bytes: &[u8]) -> Stated {
        use sha2::{Digest, Sha256};
        Stated {
            size: bytes.len() as u64,
            sha256: Sha256::digest(bytes).into(),
        }
    }

    /// The data port may hold the rest of an interrupted transfer: what
    /// comes before this transfer's marker is skipped.
    #[test]
    fn the_data_port_takes_the_bytes_after_the_marker() {
        let (mut guest, mut host) = UnixStream::pair().unwrap();
        host.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let file: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let sent = file.clone();
        let writer = std::thread::spawn(move || {
            guest
                .write_all(b"stale bytes of an earlier copy @@hvt-data-1-1@@\n")
                .unwrap();
            guest.write_all(b"@@hvt-data-1-2@@\n").unwrap();
            for chunk in sent.chunks(7_000) {
                guest.write_all(chunk).unwrap();
            }
            guest.write_all(b"trailing").unwrap();
        });
        let got = read_after_marker(
            &mut host,
            b"@@hvt-data-1-2@@\n",
            file.len() as u64,
            Duration::from_secs(10),
        );
        writer.join().unwrap();
        assert_eq!(got.unwrap(), file);
    }

    #[test]
    fn a_data_port_copy_cut_short_is_a_damaged_copy() {
        let (mut guest, mut host) = UnixStream::pair().unwrap();
        host.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        guest.write_all(b"@@m@@\n0123").unwrap();
        drop(guest);
        let why = read_after_marker(&mut host, b"@@m@@\n", 10, Duration::from_secs(5)).unwrap_err();
        assert!(why.contains("4 of 10 bytes"), "{why}");
    }

    #[test]
    fn the_guests_statement_parses() {
        let s =
            Stated::parse("326656\n2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae  /tmp/guest.dat\n")
                .unwrap();
        assert_eq!(s.size, 326_656);
        assert_eq!(s.sha256[..2], [0x2c, 0x26]);
        assert_eq!(Stated::parse("12\nsha256sum: can't open 'x'\n"), None);
        assert_eq!(Stated::parse(""), None);
    }

    /// Regression: a guest.dat damaged on its way home was written to disk
    /// as it came (`expected options section (id 0), found id 10604`).
    #[test]
    fn a_damaged_copy_is_sent_again_and_a_good_one_kept() {
        let file: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        let mut damaged = file.clone();
        damaged[4000] ^= 0x20;
        let mut sent = 0;
        let got = fetch_verified("/tmp/guest.dat", &stated(&file), |attempt| {
            sent = attempt;
            Ok(Ok(match attempt {
                1 => damaged.clone(),
                _ => file.clone(),
            }))
        })
        .unwrap();
        assert_eq!((got, sent), (file, 2));
    }

    #[test]
    fn short_or_undecodable_copies_are_damaged_too() {
        let file = b"hvtrace".repeat(100);
        let replies = [Ok(file[..650].to_vec()), Err("cut short".to_string()), Ok(file.clone())];
        let got = fetch_verified("f", &stated(&file), |a| Ok(replies[a as usize - 1].clone())).unwrap();
        assert_eq!(got, file);
    }

    #[test]
    fn a_file_that_never_arrives_intact_is_an_error() {
        let file = b"0123456789".to_vec();
        let e = fetch_verified("/tmp/guest.dat", &stated(&file), |_| Ok(Ok(b"0123456780".to_vec()))).unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.contains("could not be brought home intact in 3 attempts") && msg.contains("SHA-256"),
            "{msg}"
        );
    }

    #[test]
    fn a_quiet_runs_status_line_is_split_off() {
        let o = split_status("spawn: 10 loops in 1.000 s: 10.0 loops/s\n@@hvt-status 0\n");
        assert_eq!(
            (o.status, o.text.as_str()),
            (0, "spawn: 10 loops in 1.000 s: 10.0 loops/s\n")
        );
        let o = split_status("sh: frob: not found\n@@hvt-status 127\n");
        assert_eq!(o.status, 127);
        // Output that was cut short has no status: a failure, never a success.
        assert_eq!(split_status("half a line").status, -1);
        assert_eq!(split_status("@@hvt-status \n").status, -1);
    }
}
