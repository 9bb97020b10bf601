//! Read, merge and write trace-cmd `.dat`, ftrace text and Perfetto JSON.
//!
//! Design principles:
//! - Parse borrowed bytes (a memory map) with bounds checks everywhere; a malformed input is an
//!   [`Error`] naming the offset and the problem, never a panic.
//! - Stream: metadata is read up front, events are decoded per CPU, page by page, and merged
//!   by time with a k-way merge, so memory is bounded by the number of CPUs, not the file size.
//! - Layouts come from the format files embedded in the trace, never from constants (only the
//!   writer, which emits its own format files, knows layouts).
//!
//! Reading:
//! ```no_run
//! let trace = trace_convert::Trace::open("trace.dat")?;
//! println!("{} CPUs", trace.meta().cpus);
//! for ev in trace.events() {
//!     let ev = ev?;
//!     println!("{} [{}] {}:{} {:?}", ev.ts_ns, ev.cpu, ev.system(), ev.name(), ev.fields);
//! }
//! # Ok::<(), trace_convert::Error>(())
//! ```
//!
//! Module map: [`dat`] (.dat reader), [`ringbuf`] (ring-buffer pages), [`format`] (event
//! formats and values), [`text`] (ftrace text reader), [`ringdump`] (hvtrace raw dumps),
//! [`clock`] (counter ticks to trace-clock time), [`merge`] (Linux + RTOS on one time base),
//! [`write`] (writers), [`pipeline`] (open, merge, write: what every tool calls), [`sched`]
//! (sched_switch view), [`stats`] (info and per-task statistics), [`analysis`] (what a
//! recording of both OSes says), [`timing`] (RTOS jobs: response times, deadlines), [`report`] (the
//! timing as an HTML page with plots), [`cli`] (the `trace-convert` command).

#![forbid(unsafe_op_in_unsafe_fn)]

pub mod analysis;
pub mod bytes;
pub mod capture;
pub mod cli;
pub mod clock;
pub mod dat;
pub mod error;
pub mod event;
pub mod format;
pub mod live;
pub mod merge;
pub mod output;
pub mod pipeline;
pub mod printfmt;
pub mod probe_values;
pub mod report;
pub mod ringbuf;
pub mod ringdump;
pub mod sched;
pub mod stats;
pub mod stream;
pub mod synth;
pub mod text;
pub mod timing;
pub mod write;

pub use error::{Error, Result};
pub use event::{BufferInfo, Cmdlines, Event, Missed, TraceMeta};
pub use format::{EventFormat, FieldDef, FieldKind, Value};
pub use stream::{EventStream, InputKind, Merged, Trace};
