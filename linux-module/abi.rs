// SPDX-License-Identifier: GPL-2.0

//! The module's own view of the hvtrace record, ring and hypercall ABI.
//!
//! The single definition lives in guest-probe (`guest_probe::abi`); the C
//! shim compiles the header generated from it (`hvtrace_abi.h`) and exports
//! what its compiler sees as a table of named values. [`check`] compares this
//! view with that table when the module loads, so a drift between the two
//! refuses the load instead of misreading memory. The host tests include this
//! file too and compare it with the generated header.
//!
//! Plain `core` only: no kernel crate, so the host can compile it.

use core::mem::{offset_of, size_of};

/// ABI major version this module speaks.
pub(crate) const ABI_MAJOR: u16 = 1;
/// ABI minor version this module was written against.
pub(crate) const ABI_MINOR: u16 = 4;
/// Size of one record.
pub(crate) const RECORD_SIZE: usize = 64;
/// Length of the task-name fields.
pub(crate) const NAME_LEN: usize = 16;
/// `"HVTR"`, little-endian.
pub(crate) const RING_MAGIC: u32 = 0x5254_5648;
/// Size of a ring header; records follow it.
pub(crate) const RING_HEADER_SIZE: usize = 256;
/// Largest ring capacity the module accepts (records).
pub(crate) const MAX_RING_CAPACITY: u32 = 1 << 26;
/// Probe ids are below this.
pub(crate) const MAX_PROBE_ID: u16 = 0x8000;
/// `next_state` of a probe hit at a function's return site.
pub(crate) const HIT_RETURN: u16 = 1;
/// Most slots of fetched values after one record.
pub(crate) const MAX_DATA_SLOTS: usize = 10;
/// Largest fetch plan `PROBE_ADD` takes.
pub(crate) const FETCH_PLAN_MAX: usize = 416;

/// Hypercall function ids (x0).
pub(crate) mod hvc {
    /// Returns `major << 16 | minor`.
    pub(crate) const VERSION: u64 = 0x00;
    /// x1 = VM, x2 = guest VA, x3 = kind; returns the probe id.
    pub(crate) const PROBE_ADD: u64 = 0x10;
    /// x1 = VM, x2 = probe id.
    pub(crate) const PROBE_REMOVE: u64 = 0x11;
    /// x1 = VM, x2 = index; returns `kind << 16 | id`, x1 = VA, x2 = hits.
    pub(crate) const PROBE_LIST: u64 = 0x12;
    /// x1 = 0 or 1; returns the previous state.
    pub(crate) const TRACE_ENABLE: u64 = 0x13;
    /// x1 = ring index; returns its size, x1 = IPA, x2 = source CPU.
    pub(crate) const RING_INFO: u64 = 0x14;
    /// x1 = counter index; returns the counter.
    pub(crate) const STATS: u64 = 0x16;
    /// x1 = VM, x2 = probe id, x3 = buffer IPA, x4 = its length; returns the plan's length.
    pub(crate) const PROBE_PLAN: u64 = 0x17;
    /// x1 = VM, x2 = guest VA, x3 = size, x4 = value; stores it in the VM's RAM.
    pub(crate) const MEM_WRITE: u64 = 0x18;
    /// x1 = VM, x2 = 0 or 1: IRQ_TIMING records for the VM's interrupts.
    pub(crate) const IRQ_TIMING: u64 = 0x19;
    /// x1 = count; returns the number of synthetic records written.
    pub(crate) const TEST_EMIT: u64 = 0x1f;
}

/// Hypercall error codes (negative x0).
pub(crate) mod err {
    /// Unknown function or argument combination.
    pub(crate) const NOTSUPP: i64 = -1;
    /// An argument is out of range.
    pub(crate) const INVAL: i64 = -2;
    /// No room.
    pub(crate) const NOSPC: i64 = -3;
    /// No such VM, probe, ring or index.
    pub(crate) const NOENT: i64 = -4;
    /// Already there.
    pub(crate) const EXIST: i64 = -5;
    /// The probe site is not safe to patch.
    pub(crate) const UNSAFE: i64 = -6;
    /// An address does not translate.
    pub(crate) const UNMAPPED: i64 = -7;
    /// The caller may not do this.
    pub(crate) const PERM: i64 = -8;
    /// Try again later.
    pub(crate) const BUSY: i64 = -9;
    /// The VM was stopped (it faulted, or powered itself off).
    pub(crate) const STOPPED: i64 = -10;
}

/// Probe kinds (x3 of `PROBE_ADD`).
pub(crate) mod probe_kind {
    /// A plain hit.
    pub(crate) const PLAIN: u64 = 0;
    /// A context switch.
    pub(crate) const CONTEXT_SWITCH: u64 = 1;
    /// A function entry, for its return probes (records nothing).
    pub(crate) const ENTRY: u64 = 2;
    /// A return site (`| entry_id << 16`).
    pub(crate) const RETURN: u64 = 3;
}

/// Record kinds (`Record::kind`).
pub(crate) mod kind {
    /// A context switch.
    pub(crate) const CONTEXT_SWITCH: u16 = 1;
    /// A probe hit.
    pub(crate) const PROBE_HIT: u16 = 2;
    /// A clock sync point written by the hypervisor.
    pub(crate) const CLOCK_SYNC: u16 = 3;
    /// Lost records: `pc` holds how many.
    pub(crate) const LOST: u16 = 4;
    /// An interrupt taken at EL2: `pc` = when due, `probe_id` = INTID,
    /// `next_name[..8]` = when injected.
    pub(crate) const IRQ_TIMING: u16 = 5;
    /// The VM stopped: `pc` where, `vm` which.
    pub(crate) const VM_STOPPED: u16 = 6;
}

/// Added to a record's task state: the guest's task could not be read.
pub(crate) const STATE_UNREADABLE: u16 = 0x200;

/// `STATS` with this index: whether tracing is on (1), not a counter.
pub(crate) const STAT_TRACING: u64 = 7;

/// `STATS` counter indices, with the names `stats` prints.
pub(crate) const HYP_STATS: [(u64, &str); 7] = [
    (0, "probe_hits"),
    (1, "records"),
    (2, "drops"),
    (3, "irqs"),
    (4, "hypercalls"),
    (5, "steps"),
    (6, "reruns"),
];

/// The probe immediate flag (`HVC #(flag | id)` marks a probe).
pub(crate) const PROBE_IMM_FLAG: u16 = 0x8000;

/// One trace record as it lies in the ring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct Record {
    /// Physical counter ticks.
    pub(crate) timestamp: u64,
    /// Probe site (LOST: the count; CLOCK_SYNC: the other clock).
    pub(crate) pc: u64,
    /// One of [`kind`].
    pub(crate) kind: u16,
    /// The probe that fired.
    pub(crate) probe_id: u16,
    /// The VM the event happened in.
    pub(crate) vm: u8,
    /// The physical core.
    pub(crate) cpu: u8,
    /// Priority of the task switched from (or the current task).
    pub(crate) prev_prio: u8,
    /// Priority of the task switched to.
    pub(crate) next_prio: u8,
    /// State of the task switched from.
    pub(crate) prev_state: u16,
    /// State of the task switched to.
    pub(crate) next_state: u16,
    /// Per-ring sequence number, counting drops.
    pub(crate) seq: u32,
    /// NUL-padded (not terminated) name of the task switched from.
    pub(crate) prev_name: [u8; NAME_LEN],
    /// NUL-padded (not terminated) name of the task switched to (a probe
    /// hit: the probe's label).
    pub(crate) next_name: [u8; NAME_LEN],
}

impl Record {
    /// Slots of fetched values after a probe hit (its `next_prio`).
    pub(crate) fn data_slots(&self) -> usize {
        if self.kind == kind::PROBE_HIT {
            usize::from(self.next_prio)
        } else {
            0
        }
    }
}

/// A ring header as it lies in shared memory. Never referenced while
/// shared: the consumer reads it field by field through raw pointers (and
/// atomics for `head`, `tail`, `drops`).
#[repr(C)]
pub(crate) struct RingHeader {
    /// [`RING_MAGIC`].
    pub(crate) magic: u32,
    /// Producer's ABI major version.
    pub(crate) abi_major: u16,
    /// Producer's ABI minor version.
    pub(crate) abi_minor: u16,
    /// [`RECORD_SIZE`].
    pub(crate) record_size: u32,
    /// Slots, a power of two.
    pub(crate) capacity: u32,
    /// Source CPU.
    pub(crate) cpu: u64,
    /// Drops minus slots ever used by data (producer; numbers the records).
    pub(crate) seq_base: u64,
    /// Reserved.
    pub(crate) reserved0: [u8; 32],
    /// Slots ever written (producer).
    pub(crate) head: u64,
    /// Padding to the next cache line.
    pub(crate) pad1: [u8; 56],
    /// Slots ever read (consumer: this module).
    pub(crate) tail: u64,
    /// Padding to the next cache line.
    pub(crate) pad2: [u8; 56],
    /// Records dropped because the ring was full (producer).
    pub(crate) drops: u64,
    /// Padding to the next cache line.
    pub(crate) pad3: [u8; 56],
}

const _: () = assert!(size_of::<Record>() == RECORD_SIZE);

impl Record {
    /// The record whose 64 bytes are `words` (little-endian, in order): the
    /// ring is read a word at a time, not byte by byte.
    pub(crate) fn from_words(words: [u64; RECORD_SIZE / 8]) -> Self {
        let mut bytes = [0u8; RECORD_SIZE];
        for (chunk, w) in bytes.chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]);
        let name_at = |o: usize| {
            let mut n = [0u8; NAME_LEN];
            n.copy_from_slice(&bytes[o..o + NAME_LEN]);
            n
        };
        Record {
            timestamp: words[0],
            pc: words[1],
            kind: u16_at(offset_of!(Record, kind)),
            probe_id: u16_at(offset_of!(Record, probe_id)),
            vm: bytes[offset_of!(Record, vm)],
            cpu: bytes[offset_of!(Record, cpu)],
            prev_prio: bytes[offset_of!(Record, prev_prio)],
            next_prio: bytes[offset_of!(Record, next_prio)],
            prev_state: u16_at(offset_of!(Record, prev_state)),
            next_state: u16_at(offset_of!(Record, next_state)),
            seq: (words[3] >> 32) as u32,
            prev_name: name_at(offset_of!(Record, prev_name)),
            next_name: name_at(offset_of!(Record, next_name)),
        }
    }
}
const _: () = assert!(offset_of!(Record, seq) == 28);
const _: () = assert!(size_of::<RingHeader>() == RING_HEADER_SIZE);

/// Bytes a ring of `capacity` records occupies.
pub(crate) const fn ring_bytes(capacity: u32) -> usize {
    RING_HEADER_SIZE + capacity as usize * RECORD_SIZE
}

macro_rules! layout_table {
    ($($name:expr => $value:expr,)*) => {
        /// This view as named values, in the C shim's naming (`struct.field`
        /// offsets, `sizeof(struct)`, and the header's macro names).
        pub(crate) const LAYOUT: &[(&str, u64)] = &[$(($name, $value as u64),)*];
    };
}

layout_table! {
    "sizeof(hvtrace_record)" => size_of::<Record>(),
    "hvtrace_record.timestamp" => offset_of!(Record, timestamp),
    "hvtrace_record.pc" => offset_of!(Record, pc),
    "hvtrace_record.kind" => offset_of!(Record, kind),
    "hvtrace_record.probe_id" => offset_of!(Record, probe_id),
    "hvtrace_record.vm" => offset_of!(Record, vm),
    "hvtrace_record.cpu" => offset_of!(Record, cpu),
    "hvtrace_record.prev_prio" => offset_of!(Record, prev_prio),
    "hvtrace_record.next_prio" => offset_of!(Record, next_prio),
    "hvtrace_record.prev_state" => offset_of!(Record, prev_state),
    "hvtrace_record.next_state" => offset_of!(Record, next_state),
    "hvtrace_record.seq" => offset_of!(Record, seq),
    "hvtrace_record.prev_name" => offset_of!(Record, prev_name),
    "hvtrace_record.next_name" => offset_of!(Record, next_name),
    "sizeof(hvtrace_ring_header)" => size_of::<RingHeader>(),
    "hvtrace_ring_header.magic" => offset_of!(RingHeader, magic),
    "hvtrace_ring_header.abi_major" => offset_of!(RingHeader, abi_major),
    "hvtrace_ring_header.abi_minor" => offset_of!(RingHeader, abi_minor),
    "hvtrace_ring_header.record_size" => offset_of!(RingHeader, record_size),
    "hvtrace_ring_header.capacity" => offset_of!(RingHeader, capacity),
    "hvtrace_ring_header.cpu" => offset_of!(RingHeader, cpu),
    "hvtrace_ring_header.seq_base" => offset_of!(RingHeader, seq_base),
    "hvtrace_ring_header.head" => offset_of!(RingHeader, head),
    "hvtrace_ring_header.tail" => offset_of!(RingHeader, tail),
    "hvtrace_ring_header.drops" => offset_of!(RingHeader, drops),
    "HVTRACE_ABI_MAJOR" => ABI_MAJOR,
    "HVTRACE_ABI_MINOR" => ABI_MINOR,
    "HVTRACE_RECORD_SIZE" => RECORD_SIZE,
    "HVTRACE_NAME_LEN" => NAME_LEN,
    "HVTRACE_RING_MAGIC" => RING_MAGIC,
    "HVTRACE_RING_HEADER_SIZE" => RING_HEADER_SIZE,
    "HVTRACE_MAX_DATA_SLOTS" => MAX_DATA_SLOTS,
    "HVTRACE_HIT_RETURN" => HIT_RETURN,
    "HVTRACE_FETCH_PLAN_MAX" => FETCH_PLAN_MAX,
    "HVTRACE_HVC_VERSION" => hvc::VERSION,
    "HVTRACE_HVC_PROBE_ADD" => hvc::PROBE_ADD,
    "HVTRACE_HVC_PROBE_REMOVE" => hvc::PROBE_REMOVE,
    "HVTRACE_HVC_PROBE_LIST" => hvc::PROBE_LIST,
    "HVTRACE_HVC_TRACE_ENABLE" => hvc::TRACE_ENABLE,
    "HVTRACE_HVC_RING_INFO" => hvc::RING_INFO,
    "HVTRACE_HVC_STATS" => hvc::STATS,
    "HVTRACE_HVC_PROBE_PLAN" => hvc::PROBE_PLAN,
    "HVTRACE_HVC_MEM_WRITE" => hvc::MEM_WRITE,
    "HVTRACE_HVC_IRQ_TIMING" => hvc::IRQ_TIMING,
    "HVTRACE_HVC_TEST_EMIT" => hvc::TEST_EMIT,
    "HVTRACE_ENOTSUPP" => err::NOTSUPP,
    "HVTRACE_EINVAL" => err::INVAL,
    "HVTRACE_ENOSPC" => err::NOSPC,
    "HVTRACE_ENOENT" => err::NOENT,
    "HVTRACE_EEXIST" => err::EXIST,
    "HVTRACE_EUNSAFE" => err::UNSAFE,
    "HVTRACE_EUNMAPPED" => err::UNMAPPED,
    "HVTRACE_EPERM" => err::PERM,
    "HVTRACE_EBUSY" => err::BUSY,
    "HVTRACE_ESTOPPED" => err::STOPPED,
    "HVTRACE_PROBE_PLAIN" => probe_kind::PLAIN,
    "HVTRACE_PROBE_CONTEXT_SWITCH" => probe_kind::CONTEXT_SWITCH,
    "HVTRACE_PROBE_ENTRY" => probe_kind::ENTRY,
    "HVTRACE_PROBE_RETURN" => probe_kind::RETURN,
    "HVTRACE_REC_CONTEXT_SWITCH" => kind::CONTEXT_SWITCH,
    "HVTRACE_REC_PROBE_HIT" => kind::PROBE_HIT,
    "HVTRACE_REC_CLOCK_SYNC" => kind::CLOCK_SYNC,
    "HVTRACE_REC_LOST" => kind::LOST,
    "HVTRACE_REC_IRQ_TIMING" => kind::IRQ_TIMING,
    "HVTRACE_REC_VM_STOPPED" => kind::VM_STOPPED,
    "HVTRACE_STAT_PROBE_HITS" => HYP_STATS[0].0,
    "HVTRACE_STAT_RECORDS" => HYP_STATS[1].0,
    "HVTRACE_STAT_DROPS" => HYP_STATS[2].0,
    "HVTRACE_STAT_IRQS" => HYP_STATS[3].0,
    "HVTRACE_STAT_HYPERCALLS" => HYP_STATS[4].0,
    "HVTRACE_STAT_STEPS" => HYP_STATS[5].0,
    "HVTRACE_STAT_RERUNS" => HYP_STATS[6].0,
    "HVTRACE_STAT_TRACING" => STAT_TRACING,
    "HVTRACE_STATE_UNREADABLE" => STATE_UNREADABLE,
    "HVTRACE_PROBE_IMM_FLAG" => PROBE_IMM_FLAG,
}

/// The first disagreement between this view and another's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mismatch<'a> {
    /// The other side does not define this name.
    Missing(&'a str),
    /// The values differ.
    Differs {
        /// The name.
        name: &'a str,
        /// This module's value.
        ours: u64,
        /// The other side's value.
        theirs: u64,
    },
}

/// Checks every entry of [`LAYOUT`] against `lookup` (the other side's
/// value for a name, if it has one).
pub(crate) fn check(lookup: impl Fn(&str) -> Option<u64>) -> Result<usize, Mismatch<'static>> {
    for &(name, ours) in LAYOUT {
        match lookup(name) {
            None => return Err(Mismatch::Missing(name)),
            Some(theirs) if theirs != ours => return Err(Mismatch::Differs { name, ours, theirs }),
            Some(_) => {}
        }
    }
    Ok(LAYOUT.len())
}

/// A name field as it goes into an ftrace `char[16]`: up to 15 bytes, then
/// NUL-filled (like Linux's own `comm`), so `%s` readers never run past it;
/// non-printable bytes (they would confuse text readers) become `?`.
/// Eight bytes at a time: it runs for every record drained.
pub(crate) fn comm(name: &[u8; NAME_LEN]) -> [u8; NAME_LEN] {
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&name[i * 8..i * 8 + 8]);
        u64::from_le_bytes(w)
    };
    let (lo, hi) = (word(0), word(1));
    // Bytes kept: those before the first NUL, and never byte 15.
    let lo_keep = before_first_nul(lo);
    let hi_keep = if lo_keep == !0 {
        before_first_nul(hi) & 0x00FF_FFFF_FFFF_FFFF
    } else {
        0
    };
    let mut out = [0u8; NAME_LEN];
    out[..8].copy_from_slice(&(printable(lo) & lo_keep).to_le_bytes());
    out[8..].copy_from_slice(&(printable(hi) & hi_keep).to_le_bytes());
    out
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// A mask of the bytes of `w` (little-endian order) before its first NUL.
fn before_first_nul(w: u64) -> u64 {
    // The lowest flagged byte is exactly the first zero byte (flags above it
    // may be wrong, and are not looked at).
    let zero = w.wrapping_sub(ONES) & !w & HIGHS;
    match zero.trailing_zeros() {
        64 => !0,
        bit => (1u64 << (bit - 7)) - 1,
    }
}

/// `w` with every byte outside 0x20..=0x7e replaced by `?`.
fn printable(w: u64) -> u64 {
    // Per byte, on the low seven bits (no carry crosses a byte):
    // high bit of low7 + 0x60 is low7 >= 0x20, of low7 + 0x01 is low7 == 0x7f.
    let low7 = w & !HIGHS;
    let ok = (low7 + 0x6060_6060_6060_6060) & !(low7 + ONES) & !w & HIGHS;
    let bad = ((!ok & HIGHS) >> 7) * 0xff;
    (w & !bad) | (0x3f3f_3f3f_3f3f_3f3f & bad)
}
