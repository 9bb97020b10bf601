//! The hypercall and record ABI: the single definition shared by the
//! hypervisor, the Linux module (through the generated C header,
//! [`c_header`]) and the host tools.
//!
//! # Hypercalls
//! `HVC #0` with x0 = function id ([`HvcFunction`]), arguments in x1..x5, the
//! result in x0: `>= 0` is success, a negative value is an [`HvError`]. Some
//! functions return extra values in x1..x3 (documented on each function).
//!
//! # Probes
//! A probe site holds `HVC #(0x8000 | probe_id)` ([`probe_hvc`]); the
//! hypervisor tells a probe hit from a hypercall by the immediate
//! ([`HvcImm::from_imm`]).
//!
//! # Records and rings
//! One [`Record`] (64 bytes, little-endian, `repr(C)`) per event, in one
//! single-producer/single-consumer [`ring`] per source CPU in memory shared
//! with Linux.
//!
//! # OS profiles
//! [`profile::OsProfile`] is the fixed-layout blob the host hands to the
//! hypervisor (`PROFILE_SET`) so that it never hard-codes an OS layout.

pub mod control;
pub mod fetch;
pub mod profile;
pub mod ring;
pub mod stream;

pub use profile::{Field, Global, OsKind, OsProfile, ProfileError};
pub use ring::{Consumer, Producer, Ring, RingError, RingHeader};

/// ABI major version: incompatible changes bump it.
pub const ABI_MAJOR: u16 = 1;
/// ABI minor version: compatible additions bump it.
pub const ABI_MINOR: u16 = 4;

/// The value `VERSION` returns: `major << 16 | minor`.
pub const fn abi_version() -> u64 {
    ((ABI_MAJOR as u64) << 16) | ABI_MINOR as u64
}

/// The immediate of a hypercall `HVC`.
pub const HVC_CALL_IMM: u16 = 0;
/// Largest `CONSOLE_WRITE` buffer.
pub const CONSOLE_WRITE_MAX: u64 = 256;

/// Hypercall function ids (x0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u64)]
pub enum HvcFunction {
    /// Returns the ABI version ([`abi_version`]).
    Version = 0x00,
    /// x1 = IPA of a buffer, x2 = length (≤ [`CONSOLE_WRITE_MAX`]): prints
    /// it on the hypervisor console. Returns the length.
    ConsoleWrite = 0x01,
    /// x1 = VM id, x2 = guest virtual address, x3 = [`ProbeKind`] (for
    /// [`ProbeKind::Return`]: `| entry_probe_id << 16`, see
    /// [`ProbeKind::encode`]), x4 = IPA of a [`fetch::FetchPlan`] blob in the
    /// caller's memory (0: none), x5 = its length. Returns the probe id.
    ProbeAdd = 0x10,
    /// x1 = VM id, x2 = probe id. Returns 0.
    ProbeRemove = 0x11,
    /// x1 = VM id, x2 = index. Returns `kind << 16 | probe_id` with x1 = the
    /// guest virtual address and x2 = the hit count; `NotFound` past the end.
    ProbeList = 0x12,
    /// x1 = 0 (off) or 1 (on). Returns the previous state.
    TraceEnable = 0x13,
    /// x1 = ring index. Returns the ring size in bytes, with x1 = the ring's
    /// IPA in the caller's address space and x2 = its source CPU;
    /// `NotFound` past the last ring.
    RingInfo = 0x14,
    /// x1 = VM id, x2 = IPA of a serialized [`OsProfile`] in the caller's
    /// memory, x3 = its length. Returns 0.
    ProfileSet = 0x15,
    /// x1 = [`Stat`] index. Returns the counter.
    Stats = 0x16,
    /// x1 = VM id, x2 = probe id, x3 = IPA of a buffer in the caller's
    /// memory, x4 = its length (≥ [`fetch::PLAN_MAX`]). Writes the probe's
    /// [`fetch::FetchPlan`] blob there; returns its length.
    ProbePlan = 0x17,
    /// x1 = VM id, x2 = guest virtual address, x3 = size (1, 2, 4 or 8, the
    /// address aligned to it), x4 = value: stores the value's low `size`
    /// bytes, little-endian, through the VM's own stage 1 and stage 2 into
    /// its RAM (a variable a user sets at run time, e.g. a test knob). A
    /// word a probe patched is refused. Returns 0.
    MemWrite = 0x18,
    /// x1 = VM id, x2 = 0 (off) or 1 (on): an [`RecordKind::IrqTiming`]
    /// record for each interrupt the VM's cores take at EL2. Returns the
    /// previous state.
    IrqTiming = 0x19,
    /// x1 = count: emits that many synthetic probe-hit records (tests).
    /// Returns the number written (the rest counted as drops).
    TestEmit = 0x1F,
}

impl HvcFunction {
    /// Every function, for tables and the C header.
    pub const ALL: [HvcFunction; 13] = [
        Self::Version,
        Self::ConsoleWrite,
        Self::ProbeAdd,
        Self::ProbeRemove,
        Self::ProbeList,
        Self::TraceEnable,
        Self::RingInfo,
        Self::ProfileSet,
        Self::Stats,
        Self::ProbePlan,
        Self::MemWrite,
        Self::IrqTiming,
        Self::TestEmit,
    ];

    /// The function id.
    pub const fn id(self) -> u64 {
        self as u64
    }

    /// Decodes x0.
    pub const fn from_id(id: u64) -> Option<Self> {
        let mut i = 0;
        while i < Self::ALL.len() {
            if Self::ALL[i] as u64 == id {
                return Some(Self::ALL[i]);
            }
            i += 1;
        }
        None
    }

    /// The C-style name (`HVTRACE_HVC_...`) suffix.
    pub const fn c_name(self) -> &'static str {
        match self {
            Self::Version => "VERSION",
            Self::ConsoleWrite => "CONSOLE_WRITE",
            Self::ProbeAdd => "PROBE_ADD",
            Self::ProbeRemove => "PROBE_REMOVE",
            Self::ProbeList => "PROBE_LIST",
            Self::TraceEnable => "TRACE_ENABLE",
            Self::RingInfo => "RING_INFO",
            Self::ProfileSet => "PROFILE_SET",
            Self::Stats => "STATS",
            Self::ProbePlan => "PROBE_PLAN",
            Self::MemWrite => "MEM_WRITE",
            Self::IrqTiming => "IRQ_TIMING",
            Self::TestEmit => "TEST_EMIT",
        }
    }
}

/// Hypercall errors, returned negated in x0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[repr(i64)]
pub enum HvError {
    /// Unknown function or unsupported argument combination.
    #[error("not supported")]
    NotSupported = -1,
    /// An argument is out of range.
    #[error("invalid argument")]
    InvalidArgument = -2,
    /// No room (probe table, ring, buffer).
    #[error("no space")]
    NoSpace = -3,
    /// No such VM, probe, ring or index.
    #[error("not found")]
    NotFound = -4,
    /// Already there (a probe at that address).
    #[error("already exists")]
    Exists = -5,
    /// The probe site is not safe to patch.
    #[error("unsafe probe site")]
    Unsafe = -6,
    /// An address does not translate.
    #[error("address not mapped")]
    Unmapped = -7,
    /// The caller may not do this.
    #[error("permission denied")]
    Denied = -8,
    /// Try again later.
    #[error("busy")]
    Busy = -9,
    /// The VM was stopped (it faulted, or powered itself off): nothing can
    /// be done in it any more.
    #[error("VM stopped")]
    Stopped = -10,
}

impl HvError {
    /// Every error, for tables and the C header.
    pub const ALL: [HvError; 10] = [
        Self::NotSupported,
        Self::InvalidArgument,
        Self::NoSpace,
        Self::NotFound,
        Self::Exists,
        Self::Unsafe,
        Self::Unmapped,
        Self::Denied,
        Self::Busy,
        Self::Stopped,
    ];

    /// The (negative) code.
    pub const fn code(self) -> i64 {
        self as i64
    }

    /// Decodes a negative code.
    pub const fn from_code(code: i64) -> Option<Self> {
        let mut i = 0;
        while i < Self::ALL.len() {
            if Self::ALL[i] as i64 == code {
                return Some(Self::ALL[i]);
            }
            i += 1;
        }
        None
    }

    /// The C-style name (`HVTRACE_E...`) suffix.
    pub const fn c_name(self) -> &'static str {
        match self {
            Self::NotSupported => "NOTSUPP",
            Self::InvalidArgument => "INVAL",
            Self::NoSpace => "NOSPC",
            Self::NotFound => "NOENT",
            Self::Exists => "EXIST",
            Self::Unsafe => "UNSAFE",
            Self::Unmapped => "UNMAPPED",
            Self::Denied => "PERM",
            Self::Busy => "BUSY",
            Self::Stopped => "STOPPED",
        }
    }
}

/// What a caller sees in x0 that is neither success nor a known error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HvCallError {
    /// A known error.
    #[error("{0}")]
    Known(HvError),
    /// A negative value this ABI version does not define.
    #[error("unknown hypercall error {0}")]
    Unknown(i64),
}

/// Encodes a hypercall result into x0. Success values must be below 2^63.
pub const fn encode_result(r: Result<u64, HvError>) -> u64 {
    match r {
        Ok(v) => v & (i64::MAX as u64),
        Err(e) => e.code() as u64,
    }
}

/// Decodes x0 after a hypercall.
pub const fn decode_result(x0: u64) -> Result<u64, HvCallError> {
    let v = x0 as i64;
    if v >= 0 {
        return Ok(x0);
    }
    match HvError::from_code(v) {
        Some(e) => Err(HvCallError::Known(e)),
        None => Err(HvCallError::Unknown(v)),
    }
}

/// What a probe records when hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u64)]
#[cfg_attr(feature = "std", derive(serde::Serialize, serde::Deserialize))]
pub enum ProbeKind {
    /// A plain hit: a [`RecordKind::ProbeHit`] with the current task.
    Plain = 0,
    /// A context switch: a [`RecordKind::ContextSwitch`] from the current
    /// task to the highest-ready one.
    ContextSwitch = 1,
    /// A function's entry, for its return probes: notes when the current
    /// task entered and records nothing.
    Entry = 2,
    /// A return site (`RET`) of a function whose entry has an
    /// [`ProbeKind::Entry`] probe: a [`RecordKind::ProbeHit`] whose values
    /// end with `duration` (ns since the same task's entry, on this core).
    Return = 3,
}

impl ProbeKind {
    /// Decodes the kind in x3 of `PROBE_ADD` (its low 16 bits).
    pub const fn from_raw(v: u64) -> Option<Self> {
        match v & 0xffff {
            0 => Some(Self::Plain),
            1 => Some(Self::ContextSwitch),
            2 => Some(Self::Entry),
            3 => Some(Self::Return),
            _ => None,
        }
    }

    /// x3 of `PROBE_ADD`: the kind, and for a return site the id of its
    /// function's entry probe.
    pub const fn encode(self, entry: u16) -> u64 {
        match self {
            Self::Return => Self::Return as u64 | (entry as u64) << 16,
            k => k as u64,
        }
    }

    /// The entry probe a `PROBE_ADD` x3 names (return sites only).
    pub const fn entry_of(raw: u64) -> u16 {
        (raw >> 16) as u16
    }
}

/// The name of the value a return probe appends: ns since the entry.
pub const DURATION_ARG: &str = "duration";

/// `STATS` with x1 = this returns whether tracing is on (1) or off (0), not
/// a counter: the hypervisor owns the switch and the probes, so a module
/// loaded while they are on carries on (ABI 1.4).
pub const STAT_TRACING: u64 = 7;

/// Counters `STATS` can return (x1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u64)]
pub enum Stat {
    /// Probe hits handled.
    ProbeHits = 0,
    /// Records written to rings.
    Records = 1,
    /// Records dropped because a ring was full.
    Drops = 2,
    /// Virtual IRQs raised towards Linux.
    Irqs = 3,
    /// Hypercalls handled.
    Hypercalls = 4,
    /// Displaced instructions single-stepped in place: each one a moment in
    /// which the original word is back. Only a VM with one core takes
    /// such probes; on one with more, only an emulated access that faulted
    /// falls back to a step, and this counts it.
    Steps = 5,
    /// Traps on an `HVC` of ours at a site whose probe is gone (removed by
    /// another core meanwhile, or seen by a vCPU whose fetch was older than
    /// the removal): the site runs again with the word it holds now.
    Reruns = 6,
}

/// Added to a task state in a [`Record`]: the task is delayed (`OSTCBDly`
/// > 0), i.e. blocked, though its `OSTCBStat` says ready.
pub const STATE_DELAYED: u16 = 0x100;
/// Added to a task state in a [`Record`] (ABI 1.4): what the guest said
/// its task was could not be read — a NULL or unmapped TCB pointer, one
/// outside the VM's RAM, a name pointer that leads nowhere. The name is
/// then [`UNREADABLE_NAME`]; nothing outside the VM was read.
pub const STATE_UNREADABLE: u16 = 0x200;
/// The task name a record carries when [`STATE_UNREADABLE`] is set.
pub const UNREADABLE_NAME: &[u8] = b"<unreadable>";

/// The probe immediate bit: `HVC #imm` with this bit set is a probe hit.
pub const PROBE_IMM_FLAG: u16 = 0x8000;
/// Probe ids are below this.
pub const MAX_PROBE_ID: u16 = 0x8000;

/// Encodes `HVC #imm`.
pub const fn hvc(imm: u16) -> u32 {
    0xD400_0002 | ((imm as u32) << 5)
}

/// The immediate of an `HVC` instruction, or `None` for anything else.
pub const fn hvc_imm(insn: u32) -> Option<u16> {
    if insn & 0xFFE0_001F == 0xD400_0002 {
        Some((insn >> 5) as u16)
    } else {
        None
    }
}

/// The `HVC` that marks probe `id`, or `None` if `id` is out of range.
pub const fn probe_hvc(id: u16) -> Option<u32> {
    if id < MAX_PROBE_ID {
        Some(hvc(PROBE_IMM_FLAG | id))
    } else {
        None
    }
}

/// What removing probe `id` does to its site, given the word there now and
/// the word the probe displaced: put `original` back when the site holds
/// the probe's `HVC` (or already the original, mid-step); otherwise the guest
/// has rewritten its code since (a module loaded over it, freed init code,
/// self-modifying code) and the new word must stay: `None`.
pub const fn word_on_removal(current: u32, original: u32, id: u16) -> Option<u32> {
    match probe_hvc(id) {
        Some(hvc) if current == hvc => Some(original),
        _ if current == original => Some(original),
        _ => None,
    }
}

/// What an `HVC` immediate means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HvcImm {
    /// `HVC #0`: a hypercall (function id in x0).
    Call,
    /// A probe hit.
    Probe(u16),
    /// Anything else: reserved, refused with `NotSupported`.
    Reserved(u16),
}

impl HvcImm {
    /// Decodes the immediate (ESR_EL2.ISS bits 15:0 for EC = 0x16).
    pub const fn from_imm(imm: u16) -> Self {
        if imm & PROBE_IMM_FLAG != 0 {
            Self::Probe(imm & !PROBE_IMM_FLAG)
        } else if imm == HVC_CALL_IMM {
            Self::Call
        } else {
            Self::Reserved(imm)
        }
    }
}

/// Record kinds (`Record::kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum RecordKind {
    /// A context switch: prev/next fields describe the two tasks.
    ContextSwitch = 1,
    /// A probe hit: `prev_*` describe the current task, `next_name` holds
    /// the probe's label, `next_prio` how many slots of fetched values
    /// follow the record ([`Record::data_slots`]) and `next_state` its
    /// [`HIT_RETURN`] flag.
    ProbeHit = 2,
    /// A clock sync point: `timestamp` (counter) and `pc` (the other clock's
    /// value, e.g. the ftrace clock in ns) were read together.
    ClockSync = 3,
    /// Lost records: `pc` holds how many were dropped before this one.
    Lost = 4,
    /// An interrupt of the VM taken at EL2 (when [`HvcFunction::IrqTiming`]
    /// is on): `timestamp` when it reached EL2, `pc` when it was due (for
    /// the virtual timer its compare value `CNTV_CVAL`, else 0), `probe_id`
    /// its INTID, `prev_prio`/`prev_name` the current task (when the VM's
    /// OS profile names one), and [`Record::irq_injected`] when it was
    /// put in a list register for the VM.
    IrqTiming = 5,
    /// The VM stopped (ABI 1.4): it faulted outside what the partition
    /// gives it, or asked to power off. `timestamp` when, `pc` where, `vm`
    /// which; its probes are refused from now on.
    VmStopped = 6,
}

impl RecordKind {
    /// Decodes `Record::kind`.
    pub const fn from_raw(v: u16) -> Option<Self> {
        match v {
            1 => Some(Self::ContextSwitch),
            2 => Some(Self::ProbeHit),
            3 => Some(Self::ClockSync),
            4 => Some(Self::Lost),
            5 => Some(Self::IrqTiming),
            6 => Some(Self::VmStopped),
            _ => None,
        }
    }
}

/// Length of the task-name fields.
pub const NAME_LEN: usize = 16;

/// `next_state` of a probe hit at a function's return site (its label is
/// the function's name; readers show it as `NAME%return`).
pub const HIT_RETURN: u16 = 1;

/// Most slots of data (a [`fetch`] payload) after one record.
pub const MAX_DATA_SLOTS: usize = fetch::MAX_PAYLOAD.div_ceil(Record::SIZE);
/// Their bytes.
pub const MAX_DATA_BYTES: usize = MAX_DATA_SLOTS * Record::SIZE;
const _: () = assert!(MAX_DATA_SLOTS <= u8::MAX as usize);

/// One trace record: 64 bytes, `repr(C)`, little-endian in memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct Record {
    /// Physical counter (CNTPCT) ticks; guests see CNTVOFF = 0.
    pub timestamp: u64,
    /// Guest virtual address of the probe site.
    pub pc: u64,
    /// [`RecordKind`].
    pub kind: u16,
    /// The probe that fired.
    pub probe_id: u16,
    /// The VM the event happened in.
    pub vm: u8,
    /// The physical core.
    pub cpu: u8,
    /// Priority of the task switched from (or the current task).
    pub prev_prio: u8,
    /// Priority of the task switched to.
    pub next_prio: u8,
    /// `OSTCBStat` of the task switched from, with [`STATE_DELAYED`] added
    /// when it is ready but waiting out `OSTCBDly` (uC/OS-II keeps
    /// `OSTCBStat` at `OS_STAT_RDY` during a delay).
    pub prev_state: u16,
    /// `OSTCBStat` of the task switched to.
    pub next_state: u16,
    /// Per-ring sequence number (includes drops, so readers see gaps).
    pub seq: u32,
    /// NUL-padded name of the task switched from (or the current task).
    pub prev_name: [u8; NAME_LEN],
    /// NUL-padded name of the task switched to.
    pub next_name: [u8; NAME_LEN],
}

const _: () = assert!(core::mem::size_of::<Record>() == 64);
const _: () = assert!(core::mem::align_of::<Record>() == 8);

impl Record {
    /// Size in bytes.
    pub const SIZE: usize = 64;

    /// How many 64-byte slots of fetched values follow this record in its
    /// ring (a probe hit's `next_prio`; 0 for every other kind).
    pub const fn data_slots(&self) -> usize {
        if self.kind == RecordKind::ProbeHit as u16 {
            self.next_prio as usize
        } else {
            0
        }
    }

    /// An [`RecordKind::IrqTiming`] record's injection time (counter), kept
    /// in `next_name`'s first 8 bytes.
    pub fn irq_injected(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.next_name[..8]);
        u64::from_le_bytes(b)
    }

    /// Sets [`Record::irq_injected`].
    pub fn set_irq_injected(&mut self, counter: u64) {
        self.next_name[..8].copy_from_slice(&counter.to_le_bytes());
    }

    /// Sets [`Record::data_slots`] (the producer does, as it writes them).
    pub fn set_data_slots(&mut self, n: usize) {
        if self.kind == RecordKind::ProbeHit as u16 {
            self.next_prio = n as u8;
        }
    }

    /// Whether this is a probe hit at a function's return.
    pub const fn is_return(&self) -> bool {
        self.kind == RecordKind::ProbeHit as u16 && self.next_state & HIT_RETURN != 0
    }

    /// A probe hit's label (the function it is in), without its padding.
    pub fn label(&self) -> &[u8] {
        if self.kind != RecordKind::ProbeHit as u16 {
            return &[];
        }
        let n = self.next_name.iter().position(|&c| c == 0).unwrap_or(NAME_LEN);
        &self.next_name[..n]
    }

    /// The little-endian byte image.
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0..8].copy_from_slice(&self.timestamp.to_le_bytes());
        b[8..16].copy_from_slice(&self.pc.to_le_bytes());
        b[16..18].copy_from_slice(&self.kind.to_le_bytes());
        b[18..20].copy_from_slice(&self.probe_id.to_le_bytes());
        b[20] = self.vm;
        b[21] = self.cpu;
        b[22] = self.prev_prio;
        b[23] = self.next_prio;
        b[24..26].copy_from_slice(&self.prev_state.to_le_bytes());
        b[26..28].copy_from_slice(&self.next_state.to_le_bytes());
        b[28..32].copy_from_slice(&self.seq.to_le_bytes());
        b[32..48].copy_from_slice(&self.prev_name);
        b[48..64].copy_from_slice(&self.next_name);
        b
    }

    /// Decodes a little-endian byte image.
    pub fn from_bytes(b: &[u8; 64]) -> Self {
        let u64_at = |o: usize| {
            u64::from_le_bytes([
                b[o],
                b[o + 1],
                b[o + 2],
                b[o + 3],
                b[o + 4],
                b[o + 5],
                b[o + 6],
                b[o + 7],
            ])
        };
        let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
        let mut prev_name = [0u8; NAME_LEN];
        let mut next_name = [0u8; NAME_LEN];
        prev_name.copy_from_slice(&b[32..48]);
        next_name.copy_from_slice(&b[48..64]);
        Self {
            timestamp: u64_at(0),
            pc: u64_at(8),
            kind: u16_at(16),
            probe_id: u16_at(18),
            vm: b[20],
            cpu: b[21],
            prev_prio: b[22],
            next_prio: b[23],
            prev_state: u16_at(24),
            next_state: u16_at(26),
            seq: u32::from_le_bytes([b[28], b[29], b[30], b[31]]),
            prev_name,
            next_name,
        }
    }

    /// The decoded kind, if known.
    pub fn record_kind(&self) -> Option<RecordKind> {
        RecordKind::from_raw(self.kind)
    }

    /// A name field up to its first NUL.
    pub fn name_bytes(name: &[u8; NAME_LEN]) -> &[u8] {
        let end = name.iter().position(|&c| c == 0).unwrap_or(NAME_LEN);
        &name[..end]
    }

    /// Fills a name field from `src`, truncated and NUL-padded (the last
    /// byte may be a name byte: the field is NUL-padded, not terminated).
    pub fn set_name(name: &mut [u8; NAME_LEN], src: &[u8]) {
        let src = &src[..src.iter().position(|&c| c == 0).unwrap_or(src.len())];
        let n = src.len().min(NAME_LEN);
        name[..n].copy_from_slice(&src[..n]);
        name[n..].fill(0);
    }

    /// The name field for 16 raw bytes read from a guest (a C string, or a
    /// name buffer such as Linux's `comm`): the bytes before the first NUL,
    /// at most `NAME_LEN - 1`, NUL-padded. The same as
    /// `set_name(name, &raw[..NAME_LEN - 1])`, in a few word operations
    /// (it runs on every probe hit).
    pub fn name_from_raw(raw: [u8; NAME_LEN]) -> [u8; NAME_LEN] {
        let (lo, hi) = raw.split_at(8);
        let lo = u64::from_le_bytes(lo.try_into().unwrap_or_default());
        let hi = u64::from_le_bytes(hi.try_into().unwrap_or_default());
        let (lo, hi) = Self::name_words(lo, hi);
        let mut out = [0u8; NAME_LEN];
        out[..8].copy_from_slice(&lo.to_le_bytes());
        out[8..].copy_from_slice(&hi.to_le_bytes());
        out
    }

    /// [`Record::name_from_raw`] on the raw bytes as two little-endian
    /// words, giving the name field's two words: for callers that load
    /// guest memory a word at a time (a strict-alignment target turns byte
    /// arrays of unknown alignment into byte loads and stores).
    #[inline(always)]
    pub fn name_words(mut lo: u64, hi: u64) -> (u64, u64) {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGHS: u64 = 0x8080_8080_8080_8080;
        /// Keeps the bytes of `w` below its first zero byte; true if it had one.
        fn cut(w: &mut u64) -> bool {
            // The lowest flagged byte is exactly the first zero byte (borrows
            // only make false flags above a true one).
            let zeros = w.wrapping_sub(ONES) & !*w & HIGHS;
            if zeros == 0 {
                return false;
            }
            let keep_bits = zeros.trailing_zeros() & !7;
            *w &= (1u64 << keep_bits).wrapping_sub(1);
            true
        }
        let mut hi = hi & 0x00ff_ffff_ffff_ffff;
        if cut(&mut lo) {
            hi = 0;
        } else {
            cut(&mut hi);
        }
        (lo, hi)
    }
}

#[cfg(feature = "std")]
pub mod dump;
#[cfg(feature = "std")]
mod header;
#[cfg(feature = "std")]
pub use header::c_header;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removal_restores_only_a_site_that_is_still_ours() {
        let original = 0xd503_201f; // nop
        let hvc = probe_hvc(3).unwrap();
        assert_eq!(word_on_removal(hvc, original, 3), Some(original));
        // Mid-step the original is already back.
        assert_eq!(word_on_removal(original, original, 3), Some(original));
        // The guest wrote new code there: it stays.
        assert_eq!(word_on_removal(0x9100_0421, original, 3), None);
        // Another probe's HVC is not ours either.
        assert_eq!(word_on_removal(probe_hvc(4).unwrap(), original, 3), None);
    }
    use core::mem::offset_of;

    #[test]
    fn name_from_raw_is_set_name_of_the_first_fifteen_bytes() {
        // Every position of the first NUL (and none), with NUL-adjacent
        // bytes (0x01, 0x80, 0xff) that trip naive zero-byte tricks.
        for nul in 0..=NAME_LEN {
            for fill in [b'a', 0x01, 0x80, 0xff] {
                let mut raw = [fill; NAME_LEN];
                for (i, b) in raw.iter_mut().enumerate() {
                    if i % 3 == 1 {
                        *b = 0x01;
                    }
                }
                if nul < NAME_LEN {
                    raw[nul] = 0;
                    if nul + 2 < NAME_LEN {
                        raw[nul + 2] = 0;
                    }
                }
                let mut want = [0u8; NAME_LEN];
                Record::set_name(&mut want, &raw[..NAME_LEN - 1]);
                assert_eq!(Record::name_from_raw(raw), want, "NUL at {nul}, fill {fill:#x}");
            }
        }
    }

    #[test]
    fn record_layout_matches_the_contract() {
        assert_eq!(offset_of!(Record, timestamp), 0);
        assert_eq!(offset_of!(Record, pc), 8);
        assert_eq!(offset_of!(Record, kind), 16);
        assert_eq!(offset_of!(Record, probe_id), 18);
        assert_eq!(offset_of!(Record, vm), 20);
        assert_eq!(offset_of!(Record, cpu), 21);
        assert_eq!(offset_of!(Record, prev_prio), 22);
        assert_eq!(offset_of!(Record, next_prio), 23);
        assert_eq!(offset_of!(Record, prev_state), 24);
        assert_eq!(offset_of!(Record, next_state), 26);
        assert_eq!(offset_of!(Record, seq), 28);
        assert_eq!(offset_of!(Record, prev_name), 32);
        assert_eq!(offset_of!(Record, next_name), 48);
    }

    #[test]
    fn record_bytes_round_trip_and_match_memory_layout() {
        let mut r = Record {
            timestamp: 0x0102_0304_0506_0708,
            pc: 0xFFFF_0000_4010_0ABC,
            kind: RecordKind::ContextSwitch as u16,
            probe_id: 7,
            vm: 1,
            cpu: 1,
            prev_prio: 5,
            next_prio: 63,
            prev_state: 0x10,
            next_state: 0,
            seq: 0xdead_beef,
            ..Record::default()
        };
        Record::set_name(&mut r.prev_name, b"Task A");
        Record::set_name(&mut r.next_name, b"a-very-long-task-name-indeed");
        let b = r.to_bytes();
        assert_eq!(Record::from_bytes(&b), r);
        assert_eq!(Record::name_bytes(&r.prev_name), b"Task A");
        assert_eq!(Record::name_bytes(&r.next_name), b"a-very-long-task");
        #[cfg(target_endian = "little")]
        {
            // SAFETY: Record is repr(C), 64 bytes, with no padding (the
            // offsets above are contiguous), so all its bytes are initialised.
            let raw: [u8; 64] = unsafe { core::mem::transmute(r) };
            assert_eq!(raw, b);
        }
        assert_eq!(r.record_kind(), Some(RecordKind::ContextSwitch));
        assert_eq!(RecordKind::from_raw(9), None);
    }

    #[test]
    fn hvc_encoding() {
        assert_eq!(hvc(0), 0xD400_0002);
        assert_eq!(hvc(0x8001), 0xD410_0022);
        assert_eq!(probe_hvc(1), Some(0xD410_0022));
        assert_eq!(probe_hvc(0x7fff), Some(hvc(0xffff)));
        assert_eq!(probe_hvc(0x8000), None);
        assert_eq!(hvc_imm(0xD410_0022), Some(0x8001));
        assert_eq!(hvc_imm(0xD400_0001), None); // svc
        assert_eq!(hvc_imm(0xD400_0003), None); // smc
        assert_eq!(HvcImm::from_imm(0x8001), HvcImm::Probe(1));
        assert_eq!(HvcImm::from_imm(0), HvcImm::Call);
        assert_eq!(HvcImm::from_imm(5), HvcImm::Reserved(5));
        // The probe HVC is refused as a probe site itself.
        assert_eq!(
            crate::a64::classify(hvc(0x8001)),
            crate::a64::Class::Refused(crate::a64::Refusal::ExceptionGenerating)
        );
    }

    #[test]
    fn results_and_errors() {
        assert_eq!(abi_version(), 0x1_0004);
        for e in HvError::ALL {
            assert_eq!(decode_result(encode_result(Err(e))), Err(HvCallError::Known(e)));
            assert_eq!(HvError::from_code(e.code()), Some(e));
        }
        assert_eq!(HvError::Busy.code(), -9);
        assert_eq!(HvError::NotSupported.code(), -1);
        assert_eq!(decode_result(encode_result(Ok(42))), Ok(42));
        assert_eq!(decode_result((-100i64) as u64), Err(HvCallError::Unknown(-100)));
        for f in HvcFunction::ALL {
            assert_eq!(HvcFunction::from_id(f.id()), Some(f));
        }
        assert_eq!(HvcFunction::from_id(0x1a), None);
        assert_eq!(HvcFunction::TestEmit.id(), 0x1f);
        assert_eq!(HvcFunction::Stats.id(), 0x16);
        assert_eq!(ProbeKind::from_raw(1), Some(ProbeKind::ContextSwitch));
        assert_eq!(ProbeKind::from_raw(4), None);
        assert_eq!(
            ProbeKind::from_raw(ProbeKind::Return.encode(7)),
            Some(ProbeKind::Return)
        );
        assert_eq!(ProbeKind::entry_of(ProbeKind::Return.encode(7)), 7);
    }
}
