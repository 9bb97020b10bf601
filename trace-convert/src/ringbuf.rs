//! The kernel ring-buffer page format, read and written.
//!
//! A page starts with a header (`u64` time stamp, then a `long` commit word whose low 27 bits
//! are the number of data bytes and whose bits 31/30 say events were missed before this page
//! and whether their count is stored after the data). Events follow, each with a 32-bit header:
//! `type_len` (5 bits) and `time_delta` (27 bits):
//!
//! | `type_len` | meaning |
//! |---|---|
//! | 1..=28 | data event of `type_len * 4` bytes |
//! | 0 | data event whose length (+4) is in the next 32-bit word |
//! | 29 | padding (length in the next word; 0 delta = rest of page) |
//! | 30 | `TIME_EXTEND`: delta = next word << 27 \| time_delta |
//! | 31 | `TIME_STAMP`: absolute time stamp, same encoding |
//!
//! Time stamps accumulate deltas from the page's stamp, as libtraceevent's kbuffer does.

use std::io::Write;

use crate::bytes::Endian;
use crate::error::{Error, Result};
use crate::event::Missed;
use crate::format::PageHeader;

const TYPE_PADDING: u32 = 29;
const TYPE_TIME_EXTEND: u32 = 30;
const TYPE_TIME_STAMP: u32 = 31;
const COMMIT_MASK: u64 = (1 << 27) - 1;
const MISSED_EVENTS: u64 = 1 << 31;
const MISSED_STORED: u64 = 1 << 30;
const TS_MSB: u64 = 0xf8 << 56;
/// Largest delta that fits the 27-bit header field.
const MAX_DELTA: u64 = (1 << 27) - 1;

/// One data record in a page.
#[derive(Debug, Clone, Copy)]
pub struct RawRecord<'a> {
    /// Raw time stamp (before clock corrections).
    pub ts: u64,
    /// The payload (event fields), padded to 4 bytes.
    pub data: &'a [u8],
    /// File offset of the payload (for error messages).
    pub offset: u64,
}

/// Decodes one page's records.
#[derive(Debug)]
pub struct PageRecords<'a> {
    data: &'a [u8],
    pos: usize,
    ts: u64,
    endian: Endian,
    base: u64,
    /// Events missed before this page.
    pub missed: Missed,
    failed: bool,
}

impl<'a> PageRecords<'a> {
    /// Reads the header of `page` (which starts at file offset `offset`).
    pub fn new(page: &'a [u8], hdr: &PageHeader, endian: Endian, offset: u64) -> Result<Self> {
        let need = hdr.data_offset as usize;
        if page.len() < need {
            return Err(Error::Truncated {
                offset,
                what: "ring-buffer page header",
                need: need as u64,
                have: page.len() as u64,
            });
        }
        let ts = endian.uint(&page[0..8]);
        let cs = hdr.commit_size as usize;
        let commit = endian.uint(&page[8..8 + cs]);
        let size = (commit & COMMIT_MASK) as usize;
        let data = &page[need..];
        if size > data.len() {
            return Err(Error::malformed(
                offset + 8,
                format!(
                    "ring-buffer page commit {size} larger than the page's {} data bytes",
                    data.len()
                ),
            ));
        }
        let missed = if commit & MISSED_EVENTS != 0 {
            if commit & MISSED_STORED != 0 && size + cs <= data.len() {
                Missed::Count(endian.uint(&data[size..size + cs]))
            } else {
                Missed::Unknown
            }
        } else {
            Missed::None
        };
        Ok(PageRecords {
            data: &data[..size],
            pos: 0,
            ts,
            endian,
            base: offset + need as u64,
            missed,
            failed: false,
        })
    }

    /// Continues decoding a page's data area (`data`, already cut at the commit size) at record
    /// position `pos` with running stamp `ts`.
    pub fn resume(data: &'a [u8], endian: Endian, base: u64, pos: usize, ts: u64) -> Self {
        PageRecords {
            data,
            pos,
            ts,
            endian,
            base,
            missed: Missed::None,
            failed: false,
        }
    }

    /// Bytes of event data on the page.
    pub fn size(&self) -> usize {
        self.data.len()
    }

    /// Position of the next record in the data area.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The running time stamp (of the last record read, or the page's).
    pub fn ts(&self) -> u64 {
        self.ts
    }

    fn word(&self, at: usize) -> Result<u32> {
        match self.data.get(at..at + 4) {
            Some(b) => Ok(self.endian.uint(b) as u32),
            None => Err(Error::Truncated {
                offset: self.base + at as u64,
                what: "ring-buffer event header",
                need: 4,
                have: self.data.len().saturating_sub(at) as u64,
            }),
        }
    }

    fn step(&mut self) -> Result<Option<RawRecord<'a>>> {
        loop {
            if self.pos >= self.data.len() {
                return Ok(None);
            }
            let at = self.pos;
            let head = self.word(at)?;
            let (type_len, delta) = match self.endian {
                Endian::Little => (head & 0x1f, (head >> 5) as u64),
                Endian::Big => (head >> 27, (head & 0x07ff_ffff) as u64),
            };
            match type_len {
                TYPE_PADDING => {
                    if delta == 0 && self.data.len() - at < 8 {
                        self.pos = self.data.len();
                        continue;
                    }
                    let len = self.word(at + 4)? as usize;
                    self.ts = self.ts.wrapping_add(delta);
                    self.pos = at + 4 + len.max(4);
                }
                TYPE_TIME_EXTEND | TYPE_TIME_STAMP => {
                    let ext = ((self.word(at + 4)? as u64) << 27) + delta;
                    if type_len == TYPE_TIME_STAMP {
                        self.ts = ext | (self.ts & TS_MSB);
                    } else {
                        self.ts = self.ts.wrapping_add(ext);
                    }
                    self.pos = at + 8;
                }
                _ => {
                    let (start, len) = if type_len == 0 {
                        let l = self.word(at + 4)? as usize;
                        if l < 4 {
                            return Err(Error::malformed(
                                self.base + at as u64 + 4,
                                format!("ring-buffer event length {l} below its own 4-byte word"),
                            ));
                        }
                        (at + 8, (l - 4 + 3) & !3)
                    } else {
                        (at + 4, type_len as usize * 4)
                    };
                    let Some(data) = self.data.get(start..start + len) else {
                        return Err(Error::Truncated {
                            offset: self.base + start as u64,
                            what: "ring-buffer event payload",
                            need: len as u64,
                            have: self.data.len().saturating_sub(start) as u64,
                        });
                    };
                    self.ts = self.ts.wrapping_add(delta);
                    self.pos = start + len;
                    return Ok(Some(RawRecord {
                        ts: self.ts,
                        data,
                        offset: self.base + start as u64,
                    }));
                }
            }
        }
    }
}

impl<'a> Iterator for PageRecords<'a> {
    type Item = Result<RawRecord<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.step() {
            Ok(r) => r.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Writes events into ring-buffer pages (64-bit `commit` word, 16-byte page header).
#[derive(Debug)]
pub struct PageWriter {
    page_size: usize,
    endian: Endian,
    page: Vec<u8>,
    page_open: bool,
    last_ts: u64,
    pending_missed: Missed,
    /// Pages written so far.
    pub pages: u64,
}

impl PageWriter {
    /// A writer of `page_size`-byte pages.
    pub fn new(page_size: u32, endian: Endian) -> Self {
        PageWriter {
            page_size: page_size as usize,
            endian,
            page: Vec::with_capacity(page_size as usize),
            page_open: false,
            last_ts: 0,
            pending_missed: Missed::None,
            pages: 0,
        }
    }

    fn close_page(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        if !self.page_open {
            return Ok(());
        }
        let used = self.page.len() - 16;
        let mut commit = used as u64;
        match self.pending_missed {
            Missed::None => {}
            Missed::Unknown => commit |= MISSED_EVENTS,
            Missed::Count(n) => {
                if self.page.len() + 8 <= self.page_size {
                    commit |= MISSED_EVENTS | MISSED_STORED;
                    let mut tmp = Vec::new();
                    self.endian.put(&mut tmp, n, 8);
                    self.page.extend_from_slice(&tmp);
                } else {
                    commit |= MISSED_EVENTS;
                }
            }
        }
        self.pending_missed = Missed::None;
        let mut tmp = Vec::new();
        self.endian.put(&mut tmp, commit, 8);
        self.page[8..16].copy_from_slice(&tmp);
        self.page.resize(self.page_size, 0);
        out.write_all(&self.page)?;
        self.pages += 1;
        self.page.clear();
        self.page_open = false;
        Ok(())
    }

    fn open_page(&mut self, ts: u64, missed: Missed) {
        self.page.clear();
        let mut tmp = Vec::new();
        self.endian.put(&mut tmp, ts, 8);
        self.page.extend_from_slice(&tmp);
        self.page.extend_from_slice(&[0; 8]);
        self.page_open = true;
        self.last_ts = ts;
        self.pending_missed = missed;
    }

    fn header(&mut self, type_len: u32, delta: u64) {
        let w = match self.endian {
            Endian::Little => type_len | ((delta as u32) << 5),
            Endian::Big => (type_len << 27) | (delta as u32 & 0x07ff_ffff),
        };
        let mut tmp = Vec::new();
        self.endian.put(&mut tmp, w as u64, 4);
        self.page.extend_from_slice(&tmp);
    }

    /// Appends a record with raw stamp `ts` (never below the previous one) and `payload`.
    /// `missed` events lost before it start a new page flagged with the count.
    pub fn push(&mut self, ts: u64, payload: &[u8], missed: Missed, out: &mut impl Write) -> Result<()> {
        let ts = ts.max(self.last_ts);
        let plen = (payload.len() + 3) & !3;
        let small = plen > 0 && plen <= 28 * 4;
        let rec = plen + if small { 4 } else { 8 };
        if rec + 16 + 8 + 8 > self.page_size {
            return Err(Error::Write(format!(
                "{}-byte record does not fit a {}-byte page",
                payload.len(),
                self.page_size
            )));
        }
        let mut delta = ts - self.last_ts;
        let ext = if delta > MAX_DELTA { 8 } else { 0 };
        // Keep room for a stored missed-events count at the end of the page.
        let fits = self.page_open && self.page.len() + ext + rec + 8 <= self.page_size;
        if !fits || missed != Missed::None {
            self.close_page(out)?;
            self.open_page(ts, missed);
            delta = 0;
        } else if delta > MAX_DELTA {
            self.header(TYPE_TIME_EXTEND, delta & MAX_DELTA);
            let mut tmp = Vec::new();
            self.endian.put(&mut tmp, delta >> 27, 4);
            self.page.extend_from_slice(&tmp);
            delta = 0;
        }
        if small {
            self.header((plen / 4) as u32, delta);
        } else {
            self.header(0, delta);
            let mut tmp = Vec::new();
            self.endian.put(&mut tmp, (plen + 4) as u64, 4);
            self.page.extend_from_slice(&tmp);
        }
        self.page.extend_from_slice(payload);
        self.page.resize(self.page.len() + (plen - payload.len()), 0);
        self.last_ts = ts;
        Ok(())
    }

    /// Writes the last, partly filled page.
    pub fn finish(&mut self, out: &mut impl Write) -> Result<()> {
        self.close_page(out)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_and_reader_agree_on_all_encodings() {
        let hdr = PageHeader {
            commit_size: 8,
            data_offset: 16,
        };
        let mut w = PageWriter::new(4096, Endian::Little);
        let mut out = Vec::new();
        let mut want = Vec::new();
        let mut ts = 1_000u64;
        for i in 0..600u64 {
            // Small, large (type_len 0) and far-apart (TIME_EXTEND) records.
            ts += if i % 7 == 0 { 5_000_000_000 } else { i };
            let payload: Vec<u8> = (0..(if i % 5 == 0 { 200 } else { 12 }))
                .map(|b| (b + i) as u8)
                .collect();
            let missed = if i == 300 { Missed::Count(17) } else { Missed::None };
            w.push(ts, &payload, missed, &mut out).unwrap();
            want.push((ts, payload, missed));
        }
        w.finish(&mut out).unwrap();
        let mut got = Vec::new();
        for (pi, page) in out.chunks(4096).enumerate() {
            let mut recs = PageRecords::new(page, &hdr, Endian::Little, (pi * 4096) as u64).unwrap();
            let mut first = true;
            let missed = recs.missed;
            for r in &mut recs {
                let r = r.unwrap();
                got.push((r.ts, r.data.to_vec(), if first { missed } else { Missed::None }));
                first = false;
            }
        }
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.0, w.0);
            assert_eq!(&g.1[..w.1.len()], &w.1[..]);
            assert_eq!(g.2, w.2);
        }
    }

    #[test]
    fn bad_commit_is_reported_with_offset() {
        let hdr = PageHeader {
            commit_size: 8,
            data_offset: 16,
        };
        let mut page = vec![0u8; 64];
        page[8] = 0xff;
        let e = PageRecords::new(&page, &hdr, Endian::Little, 0x1000)
            .unwrap_err()
            .to_string();
        assert!(e.contains("0x1008"), "{e}");
    }
}
