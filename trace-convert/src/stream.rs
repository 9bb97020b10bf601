//! Opening any supported input and merging its per-CPU streams by time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::Path;
use std::sync::Arc;

use crate::dat::{Bytes, DatFile};
use crate::error::{Error, Result};
pub use crate::event::EventStream;
use crate::event::{Event, TraceMeta};

/// What kind of file an input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// trace-cmd `.dat` (v6 or v7).
    Dat,
    /// ftrace text: tracefs `trace` or `trace-cmd report` output.
    Text,
    /// hvtrace raw ring dump.
    RingDump,
}

enum Inner {
    Dat(DatFile),
    Text(crate::text::TextTrace),
    Dump(crate::ringdump::RingDump),
}

/// An opened trace of any supported kind.
pub struct Trace {
    inner: Inner,
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trace")
            .field("kind", &self.kind())
            .finish_non_exhaustive()
    }
}

struct Mapped(memmap2::Mmap);

impl AsRef<[u8]> for Mapped {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl crate::dat::Source for Mapped {
    fn release(&self, offset: usize, len: usize) {
        const PAGE: usize = 4096;
        let start = offset.div_ceil(PAGE) * PAGE;
        let end = ((offset + len) / PAGE * PAGE).min(self.0.len());
        if end > start {
            // SAFETY: MADV_DONTNEED on a read-only, private file mapping only drops cached
            // pages; later reads fault them in again from the unchanged file, so every slice
            // into the map stays valid and sees the same bytes.
            let _ = unsafe {
                self.0
                    .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start)
            };
        }
    }
}

impl Trace {
    /// Opens `path`, memory-mapped, and detects its kind from its first bytes.
    pub fn open(path: impl AsRef<Path>) -> Result<Trace> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let meta = file.metadata().map_err(|e| Error::io(path, e))?;
        if meta.is_dir() {
            return Err(Error::NotATrace {
                path: path.to_path_buf(),
                why: "it is a directory; give a trace file (.dat, ftrace text or a ring dump)",
            });
        }
        if meta.len() == 0 {
            return Err(Error::NotATrace {
                path: path.to_path_buf(),
                why: "it is empty (0 bytes); was the recording cut short?",
            });
        }
        let bytes: Bytes = {
            // SAFETY: the map is read-only and private to this process; trace files are not
            // expected to change while read (as with trace-cmd, which maps them too). A file
            // truncated underneath us would fault, which is the documented mmap caveat.
            let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
            Arc::new(Mapped(map))
        };
        Trace::from_bytes(bytes)
    }

    /// Reads a trace held in memory.
    pub fn from_bytes(bytes: Bytes) -> Result<Trace> {
        let head: &[u8] = (*bytes).as_ref();
        let inner = if crate::dat::sniff(head) {
            Inner::Dat(DatFile::parse(bytes)?)
        } else if crate::ringdump::sniff(head) {
            Inner::Dump(crate::ringdump::RingDump::parse(bytes)?)
        } else {
            Inner::Text(crate::text::TextTrace::parse(head)?)
        };
        Ok(Trace { inner })
    }

    /// What kind of input this is.
    pub fn kind(&self) -> InputKind {
        match self.inner {
            Inner::Dat(_) => InputKind::Dat,
            Inner::Text(_) => InputKind::Text,
            Inner::Dump(_) => InputKind::RingDump,
        }
    }

    /// CPUs, buffers, formats, cmdlines and the rest.
    pub fn meta(&self) -> &TraceMeta {
        match &self.inner {
            Inner::Dat(d) => d.meta(),
            Inner::Text(t) => t.meta(),
            Inner::Dump(d) => d.meta(),
        }
    }

    /// One time-ordered stream per (buffer, CPU) (a text trace is a single stream).
    pub fn streams(&self) -> Vec<EventStream> {
        match &self.inner {
            Inner::Dat(d) => d
                .cpu_streams()
                .into_iter()
                .map(|s| Box::new(s) as EventStream)
                .collect(),
            Inner::Text(t) => vec![Box::new(t.events()) as EventStream],
            Inner::Dump(d) => d.streams(),
        }
    }

    /// All events of all buffers and CPUs, merged by time stamp.
    pub fn events(&self) -> Merged {
        Merged::new(self.streams())
    }
}

/// A k-way merge of time-ordered streams: memory holds one pending event per stream.
///
/// Ties go to the stream given first (lower buffer, then lower CPU), as in `trace-cmd report`.
/// The first error of any stream is returned, after which that stream is dropped.
pub struct Merged {
    streams: Vec<EventStream>,
    heap: BinaryHeap<Reverse<(u64, usize)>>,
    pending: Vec<Option<Event>>,
    errors: Vec<Error>,
    started: bool,
}

impl Merged {
    /// Merges `streams`.
    pub fn new(streams: Vec<EventStream>) -> Self {
        let n = streams.len();
        Merged {
            streams,
            heap: BinaryHeap::with_capacity(n),
            pending: (0..n).map(|_| None).collect(),
            errors: Vec::new(),
            started: false,
        }
    }

    fn pull(&mut self, i: usize) {
        match self.streams[i].next() {
            Some(Ok(ev)) => {
                self.heap.push(Reverse((ev.ts_ns, i)));
                self.pending[i] = Some(ev);
            }
            Some(Err(e)) => self.errors.push(e),
            None => {}
        }
    }
}

impl Iterator for Merged {
    type Item = Result<Event>;

    fn next(&mut self) -> Option<Result<Event>> {
        if !self.started {
            self.started = true;
            for i in 0..self.streams.len() {
                self.pull(i);
            }
        }
        if let Some(e) = self.errors.pop() {
            return Some(Err(e));
        }
        let Reverse((_, i)) = self.heap.pop()?;
        let ev = self.pending[i].take();
        self.pull(i);
        ev.map(Ok)
    }
}
