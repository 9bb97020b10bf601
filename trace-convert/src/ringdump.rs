//! hvtrace raw ring dumps (the shared-memory record ring, saved as a file).
//!
//! The record layout is defined by `guest-probe`'s `abi` module, which is not written yet;
//! until it is, no input is recognised as a ring dump and [`RingDump::parse`] refuses.

use crate::dat::Bytes;
use crate::error::{Error, Result};
use crate::event::TraceMeta;
use crate::stream::EventStream;

/// Is this the start of a ring dump? (Always `false` until the ABI exists.)
pub fn sniff(_head: &[u8]) -> bool {
    false
}

/// A parsed ring dump.
#[derive(Debug)]
pub struct RingDump {
    meta: TraceMeta,
}

impl RingDump {
    /// Parses a dump (not yet supported).
    pub fn parse(_bytes: Bytes) -> Result<RingDump> {
        Err(Error::Unsupported {
            offset: 0,
            what: "hvtrace ring dumps (ABI not defined yet)".into(),
        })
    }

    /// The dump's metadata.
    pub fn meta(&self) -> &TraceMeta {
        &self.meta
    }

    /// One stream per source CPU.
    pub fn streams(&self) -> Vec<EventStream> {
        Vec::new()
    }
}
