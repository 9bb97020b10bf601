//! Writes trace-cmd `.dat` version 6 files that the real `trace-cmd report` and KernelShark open.
//!
//! Events may arrive interleaved across CPUs (in time order); each CPU's ring-buffer pages are
//! spooled to an anonymous temporary file, and [`DatWriter::finish`] writes the header (which
//! needs every format and cmdline) followed by the page-aligned per-CPU data. Memory stays
//! bounded by one page per CPU.
//!
//! Format files are regenerated from the [`EventFormat`]s (so they always match the records we
//! encode); event ids are kept unless two different events share one, in which case the later
//! one gets a fresh id.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::sync::Arc;

use super::EventSink;
use crate::bytes::Endian;
use crate::error::{Error, Result};
use crate::event::{Cmdlines, Event, TraceMeta};
use crate::format::{standard_common, CommonValues, EventFormat, PageHeader, STANDARD_HEADER_EVENT};
use crate::ringbuf::PageWriter;

const PAGE_SIZE: u32 = 4096;
/// Clocks whose stamps are nanoseconds (trace-cmd prints them as seconds).
const NS_CLOCKS: &[&str] = &["local", "global", "mono", "mono_raw", "boot", "tai", "perf"];

struct CpuSink {
    pages: PageWriter,
    file: BufWriter<File>,
}

/// Output metadata besides the events.
#[derive(Debug, Clone, Default)]
pub struct DatHeader {
    /// Declared CPU count (raised to cover every CPU that has events).
    pub cpus: u32,
    /// Buffer names; index 0 is the top buffer (its name is ignored).
    pub buffers: Vec<String>,
    /// Selected trace clock (must count nanoseconds; others are written as `local`).
    pub clock: String,
    /// Task names.
    pub cmdlines: Cmdlines,
    /// `/proc/kallsyms` text.
    pub kallsyms: String,
    /// `printk_formats` text.
    pub printk: String,
    /// `uname` string.
    pub uname: Option<String>,
    /// The input's `trace_clock` text (`[local] global …`), written when its
    /// selected clock is the one written.
    pub trace_clock: Option<String>,
    /// The version of the tool that recorded the input (kept: it says where
    /// the data came from).
    pub tool_version: Option<String>,
    /// Options copied as they are (`TraceMeta::kept_options`).
    pub kept_options: Vec<(u16, Vec<u8>)>,
}

impl DatHeader {
    /// The header values of an input trace.
    pub fn from_meta(meta: &TraceMeta) -> Self {
        let clock = meta
            .buffers
            .first()
            .and_then(|b| b.clock.clone())
            .or_else(|| meta.trace_clock.as_deref().and_then(selected))
            .unwrap_or_else(|| "local".into());
        DatHeader {
            cpus: meta.cpus,
            buffers: if meta.buffers.is_empty() {
                vec![String::new()]
            } else {
                meta.buffers.iter().map(|b| b.name.clone()).collect()
            },
            clock,
            cmdlines: meta.cmdlines.clone(),
            kallsyms: meta.kallsyms.clone(),
            printk: meta.printk.clone(),
            uname: meta.uname.clone(),
            trace_clock: meta.trace_clock.clone(),
            tool_version: meta.tool_version.clone(),
            kept_options: meta.kept_options.clone(),
        }
    }
}

fn selected(t: &str) -> Option<String> {
    let a = t.find('[')?;
    let b = t[a..].find(']')? + a;
    Some(t[a + 1..b].to_string())
}

/// A v6 file's parts up to its options: the format files, kallsyms,
/// printk formats and cmdlines as texts. One layout for every writer.
pub struct V6Head<'a> {
    /// The ring buffer's page size.
    pub page_size: u32,
    /// `events/header_page`.
    pub header_page: &'a [u8],
    /// `events/header_event`.
    pub header_event: &'a [u8],
    /// The format files of the `ftrace` system.
    pub ftrace: &'a [Vec<u8>],
    /// Every other system and its format files.
    pub systems: &'a [(String, Vec<Vec<u8>>)],
    /// `/proc/kallsyms`.
    pub kallsyms: &'a [u8],
    /// `printk_formats`.
    pub printk: &'a [u8],
    /// `saved_cmdlines`.
    pub cmdlines: &'a [u8],
    /// The CPU count.
    pub cpus: u32,
}

impl V6Head<'_> {
    /// Appends the file's start, up to and including `options  \0`: the
    /// caller adds options with [`v6_option`], ends them with id 0, and
    /// writes the `flyrecord` section.
    pub fn write(&self, h: &mut Vec<u8>) {
        let e = Endian::Little;
        h.extend_from_slice(b"\x17\x08\x44tracing6\0");
        h.push(0);
        h.push(8);
        e.put(h, self.page_size as u64, 4);
        h.extend_from_slice(b"header_page\0");
        e.put(h, self.header_page.len() as u64, 8);
        h.extend_from_slice(self.header_page);
        h.extend_from_slice(b"header_event\0");
        e.put(h, self.header_event.len() as u64, 8);
        h.extend_from_slice(self.header_event);
        e.put(h, self.ftrace.len() as u64, 4);
        for t in self.ftrace {
            e.put(h, t.len() as u64, 8);
            h.extend_from_slice(t);
        }
        e.put(h, self.systems.len() as u64, 4);
        for (sys, fs) in self.systems {
            h.extend_from_slice(sys.as_bytes());
            h.push(0);
            e.put(h, fs.len() as u64, 4);
            for t in fs {
                e.put(h, t.len() as u64, 8);
                h.extend_from_slice(t);
            }
        }
        e.put(h, self.kallsyms.len() as u64, 4);
        h.extend_from_slice(self.kallsyms);
        e.put(h, self.printk.len() as u64, 4);
        h.extend_from_slice(self.printk);
        e.put(h, self.cmdlines.len() as u64, 8);
        h.extend_from_slice(self.cmdlines);
        e.put(h, self.cpus as u64, 4);
        h.extend_from_slice(b"options  \0");
    }
}

/// Appends one v6 option (`u16` id, `u32` size, data).
pub fn v6_option(h: &mut Vec<u8>, id: u16, data: &[u8]) {
    Endian::Little.put(h, id as u64, 2);
    Endian::Little.put(h, data.len() as u64, 4);
    h.extend_from_slice(data);
}

/// Writes a `.dat` v6 file.
pub struct DatWriter<W: Write + Seek> {
    out: Option<W>,
    header: DatHeader,
    formats: Vec<Arc<EventFormat>>,
    // Keyed by the source format's address; the source Arc is kept so it cannot be reused.
    by_src: HashMap<usize, (Arc<EventFormat>, Arc<EventFormat>)>,
    by_name: HashMap<(String, String), Arc<EventFormat>>,
    used_ids: HashMap<u32, (String, String)>,
    sinks: BTreeMap<(u32, u32), CpuSink>,
    scratch: Vec<u8>,
    /// Events written.
    pub count: u64,
}

impl<W: Write + Seek> DatWriter<W> {
    /// A writer to `out` with `header`; `formats` are declared even if no event uses them.
    pub fn new(out: W, header: DatHeader, formats: &[Arc<EventFormat>]) -> Result<Self> {
        let mut w = DatWriter {
            out: Some(out),
            header,
            formats: Vec::new(),
            by_src: HashMap::new(),
            by_name: HashMap::new(),
            used_ids: HashMap::new(),
            sinks: BTreeMap::new(),
            scratch: Vec::with_capacity(256),
            count: 0,
        };
        for f in formats {
            w.output_format(f)?;
        }
        Ok(w)
    }

    /// Replaces the header (a writer started before all of it was known:
    /// task names and symbols arrive at a stream's end).
    pub fn set_header(&mut self, header: DatHeader) {
        self.header = header;
    }

    /// Adds or replaces a task name.
    pub fn set_comm(&mut self, pid: i32, comm: &str) {
        self.header.cmdlines.insert(pid, comm);
    }

    /// The output format for a source format: same layout, possibly a new id.
    fn output_format(&mut self, src: &Arc<EventFormat>) -> Result<Arc<EventFormat>> {
        let key = Arc::as_ptr(src) as usize;
        if let Some((_, f)) = self.by_src.get(&key) {
            return Ok(f.clone());
        }
        let name = (src.system.clone(), src.name.clone());
        if let Some(f) = self.by_name.get(&name) {
            if f.fields == src.fields {
                let f = f.clone();
                self.by_src.insert(key, (src.clone(), f.clone()));
                return Ok(f);
            }
            return Err(Error::Write(format!(
                "two different layouts for event {}:{}",
                src.system, src.name
            )));
        }
        let mut f = (**src).clone();
        if f.common.is_empty() {
            f.common = standard_common();
        }
        if f.print_fmt.is_empty() {
            f.print_fmt = default_print_fmt(&f);
        }
        if self.used_ids.contains_key(&f.id) || f.id == 0 || f.id > 0xffff {
            let mut id = self.used_ids.keys().max().copied().unwrap_or(1000).max(1000) + 1;
            while self.used_ids.contains_key(&id) {
                id += 1;
            }
            f.id = id;
        }
        self.used_ids.insert(f.id, name.clone());
        let f = Arc::new(f);
        self.formats.push(f.clone());
        self.by_name.insert(name, f.clone());
        self.by_src.insert(key, (src.clone(), f.clone()));
        Ok(f)
    }

    /// Writes `ev`. Events of one (buffer, CPU) must come in time order.
    pub fn write(&mut self, ev: &Event) -> Result<()> {
        let f = self.output_format(&ev.format)?;
        self.scratch.clear();
        let common = CommonValues {
            pid: ev.pid,
            flags: ev.flags,
            preempt_count: ev.preempt_count,
        };
        f.encode(&common, &ev.fields, Endian::Little, &mut self.scratch)?;
        let buffer = ev.buffer.min(self.header.buffers.len().saturating_sub(1) as u32);
        let sink = match self.sinks.entry((buffer, ev.cpu)) {
            std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                let file = tempfile::tempfile()?;
                v.insert(CpuSink {
                    pages: PageWriter::new(PAGE_SIZE, Endian::Little),
                    file: BufWriter::new(file),
                })
            }
        };
        sink.pages
            .push(ev.ts_ns, &self.scratch, ev.missed_before, &mut sink.file)?;
        self.count += 1;
        Ok(())
    }

    /// Writes the header and all spooled pages; returns the output.
    pub fn finish_into(&mut self) -> Result<W> {
        let mut out = self
            .out
            .take()
            .ok_or_else(|| Error::Write("writer already finished".into()))?;
        for s in self.sinks.values_mut() {
            s.pages.finish(&mut s.file)?;
            s.file.flush()?;
        }
        let max_cpu = self.sinks.keys().map(|(_, c)| c + 1).max().unwrap_or(0);
        let cpus = self.header.cpus.max(max_cpu).max(1);
        let nbuf = self.header.buffers.len().max(1);
        let e = Endian::Little;
        // ftrace formats, then the other systems.
        let mut systems: BTreeMap<&str, Vec<Vec<u8>>> = BTreeMap::new();
        let mut ftrace = Vec::new();
        for f in &self.formats {
            let text = f.to_format_text().into_bytes();
            if f.system == "ftrace" {
                ftrace.push(text);
            } else {
                systems.entry(f.system.as_str()).or_default().push(text);
            }
        }
        let mut h: Vec<u8> = Vec::new();
        V6Head {
            page_size: PAGE_SIZE,
            header_page: PageHeader::standard_text(PAGE_SIZE).as_bytes(),
            header_event: STANDARD_HEADER_EVENT.as_bytes(),
            ftrace: &ftrace,
            systems: &systems.into_iter().map(|(s, f)| (s.to_string(), f)).collect::<Vec<_>>(),
            kallsyms: self.header.kallsyms.as_bytes(),
            printk: self.header.printk.as_bytes(),
            cmdlines: self.header.cmdlines.to_text().as_bytes(),
            cpus,
        }
        .write(&mut h);
        let opt = v6_option;
        let clock = if NS_CLOCKS.contains(&self.header.clock.as_str()) {
            self.header.clock.clone()
        } else {
            "local".into()
        };
        let clock_text = format!("[{clock}]");
        // The input's list of clocks when its selection is the clock written.
        let clocks = match &self.header.trace_clock {
            Some(t) if selected(t).as_deref() == Some(clock.as_str()) => t.clone(),
            _ => clock_text.clone(),
        };
        opt(&mut h, 4, format!("{clocks}\0").as_bytes());
        opt(&mut h, 8, &cpus.to_le_bytes());
        if let Some(u) = &self.header.uname {
            opt(&mut h, 5, format!("{u}\0").as_bytes());
        }
        let version = match &self.header.tool_version {
            Some(v) => v.clone(),
            None => format!("trace-convert {}", env!("CARGO_PKG_VERSION")),
        };
        opt(&mut h, 9, format!("{version}\0").as_bytes());
        for (id, data) in &self.header.kept_options {
            opt(&mut h, *id, data);
        }
        let mut buffer_patch = Vec::new();
        for name in self.header.buffers.iter().skip(1) {
            let mut d = vec![0u8; 8];
            d.extend_from_slice(name.as_bytes());
            d.push(0);
            buffer_patch.push(h.len() + 6);
            opt(&mut h, 3, &d);
        }
        e.put(&mut h, 0, 2);
        // Flyrecord tables: the top buffer here, instances right after.
        let mut table_at = vec![0usize; nbuf];
        for (b, slot) in table_at.iter_mut().enumerate() {
            if b > 0 {
                let at = h.len() as u64;
                h[buffer_patch[b - 1]..buffer_patch[b - 1] + 8].copy_from_slice(&at.to_le_bytes());
            }
            h.extend_from_slice(b"flyrecord\0");
            *slot = h.len();
            h.resize(h.len() + 16 * cpus as usize, 0);
            e.put(&mut h, clock_text.len() as u64, 8);
            h.extend_from_slice(clock_text.as_bytes());
        }
        // Data placement.
        let ps = PAGE_SIZE as u64;
        let mut pos = (h.len() as u64).div_ceil(ps) * ps;
        for (&(b, cpu), s) in &self.sinks {
            let size = s.pages.pages * ps;
            let at = table_at[b as usize] + 16 * cpu as usize;
            let (o, z) = if size > 0 { (pos, size) } else { (0, 0) };
            h[at..at + 8].copy_from_slice(&o.to_le_bytes());
            h[at + 8..at + 16].copy_from_slice(&z.to_le_bytes());
            pos += size;
        }
        out.write_all(&h)?;
        let pad = (h.len() as u64).div_ceil(ps) * ps - h.len() as u64;
        out.write_all(&vec![0u8; pad as usize])?;
        for s in self.sinks.values_mut() {
            let f = s.file.get_mut();
            f.seek(SeekFrom::Start(0))?;
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                out.write_all(&buf[..n])?;
            }
        }
        out.flush()?;
        Ok(out)
    }
}

impl<W: Write + Seek> EventSink for DatWriter<W> {
    fn event(&mut self, ev: &Event) -> Result<()> {
        self.write(ev)
    }

    fn finish(&mut self) -> Result<()> {
        self.finish_into().map(|_| ())
    }
}

/// `"a=%d b=%s", REC->a, REC->b` for formats that come without a print format.
pub fn default_print_fmt(f: &EventFormat) -> String {
    use crate::format::FieldKind;
    let mut s = String::from("\"");
    let mut args = String::new();
    for (i, fd) in f.fields.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let (conv, arg) = match fd.kind {
            FieldKind::CharArray => ("%s", format!("REC->{}", fd.name)),
            FieldKind::DataLoc { string: true, .. } => ("%s", format!("__get_str({})", fd.name)),
            FieldKind::Int if fd.signed => (if fd.size == 8 { "%lld" } else { "%d" }, format!("REC->{}", fd.name)),
            FieldKind::Int => (if fd.size == 8 { "%llu" } else { "%u" }, format!("REC->{}", fd.name)),
            _ => continue,
        };
        s += &format!("{}={}", fd.name, conv);
        args += &format!(", {arg}");
    }
    s.push('"');
    s + &args
}
