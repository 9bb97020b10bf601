//! Writers: `.dat` v6 ([`dat::DatWriter`]), ftrace text in `trace-cmd report`'s layout
//! ([`text::TextWriter`]) and Chrome/Perfetto JSON ([`json::JsonWriter`]).

pub mod dat;
pub mod json;
pub mod text;

use crate::error::Result;
use crate::event::Event;

/// Something that consumes time-ordered events and produces an output.
pub trait EventSink {
    /// Takes the next event (events arrive in time order).
    fn event(&mut self, ev: &Event) -> Result<()>;
    /// Flushes and completes the output.
    fn finish(&mut self) -> Result<()>;
}
