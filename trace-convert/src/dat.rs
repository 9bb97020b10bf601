//! trace-cmd `.dat` files, versions 6 and 7 (`man 5 trace-cmd.dat.v6`, `man 5 trace-cmd.dat.v7`).
//!
//! [`DatFile::parse`] reads all metadata (headers, formats, kallsyms, printk formats, cmdlines,
//! options, buffers) up front; event data stays in the (memory-mapped) file and is decoded per
//! CPU, page by page, by [`CpuEvents`]. Compressed v7 flyrecord data is inflated one chunk at a
//! time, so memory stays bounded by the number of CPUs times the chunk size.

use std::collections::HashMap;
use std::sync::Arc;

use crate::bytes::{text, Cursor, Endian};
use crate::error::{Error, Result};
use crate::event::{BufferInfo, Cmdlines, Event, Missed, TraceMeta, Tsc2Nsec};
use crate::format::{CommonLayout, EventFormat, FieldDef, FieldKind, PageHeader};
use crate::ringbuf::PageRecords;

/// Where a trace's bytes live: a memory map or an owned buffer.
pub trait Source: AsRef<[u8]> + Send + Sync {
    /// The reader is done with `offset..offset + len`; a memory map drops those pages from
    /// memory (they are read again from the file if touched), keeping resident memory bounded
    /// on huge inputs. The default does nothing.
    fn release(&self, _offset: usize, _len: usize) {}
}

impl Source for Vec<u8> {}

/// The file's bytes.
pub type Bytes = Arc<dyn Source>;

/// Decoded input a CPU stream walks through before handing pages back ([`Source::release`]).
const RELEASE_EVERY: u64 = 4 << 20;

const MAGIC: &[u8] = b"\x17\x08\x44tracing";
/// Upper bound for one decompressed metadata section or data chunk (corrupt sizes are refused).
const MAX_INFLATE: u64 = 64 << 20;

// Option ids (shared by v6 and v7).
/// Marks a section base whose data was decompressed (the rest of the value
/// is the file offset of the compressed block); see `in_section`.
const COMPRESSED: u64 = 1 << 63;

/// The cursor base and error wrapping of a section's data: file offsets for
/// plain sections, decompressed offsets (wrapped with the block's file
/// offset) for compressed ones.
fn section_base(base: u64) -> (u64, Option<u64>) {
    if base & COMPRESSED != 0 {
        (0, Some(base & !COMPRESSED))
    } else {
        (base, None)
    }
}

fn in_section<T>(block: Option<u64>, r: Result<T>) -> Result<T> {
    match block {
        Some(at) => r.map_err(|e| e.in_compressed(at)),
        None => r,
    }
}

const OPT_DONE: u16 = 0;
const OPT_BUFFER: u16 = 3;
const OPT_TRACECLOCK: u16 = 4;
const OPT_UNAME: u16 = 5;
const OPT_OFFSET: u16 = 7;
const OPT_CPUCOUNT: u16 = 8;
const OPT_VERSION: u16 = 9;
const OPT_CPUSTAT: u16 = 2;
const OPT_TSC2NSEC: u16 = 14;
const OPT_HEADER_INFO: u16 = 16;
const OPT_FTRACE_EVENTS: u16 = 17;
const OPT_EVENT_FORMATS: u16 = 18;
const OPT_KALLSYMS: u16 = 19;
const OPT_PRINTK: u16 = 20;
const OPT_CMDLINES: u16 = 21;
/// Options a writer can copy as they are (see `TraceMeta::kept_options`):
/// CPUSTAT, HOOK, PROCMAPS, TRACEID, GUEST.
const KEPT_OPTIONS: [u16; 5] = [OPT_CPUSTAT, 6, 10, 11, 13];
const OPT_BUFFER_TEXT: u16 = 22;

/// A compression algorithm of v7 files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algo {
    Zstd,
    Zlib,
}

fn inflate(algo: Algo, data: &[u8], usize_: u64, offset: u64) -> Result<Vec<u8>> {
    if usize_ > MAX_INFLATE {
        return Err(Error::malformed(
            offset,
            format!("compressed block claims {usize_} uncompressed bytes"),
        ));
    }
    let err = |why: String| Error::Decompress {
        offset,
        algo: format!("{algo:?}").to_lowercase(),
        why,
    };
    let out = match algo {
        Algo::Zstd => zstd::bulk::decompress(data, usize_ as usize).map_err(|e| err(e.to_string()))?,
        Algo::Zlib => {
            use std::io::Read;
            let mut out = Vec::with_capacity(usize_ as usize);
            flate2::read::ZlibDecoder::new(data)
                .take(usize_)
                .read_to_end(&mut out)
                .map_err(|e| err(e.to_string()))?;
            out
        }
    };
    if out.len() as u64 != usize_ {
        return Err(err(format!("got {} bytes, header says {usize_}", out.len())));
    }
    Ok(out)
}

/// Where one CPU's ring-buffer pages are.
#[derive(Debug, Clone)]
struct CpuData {
    buffer: u32,
    cpu: u32,
    offset: u64,
    size: u64,
    compressed: Option<Algo>,
}

/// Decoding state shared by all CPU streams of a file.
#[derive(Debug)]
struct Shared {
    endian: Endian,
    page_size: u32,
    page_hdr: PageHeader,
    common: CommonLayout,
    by_id: HashMap<u32, Arc<EventFormat>>,
    cmdlines: Cmdlines,
    meta_ts: (Option<Tsc2Nsec>, i64),
}

/// A parsed `.dat` file.
pub struct DatFile {
    bytes: Bytes,
    meta: TraceMeta,
    cpu_data: Vec<CpuData>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for DatFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatFile")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// Is this the start of a `.dat` file?
pub fn sniff(head: &[u8]) -> bool {
    head.starts_with(MAGIC)
}

struct Parser<'a> {
    data: &'a [u8],
    endian: Endian,
    long_size: u32,
    page_size: u32,
    meta: TraceMeta,
    algo: Option<Algo>,
    cpu_data: Vec<CpuData>,
    header_page_text: Option<(String, u64)>,
}

impl<'a> Parser<'a> {
    fn at(&self, offset: u64, what: &'static str) -> Result<Cursor<'a>> {
        if offset > self.data.len() as u64 {
            return Err(Error::Truncated {
                offset,
                what,
                need: 1,
                have: 0,
            });
        }
        Ok(Cursor::new(&self.data[offset as usize..], offset, self.endian))
    }

    fn sized_text(c: &mut Cursor<'_>, size_bytes: u8, what: &'static str) -> Result<(String, u64)> {
        let n = if size_bytes == 8 {
            c.u64(what)?
        } else {
            c.u32(what)? as u64
        };
        let at = c.offset();
        Ok((text(c.take(n, what)?), at))
    }

    fn header_info(&mut self, c: &mut Cursor<'_>) -> Result<()> {
        c.expect(b"header_page\0", "header_page tag")?;
        let n = c.u64("header_page size")?;
        let at = c.offset();
        let hp = text(c.take(n, "header_page")?);
        c.expect(b"header_event\0", "header_event tag")?;
        let n = c.u64("header_event size")?;
        let he = text(c.take(n, "header_event")?);
        self.meta.header_page = hp.clone();
        self.meta.header_event = he;
        self.header_page_text = Some((hp, at));
        Ok(())
    }

    /// Adds one event format. A format that does not parse costs only its
    /// own event type: it is skipped with a warning, and events of that type
    /// read as `unknown:type_<id>` with their raw bytes (as trace-cmd reads
    /// the rest of such a file).
    fn add_format(&mut self, system: &str, text: &str, at: u64) {
        match EventFormat::parse(system, text, at) {
            Ok(f) => self.meta.formats.push(Arc::new(f)),
            Err(e) => {
                let name = text
                    .lines()
                    .find_map(|l| l.strip_prefix("name:"))
                    .map_or("an event", str::trim);
                self.meta.warnings.push(format!(
                    "skipped the format of {system}:{name} ({e}); its events read as raw bytes"
                ));
            }
        }
    }

    fn ftrace_formats(&mut self, c: &mut Cursor<'_>) -> Result<()> {
        let count = c.u32("ftrace format count")?;
        for _ in 0..count {
            let n = c.u64("ftrace format size")?;
            let at = c.offset();
            let t = text(c.take(n, "ftrace format")?);
            self.add_format("ftrace", &t, at);
        }
        Ok(())
    }

    fn event_formats(&mut self, c: &mut Cursor<'_>) -> Result<()> {
        let systems = c.u32("event system count")?;
        for _ in 0..systems {
            let sys = c.cstr("event system name")?.to_string();
            let count = c.u32("event format count")?;
            for _ in 0..count {
                let n = c.u64("event format size")?;
                let at = c.offset();
                let t = text(c.take(n, "event format")?);
                self.add_format(&sys, &t, at);
            }
        }
        Ok(())
    }

    /// Reads a v7 section at `offset`; returns its (possibly inflated) content and its flags.
    fn section(&self, offset: u64, want: u16, what: &'static str) -> Result<(std::borrow::Cow<'a, [u8]>, u64)> {
        let mut c = self.at(offset, what)?;
        let id = c.u16("section id")?;
        if id != want {
            return Err(Error::malformed(
                offset,
                format!("expected {what} section (id {want}), found id {id}"),
            ));
        }
        let flags = c.u16("section flags")?;
        let _desc = c.u32("section description")?;
        let size = c.u64("section size")?;
        let body_at = c.offset();
        let body = c.take(size, what)?;
        if flags & 1 != 0 {
            let algo = self.algo.ok_or_else(|| {
                Error::malformed(offset, format!("{what} section compressed in an uncompressed file"))
            })?;
            let mut b = Cursor::new(body, body_at, self.endian);
            let csize = b.u32("compressed size")? as u64;
            let usize_ = b.u32("uncompressed size")? as u64;
            let data = b.take(csize, "compressed data")?;
            // Offsets into the decompressed data; callers wrap errors with
            // `in_section` so messages say which block.
            Ok((inflate(algo, data, usize_, body_at)?.into(), COMPRESSED | body_at))
        } else {
            Ok((body.into(), body_at))
        }
    }

    fn options(&mut self, c: &mut Cursor<'_>, v7: bool) -> Result<Option<u64>> {
        loop {
            let at = c.offset();
            let id = c.u16("option id")?;
            if id == OPT_DONE && !v7 {
                return Ok(None);
            }
            let size = c.u32("option size")?;
            let data = c.take(size as u64, "option data")?;
            let body_at = at + 6;
            let s = || {
                let n = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                text(&data[..n])
            };
            let u64_at = |i: usize| -> Result<u64> {
                data.get(i..i + 8)
                    .map(|b| self.endian.uint(b))
                    .ok_or_else(|| Error::malformed(at, format!("option {id} of {size} bytes too short")))
            };
            if KEPT_OPTIONS.contains(&id) {
                self.meta.kept_options.push((id, data.to_vec()));
            }
            match id {
                OPT_DONE => {
                    let next = u64_at(0)?;
                    return Ok((next != 0).then_some(next));
                }
                OPT_CPUSTAT => self.meta.cpustats.push(s()),
                OPT_TRACECLOCK => self.meta.trace_clock = Some(s()),
                OPT_UNAME => self.meta.uname = Some(s()),
                OPT_VERSION => self.meta.tool_version = Some(s()),
                OPT_OFFSET => {
                    let t = s();
                    let t = t.trim();
                    self.meta.ts_offset += if let Some(h) = t.strip_prefix("0x") {
                        i64::from_str_radix(h, 16).unwrap_or(0)
                    } else {
                        t.parse().unwrap_or(0)
                    };
                }
                // Counts above 65536 CPUs are corrupt and ignored.
                OPT_CPUCOUNT if data.len() >= 4 && self.endian.uint(&data[..4]) <= 1 << 16 => {
                    self.meta.cpus = self.meta.cpus.max(self.endian.uint(&data[..4]) as u32);
                }
                OPT_TSC2NSEC if data.len() >= 16 => {
                    self.meta.tsc2nsec = Some(Tsc2Nsec {
                        mult: self.endian.uint(&data[0..4]) as u32,
                        shift: self.endian.uint(&data[4..8]) as u32 & 63,
                        offset: self.endian.uint(&data[8..16]),
                    });
                }
                OPT_BUFFER if !v7 => {
                    let off = u64_at(0)?;
                    let mut nc = Cursor::new(&data[8..], body_at + 8, self.endian);
                    let name = nc.cstr("buffer name")?.to_string();
                    self.v6_flyrecord(off, name)?;
                }
                OPT_BUFFER => self.v7_buffer(data, body_at)?,
                OPT_BUFFER_TEXT => {}
                OPT_HEADER_INFO if v7 => {
                    let (sec, base) = self.section(u64_at(0)?, OPT_HEADER_INFO, "header info")?;
                    let (base, block) = section_base(base);
                    in_section(block, self.header_info(&mut Cursor::new(&sec, base, self.endian)))?;
                }
                OPT_FTRACE_EVENTS if v7 => {
                    let (sec, base) = self.section(u64_at(0)?, OPT_FTRACE_EVENTS, "ftrace formats")?;
                    let (base, block) = section_base(base);
                    in_section(block, self.ftrace_formats(&mut Cursor::new(&sec, base, self.endian)))?;
                }
                OPT_EVENT_FORMATS if v7 => {
                    let (sec, base) = self.section(u64_at(0)?, OPT_EVENT_FORMATS, "event formats")?;
                    let (base, block) = section_base(base);
                    in_section(block, self.event_formats(&mut Cursor::new(&sec, base, self.endian)))?;
                }
                OPT_KALLSYMS if v7 => {
                    let (sec, base) = self.section(u64_at(0)?, OPT_KALLSYMS, "kallsyms")?;
                    let (base, block) = section_base(base);
                    self.meta.kallsyms = in_section(
                        block,
                        Self::sized_text(&mut Cursor::new(&sec, base, self.endian), 4, "kallsyms"),
                    )?
                    .0;
                }
                OPT_PRINTK if v7 => {
                    let (sec, base) = self.section(u64_at(0)?, OPT_PRINTK, "printk formats")?;
                    let (base, block) = section_base(base);
                    self.meta.printk = in_section(
                        block,
                        Self::sized_text(&mut Cursor::new(&sec, base, self.endian), 4, "printk formats"),
                    )?
                    .0;
                }
                OPT_CMDLINES if v7 => {
                    let (sec, base) = self.section(u64_at(0)?, OPT_CMDLINES, "cmdlines")?;
                    let (base, block) = section_base(base);
                    let t = in_section(
                        block,
                        Self::sized_text(&mut Cursor::new(&sec, base, self.endian), 8, "cmdlines"),
                    )?
                    .0;
                    self.meta.cmdlines = Cmdlines::parse(&t);
                }
                _ => {}
            }
        }
    }

    /// A v6 "flyrecord\0" block: per-CPU (offset, size) pairs and an optional clock.
    fn v6_flyrecord(&mut self, offset: u64, name: String) -> Result<()> {
        let mut c = self.at(offset, "flyrecord header")?;
        c.expect(b"flyrecord\0", "flyrecord tag")?;
        let buffer = self.meta.buffers.len() as u32;
        let mut info = BufferInfo {
            name,
            clock: None,
            cpus: Vec::new(),
        };
        for cpu in 0..self.meta.cpus {
            let off = c.u64("CPU data offset")?;
            let size = c.u64("CPU data size")?;
            info.cpus.push(cpu);
            self.cpu_data.push(CpuData {
                buffer,
                cpu,
                offset: off,
                size,
                compressed: None,
            });
        }
        // trace-cmd appends the trace_clock file after the top buffer's CPU table.
        if c.remaining() >= 8 {
            let mut p = c.clone();
            if let Ok(n) = p.u64("clock size") {
                if n > 0 && n < 4096 {
                    if let Ok(t) = p.take(n, "clock") {
                        let t = text(t);
                        if let Some(sel) = selected_clock(&t) {
                            info.clock = Some(sel);
                        }
                        if buffer == 0 && self.meta.trace_clock.is_none() {
                            self.meta.trace_clock = Some(t);
                        }
                    }
                }
            }
        }
        self.meta.buffers.push(info);
        Ok(())
    }

    /// A v7 BUFFER option and the flyrecord section it points to.
    fn v7_buffer(&mut self, data: &[u8], at: u64) -> Result<()> {
        let mut c = Cursor::new(data, at, self.endian);
        let sec = c.u64("buffer section offset")?;
        let name = c.cstr("buffer name")?.to_string();
        let clock = c.cstr("buffer clock")?.to_string();
        let page_size = c.u32("buffer page size")?;
        if page_size != self.page_size {
            return Err(Error::Unsupported {
                offset: at,
                what: format!(
                    "buffer {name:?} page size {page_size} differs from the file's {}",
                    self.page_size
                ),
            });
        }
        let count = c.u32("buffer CPU count")?;
        let mut sc = self.at(sec, "flyrecord section")?;
        let sid = sc.u16("section id")?;
        if sid != OPT_BUFFER {
            return Err(Error::malformed(
                sec,
                format!("expected flyrecord section (id 3), found id {sid}"),
            ));
        }
        let flags = sc.u16("section flags")?;
        let compressed = if flags & 1 != 0 {
            Some(
                self.algo
                    .ok_or_else(|| Error::malformed(sec, "compressed flyrecord in an uncompressed file"))?,
            )
        } else {
            None
        };
        let buffer = self.meta.buffers.len() as u32;
        let mut info = BufferInfo {
            name,
            clock: Some(clock),
            cpus: Vec::new(),
        };
        for _ in 0..count {
            let cpu = c.u32("CPU id")?;
            let offset = c.u64("CPU data offset")?;
            let size = c.u64("CPU data size")?;
            if cpu > 1 << 16 {
                return Err(Error::malformed(c.offset() - 20, format!("CPU id {cpu}")));
            }
            info.cpus.push(cpu);
            self.meta.cpus = self.meta.cpus.max(cpu + 1);
            self.cpu_data.push(CpuData {
                buffer,
                cpu,
                offset,
                size,
                compressed,
            });
        }
        self.meta.buffers.push(info);
        Ok(())
    }
}

/// The selected clock of a `trace_clock` text (`[local] global` → `local`).
fn selected_clock(t: &str) -> Option<String> {
    let a = t.find('[')?;
    let b = t[a..].find(']')? + a;
    Some(t[a + 1..b].to_string())
}

impl DatFile {
    /// Parses the metadata of `bytes` (the whole file).
    pub fn parse(bytes: Bytes) -> Result<DatFile> {
        let len = (*bytes).as_ref().len() as u64;
        Self::parse_all(bytes).map_err(|e| e.within(len))
    }

    fn parse_all(bytes: Bytes) -> Result<DatFile> {
        let data: &[u8] = (*bytes).as_ref();
        let mut c = Cursor::new(data, 0, Endian::Little);
        c.expect(MAGIC, "trace-cmd magic")?;
        let vat = c.offset();
        let version: u32 = c
            .cstr("file version")?
            .parse()
            .map_err(|_| Error::malformed(vat, "file version is not a number"))?;
        if version != 6 && version != 7 {
            return Err(Error::Unsupported {
                offset: vat,
                what: format!("trace-cmd file version {version}"),
            });
        }
        let eat = c.offset();
        let endian = match c.u8("endianness")? {
            0 => Endian::Little,
            1 => Endian::Big,
            e => return Err(Error::malformed(eat, format!("endianness flag {e}"))),
        };
        c.endian = endian;
        let lat = c.offset();
        let long_size = c.u8("long size")? as u32;
        if long_size != 4 && long_size != 8 {
            return Err(Error::malformed(lat, format!("long size {long_size}")));
        }
        let pat = c.offset();
        let page_size = c.u32("page size")?;
        if !(64..=(1 << 24)).contains(&page_size) {
            return Err(Error::malformed(pat, format!("page size {page_size}")));
        }
        let mut p = Parser {
            data,
            endian,
            long_size,
            page_size,
            meta: TraceMeta {
                source: format!("trace-cmd .dat v{version}"),
                dat_version: Some(version),
                long_size,
                page_size,
                ..Default::default()
            },
            algo: None,
            cpu_data: Vec::new(),
            header_page_text: None,
        };
        if version == 6 {
            p.header_info(&mut c)?;
            p.ftrace_formats(&mut c)?;
            p.event_formats(&mut c)?;
            p.meta.kallsyms = Parser::sized_text(&mut c, 4, "kallsyms")?.0;
            p.meta.printk = Parser::sized_text(&mut c, 4, "printk formats")?.0;
            let cmd = Parser::sized_text(&mut c, 8, "cmdlines")?.0;
            p.meta.cmdlines = Cmdlines::parse(&cmd);
            p.meta.cpus = c.u32("CPU count")?;
            if p.meta.cpus > 1 << 16 {
                return Err(Error::malformed(c.offset() - 4, format!("CPU count {}", p.meta.cpus)));
            }
            let tat = c.offset();
            let mut tag = c.take(10, "data tag")?;
            if tag == b"options  \0" {
                // Instance buffers (BUFFER options) are read here; the top one follows.
                p.options(&mut c, false)?;
                tag = c.take(10, "data tag")?;
            }
            match tag {
                b"flyrecord\0" => {
                    let top_at = c.offset() - 10;
                    // Buffers were pushed while reading options; put the top one first.
                    let instances = std::mem::take(&mut p.meta.buffers);
                    let inst_cpus = std::mem::take(&mut p.cpu_data);
                    p.v6_flyrecord(top_at, String::new())?;
                    p.meta.buffers.extend(instances);
                    for mut cd in inst_cpus {
                        cd.buffer += 1;
                        p.cpu_data.push(cd);
                    }
                }
                b"latency  \0" => {
                    return Err(Error::Unsupported {
                        offset: tat,
                        what: "latency-tracer (text) data".into(),
                    });
                }
                t => {
                    return Err(Error::malformed(
                        tat,
                        format!("expected \"flyrecord\" or \"options\", found {:?}", text(t)),
                    ));
                }
            }
        } else {
            let algo_name = c.cstr("compression name")?.to_string();
            let algo_ver = c.cstr("compression version")?.to_string();
            let aat = c.offset();
            p.algo = match algo_name.as_str() {
                "none" | "" => None,
                "zstd" => Some(Algo::Zstd),
                "zlib" => Some(Algo::Zlib),
                other => {
                    return Err(Error::Unsupported {
                        offset: aat,
                        what: format!("compression {other:?}"),
                    });
                }
            };
            if p.algo.is_some() {
                p.meta.compression = Some((algo_name, algo_ver));
            }
            let mut next = Some(c.u64("options offset")?);
            let mut seen = 0;
            while let Some(off) = next {
                seen += 1;
                if seen > 1024 {
                    return Err(Error::malformed(off, "more than 1024 options sections (a loop?)"));
                }
                let (sec, base) = p.section(off, 0, "options")?;
                let (base, block) = section_base(base);
                let mut oc = Cursor::new(&sec, base, endian);
                next = in_section(block, p.options(&mut oc, true))?;
            }
            // The top buffer first, as in v6.
            if let Some(top) = p.meta.buffers.iter().position(|b| b.name.is_empty()) {
                if top != 0 {
                    let b = p.meta.buffers.remove(top);
                    p.meta.buffers.insert(0, b);
                    for cd in &mut p.cpu_data {
                        cd.buffer = match cd.buffer as usize {
                            x if x == top => 0,
                            x if x < top => x as u32 + 1,
                            x => x as u32,
                        };
                    }
                }
            }
        }
        let (hp, hp_at) = p
            .header_page_text
            .clone()
            .ok_or_else(|| Error::malformed(0, "file has no header_page"))?;
        let page_hdr = PageHeader::parse(&hp, p.long_size, hp_at)?;
        if page_hdr.data_offset >= p.page_size {
            return Err(Error::malformed(hp_at, "header_page data offset beyond the page"));
        }
        for cd in &p.cpu_data {
            if cd.offset.checked_add(cd.size).is_none_or(|e| e > data.len() as u64) {
                return Err(Error::Truncated {
                    offset: cd.offset,
                    what: "CPU data",
                    need: cd.size,
                    have: (data.len() as u64).saturating_sub(cd.offset),
                });
            }
        }
        let max_cpu = p.cpu_data.iter().map(|c| c.cpu + 1).max().unwrap_or(0);
        p.meta.cpus = p.meta.cpus.max(max_cpu);
        let common = p
            .meta
            .formats
            .iter()
            .find(|f| f.system != "ftrace" && !f.common.is_empty())
            .map(|f| CommonLayout::of(&f.common))
            .unwrap_or_default();
        let mut by_id = HashMap::new();
        for f in &p.meta.formats {
            by_id.insert(f.id, f.clone());
        }
        let shared = Arc::new(Shared {
            endian,
            page_size: p.page_size,
            page_hdr,
            common,
            by_id,
            cmdlines: p.meta.cmdlines.clone(),
            meta_ts: (p.meta.tsc2nsec, p.meta.ts_offset),
        });
        let meta = p.meta;
        let cpu_data = p.cpu_data;
        Ok(DatFile {
            bytes,
            meta,
            cpu_data,
            shared,
        })
    }

    /// The file's metadata.
    pub fn meta(&self) -> &TraceMeta {
        &self.meta
    }

    /// One stream per (buffer, CPU) with data, in buffer then CPU order.
    pub fn cpu_streams(&self) -> Vec<CpuEvents> {
        self.cpu_data
            .iter()
            .filter(|cd| cd.size > 0)
            .map(|cd| CpuEvents::new(self.bytes.clone(), self.shared.clone(), cd.clone()))
            .collect()
    }
}

/// The events of one CPU of one buffer, in time order.
pub struct CpuEvents {
    bytes: Bytes,
    shared: Arc<Shared>,
    cd: CpuData,
    /// Next page start within the CPU data (uncompressed) or within the current chunk.
    next_page: u64,
    /// Compressed input: chunks left and the inflated current chunk.
    chunks_left: u32,
    chunk_pos: u64,
    chunk: Vec<u8>,
    chunk_base: u64,
    /// Current page: start in its buffer, data end, record position, running stamp.
    page: Option<PageState>,
    unknown: HashMap<u32, Arc<EventFormat>>,
    failed: bool,
    /// File offset up to which pages were released.
    released: u64,
}

#[derive(Debug, Clone, Copy)]
struct PageState {
    start: usize,
    in_chunk: bool,
    pos: usize,
    size: usize,
    ts: u64,
    missed: Missed,
}

impl CpuEvents {
    fn new(bytes: Bytes, shared: Arc<Shared>, cd: CpuData) -> Self {
        CpuEvents {
            bytes,
            shared,
            next_page: 0,
            chunks_left: u32::MAX,
            chunk_pos: 0,
            chunk: Vec::new(),
            chunk_base: cd.offset,
            cd,
            page: None,
            unknown: HashMap::new(),
            failed: false,
            released: 0,
        }
        .with_release_start()
    }

    fn with_release_start(mut self) -> Self {
        self.released = self.cd.offset;
        self
    }

    /// Gives back the file bytes before `upto` once enough were read.
    fn release_before(&mut self, upto: u64) {
        if upto >= self.released + RELEASE_EVERY {
            self.bytes
                .release(self.released as usize, (upto - self.released) as usize);
            self.released = upto;
        }
    }

    /// The CPU these events were recorded on.
    pub fn cpu(&self) -> u32 {
        self.cd.cpu
    }

    /// The buffer index.
    pub fn buffer(&self) -> u32 {
        self.cd.buffer
    }

    /// Loads the next page; false at the end of the CPU's data.
    fn load_page(&mut self) -> Result<bool> {
        let ps = self.shared.page_size as u64;
        let (buf, base, start, in_chunk): (&[u8], u64, u64, bool) = match self.cd.compressed {
            None => {
                if self.next_page >= self.cd.size {
                    return Ok(false);
                }
                let start = self.next_page;
                self.next_page += ps;
                self.release_before(self.cd.offset + start);
                let file: &[u8] = (*self.bytes).as_ref();
                let data = &file[self.cd.offset as usize..(self.cd.offset + self.cd.size) as usize];
                (data, self.cd.offset, start, false)
            }
            Some(algo) => {
                while self.next_page >= self.chunk.len() as u64 {
                    let file: &[u8] = (*self.bytes).as_ref();
                    // Inflate the next chunk. (trace-cmd's recorded size leaves out the 4-byte
                    // chunk count, so chunks are bounded by the file, not by that size.)
                    let data = &file[self.cd.offset as usize..];
                    let mut c = Cursor::new(data, self.cd.offset, self.shared.endian);
                    if self.chunks_left == u32::MAX {
                        self.chunks_left = c.u32("chunk count")?;
                        self.chunk_pos = 4;
                    }
                    if self.chunks_left == 0 {
                        return Ok(false);
                    }
                    c.seek(self.chunk_pos as usize, "compressed chunk")?;
                    let at = c.offset();
                    let csize = c.u32("chunk compressed size")? as u64;
                    let usize_ = c.u32("chunk uncompressed size")? as u64;
                    let body = c.take(csize, "compressed chunk")?;
                    self.chunk = inflate(algo, body, usize_, at)?;
                    self.chunk_base = at;
                    self.chunk_pos = c.pos() as u64;
                    self.chunks_left -= 1;
                    self.release_before(at);
                    self.next_page = 0;
                }
                let start = self.next_page;
                self.next_page += ps;
                // Offsets into the decompressed chunk (errors say which chunk).
                (&self.chunk[..], 0, start, true)
            }
        };
        let chunk_at = self.chunk_base;
        let located = |e: Error| if in_chunk { e.in_compressed(chunk_at) } else { e };
        let end = (start + ps).min(buf.len() as u64);
        let page = &buf[start as usize..end as usize];
        if (page.len() as u64) < ps {
            return Err(located(Error::Truncated {
                offset: base + start,
                what: "ring-buffer page",
                need: ps,
                have: page.len() as u64,
            }));
        }
        let recs = PageRecords::new(page, &self.shared.page_hdr, self.shared.endian, base + start).map_err(located)?;
        self.page = Some(PageState {
            start: start as usize,
            in_chunk,
            pos: 0,
            size: recs.size(),
            ts: recs.ts(),
            missed: recs.missed,
        });
        Ok(true)
    }

    fn step(&mut self) -> Result<Option<Event>> {
        loop {
            if self.page.is_none() && !self.load_page()? {
                return Ok(None);
            }
            let mut st = self.page.expect("page loaded");
            let hdr = self.shared.page_hdr;
            let file: &[u8] = (*self.bytes).as_ref();
            let (buf, base) = if st.in_chunk {
                (&self.chunk[..], 0)
            } else {
                (
                    &file[self.cd.offset as usize..(self.cd.offset + self.cd.size) as usize],
                    self.cd.offset,
                )
            };
            let d0 = st.start + hdr.data_offset as usize;
            let mut recs = PageRecords::resume(
                &buf[d0..d0 + st.size],
                self.shared.endian,
                base + d0 as u64,
                st.pos,
                st.ts,
            );
            match recs.next() {
                None => {
                    self.page = None;
                    continue;
                }
                Some(Err(e)) if st.in_chunk => return Err(e.in_compressed(self.chunk_base)),
                Some(Err(e)) => return Err(e),
                Some(Ok(r)) => {
                    let missed = std::mem::take(&mut st.missed);
                    st.pos = recs.position();
                    st.ts = recs.ts();
                    self.page = Some(st);
                    let ev = decode(
                        &self.shared,
                        &mut self.unknown,
                        self.cd.cpu,
                        self.cd.buffer,
                        r.ts,
                        r.data,
                        r.offset,
                        missed,
                    );
                    return match ev {
                        Err(e) if st.in_chunk => Err(e.in_compressed(self.chunk_base)),
                        ev => ev.map(Some),
                    };
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn decode(
    sh: &Shared,
    unknown: &mut HashMap<u32, Arc<EventFormat>>,
    cpu: u32,
    buffer: u32,
    raw_ts: u64,
    data: &[u8],
    offset: u64,
    missed: Missed,
) -> Result<Event> {
    let rd = |(o, s): (u32, u32)| data.get(o as usize..(o + s) as usize);
    let id = rd(sh.common.type_)
        .map(|b| sh.endian.uint(b) as u32)
        .ok_or_else(|| Error::malformed(offset, format!("{}-byte record has no event type", data.len())))?;
    let format = match sh.by_id.get(&id) {
        Some(f) => f.clone(),
        None => unknown
            .entry(id)
            .or_insert_with(|| {
                Arc::new(EventFormat {
                    id,
                    system: "unknown".into(),
                    name: format!("type_{id}"),
                    common: Vec::new(),
                    fields: vec![FieldDef {
                        name: "data".into(),
                        type_name: "u8[]".into(),
                        offset: 0,
                        size: 0,
                        signed: false,
                        kind: FieldKind::Bytes,
                    }],
                    print_fmt: String::new(),
                })
            })
            .clone(),
    };
    let fields = if format.system == "unknown" && format.common.is_empty() {
        vec![crate::format::Value::Bytes(data.to_vec())]
    } else {
        format.decode(data, sh.endian, offset)?
    };
    let pid = sh.common.pid.and_then(rd).map(|b| sh.endian.int(b) as i32).unwrap_or(0);
    let flags = sh.common.flags.and_then(rd).map(|b| b[0]).unwrap_or(0);
    let preempt_count = sh.common.preempt.and_then(rd).map(|b| b[0]).unwrap_or(0);
    let mut ts = raw_ts;
    if let Some(t) = sh.meta_ts.0 {
        ts = ((ts.wrapping_sub(t.offset) as u128 * t.mult as u128) >> t.shift) as u64;
    }
    ts = ts.wrapping_add(sh.meta_ts.1 as u64);
    Ok(Event {
        ts_ns: ts,
        cpu,
        pid,
        comm: sh.cmdlines.comm(pid),
        format,
        fields,
        flags,
        preempt_count,
        buffer,
        missed_before: missed,
    })
}

impl Iterator for CpuEvents {
    type Item = Result<Event>;

    fn next(&mut self) -> Option<Result<Event>> {
        if self.failed {
            return None;
        }
        match self.step() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => {
                self.failed = true;
                None
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e.within((*self.bytes).as_ref().len() as u64)))
            }
        }
    }
}
