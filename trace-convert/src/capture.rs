//! A streamed recording ([`guest_probe::abi::stream`]): the frames decoded
//! from the data port's bytes as they arrive ([`FrameDecoder`]), kept in a
//! capture directory ([`Capture`]: the guest's metadata files under `meta/`
//! and each CPU's ring-buffer pages appended to `cpuN.pages`, so that what
//! arrived before a crash is on disk), and assembled into a trace-cmd `.dat`
//! v6 with the pages as the kernel wrote them ([`assemble`]).
//!
//! Nothing is lost unseen: a damaged frame is skipped to the next magic and
//! counted, a `seq` gap counts the frames lost, and the guest's `End` totals
//! are checked against what arrived.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use guest_probe::abi::stream::{FrameError, FrameHeader, FrameKind, FRAME_HEADER_SIZE, STREAM_MAGIC};

use crate::bytes::Endian;
use crate::error::{Error, Result};
use crate::event::Missed;
use crate::format::{EventFormat, PageHeader};
use crate::output::OutputFile;
use crate::ringbuf::PageRecords;
use crate::write::dat::{v6_option, V6Head};

/// What the decoder found next in the bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A whole, checked frame.
    Frame(FrameHeader, Vec<u8>),
    /// Bytes that were not a frame, skipped to the next magic.
    Damaged {
        /// How many bytes were skipped.
        skipped: u64,
        /// What was wrong at their start.
        why: FrameError,
    },
}

/// Cuts a byte stream into frames, resynchronising on the magic after damage.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
}

impl FrameDecoder {
    /// A decoder with nothing buffered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes as they arrived.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held that are not yet a whole frame.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next frame or damage, or `None` until more bytes arrive.
    pub fn next_decoded(&mut self) -> Option<Decoded> {
        let rest = &self.buf[self.start..];
        if rest.len() < FRAME_HEADER_SIZE {
            return None;
        }
        let head: &[u8; FRAME_HEADER_SIZE] = rest[..FRAME_HEADER_SIZE].try_into().ok()?;
        match FrameHeader::decode(head) {
            Err(why) => Some(self.skip(why)),
            Ok(h) => {
                let end = FRAME_HEADER_SIZE + h.len as usize;
                if rest.len() < end {
                    return None;
                }
                let payload = &rest[FRAME_HEADER_SIZE..end];
                match h.check(payload) {
                    Ok(()) => {
                        let payload = payload.to_vec();
                        self.start += end;
                        Some(Decoded::Frame(h, payload))
                    }
                    Err(why) => Some(self.skip(why)),
                }
            }
        }
    }

    /// Skips to the next magic after the current position (or keeps the
    /// last bytes that could start one).
    fn skip(&mut self, why: FrameError) -> Decoded {
        let rest = &self.buf[self.start..];
        let magic = STREAM_MAGIC.to_le_bytes();
        let skipped = match rest[1..].windows(4).position(|w| w == magic) {
            Some(at) => at + 1,
            None => rest.len().saturating_sub(3).max(1),
        };
        self.start += skipped;
        Decoded::Damaged {
            skipped: skipped as u64,
            why,
        }
    }
}

/// The guest agent's totals, from its `End` frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndTotals {
    /// Frames sent before `End`.
    pub frames: u64,
    /// Pages sent.
    pub pages: u64,
    /// Page bytes sent (before padding).
    pub page_bytes: u64,
}

/// What a capture has received so far.
#[derive(Debug, Clone, Default)]
pub struct CaptureStats {
    /// Bytes read from the port.
    pub bytes: u64,
    /// Whole frames.
    pub frames: u64,
    /// Ring-buffer pages.
    pub pages: u64,
    /// Frames lost (gaps in `seq`).
    pub lost_frames: u64,
    /// Bytes skipped as damaged.
    pub damaged_bytes: u64,
    /// Events of the hvtrace system (the RTOS and the hypervisor), but for
    /// the module's own `clock_sync`.
    pub rtos_events: u64,
    /// Every other event (Linux, and `clock_sync`).
    pub linux_events: u64,
    /// Events the kernel's ring buffer says it lost (pages that do not
    /// say how many count one each in `missed_unknown`).
    pub missed_events: u64,
    /// Pages that say events were lost without saying how many.
    pub missed_unknown: u64,
    /// The guest's totals, once its `End` frame arrived.
    pub end: Option<EndTotals>,
}

impl CaptureStats {
    /// Why the capture is not everything the guest sent, or `None` if it is.
    pub fn incomplete(&self) -> Option<String> {
        let mut why = Vec::new();
        match self.end {
            None => why.push("the stream did not end (the guest stopped sending)".to_string()),
            Some(end) if end.frames != self.frames + self.lost_frames || end.pages != self.pages => why.push(format!(
                "the guest sent {} frames ({} pages), {} arrived ({} pages)",
                end.frames, end.pages, self.frames, self.pages
            )),
            Some(_) => {}
        }
        if self.lost_frames > 0 {
            why.push(format!("{} frames lost", self.lost_frames));
        }
        if self.damaged_bytes > 0 {
            why.push(format!("{} bytes damaged", self.damaged_bytes));
        }
        (!why.is_empty()).then(|| why.join(", "))
    }
}

/// The stream's `Hello`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hello {
    cpus: u32,
    page_size: u32,
}

impl Hello {
    fn parse(text: &str) -> Option<Hello> {
        let mut words = text.split_whitespace();
        if words.next()? != "hvtrace-stream" || words.next()?.parse::<u32>().ok()? != 1 {
            return None;
        }
        let (mut cpus, mut page_size): (Option<u32>, Option<u32>) = (None, None);
        for w in words {
            match w.split_once('=') {
                Some(("cpus", v)) => cpus = v.parse().ok(),
                Some(("page_size", v)) => page_size = v.parse().ok(),
                _ => {}
            }
        }
        let (cpus, page_size) = (cpus?, page_size?);
        ((1..=256).contains(&cpus) && page_size.is_power_of_two() && (1024..=65536).contains(&page_size))
            .then_some(Hello { cpus, page_size })
    }
}

/// A metadata file's name from the guest: a relative path of plain parts.
fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name.split('/').all(|p| {
            !p.is_empty()
                && p != "."
                && p != ".."
                && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b))
        })
}

/// A capture directory being filled from a stream.
#[derive(Debug)]
pub struct Capture {
    dir: PathBuf,
    decoder: FrameDecoder,
    hello: Option<Hello>,
    meta: BTreeMap<String, Vec<u8>>,
    pages: Vec<Option<File>>,
    next_seq: u64,
    rtos_ids: Option<HashSet<u16>>,
    page_header: Option<PageHeader>,
    /// What has arrived.
    pub stats: CaptureStats,
    /// Frames that could not be used, with why (a bounded list, for warnings).
    pub complaints: Vec<String>,
}

const MAX_COMPLAINTS: usize = 20;

/// A 64-bit kernel's page header, when the stream has not said.
const LONG_PAGE_HEADER: PageHeader = PageHeader {
    commit_size: 8,
    data_offset: 16,
};

impl Capture {
    /// Starts a capture in `dir` (created; it must not hold one already).
    pub fn create(dir: &Path) -> Result<Capture> {
        if dir.join("meta").exists() {
            return Err(Error::io(
                dir,
                std::io::Error::other("already holds a capture: choose a new directory"),
            ));
        }
        fs::create_dir_all(dir.join("meta")).map_err(|e| Error::io(dir, e))?;
        Ok(Capture {
            dir: dir.to_path_buf(),
            decoder: FrameDecoder::new(),
            hello: None,
            meta: BTreeMap::new(),
            pages: Vec::new(),
            next_seq: 0,
            rtos_ids: None,
            page_header: None,
            stats: CaptureStats::default(),
            complaints: Vec::new(),
        })
    }

    /// The capture's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn complain(&mut self, why: String) {
        if self.complaints.len() < MAX_COMPLAINTS {
            self.complaints.push(why);
        }
    }

    /// Takes bytes as they came from the port; returns whether the stream
    /// has ended.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<bool> {
        self.stats.bytes += bytes.len() as u64;
        self.decoder.push(bytes);
        while let Some(d) = self.decoder.next_decoded() {
            match d {
                Decoded::Damaged { skipped, why } => {
                    self.stats.damaged_bytes += skipped;
                    self.complain(format!("{skipped} damaged bytes skipped ({why})"));
                }
                Decoded::Frame(h, payload) => self.frame(h, &payload)?,
            }
        }
        Ok(self.stats.end.is_some())
    }

    fn frame(&mut self, h: FrameHeader, payload: &[u8]) -> Result<()> {
        if h.seq < self.next_seq {
            self.complain(format!(
                "frame {} arrived again after {}; ignored",
                h.seq, self.next_seq
            ));
            return Ok(());
        }
        if h.seq > self.next_seq {
            self.stats.lost_frames += h.seq - self.next_seq;
            self.complain(format!("frames {}..{} lost", self.next_seq, h.seq));
        }
        self.next_seq = h.seq + 1;
        self.stats.frames += 1;
        match h.kind {
            FrameKind::Hello => {
                let text = String::from_utf8_lossy(payload);
                match Hello::parse(&text) {
                    Some(hello) => {
                        self.hello = Some(hello);
                        self.append_meta("hello", payload)?;
                    }
                    None => self.complain(format!("a hello this receiver does not speak: {:?}", text.trim())),
                }
            }
            FrameKind::File => {
                let Some(nul) = payload.iter().position(|&b| b == 0) else {
                    self.complain("a file chunk without a name".into());
                    return Ok(());
                };
                let name = String::from_utf8_lossy(&payload[..nul]).into_owned();
                if !safe_name(&name) || name == "hello" {
                    self.complain(format!("a file named {name:?} refused"));
                    return Ok(());
                }
                self.append_meta(&name, &payload[nul + 1..])?;
                if name.starts_with("events/") {
                    self.rtos_ids = None;
                    self.page_header = None;
                }
            }
            FrameKind::Page => self.page(h.cpu as usize, payload)?,
            FrameKind::End => {
                let text = String::from_utf8_lossy(payload);
                let mut end = EndTotals::default();
                for w in text.split_whitespace() {
                    match w.split_once('=') {
                        Some(("frames", v)) => end.frames = v.parse().unwrap_or(0),
                        Some(("pages", v)) => end.pages = v.parse().unwrap_or(0),
                        Some(("page_bytes", v)) => end.page_bytes = v.parse().unwrap_or(0),
                        _ => {}
                    }
                }
                // `frames` counts those before End; End itself is not one.
                self.stats.frames -= 1;
                self.stats.end = Some(end);
                self.append_meta("end", payload)?;
            }
        }
        Ok(())
    }

    fn append_meta(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.dir.join("meta").join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(bytes))
            .map_err(|e| Error::io(&path, e))?;
        self.meta.entry(name.to_string()).or_default().extend_from_slice(bytes);
        Ok(())
    }

    fn page(&mut self, cpu: usize, data: &[u8]) -> Result<()> {
        let Some(hello) = self.hello else {
            self.complain("a page before the stream's hello; ignored".into());
            return Ok(());
        };
        if cpu >= hello.cpus as usize || data.len() > hello.page_size as usize {
            self.complain(format!("a page for CPU {cpu} of {} bytes refused", data.len()));
            return Ok(());
        }
        self.count_events(data);
        if self.pages.len() <= cpu {
            self.pages.resize_with(cpu + 1, || None);
        }
        if self.pages[cpu].is_none() {
            let path = self.dir.join(format!("cpu{cpu}.pages"));
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| Error::io(&path, e))?;
            self.pages[cpu] = Some(f);
        }
        let mut page = data.to_vec();
        page.resize(hello.page_size as usize, 0);
        let path = self.dir.join(format!("cpu{cpu}.pages"));
        if let Some(f) = self.pages[cpu].as_mut() {
            f.write_all(&page).map_err(|e| Error::io(&path, e))?;
        }
        self.stats.pages += 1;
        Ok(())
    }

    /// Counts a page's events by OS (hvtrace's are the RTOS's) and its losses.
    fn count_events(&mut self, page: &[u8]) {
        if self.rtos_ids.is_none() {
            self.rtos_ids = Some(
                self.meta
                    .iter()
                    .filter_map(|(name, text)| {
                        let rest = name.strip_prefix("events/hvtrace/")?;
                        rest.ends_with("/format").then_some(())?;
                        EventFormat::parse("hvtrace", &String::from_utf8_lossy(text), 0)
                            .ok()
                            // The RTOS's own events, as the module counts them
                            // (not clock_sync, not vm_stopped).
                            .filter(|f| matches!(f.name.as_str(), "rtos_switch" | "rtos_probe" | "rtos_irq"))
                            .map(|f| f.id as u16)
                    })
                    .collect(),
            );
        }
        if self.page_header.is_none() {
            let text = self
                .meta
                .get("events/header_page")
                .map(|t| String::from_utf8_lossy(t).into_owned());
            self.page_header = Some(match text {
                Some(t) => PageHeader::parse(&t, 8, 0).unwrap_or(LONG_PAGE_HEADER),
                None => LONG_PAGE_HEADER,
            });
        }
        let (Some(ids), Some(hdr)) = (&self.rtos_ids, &self.page_header) else {
            return;
        };
        let Ok(records) = PageRecords::new(page, hdr, Endian::Little, 0) else {
            return;
        };
        match records.missed {
            Missed::None => {}
            Missed::Unknown => self.stats.missed_unknown += 1,
            Missed::Count(n) => self.stats.missed_events += n,
        }
        for r in records.flatten() {
            let id = r.data.get(..2).map_or(0, |b| u16::from_le_bytes([b[0], b[1]]));
            if ids.contains(&id) {
                self.stats.rtos_events += 1;
            } else {
                self.stats.linux_events += 1;
            }
        }
    }

    /// Flushes what arrived to disk.
    pub fn sync(&mut self) -> Result<()> {
        for (cpu, f) in self.pages.iter_mut().enumerate() {
            if let Some(f) = f {
                f.sync_data()
                    .map_err(|e| Error::io(self.dir.join(format!("cpu{cpu}.pages")), e))?;
            }
        }
        Ok(())
    }
}

/// What [`assemble`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assembled {
    /// CPUs in the file.
    pub cpus: u32,
    /// Pages per CPU in all.
    pub pages: u64,
    /// Whether the capture ended as the guest sent it (an `End` frame).
    pub ended: bool,
}

fn read_meta(dir: &Path, name: &str) -> Result<Option<Vec<u8>>> {
    let path = dir.join("meta").join(name);
    match fs::read(&path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// The format files a capture holds: ftrace's, and every other system's.
type Formats = (Vec<Vec<u8>>, Vec<(String, Vec<Vec<u8>>)>);

fn formats(dir: &Path) -> Result<Formats> {
    let events = dir.join("meta/events");
    let mut ftrace = Vec::new();
    let mut systems = Vec::new();
    let Ok(entries) = fs::read_dir(&events) else {
        return Ok((ftrace, systems));
    };
    let mut names: Vec<_> = entries.filter_map(|e| e.ok()).filter(|e| e.path().is_dir()).collect();
    names.sort_by_key(|e| e.file_name());
    for sys in names {
        let system = sys.file_name().to_string_lossy().into_owned();
        let mut evs: Vec<_> = fs::read_dir(sys.path())
            .map_err(|e| Error::io(sys.path(), e))?
            .filter_map(|e| e.ok())
            .collect();
        evs.sort_by_key(|e| e.file_name());
        let mut texts = Vec::new();
        for ev in evs {
            let path = ev.path().join("format");
            if let Ok(t) = fs::read(&path) {
                texts.push(t);
            }
        }
        if system == "ftrace" {
            ftrace = texts;
        } else if !texts.is_empty() {
            systems.push((system, texts));
        }
    }
    Ok((ftrace, systems))
}

fn read_hello(dir: &Path) -> Result<Hello> {
    let hello_bytes = read_meta(dir, "hello")?.ok_or_else(|| {
        Error::io(
            dir,
            std::io::Error::other("holds no stream (no hello arrived): nothing was recorded"),
        )
    })?;
    Hello::parse(&String::from_utf8_lossy(&hello_bytes))
        .ok_or_else(|| Error::malformed(0, format!("{}: not a stream's hello", dir.join("meta/hello").display())))
}

/// The `.dat` v6 header of the capture in `dir`, its CPU table saying each
/// CPU's data is `sizes[cpu]` bytes, padded to a whole page. Without
/// `symbols`, no kallsyms (a reader that only decodes events needs none).
fn dat_header(dir: &Path, hello: &Hello, sizes: &[u64], symbols: bool) -> Result<Vec<u8>> {
    let need = |name: &str| -> Result<Vec<u8>> {
        read_meta(dir, name)?.ok_or_else(|| {
            Error::io(
                dir.join("meta").join(name),
                std::io::Error::other("missing: the stream was cut before its metadata arrived"),
            )
        })
    };
    let header_page = need("events/header_page")?;
    let header_event = need("events/header_event")?;
    let (ftrace, systems) = formats(dir)?;
    let kallsyms = if symbols {
        read_meta(dir, "kallsyms")?.unwrap_or_default()
    } else {
        Vec::new()
    };
    let printk = read_meta(dir, "printk_formats")?.unwrap_or_default();
    let cmdlines = read_meta(dir, "saved_cmdlines")?.unwrap_or_default();
    let ps = hello.page_size as u64;
    let mut h = Vec::new();
    V6Head {
        page_size: hello.page_size,
        header_page: &header_page,
        header_event: &header_event,
        ftrace: &ftrace,
        systems: &systems,
        kallsyms: &kallsyms,
        printk: &printk,
        cmdlines: &cmdlines,
        cpus: hello.cpus,
    }
    .write(&mut h);
    let clocks = read_meta(dir, "trace_clock")?
        .map(|c| String::from_utf8_lossy(&c).trim().to_string())
        .unwrap_or_else(|| "[local]".into());
    let selected = clocks
        .split_whitespace()
        .find_map(|w| w.strip_prefix('[').and_then(|w| w.strip_suffix(']')))
        .unwrap_or("local")
        .to_string();
    v6_option(&mut h, 4, format!("{clocks}\0").as_bytes());
    v6_option(&mut h, 8, &hello.cpus.to_le_bytes());
    if let Some(u) = read_meta(dir, "uname")? {
        let mut u = u;
        u.push(0);
        v6_option(&mut h, 5, &u);
    }
    v6_option(
        &mut h,
        9,
        format!("hv-trace stream (trace-convert {})\0", env!("CARGO_PKG_VERSION")).as_bytes(),
    );
    for cpu in 0..hello.cpus {
        if let Some(stats) = read_meta(dir, &format!("per_cpu/cpu{cpu}/stats"))? {
            let mut text = format!("CPU: {cpu}\n").into_bytes();
            text.extend_from_slice(&stats);
            text.push(0);
            v6_option(&mut h, 2, &text);
        }
    }
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(b"flyrecord\0");
    let table = h.len();
    h.resize(h.len() + 16 * hello.cpus as usize, 0);
    let clock_text = format!("[{selected}]");
    h.extend_from_slice(&(clock_text.len() as u64).to_le_bytes());
    h.extend_from_slice(clock_text.as_bytes());
    let mut pos = (h.len() as u64).div_ceil(ps) * ps;
    for (cpu, &size) in sizes.iter().enumerate().take(hello.cpus as usize) {
        let at = table + 16 * cpu;
        let offset = if size > 0 { pos } else { 0 };
        h[at..at + 8].copy_from_slice(&offset.to_le_bytes());
        h[at + 8..at + 16].copy_from_slice(&size.to_le_bytes());
        pos += size;
    }
    h.resize((h.len() as u64).div_ceil(ps) as usize * ps as usize, 0);
    Ok(h)
}

/// Writes the capture in `dir` as a trace-cmd `.dat` v6 at `out` (complete
/// or not at all). A capture cut short (no `End`: the guest or the host
/// died) is written as far as it goes: whole pages only, no task names if
/// they had not arrived.
pub fn assemble(dir: &Path, out: &Path) -> Result<Assembled> {
    let hello = read_hello(dir)?;
    let ended = read_meta(dir, "end")?.is_some();
    let ps = hello.page_size as u64;
    // Whole pages only: a host that died mid-write leaves part of one.
    let mut sizes = Vec::new();
    for cpu in 0..hello.cpus {
        let path = dir.join(format!("cpu{cpu}.pages"));
        let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        sizes.push(len / ps * ps);
    }
    let h = dat_header(dir, &hello, &sizes, true)?;
    let output = OutputFile::create(out, &[])?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, output.writer()?);
    w.write_all(&h).map_err(|e| Error::io(out, e))?;
    for (cpu, &size) in sizes.iter().enumerate() {
        if size == 0 {
            continue;
        }
        let path = dir.join(format!("cpu{cpu}.pages"));
        let mut f = File::open(&path).map_err(|e| Error::io(&path, e))?;
        f.seek(SeekFrom::Start(0)).map_err(|e| Error::io(&path, e))?;
        let copied = std::io::copy(&mut f.take(size), &mut w).map_err(|e| Error::io(&path, e))?;
        if copied != size {
            return Err(Error::io(&path, std::io::Error::other("shrank while it was read")));
        }
    }
    w.flush().map_err(|e| Error::io(out, e))?;
    drop(w);
    output.commit()?;
    Ok(Assembled {
        cpus: hello.cpus,
        pages: sizes.iter().sum::<u64>() / ps,
        ended,
    })
}

/// Reads a capture directory while it is being filled: each
/// [`Tail::poll`] gives the whole pages that arrived since the last one, as
/// a trace of their own (pages carry their own time, so each decodes alone).
/// Fed to [`crate::merge::RtosMerge`] and a viewer's index, this is the live
/// view's incremental path; together the polls hold exactly the pages
/// [`assemble`] writes.
#[derive(Debug)]
pub struct Tail {
    dir: PathBuf,
    /// Bytes of each CPU's pages already given out.
    taken: Vec<u64>,
}

impl Tail {
    /// Follows the capture in `dir` from its start.
    pub fn new(dir: &Path) -> Tail {
        Tail {
            dir: dir.to_path_buf(),
            taken: Vec::new(),
        }
    }

    /// The pages that arrived since the last poll (`None`: none, or the
    /// metadata is not all there yet). The trace's metadata is the capture's
    /// as it stands (task names arrive at the end).
    pub fn poll(&mut self) -> Result<Option<crate::Trace>> {
        if read_meta(&self.dir, "events/header_event")?.is_none() {
            return Ok(None);
        }
        let hello = read_hello(&self.dir)?;
        let ps = hello.page_size as u64;
        self.taken.resize(hello.cpus as usize, 0);
        let mut fresh = Vec::new();
        let mut sizes = Vec::new();
        for cpu in 0..hello.cpus as usize {
            let path = self.dir.join(format!("cpu{cpu}.pages"));
            let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0) / ps * ps;
            let from = self.taken[cpu];
            if len <= from {
                sizes.push(0);
                fresh.push(Vec::new());
                continue;
            }
            let mut f = File::open(&path).map_err(|e| Error::io(&path, e))?;
            f.seek(SeekFrom::Start(from)).map_err(|e| Error::io(&path, e))?;
            let mut b = vec![0; (len - from) as usize];
            f.read_exact(&mut b).map_err(|e| Error::io(&path, e))?;
            self.taken[cpu] = len;
            sizes.push(len - from);
            fresh.push(b);
        }
        if sizes.iter().all(|&s| s == 0) {
            return Ok(None);
        }
        let mut bytes = dat_header(&self.dir, &hello, &sizes, false)?;
        for b in fresh {
            bytes.extend_from_slice(&b);
        }
        crate::Trace::from_bytes(std::sync::Arc::new(bytes)).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: FrameKind, cpu: u16, seq: u64, payload: &[u8]) -> Vec<u8> {
        let mut b = FrameHeader::new(kind, cpu, seq, payload).encode().to_vec();
        b.extend_from_slice(payload);
        b
    }

    #[test]
    fn frames_come_out_whole_however_the_bytes_are_cut() {
        let mut bytes = frame(FrameKind::Hello, 0, 0, b"hvtrace-stream 1 cpus=2 page_size=4096\n");
        bytes.extend(frame(FrameKind::Page, 1, 1, &[7u8; 300]));
        for cut in [1, 5, 23, 24, 25, 100, 1000] {
            let mut d = FrameDecoder::new();
            let mut got = Vec::new();
            for chunk in bytes.chunks(cut) {
                d.push(chunk);
                while let Some(x) = d.next_decoded() {
                    got.push(x);
                }
            }
            assert_eq!(got.len(), 2, "cut {cut}");
            assert!(matches!(&got[1], Decoded::Frame(h, p) if h.cpu == 1 && p.len() == 300));
            assert_eq!(d.pending(), 0);
        }
    }

    #[test]
    fn a_damaged_frame_is_skipped_and_the_next_one_found() {
        let mut bytes = b"junk".to_vec();
        let mut bad = frame(FrameKind::Page, 0, 0, &[1u8; 64]);
        bad[40] ^= 0xff;
        bytes.extend(bad);
        bytes.extend(frame(FrameKind::Page, 0, 1, &[2u8; 64]));
        let mut d = FrameDecoder::new();
        d.push(&bytes);
        let mut skipped = 0;
        let mut frames = Vec::new();
        while let Some(x) = d.next_decoded() {
            match x {
                Decoded::Damaged { skipped: n, .. } => skipped += n,
                Decoded::Frame(h, _) => frames.push(h.seq),
            }
        }
        assert_eq!(frames, vec![1]);
        assert_eq!(skipped, 4 + 24 + 64);
    }

    fn page(ts: u64, events: &[(u16, u32)]) -> Vec<u8> {
        // Data events of 8 bytes: header word (type_len 2, delta 0), then
        // `common_type` and 2 more bytes, then 4.
        let mut data = Vec::new();
        for &(id, v) in events {
            data.extend_from_slice(&2u32.to_le_bytes());
            data.extend_from_slice(&id.to_le_bytes());
            data.extend_from_slice(&[0, 0]);
            data.extend_from_slice(&v.to_le_bytes());
        }
        let mut p = ts.to_le_bytes().to_vec();
        p.extend_from_slice(&(data.len() as u64).to_le_bytes());
        p.extend(data);
        p
    }

    const HVTRACE_FORMAT: &str = "name: rtos_switch\nID: 1500\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\nprint fmt: \"x\"\n";

    fn stream(end: bool) -> Vec<u8> {
        let mut b = Vec::new();
        let mut seq = 0;
        let mut push = |b: &mut Vec<u8>, kind, cpu, payload: &[u8]| {
            b.extend(frame(kind, cpu, seq, payload));
            seq += 1;
        };
        push(&mut b, FrameKind::Hello, 0, b"hvtrace-stream 1 cpus=2 page_size=4096\n");
        push(&mut b, FrameKind::File, 0, b"events/header_page\0\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n\tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;\n\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;\n\tfield: char data;\toffset:16;\tsize:4080;\tsigned:1;\n");
        push(
            &mut b,
            FrameKind::File,
            0,
            b"events/header_event\0# compressed entry header\n",
        );
        let mut f = b"events/hvtrace/rtos_switch/format\0".to_vec();
        f.extend_from_slice(HVTRACE_FORMAT.as_bytes());
        push(&mut b, FrameKind::File, 0, &f);
        push(&mut b, FrameKind::Page, 0, &page(1000, &[(1500, 1), (7, 2)]));
        push(&mut b, FrameKind::Page, 1, &page(2000, &[(1500, 3)]));
        if end {
            push(&mut b, FrameKind::File, 0, b"saved_cmdlines\x001 init\n");
            push(&mut b, FrameKind::End, 0, b"frames=7 pages=2 page_bytes=68\n");
        }
        b
    }

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tc-capture-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_capture_counts_each_os_and_checks_the_totals() {
        let dir = temp("counts");
        let mut c = Capture::create(&dir).unwrap();
        for chunk in stream(true).chunks(333) {
            c.feed(chunk).unwrap();
        }
        assert_eq!((c.stats.rtos_events, c.stats.linux_events, c.stats.pages), (2, 1, 2));
        assert_eq!(c.stats.incomplete(), None, "{:?}", c.complaints);
        assert_eq!(fs::metadata(dir.join("cpu0.pages")).unwrap().len(), 4096);
        let out = dir.join("stream.dat");
        let a = assemble(&dir, &out).unwrap();
        assert_eq!((a.cpus, a.pages, a.ended), (2, 2, true));
        let trace = crate::Trace::open(&out).unwrap();
        assert_eq!(trace.meta().cpus, 2);
        let names: Vec<String> = trace.events().map(|e| e.unwrap().name().to_string()).collect();
        assert_eq!(names.iter().filter(|n| *n == "rtos_switch").count(), 2, "{names:?}");
        // A second capture into the same directory is refused.
        assert!(Capture::create(&dir).is_err());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_stream_cut_short_says_so_and_still_assembles() {
        let dir = temp("cut");
        let mut c = Capture::create(&dir).unwrap();
        let mut bytes = stream(false);
        bytes.truncate(bytes.len() - 10);
        c.feed(&bytes).unwrap();
        let why = c.stats.incomplete().unwrap();
        assert!(why.contains("did not end"), "{why}");
        let a = assemble(&dir, &dir.join("cut.dat")).unwrap();
        assert_eq!((a.pages, a.ended), (1, false));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn lost_frames_are_counted_from_the_gap() {
        let dir = temp("gap");
        let mut c = Capture::create(&dir).unwrap();
        let mut b = frame(FrameKind::Hello, 0, 0, b"hvtrace-stream 1 cpus=1 page_size=4096\n");
        b.extend(frame(FrameKind::End, 0, 5, b"frames=5 pages=0 page_bytes=0\n"));
        c.feed(&b).unwrap();
        assert_eq!(c.stats.lost_frames, 4);
        assert!(c.stats.incomplete().unwrap().contains("4 frames lost"));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn names_that_leave_the_capture_are_refused() {
        for bad in ["../x", "/etc/passwd", "a//b", "a/../b", "", "a b"] {
            assert!(!safe_name(bad), "{bad}");
        }
        assert!(safe_name("events/sched/sched_switch/format"));
        assert!(safe_name("per_cpu/cpu0/stats"));
    }
}
