// SPDX-License-Identifier: GPL-2.0 OR MIT

//! Fetch arguments: the values a probe records at each hit besides the task
//! (registers, memory behind them, globals), in the syntax of Linux's
//! `kprobe_events`, compiled on the host and run by the hypervisor.
//!
//! This is the one definition of
//! - the **text form** of a fetch argument, `NAME=FETCHARG[:TYPE]`, which
//!   the `probes` control file accepts after `add` and lists back
//!   ([`FetchArg::parse`], its `Display`). FETCHARG is `%xN`, `%sp`, `$argN`
//!   (x(N-1)), `$retval` (x0), `$comm`, `$prio` (the current task's),
//!   `\IMM`, `@ADDR` (the memory at ADDR) or `±OFF(FETCHARG)` (the memory at
//!   FETCHARG + OFF); TYPE is `u8`…`u64`, `s8`…`s64`, `x8`…`x64`, `string`
//!   or `symbol`. The host resolves DWARF names (parameters, members,
//!   globals) to this form, as `perf probe` does for kprobes;
//! - the **plan** the hypervisor receives with `PROBE_ADD` ([`FetchPlan`],
//!   [`PLAN_MAX`] bytes at most): a label and up to [`MAX_ARGS`] arguments of
//!   at most [`MAX_DEREFS`] loads each, so a hit's work is bounded;
//! - the **payload** a hit writes after its record ([`run`] writes it,
//!   [`Payload`] reads it): per argument a 16-byte header (its name, type and
//!   length, or [`FAULT`] when a load failed) and its value. It names its own
//!   fields, so a reader needs nothing but the ring.
//!
//! Plain `core` only: the kernel module compiles this file too (as `fetch`).

use core::fmt;

/// Arguments a probe may fetch.
pub const MAX_ARGS: usize = 8;
/// Memory loads one argument may make (`+a(+b(+c(+d(%x0))))`).
pub const MAX_DEREFS: usize = 4;
/// Longest argument name.
pub const NAME_MAX: usize = 14;
/// A probe's label (the function it is in, for the event) is NUL-padded to this.
pub const LABEL_LEN: usize = 16;
/// Longest fetched string (bytes, without its NUL); longer ones are cut.
pub const STRING_MAX: usize = 64;
/// Bytes of one argument's header in the payload.
pub const ARG_HEADER: usize = 16;
/// Length byte of an argument whose load failed (NULL, unmapped, outside
/// the VM): it has no value bytes.
pub const FAULT: u8 = 0xFF;
/// Largest payload a hit writes.
pub const MAX_PAYLOAD: usize = MAX_ARGS * (ARG_HEADER + STRING_MAX);
/// `"HVFA"`, little-endian: a plan blob.
pub const PLAN_MAGIC: u32 = 0x4146_5648;
/// Version of the plan blob.
pub const PLAN_VERSION: u16 = 1;
/// Bytes of the plan header.
pub const PLAN_HEADER: usize = 32;
/// Bytes of one argument in the plan blob.
pub const PLAN_ARG: usize = 48;
/// Largest plan blob.
pub const PLAN_MAX: usize = PLAN_HEADER + MAX_ARGS * PLAN_ARG;

/// Where an argument's value starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base {
    /// General register x0..x30.
    Reg(u8),
    /// The stack pointer the guest was using.
    Sp,
    /// A constant (with a load: a global's address).
    Imm(u64),
    /// The current task's name (a string).
    Comm,
    /// The current task's priority.
    Prio,
}

/// How a value is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeKind {
    /// Unsigned decimal.
    Unsigned,
    /// Signed decimal.
    Signed,
    /// Hexadecimal.
    Hex,
    /// A NUL-terminated string (at most [`STRING_MAX`] bytes).
    String,
    /// A code address.
    Symbol,
}

/// A fetched value's type: how many bytes a load takes and how they are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValueType {
    /// How it is shown.
    pub kind: TypeKind,
    /// Bytes loaded (1, 2, 4, 8; 0 for a string).
    pub bytes: u8,
}

impl ValueType {
    /// `x64`, the type of an argument that names none.
    pub const DEFAULT: Self = Self {
        kind: TypeKind::Hex,
        bytes: 8,
    };
    /// `u64`.
    pub const U64: Self = Self {
        kind: TypeKind::Unsigned,
        bytes: 8,
    };
    /// `string`.
    pub const STRING: Self = Self {
        kind: TypeKind::String,
        bytes: 0,
    };

    /// The one-byte code in plans and payloads: kind << 4 | bytes.
    pub const fn code(self) -> u8 {
        let k = match self.kind {
            TypeKind::Unsigned => 1,
            TypeKind::Signed => 2,
            TypeKind::Hex => 3,
            TypeKind::String => 4,
            TypeKind::Symbol => 5,
        };
        k << 4 | self.bytes
    }

    /// Decodes [`ValueType::code`].
    pub const fn from_code(c: u8) -> Option<Self> {
        let bytes = c & 0xf;
        let kind = match c >> 4 {
            1 => TypeKind::Unsigned,
            2 => TypeKind::Signed,
            3 => TypeKind::Hex,
            4 if bytes == 0 => return Some(Self::STRING),
            5 if bytes == 8 => TypeKind::Symbol,
            _ => return None,
        };
        match bytes {
            1 | 2 | 4 | 8 => Some(Self { kind, bytes }),
            _ => None,
        }
    }

    /// Parses `u32`, `s8`, `x64`, `string`, `symbol`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "string" => return Some(Self::STRING),
            "symbol" => {
                return Some(Self {
                    kind: TypeKind::Symbol,
                    bytes: 8,
                })
            }
            _ => {}
        }
        let kind = match s.as_bytes().first()? {
            b'u' => TypeKind::Unsigned,
            b's' => TypeKind::Signed,
            b'x' => TypeKind::Hex,
            _ => return None,
        };
        let bytes = match &s[1..] {
            "8" => 1,
            "16" => 2,
            "32" => 4,
            "64" => 8,
            _ => return None,
        };
        Some(Self { kind, bytes })
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = match self.kind {
            TypeKind::String => return f.write_str("string"),
            TypeKind::Symbol => return f.write_str("symbol"),
            TypeKind::Unsigned => 'u',
            TypeKind::Signed => 's',
            TypeKind::Hex => 'x',
        };
        write!(f, "{c}{}", u32::from(self.bytes) * 8)
    }
}

/// One argument: start at `base`, then load through `derefs[..n_derefs]`
/// (each the memory at value + offset; the last load has the argument's
/// type, the others are 64-bit pointers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchArg {
    /// NUL-padded name.
    pub name: [u8; NAME_MAX],
    /// Where the value starts.
    pub base: Base,
    /// The offsets of the loads, innermost first.
    pub derefs: [i32; MAX_DEREFS],
    /// How many of `derefs` are used.
    pub n_derefs: u8,
    /// The value's type.
    pub ty: ValueType,
}

/// Why a fetch argument or a plan was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchError<'a> {
    /// No `NAME=` and no position to name it by.
    BadName(&'a str),
    /// A FETCHARG this syntax does not have.
    BadFetch(&'a str),
    /// An unknown TYPE.
    BadType(&'a str),
    /// More than [`MAX_DEREFS`] loads.
    TooDeep(&'a str),
    /// A string that is not loaded from memory (or `$comm` with a load).
    StringNeedsMemory(&'a str),
    /// More than [`MAX_ARGS`] arguments.
    TooMany,
    /// A plan blob that is malformed.
    BadPlan(&'static str),
}

impl fmt::Display for FetchError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadName(a) => write!(
                f,
                "argument '{a}': a name is 1 to {NAME_MAX} characters of [A-Za-z0-9_], starting with a letter or '_'"
            ),
            Self::BadFetch(a) => write!(
                f,
                "argument '{a}': expected %xN, %sp, $argN, $retval, $comm, $prio, \\IMM, @ADDR or +OFF(...)"
            ),
            Self::BadType(a) => write!(
                f,
                "argument '{a}': type must be u8..u64, s8..s64, x8..x64, string or symbol"
            ),
            Self::TooDeep(a) => write!(f, "argument '{a}': more than {MAX_DEREFS} memory loads"),
            Self::StringNeedsMemory(a) => {
                write!(f, "argument '{a}': a string is read from memory: write +0(...):string")
            }
            Self::TooMany => write!(f, "more than {MAX_ARGS} arguments"),
            Self::BadPlan(why) => write!(f, "bad fetch plan: {why}"),
        }
    }
}

/// Whether `n` may name an argument: `[A-Za-z_][A-Za-z0-9_]*`, at most
/// [`NAME_MAX`] bytes (the rule of `kprobe_events` names, and what fits a
/// payload header).
pub fn valid_name(n: &str) -> bool {
    let b = n.as_bytes();
    !b.is_empty()
        && b.len() <= NAME_MAX
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

fn parse_num(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) if !h.is_empty() && h.bytes().all(|c| c.is_ascii_hexdigit()) => u64::from_str_radix(h, 16).ok(),
        Some(_) => None,
        None if !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) => s.parse().ok(),
        None => None,
    }
}

fn parse_signed(s: &str) -> Option<i64> {
    match s.strip_prefix('-') {
        Some(rest) => {
            let v = parse_num(rest)?;
            if v <= 1 << 63 {
                Some((v as i64).wrapping_neg())
            } else {
                None
            }
        }
        None => i64::try_from(parse_num(s.strip_prefix('+').unwrap_or(s))?).ok(),
    }
}

impl FetchArg {
    /// Parses `[NAME=]FETCHARG[:TYPE]`; `position` (0-based) names an
    /// argument without a name `argN` as kprobes do.
    pub fn parse(text: &str, position: usize) -> Result<FetchArg, FetchError<'_>> {
        let (name, rest) = match text.split_once('=') {
            Some((n, r)) => (Some(n), r),
            None => (None, text),
        };
        // The type follows the last ':' outside parentheses (none have one).
        let (fetch, ty) = match rest.rsplit_once(':') {
            Some((f, t)) => (f, Some(ValueType::parse(t).ok_or(FetchError::BadType(text))?)),
            None => (rest, None),
        };
        let mut arg = FetchArg {
            name: [0; NAME_MAX],
            base: Base::Imm(0),
            derefs: [0; MAX_DEREFS],
            n_derefs: 0,
            ty: ty.unwrap_or(ValueType::DEFAULT),
        };
        let mut outer = [0i32; MAX_DEREFS];
        let mut n_outer = 0usize;
        let mut s = fetch;
        // Peel `±OFF(...)` from the outside in.
        while let Some(open) = s.find('(') {
            let inner = s[open + 1..].strip_suffix(')').ok_or(FetchError::BadFetch(text))?;
            let off = parse_signed(&s[..open]).ok_or(FetchError::BadFetch(text))?;
            if !(s.starts_with('+') || s.starts_with('-')) {
                return Err(FetchError::BadFetch(text));
            }
            let off = i32::try_from(off).map_err(|_| FetchError::BadFetch(text))?;
            if n_outer == MAX_DEREFS {
                return Err(FetchError::TooDeep(text));
            }
            outer[n_outer] = off;
            n_outer += 1;
            s = inner;
        }
        let mut loads = [0i32; MAX_DEREFS + 1];
        let mut n = 0usize;
        arg.base = if let Some(r) = s.strip_prefix("%x") {
            match parse_num(r) {
                Some(v) if v <= 30 && !r.starts_with("0x") => Base::Reg(v as u8),
                _ => return Err(FetchError::BadFetch(text)),
            }
        } else if s == "%sp" {
            Base::Sp
        } else if s == "%lr" {
            Base::Reg(30)
        } else if s == "$retval" {
            Base::Reg(0)
        } else if s == "$comm" {
            arg.ty = ty.unwrap_or(ValueType::STRING);
            Base::Comm
        } else if s == "$prio" {
            arg.ty = ty.unwrap_or(ValueType {
                kind: TypeKind::Unsigned,
                bytes: 1,
            });
            Base::Prio
        } else if let Some(r) = s.strip_prefix("$arg") {
            match parse_num(r) {
                Some(v) if (1..=8).contains(&v) && !r.starts_with("0x") => Base::Reg(v as u8 - 1),
                _ => return Err(FetchError::BadFetch(text)),
            }
        } else if let Some(r) = s.strip_prefix('\\') {
            Base::Imm(
                parse_signed(r)
                    .map(|v| v as u64)
                    .or_else(|| parse_num(r))
                    .ok_or(FetchError::BadFetch(text))?,
            )
        } else if let Some(r) = s.strip_prefix('@') {
            loads[0] = 0;
            n = 1;
            Base::Imm(parse_num(r).ok_or(FetchError::BadFetch(text))?)
        } else {
            return Err(FetchError::BadFetch(text));
        };
        for i in (0..n_outer).rev() {
            if n == MAX_DEREFS {
                return Err(FetchError::TooDeep(text));
            }
            loads[n] = outer[i];
            n += 1;
        }
        arg.derefs.copy_from_slice(&loads[..MAX_DEREFS]);
        arg.n_derefs = n as u8;
        match (arg.base, arg.ty.kind) {
            (Base::Comm, TypeKind::String) if n == 0 => {}
            (Base::Comm, _) => return Err(FetchError::StringNeedsMemory(text)),
            (_, TypeKind::String) if n == 0 => return Err(FetchError::StringNeedsMemory(text)),
            _ => {}
        }
        let default_name;
        let name = match name {
            Some(n) => n,
            // `$retval`, `$comm`, `$prio` name themselves.
            None if matches!(s, "$retval" | "$comm" | "$prio") && n_outer == 0 => &s[1..],
            None => {
                default_name = ArgName::positional(position);
                default_name.as_str()
            }
        };
        if !valid_name(name) {
            return Err(FetchError::BadName(text));
        }
        arg.name[..name.len()].copy_from_slice(name.as_bytes());
        Ok(arg)
    }

    /// The name.
    pub fn name(&self) -> &str {
        let len = self.name.iter().position(|&c| c == 0).unwrap_or(NAME_MAX);
        core::str::from_utf8(&self.name[..len]).unwrap_or("?")
    }

    /// The payload header this argument's values start with (the length
    /// byte, 15, is filled in at each hit).
    pub fn header(&self) -> [u8; ARG_HEADER] {
        arg_header(&self.name, self.ty)
    }

    fn to_bytes(self, out: &mut [u8; PLAN_ARG]) {
        out.fill(0);
        out[..ARG_HEADER].copy_from_slice(&self.header());
        let (kind, reg, imm) = match self.base {
            Base::Reg(r) => (0, r, 0),
            Base::Sp => (1, 0, 0),
            Base::Imm(v) => (2, 0, v),
            Base::Comm => (3, 0, 0),
            Base::Prio => (4, 0, 0),
        };
        out[16] = kind;
        out[17] = reg;
        out[18] = self.n_derefs;
        out[24..32].copy_from_slice(&imm.to_le_bytes());
        for (i, d) in self.derefs.iter().enumerate() {
            out[32 + 4 * i..36 + 4 * i].copy_from_slice(&d.to_le_bytes());
        }
    }

    fn from_bytes(b: &[u8]) -> Result<Self, FetchError<'static>> {
        if b.len() != PLAN_ARG {
            return Err(FetchError::BadPlan("argument size"));
        }
        let mut name = [0u8; NAME_MAX];
        name.copy_from_slice(&b[..NAME_MAX]);
        let len = name.iter().position(|&c| c == 0).unwrap_or(NAME_MAX);
        if name[len..].iter().any(|&c| c != 0) || !core::str::from_utf8(&name[..len]).is_ok_and(valid_name) {
            return Err(FetchError::BadPlan("argument name"));
        }
        let ty = ValueType::from_code(b[14]).ok_or(FetchError::BadPlan("argument type"))?;
        let mut imm = [0u8; 8];
        imm.copy_from_slice(&b[24..32]);
        let base = match (b[16], b[17]) {
            (0, r) if r <= 30 => Base::Reg(r),
            (1, 0) => Base::Sp,
            (2, 0) => Base::Imm(u64::from_le_bytes(imm)),
            (3, 0) => Base::Comm,
            (4, 0) => Base::Prio,
            _ => return Err(FetchError::BadPlan("argument base")),
        };
        let n_derefs = b[18];
        if usize::from(n_derefs) > MAX_DEREFS {
            return Err(FetchError::BadPlan("too many loads"));
        }
        let mut derefs = [0i32; MAX_DEREFS];
        for (i, d) in derefs.iter_mut().enumerate() {
            *d = i32::from_le_bytes([b[32 + 4 * i], b[33 + 4 * i], b[34 + 4 * i], b[35 + 4 * i]]);
        }
        let arg = FetchArg {
            name,
            base,
            derefs,
            n_derefs,
            ty,
        };
        match (base, ty.kind, n_derefs) {
            (Base::Comm, TypeKind::String, 0) => {}
            (Base::Comm, _, _) | (_, TypeKind::String, 0) => {
                return Err(FetchError::BadPlan("a string not read from memory"))
            }
            _ => {}
        }
        Ok(arg)
    }
}

/// Formats a positional name (`arg1`…) without an allocator.
struct ArgName {
    buf: [u8; 8],
    len: usize,
}

impl ArgName {
    fn positional(i: usize) -> Self {
        let mut buf = *b"arg\0\0\0\0\0";
        let mut len = 3;
        let n = i + 1;
        if n >= 10 {
            buf[len] = b'0' + (n / 10 % 10) as u8;
            len += 1;
        }
        buf[len] = b'0' + (n % 10) as u8;
        Self { buf, len: len + 1 }
    }

    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("arg")
    }
}

impl fmt::Display for FetchArg {
    /// The text form [`FetchArg::parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}=", self.name())?;
        let n = usize::from(self.n_derefs).min(MAX_DEREFS);
        let mut first = 0;
        if let (Base::Imm(_), true) = (self.base, n > 0) {
            first = 1;
        }
        for d in self.derefs[first..n].iter().rev() {
            if *d < 0 {
                write!(f, "-{}(", d.unsigned_abs())?;
            } else {
                write!(f, "+{d}(")?;
            }
        }
        match self.base {
            Base::Reg(r) => write!(f, "%x{r}")?,
            Base::Sp => f.write_str("%sp")?,
            Base::Imm(v) if first == 1 => write!(f, "@{:#x}", v.wrapping_add(self.derefs[0] as i64 as u64))?,
            Base::Imm(v) => write!(f, "\\{:#x}", v)?,
            Base::Comm => f.write_str("$comm")?,
            Base::Prio => f.write_str("$prio")?,
        }
        for _ in first..n {
            f.write_str(")")?;
        }
        write!(f, ":{}", self.ty)
    }
}

/// A probe's label and arguments: what the hypervisor runs at each hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchPlan {
    /// NUL-padded label (the function the probe is in, for the event).
    pub label: [u8; LABEL_LEN],
    /// The arguments, `argc` of them.
    pub args: [FetchArg; MAX_ARGS],
    /// How many arguments.
    pub argc: u8,
    /// Each argument as a hit runs it, made once by [`FetchPlan::push`],
    /// not at each hit.
    compiled: [Compiled; MAX_ARGS],
}

/// One argument made ready for the hit path: its payload header as the two
/// words a hit stores (the length byte 0), and the shape of its fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Compiled {
    head: [u64; 2],
    op: Op,
}

/// How a hit fetches one argument. The shapes nearly every probe uses run
/// straight, with their loads' addresses and sizes fixed in advance; the
/// rest take the general walk ([`fetch_arg`]), which gives the same values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// A register, cut to its type: `%x1:u32`, `$arg2`, `$retval`, `ticks`.
    Reg { reg: u8, mask: u64 },
    /// The memory at a register plus an offset: `+8(%x0):u32`,
    /// `pevent->OSEventCnt`.
    RegLoad { reg: u8, off: u64, size: u8 },
    /// The memory at a fixed address: a global (`OSTime`, `@0x4000`).
    Global { va: u64, size: u8 },
    /// A member through a pointer at a fixed address: `OSTCBCur->OSTCBPrio`.
    GlobalMember { ptr: u64, off: u64, size: u8 },
    /// Anything else: strings, `$comm`, `$prio`, `%sp`, immediates, longer
    /// chains.
    General,
}

impl Op {
    fn of(arg: &FetchArg) -> Self {
        let number = !matches!(arg.ty.kind, TypeKind::String) && matches!(arg.ty.bytes, 1 | 2 | 4 | 8);
        let size = arg.ty.bytes;
        let off = |i: usize| arg.derefs[i] as i64 as u64;
        match (arg.base, arg.n_derefs) {
            _ if !number => Op::General,
            (Base::Reg(reg), 0) => Op::Reg {
                reg,
                mask: u64::MAX >> (64 - 8 * u32::from(size)),
            },
            (Base::Reg(reg), 1) => Op::RegLoad { reg, off: off(0), size },
            (Base::Imm(at), 1) => Op::Global {
                va: at.wrapping_add(off(0)),
                size,
            },
            (Base::Imm(at), 2) => Op::GlobalMember {
                ptr: at.wrapping_add(off(0)),
                off: off(1),
                size,
            },
            _ => Op::General,
        }
    }
}

const EMPTY_COMPILED: Compiled = Compiled {
    head: [0; 2],
    op: Op::General,
};

const EMPTY_ARG: FetchArg = FetchArg {
    name: [0; NAME_MAX],
    base: Base::Imm(0),
    derefs: [0; MAX_DEREFS],
    n_derefs: 0,
    ty: ValueType::DEFAULT,
};

impl Default for FetchPlan {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl FetchPlan {
    /// No label, no arguments.
    pub const EMPTY: Self = Self {
        label: [0; LABEL_LEN],
        args: [EMPTY_ARG; MAX_ARGS],
        argc: 0,
        compiled: [EMPTY_COMPILED; MAX_ARGS],
    };

    /// A plan labelled `label` (cut to [`LABEL_LEN`] bytes).
    pub fn with_label(label: &str) -> Self {
        let mut p = Self::EMPTY;
        let n = label.len().min(LABEL_LEN);
        p.label[..n].copy_from_slice(&label.as_bytes()[..n]);
        p
    }

    /// The arguments in use.
    pub fn args(&self) -> &[FetchArg] {
        &self.args[..usize::from(self.argc).min(MAX_ARGS)]
    }

    /// Appends an argument; refuses a ninth one and a repeated name.
    pub fn push(&mut self, arg: FetchArg) -> Result<(), FetchError<'static>> {
        if usize::from(self.argc) >= MAX_ARGS {
            return Err(FetchError::TooMany);
        }
        if self.args().iter().any(|a| a.name == arg.name) {
            return Err(FetchError::BadPlan("two arguments with one name"));
        }
        self.args[usize::from(self.argc)] = arg;
        self.compiled[usize::from(self.argc)] = Compiled {
            head: header_words(&arg.header()),
            op: Op::of(&arg),
        };
        self.argc += 1;
        Ok(())
    }

    /// The label, without its padding.
    pub fn label(&self) -> &[u8] {
        let len = self.label.iter().position(|&c| c == 0).unwrap_or(LABEL_LEN);
        &self.label[..len]
    }

    /// Serializes into `out`; returns the length used.
    pub fn encode(&self, out: &mut [u8; PLAN_MAX]) -> usize {
        out.fill(0);
        out[0..4].copy_from_slice(&PLAN_MAGIC.to_le_bytes());
        out[4..6].copy_from_slice(&PLAN_VERSION.to_le_bytes());
        out[6] = self.argc;
        out[16..32].copy_from_slice(&self.label);
        for (i, a) in self.args().iter().enumerate() {
            let at = PLAN_HEADER + i * PLAN_ARG;
            let mut b = [0u8; PLAN_ARG];
            a.to_bytes(&mut b);
            out[at..at + PLAN_ARG].copy_from_slice(&b);
        }
        PLAN_HEADER + usize::from(self.argc) * PLAN_ARG
    }

    /// Decodes and checks a blob (from another VM: never trusted).
    pub fn from_bytes(b: &[u8]) -> Result<Self, FetchError<'static>> {
        if b.len() < PLAN_HEADER {
            return Err(FetchError::BadPlan("shorter than its header"));
        }
        if b[0..4] != PLAN_MAGIC.to_le_bytes() {
            return Err(FetchError::BadPlan("bad magic"));
        }
        if b[4..6] != PLAN_VERSION.to_le_bytes() {
            return Err(FetchError::BadPlan("unknown version"));
        }
        let argc = usize::from(b[6]);
        if argc > MAX_ARGS {
            return Err(FetchError::TooMany);
        }
        if b.len() != PLAN_HEADER + argc * PLAN_ARG {
            return Err(FetchError::BadPlan("length does not match the argument count"));
        }
        let mut p = Self::EMPTY;
        p.label.copy_from_slice(&b[16..32]);
        for i in 0..argc {
            let at = PLAN_HEADER + i * PLAN_ARG;
            p.push(FetchArg::from_bytes(&b[at..at + PLAN_ARG])?)?;
        }
        Ok(p)
    }
}

/// What a hit's arguments are read from.
pub trait FetchSource {
    /// General register `n` (0..=30).
    fn reg(&self, n: u8) -> u64;
    /// The guest's stack pointer.
    fn sp(&self) -> u64;
    /// The current task's name, NUL-padded.
    fn comm(&self) -> [u8; 16];
    /// The current task's priority, if the OS has one.
    fn prio(&self) -> Option<u64>;
    /// The `size`-byte (1, 2, 4, 8) little-endian value at `va`, if the VM
    /// maps it readable.
    fn load(&mut self, va: u64, size: u8) -> Option<u64>;
    /// Fills `buf` from `va` (never crossing a 4 KiB page); false if it is
    /// not mapped readable.
    fn read_within_page(&mut self, va: u64, buf: &mut [u8]) -> bool;
}

/// A payload being written: whole 8-byte words (an argument's header is
/// two, a number one, a string as many as it needs), each one store.
#[derive(Clone, Debug)]
pub struct PayloadBuf {
    words: [u64; MAX_PAYLOAD / 8],
}

impl PayloadBuf {
    /// All zeros.
    pub const NEW: Self = Self {
        words: [0; MAX_PAYLOAD / 8],
    };

    /// The first `len` bytes' words (`len` a multiple of 8, as [`run`]
    /// returns), as the ring stores them.
    pub fn words(&self, len: usize) -> &[u64] {
        &self.words[..(len / 8).min(MAX_PAYLOAD / 8)]
    }

    /// The first `len` bytes, copied out (for readers off the hit path).
    pub fn to_bytes(&self, len: usize) -> [u8; MAX_PAYLOAD] {
        let mut b = [0u8; MAX_PAYLOAD];
        for (chunk, w) in b.chunks_exact_mut(8).zip(self.words(len)) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        b
    }

    /// Stores word `v` at byte `at` (a multiple of 8; nothing past the end).
    #[inline(always)]
    fn put(&mut self, at: usize, v: u64) {
        if let Some(w) = self.words.get_mut(at / 8) {
            *w = v;
        }
    }

    /// Stores a number's header and value (or its header marked
    /// [`FAULT`]) at byte `at`; returns the byte after them.
    #[inline(always)]
    fn put_number(&mut self, at: usize, [name, tail]: [u64; 2], v: Option<u64>) -> usize {
        let Some(w) = self.words.get_mut(at / 8..at / 8 + 3) else {
            return at;
        };
        w[0] = name;
        match v {
            Some(v) => {
                w[1] = tail | 8 << LEN_SHIFT;
                w[2] = v;
                at + ARG_HEADER + 8
            }
            None => {
                w[1] = tail | u64::from(FAULT) << LEN_SHIFT;
                at + ARG_HEADER
            }
        }
    }

    /// Stores `bytes` from byte `at` on, zero-padded to whole words.
    fn put_bytes(&mut self, at: usize, bytes: &[u8]) {
        for (i, chunk) in bytes.chunks(8).enumerate() {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.put(at + 8 * i, u64::from_le_bytes(w));
        }
    }
}

/// A payload header: the name (at most [`NAME_MAX`] bytes, NUL-padded),
/// the type's code, and a length byte of 0 (filled in per value).
fn arg_header(name: &[u8], ty: ValueType) -> [u8; ARG_HEADER] {
    let mut h = [0u8; ARG_HEADER];
    let n = name.len().min(NAME_MAX);
    h[..n].copy_from_slice(&name[..n]);
    h[NAME_MAX] = ty.code();
    h
}

/// A payload header as two little-endian words.
fn header_words(h: &[u8; ARG_HEADER]) -> [u64; 2] {
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&h[i..i + 8]);
        u64::from_le_bytes(w)
    };
    [word(0), word(8)]
}

/// The length byte's place in a header's second word.
const LEN_SHIFT: u32 = 8 * (ARG_HEADER as u32 - 1 - 8);

/// Runs `plan` against `src`, writing the payload into `out`. Returns its
/// length, a multiple of 8. Bounded: at most [`MAX_DEREFS`] loads an
/// argument and [`STRING_MAX`] bytes a string; a failed load marks that
/// argument [`FAULT`] and the others go on.
pub fn run(plan: &FetchPlan, src: &mut impl FetchSource, out: &mut PayloadBuf) -> usize {
    let mut at = 0;
    let argc = usize::from(plan.argc).min(MAX_ARGS);
    for (arg, c) in plan.args[..argc].iter().zip(&plan.compiled) {
        let [name, tail] = c.head;
        let value = match c.op {
            Op::Reg { reg, mask } => Some(src.reg(reg) & mask),
            Op::RegLoad { reg, off, size } => src.load(src.reg(reg).wrapping_add(off), size),
            Op::Global { va, size } => src.load(va, size),
            Op::GlobalMember { ptr, off, size } => src.load(ptr, 8).and_then(|p| src.load(p.wrapping_add(off), size)),
            Op::General => {
                let head = at;
                at += ARG_HEADER;
                let len = fetch_arg(arg, src, out, &mut at);
                out.put(head, name);
                out.put(head + 8, tail | u64::from(len) << LEN_SHIFT);
                continue;
            }
        };
        at = out.put_number(at, [name, tail], value);
    }
    at
}

/// One argument's value into `out` at `*at` (moved past it); its length
/// byte: 8 for a number, a string's length, or [`FAULT`].
#[inline(never)]
fn fetch_arg(arg: &FetchArg, src: &mut impl FetchSource, out: &mut PayloadBuf, at: &mut usize) -> u8 {
    let n = usize::from(arg.n_derefs).min(MAX_DEREFS);
    let mut v = match arg.base {
        Base::Reg(r) => src.reg(r),
        Base::Sp => src.sp(),
        Base::Imm(v) => v,
        Base::Comm => {
            let comm = src.comm();
            let len = comm.iter().position(|&c| c == 0).unwrap_or(comm.len());
            out.put_bytes(*at, &comm[..len]);
            *at += len.div_ceil(8) * 8;
            return len as u8;
        }
        Base::Prio => match src.prio() {
            Some(p) => p,
            None => return FAULT,
        },
    };
    for (i, &d) in arg.derefs[..n].iter().enumerate() {
        let va = v.wrapping_add(d as i64 as u64);
        let last = i + 1 == n;
        if last && arg.ty.kind == TypeKind::String {
            v = va;
            break;
        }
        let size = if last { arg.ty.bytes } else { 8 };
        match src.load(va, size) {
            Some(x) => v = x,
            None => return FAULT,
        }
    }
    if arg.ty.kind == TypeKind::String {
        let mut s = [0u8; STRING_MAX];
        return match read_string(src, v, &mut s) {
            Some(len) => {
                out.put_bytes(*at, &s[..len]);
                *at += len.div_ceil(8) * 8;
                len as u8
            }
            None => FAULT,
        };
    }
    if n == 0 && arg.ty.bytes < 8 {
        v &= (1u64 << (8 * u32::from(arg.ty.bytes))) - 1;
    }
    out.put(*at, v);
    *at += 8;
    8
}

/// Appends an integer value the hypervisor itself knows (a return's
/// duration) to a payload of `at` bytes, `None` marking it missing; returns
/// the new length (unchanged when it does not fit).
pub fn append_int(out: &mut PayloadBuf, at: usize, name: &str, ty: ValueType, v: Option<u64>) -> usize {
    if at + ARG_HEADER + 8 > MAX_PAYLOAD || name.len() > NAME_MAX {
        return at;
    }
    out.put_number(at, header_words(&arg_header(name.as_bytes(), ty)), v)
}

/// The NUL-terminated string at `va` into `buf`, a page at a time; its
/// length (without the NUL, cut at `buf.len()`), or `None` if its first
/// byte is unreadable. A string that runs into an unmapped page ends there.
fn read_string(src: &mut impl FetchSource, va: u64, buf: &mut [u8]) -> Option<usize> {
    let mut got = 0;
    while got < buf.len() {
        let here = va.wrapping_add(got as u64);
        let room = (0x1000 - (here & 0xfff)) as usize;
        let n = room.min(buf.len() - got);
        if !src.read_within_page(here, &mut buf[got..got + n]) {
            return (got != 0).then_some(got);
        }
        if let Some(nul) = buf[got..got + n].iter().position(|&c| c == 0) {
            return Some(got + nul);
        }
        got += n;
    }
    Some(got)
}

/// One argument read back from a payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArgValue<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its type.
    pub ty: ValueType,
    /// Its value.
    pub value: Value<'a>,
}

/// A fetched value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    /// An integer (the raw bits, zero-extended from the type's size).
    Int(u64),
    /// A string's bytes.
    Str(&'a [u8]),
    /// A load failed.
    Fault,
}

/// Reads a payload's arguments; stops at the end or at anything malformed
/// (a payload comes from another VM's memory).
#[derive(Clone, Debug)]
pub struct Payload<'a> {
    rest: &'a [u8],
}

impl<'a> Payload<'a> {
    /// A payload's bytes.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }
}

impl<'a> Iterator for Payload<'a> {
    type Item = ArgValue<'a>;

    fn next(&mut self) -> Option<ArgValue<'a>> {
        if self.rest.len() < ARG_HEADER {
            return None;
        }
        let (h, rest) = self.rest.split_at(ARG_HEADER);
        let len = h[15];
        let name_len = h[..NAME_MAX].iter().position(|&c| c == 0).unwrap_or(NAME_MAX);
        let name = core::str::from_utf8(&h[..name_len]).ok().filter(|n| valid_name(n))?;
        let ty = ValueType::from_code(h[14])?;
        let (value, used) = match (len, ty.kind) {
            (FAULT, _) => (Value::Fault, 0),
            (8, k) if k != TypeKind::String => {
                let b: [u8; 8] = rest.get(..8)?.try_into().ok()?;
                (Value::Int(u64::from_le_bytes(b)), 8)
            }
            (n, TypeKind::String) if usize::from(n) <= STRING_MAX => {
                let n = usize::from(n);
                (Value::Str(rest.get(..n)?), n.div_ceil(8) * 8)
            }
            _ => return None,
        };
        self.rest = rest.get(used..)?;
        Some(ArgValue { name, ty, value })
    }
}

/// The suffix that marks a function's return (`OSSemPend%return`), as
/// `perf probe` writes it.
pub const RETURN_SUFFIX: &str = "%return";

/// Writes what a probe hit says (its event's `what`): its label, or `0x<pc>`
/// when it has none (or an unprintable one), `%return` at a return site,
/// then ` name=value` for each fetched value in `payload`.
pub fn write_what(w: &mut impl fmt::Write, label: &[u8], is_return: bool, pc: u64, payload: &[u8]) -> fmt::Result {
    if !label.is_empty() && label.iter().all(u8::is_ascii_graphic) {
        // SAFETY: every byte is printable ASCII, which is valid UTF-8. (The
        // kernel module writes this text for every probe hit it turns into
        // an event: the check above is all it needs, a UTF-8 decode more.)
        w.write_str(unsafe { core::str::from_utf8_unchecked(label) })?;
    } else {
        write!(w, "{pc:#x}")?;
    }
    if is_return {
        w.write_str(RETURN_SUFFIX)?;
    }
    for arg in Payload::new(payload) {
        write!(w, " {arg}")?;
    }
    Ok(())
}

impl fmt::Display for ArgValue<'_> {
    /// `name=value` as kprobe events print it: decimal, `0x…`, `"…"` with
    /// unprintable bytes escaped, `(fault)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}=", self.name)?;
        let v = match self.value {
            Value::Fault => return f.write_str("(fault)"),
            Value::Str(s) => {
                f.write_str("\"")?;
                for &c in s {
                    match c {
                        b'"' | b'\\' => write!(f, "\\{}", c as char)?,
                        0x20..=0x7e => write!(f, "{}", c as char)?,
                        _ => write!(f, "\\x{c:02x}")?,
                    }
                }
                return f.write_str("\"");
            }
            Value::Int(v) => v,
        };
        let bits = 8 * u32::from(self.ty.bytes.clamp(1, 8));
        let v = if bits < 64 { v & ((1u64 << bits) - 1) } else { v };
        match self.ty.kind {
            TypeKind::Unsigned => write!(f, "{v}"),
            TypeKind::Signed => {
                let shift = 64 - bits;
                write!(f, "{}", ((v << shift) as i64) >> shift)
            }
            TypeKind::Hex | TypeKind::Symbol | TypeKind::String => write!(f, "{v:#x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::collections::HashMap;
    use std::format;
    use std::string::{String, ToString};
    use std::vec::Vec;

    fn arg(s: &str) -> FetchArg {
        FetchArg::parse(s, 0).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_kprobe_syntax_and_prints_it_back() {
        for (text, printed) in [
            ("cnt=+8(%x0):u32", "cnt=+8(%x0):u32"),
            ("x=%x1", "x=%x1:x64"),
            ("t=@0xffff000040102000:u32", "t=@0xffff000040102000:u32"),
            ("n=+0(+16(%x0)):string", "n=+0(+16(%x0)):string"),
            ("c=$comm", "c=$comm:string"),
            ("p=$prio", "p=$prio:u8"),
            ("r=$retval:s32", "r=%x0:s32"),
            ("a=$arg2:u16", "a=%x1:u16"),
            ("k=\\-3:s64", "k=\\0xfffffffffffffffd:s64"),
            ("s=-8(%sp):x64", "s=-8(%sp):x64"),
            ("g=+4(@0x1000):u8", "g=+4(@0x1000):u8"),
        ] {
            let a = arg(text);
            assert_eq!(a.to_string(), printed, "{text}");
            assert_eq!(arg(printed), a, "round trip of {printed}");
        }
        assert_eq!(FetchArg::parse("%x3", 2).unwrap().name(), "arg3");
        assert_eq!(arg("t=@0x10").derefs[..1], [0]);
        assert_eq!(arg("t=@0x10").n_derefs, 1);
    }

    #[test]
    fn refuses_what_kprobes_would() {
        for bad in [
            "x=%x31",
            "x=%y0",
            "x=+8%x0",
            "x=+8(%x0",
            "x=%x0:u12",
            "x=%x0:string",
            "x=$comm:u32",
            "1x=%x0",
            "waytoolongname_=%x0",
            "x=+1(+1(+1(+1(+1(%x0))))):u8",
            "x=+1(+1(+1(+1(@0x10)))):u8",
            "x=$arg9",
            "x=8(%x0)",
            "",
        ] {
            assert!(FetchArg::parse(bad, 0).is_err(), "{bad} accepted");
        }
    }

    /// Memory of a made-up VM: pages by address.
    struct Vm {
        regs: [u64; 31],
        mem: HashMap<u64, [u8; 4096]>,
    }

    impl Vm {
        fn poke(&mut self, va: u64, bytes: &[u8]) {
            for (i, b) in bytes.iter().enumerate() {
                let a = va + i as u64;
                self.mem.entry(a & !0xfff).or_insert([0; 4096])[(a & 0xfff) as usize] = *b;
            }
        }
    }

    impl FetchSource for Vm {
        fn reg(&self, n: u8) -> u64 {
            self.regs[usize::from(n)]
        }
        fn sp(&self) -> u64 {
            0x8000
        }
        fn comm(&self) -> [u8; 16] {
            *b"Task-A\0\0\0\0\0\0\0\0\0\0"
        }
        fn prio(&self) -> Option<u64> {
            Some(12)
        }
        fn load(&mut self, va: u64, size: u8) -> Option<u64> {
            let mut b = [0u8; 8];
            for (i, byte) in b.iter_mut().enumerate().take(usize::from(size)) {
                let a = va.checked_add(i as u64)?;
                *byte = self.mem.get(&(a & !0xfff))?[(a & 0xfff) as usize];
            }
            Some(u64::from_le_bytes(b))
        }
        fn read_within_page(&mut self, va: u64, buf: &mut [u8]) -> bool {
            assert!((va & 0xfff) as usize + buf.len() <= 4096, "crossed a page");
            match self.mem.get(&(va & !0xfff)) {
                Some(p) => {
                    let o = (va & 0xfff) as usize;
                    buf.copy_from_slice(&p[o..o + buf.len()]);
                    true
                }
                None => false,
            }
        }
    }

    fn shown(plan: &FetchPlan, vm: &mut Vm) -> String {
        let mut out = PayloadBuf::NEW;
        let n = run(plan, vm, &mut out);
        assert_eq!(n % 8, 0);
        Payload::new(&out.to_bytes(n)[..n])
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn runs_a_plan_through_memory_with_faults_marked() {
        let mut vm = Vm {
            regs: [0; 31],
            mem: HashMap::new(),
        };
        vm.regs[0] = 0x1000; // an OS_EVENT
        vm.regs[1] = 0x2ff8; // a name crossing into the next page
        vm.regs[2] = 0; // NULL
        vm.poke(0x1008, &3u16.to_le_bytes());
        vm.poke(0x1010, &0x2ff8u64.to_le_bytes());
        vm.poke(0x2ff8, b"SYNC-Mbox\0");
        vm.poke(0x4000, &(-5i32).to_le_bytes());
        let mut plan = FetchPlan::with_label("OSSemPost");
        for a in [
            "cnt=+8(%x0):u16",
            "name=+0(+16(%x0)):string",
            "direct=+0(%x1):string",
            "null=+8(%x2):u32",
            "nullstr=+0(%x2):string",
            "g=@0x4000:s32",
            "who=$comm",
            "p=$prio",
        ] {
            plan.push(arg(a)).unwrap();
        }
        assert_eq!(
            shown(&plan, &mut vm),
            "cnt=3 name=\"SYNC-Mbox\" direct=\"SYNC-Mbox\" null=(fault) nullstr=(fault) g=-5 who=\"Task-A\" p=12"
        );
        assert!(plan.push(arg("ninth=%x0")).is_err());
    }

    #[test]
    fn the_shapes_run_straight_give_what_the_general_walk_gives() {
        let mut vm = Vm {
            regs: [0; 31],
            mem: HashMap::new(),
        };
        vm.regs[0] = 0x1000;
        vm.regs[1] = 0xffff_ffff_ffff_fff0; // a load that would wrap
        vm.regs[2] = 0x1_2345_6789_abcd;
        vm.poke(0x1000, &(0x0102_0304_0506_0708u64).to_le_bytes());
        vm.poke(0x1ffc, &(0xa1a2_a3a4_a5a6_a7a8u64).to_le_bytes()); // crosses a page
        vm.poke(0x4000, &0x1000u64.to_le_bytes()); // a global pointer
        vm.poke(0x4008, &0x9000u64.to_le_bytes()); // one to unmapped memory
        let specs = [
            "a=%x2:u8",
            "a=%x2:s16",
            "a=%x2:x32",
            "a=$arg3",
            "a=$retval:u32",
            "a=+4(%x0):u16",
            "a=-4(%x0):s8",
            "a=+0xffc(%x0):u64",
            "a=+0x20(%x1):u32",
            "a=+8(%x2):u64",
            "a=@0x1002:u16",
            "a=@0x4000:x64",
            "a=@0x9000:u8",
            "a=+2(@0x4000):u8",
            "a=+0(@0x4000):s32",
            "a=+2(@0x4008):u8",
            "a=+0(+0(@0x4000)):u64",
            "a=\\-3:s8",
        ];
        let mut straight = 0;
        for spec in specs {
            let mut plan = FetchPlan::EMPTY;
            plan.push(arg(spec)).unwrap();
            straight += usize::from(plan.compiled[0].op != Op::General);
            let mut general = plan;
            general.compiled[0].op = Op::General;
            let (mut a, mut b) = (PayloadBuf::NEW, PayloadBuf::NEW);
            let (n, m) = (run(&plan, &mut vm, &mut a), run(&general, &mut vm, &mut b));
            assert_eq!(
                a.words(n),
                b.words(m),
                "{spec}: {} vs {}",
                shown(&plan, &mut vm),
                shown(&general, &mut vm)
            );
        }
        assert_eq!(
            straight,
            specs.len() - 2,
            "all but the chain and the immediate run straight"
        );
    }

    #[test]
    fn strings_are_cut_at_their_bound_and_at_an_unmapped_page() {
        let mut vm = Vm {
            regs: [0; 31],
            mem: HashMap::new(),
        };
        vm.regs[0] = 0x1000;
        vm.poke(0x1000, &[b'a'; 100]);
        vm.regs[1] = 0x5ffc;
        vm.poke(0x5ffc, b"abcd");
        let mut plan = FetchPlan::EMPTY;
        plan.push(arg("long=+0(%x0):string")).unwrap();
        plan.push(arg("edge=+0(%x1):string")).unwrap();
        let s = shown(&plan, &mut vm);
        assert_eq!(s, format!("long=\"{}\" edge=\"abcd\"", "a".repeat(STRING_MAX)));
    }

    #[test]
    fn plans_survive_the_blob_and_bad_blobs_are_refused() {
        let mut plan = FetchPlan::with_label("OSQPost");
        plan.push(arg("cnt=+8(%x0):u32")).unwrap();
        plan.push(arg("s=+0(@0x1234):string")).unwrap();
        let mut b = [0u8; PLAN_MAX];
        let n = plan.encode(&mut b);
        assert_eq!(FetchPlan::from_bytes(&b[..n]), Ok(plan));
        assert_eq!(plan.label(), b"OSQPost");
        for (at, v) in [
            (0, 0),
            (6, 9),
            (PLAN_HEADER, b'1'),
            (PLAN_HEADER + 14, 0x47),
            (PLAN_HEADER + 17, 31),
        ] {
            let mut bad = b;
            bad[at] = v;
            assert!(FetchPlan::from_bytes(&bad[..n]).is_err(), "byte {at} = {v}");
        }
        assert!(FetchPlan::from_bytes(&b[..n - 1]).is_err());
    }

    #[test]
    fn every_type_prints_as_kprobes_do() {
        let v = |ty: &str, x: u64| {
            ArgValue {
                name: "v",
                ty: ValueType::parse(ty).unwrap(),
                value: Value::Int(x),
            }
            .to_string()
        };
        assert_eq!(v("u8", 0x1ff), "v=255");
        assert_eq!(v("s8", 0xff), "v=-1");
        assert_eq!(v("s64", u64::MAX), "v=-1");
        assert_eq!(v("x16", 0x12345), "v=0x2345");
        assert_eq!(v("u64", u64::MAX), "v=18446744073709551615");
        let s = ArgValue {
            name: "s",
            ty: ValueType::STRING,
            value: Value::Str(b"a\"b\n"),
        };
        assert_eq!(s.to_string(), "s=\"a\\\"b\\x0a\"");
        for t in ["u8", "s16", "x32", "u64", "string", "symbol"] {
            assert_eq!(ValueType::parse(t).unwrap().to_string(), t);
            let ty = ValueType::parse(t).unwrap();
            assert_eq!(ValueType::from_code(ty.code()), Some(ty));
        }
    }
}
