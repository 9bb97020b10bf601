//! hvtrace raw ring dumps: the shared-memory record rings saved as a file, parsed with
//! `guest-probe`'s ABI (`abi::dump::parse_ring_dump`), so the layout has one definition.
//!
//! Records become the same `hvtrace` events the Linux module emits (formats from
//! [`crate::synth`]): context switches → `rtos_switch`, probe hits → `rtos_probe`, clock sync
//! points → `clock_sync` (`counter` = record timestamp, `trace_clock_ns` = record `pc`,
//! `freq_hz` 0 = unknown); a `Lost` record becomes the next event's missed count. One stream
//! per ring (source CPU). Time stamps: with clock sync points in the dump, counter ticks are
//! mapped to the trace clock ([`crate::clock::ClockMap`]); without, `ts_ns` holds raw counter
//! ticks.

use std::sync::Arc;

use guest_probe::abi::dump::{parse_ring_dump, RingDump as Ring};
use guest_probe::abi::{Record, RecordKind};

use crate::clock::ClockMap;
use crate::dat::Bytes;
use crate::error::{Error, Result};
use crate::event::EventStream;
use crate::event::{BufferInfo, Event, Missed, TraceMeta};
use crate::format::{EventFormat, Value};

/// Is this the start of a ring dump (the ring header magic, "HVTR")?
pub fn sniff(head: &[u8]) -> bool {
    head.len() >= 4 && u32::from_le_bytes([head[0], head[1], head[2], head[3]]) == guest_probe::abi::ring::RING_MAGIC
}

/// A parsed ring dump.
#[derive(Debug)]
pub struct RingDump {
    meta: TraceMeta,
    rings: Arc<Vec<Ring>>,
    clock: Option<ClockMap>,
    formats: [Arc<EventFormat>; 5],
}

fn name(b: &[u8]) -> String {
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..n]).into_owned()
}

/// A probe hit's label and fetched values, as the module's event says them.
fn what(r: &Record, data: &[u8]) -> String {
    let mut s = String::new();
    let _ = guest_probe::abi::fetch::write_what(&mut s, r.label(), r.is_return(), r.pc, data);
    s
}

impl RingDump {
    /// Parses a dump of consecutive rings.
    pub fn parse(bytes: Bytes) -> Result<RingDump> {
        let data: &[u8] = (*bytes).as_ref();
        let rings = parse_ring_dump(data).map_err(|e| Error::malformed(e.offset, format!("ring dump: {}", e.kind)))?;
        let mut points: Vec<(u64, u64, u64)> = rings
            .iter()
            .flat_map(|r| r.records.iter())
            .filter(|r| RecordKind::from_raw(r.kind) == Some(RecordKind::ClockSync))
            .map(|r| (r.timestamp, r.pc, 0))
            .collect();
        points.sort_unstable();
        let formats = [
            Arc::new(crate::synth::rtos_switch_format()),
            Arc::new(crate::synth::rtos_probe_format()),
            Arc::new(crate::synth::clock_sync_format()),
            Arc::new(crate::synth::rtos_irq_format()),
            Arc::new(crate::synth::vm_stopped_format()),
        ];
        let cpus = rings.iter().map(|r| r.cpu as u32 + 1).max().unwrap_or(1);
        let meta = TraceMeta {
            source: format!("hvtrace ring dump ({} rings)", rings.len()),
            long_size: 8,
            page_size: 4096,
            cpus,
            buffers: vec![BufferInfo {
                name: String::new(),
                clock: None,
                cpus: rings.iter().map(|r| r.cpu as u32).collect(),
            }],
            formats: formats.to_vec(),
            ..Default::default()
        };
        Ok(RingDump {
            meta,
            rings: Arc::new(rings),
            clock: ClockMap::fit(&points),
            formats,
        })
    }

    /// The dump's metadata.
    pub fn meta(&self) -> &TraceMeta {
        &self.meta
    }

    /// One stream per ring.
    pub fn streams(&self) -> Vec<EventStream> {
        (0..self.rings.len())
            .map(|i| {
                let rings = self.rings.clone();
                let clock = self.clock;
                let f = self.formats.clone();
                let mut missed = Missed::None;
                let mut j = 0usize;
                let it = std::iter::from_fn(move || loop {
                    let ring = &rings[i];
                    let r: &Record = ring.records.get(j)?;
                    j += 1;
                    let ts = |c: u64| clock.map(|m| m.ns(c)).unwrap_or(c);
                    let (fmt, ts_ns, fields) = match RecordKind::from_raw(r.kind) {
                        Some(RecordKind::Lost) => {
                            missed = Missed::Count(r.pc);
                            continue;
                        }
                        Some(RecordKind::ContextSwitch) => (
                            &f[0],
                            ts(r.timestamp),
                            vec![
                                Value::UInt(r.timestamp),
                                Value::UInt(r.cpu as u64),
                                Value::UInt(r.prev_prio as u64),
                                Value::UInt(r.next_prio as u64),
                                Value::UInt(r.prev_state as u64),
                                Value::UInt(r.next_state as u64),
                                Value::Str(name(&r.prev_name)),
                                Value::Str(name(&r.next_name)),
                                Value::UInt(r.seq as u64),
                            ],
                        ),
                        Some(RecordKind::ProbeHit) => (
                            &f[1],
                            ts(r.timestamp),
                            vec![
                                Value::UInt(r.timestamp),
                                Value::UInt(r.cpu as u64),
                                Value::UInt(r.probe_id as u64),
                                Value::UInt(r.pc),
                                Value::UInt(r.prev_prio as u64),
                                Value::Str(name(&r.prev_name)),
                                Value::UInt(r.seq as u64),
                                Value::Str(what(r, ring.data.get(j - 1).map_or(&[][..], |d| &d[..]))),
                            ],
                        ),
                        Some(RecordKind::IrqTiming) => (
                            &f[3],
                            ts(r.timestamp),
                            vec![
                                Value::UInt(r.timestamp),
                                Value::UInt(r.cpu as u64),
                                Value::UInt(r.vm as u64),
                                Value::UInt(r.probe_id as u64),
                                Value::UInt(r.seq as u64),
                                Value::UInt(r.pc),
                                Value::UInt(r.irq_injected()),
                            ],
                        ),
                        Some(RecordKind::VmStopped) => (
                            &f[4],
                            ts(r.timestamp),
                            vec![
                                Value::UInt(r.timestamp),
                                Value::UInt(r.pc),
                                Value::UInt(r.cpu as u64),
                                Value::UInt(r.vm as u64),
                                Value::UInt(r.seq as u64),
                            ],
                        ),
                        Some(RecordKind::ClockSync) => (
                            &f[2],
                            r.pc,
                            vec![Value::UInt(r.timestamp), Value::UInt(r.pc), Value::UInt(0)],
                        ),
                        None => {
                            let at = ring.offset + guest_probe::abi::ring::RING_HEADER_SIZE as u64;
                            return Some(Err(Error::malformed(
                                at,
                                format!("ring record {} has unknown kind {}", j - 1, r.kind),
                            )));
                        }
                    };
                    return Some(Ok(Event {
                        ts_ns,
                        cpu: ring.cpu as u32,
                        pid: 0,
                        comm: Arc::from("<hv>"),
                        format: fmt.clone(),
                        fields,
                        flags: 0,
                        preempt_count: 0,
                        buffer: 0,
                        missed_before: std::mem::take(&mut missed),
                    }));
                });
                Box::new(it) as EventStream
            })
            .collect()
    }
}
