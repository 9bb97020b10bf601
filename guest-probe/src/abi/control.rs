// SPDX-License-Identifier: GPL-2.0 OR MIT

//! The control protocol of `/sys/kernel/hvtrace/*`: what user space writes
//! (probe commands, enable, counts) and what the `probes` listing says, each
//! with its parser and its formatter.
//!
//! This is the one definition of that text protocol. The kernel module
//! compiles this very file as its `cmd` module (`hv-trace build linux` copies
//! it next to the module's sources, as it generates `hvtrace_abi.h`), and
//! hv-trace's control client uses it through `guest_probe::abi::control`:
//! the host formats with the same types the module parses, and parses the
//! lines the module formats.
//!
//! Every write is parsed completely before anything happens: a command is
//! either valid and turned into one hypercall, or refused with a
//! [`ParseError`] that says why (the module logs it and returns `-EINVAL`).
//! Plain `core` only (`crate::abi` is guest-probe's ABI here and the module's
//! own view of it there), so the kernel, the host tool and the host tests run
//! the same code.

use core::fmt;

use super::fetch::{FetchArg, FetchError, FetchPlan, LABEL_LEN};
use crate::abi::MAX_PROBE_ID;

/// Largest `test_emit` count.
pub const MAX_TEST_EMIT: u64 = 1 << 20;

/// A `probes` command.
// `Add` carries its plan by value (≈0.4 KiB): no allocator in the kernel's
// and the hypervisor's builds of this file, and commands are rare.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeCmd {
    /// `add <vm> <hexaddr> [switch|entry|return=<id>] [label=<label>]
    /// [NAME=FETCHARG[:TYPE]]...`.
    Add {
        /// The VM to patch.
        vm: u8,
        /// Guest virtual address of the probe site.
        addr: u64,
        /// What a hit records.
        kind: AddKind,
        /// The label and the arguments each hit fetches.
        plan: FetchPlan,
    },
    /// `remove <vm> <id>`.
    Remove {
        /// The VM.
        vm: u8,
        /// The probe id `add` returned.
        id: u16,
    },
    /// `write <vm> <hexaddr> <size> <hexvalue>`: set a variable of the VM.
    Write {
        /// The VM.
        vm: u8,
        /// Guest virtual address, aligned to `size`.
        addr: u64,
        /// 1, 2, 4 or 8 bytes.
        size: u8,
        /// The value (its low `size` bytes are stored).
        value: u64,
    },
    /// `irq_timing <vm> 0|1`: time each interrupt of the VM.
    IrqTiming {
        /// The VM.
        vm: u8,
        /// On or off.
        on: bool,
    },
}

/// What an added probe's hits record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddKind {
    /// A plain hit (no word).
    Plain,
    /// A context switch (`switch`).
    Switch,
    /// A function's entry for its return probes (`entry`): records nothing.
    Entry,
    /// A return site of the function whose entry probe is `entry`
    /// (`return=<id>`).
    Return {
        /// The entry probe's id.
        entry: u16,
    },
}

/// Why a write was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError<'a> {
    /// Nothing but whitespace.
    Empty,
    /// Not UTF-8 text.
    NotText,
    /// An unknown first word.
    UnknownCommand(&'a str),
    /// A required argument is absent.
    Missing(&'static str),
    /// An argument is not a number of the expected base.
    NotANumber {
        /// Which argument.
        what: &'static str,
        /// What was given.
        given: &'a str,
    },
    /// A number outside its range.
    OutOfRange {
        /// Which argument.
        what: &'static str,
        /// What was given.
        given: &'a str,
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
    /// A probe address that cannot hold an A64 instruction.
    Misaligned(u64),
    /// A `write` size other than 1, 2, 4 or 8.
    BadSize(&'a str),
    /// A `write` address not aligned to its size.
    Unaligned {
        /// The address.
        addr: u64,
        /// The size it must be aligned to.
        size: u64,
    },
    /// Words after a complete command.
    Trailing(&'a str),
    /// A label with spaces, unprintable bytes or more than 16 bytes.
    BadLabel(&'a str),
    /// A fetch argument that does not parse.
    Fetch(FetchError<'a>),
}

impl fmt::Display for ParseError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "empty write"),
            Self::NotText => write!(f, "not UTF-8 text"),
            Self::UnknownCommand(c) => {
                write!(
                    f,
                    "unknown command '{c}' (expected 'add <vm> <hexaddr> [switch] [label=<label>] [NAME=FETCHARG[:TYPE]]...' or 'remove <vm> <id>')"
                )
            }
            Self::Missing(what) => write!(f, "missing {what}"),
            Self::NotANumber { what, given } => write!(f, "{what} '{given}' is not a number"),
            Self::OutOfRange { what, given, min, max } => {
                write!(f, "{what} {given} out of range ({min}..={max})")
            }
            Self::Misaligned(a) => write!(f, "address {a:#x} is not 4-byte aligned"),
            Self::BadSize(s) => write!(f, "size {s:?} is not 1, 2, 4 or 8"),
            Self::Unaligned { addr, size } => write!(f, "address {addr:#x} is not aligned to its size {size}"),
            Self::Trailing(w) => write!(f, "unexpected '{w}' after the command"),
            Self::BadLabel(l) => write!(f, "label '{l}' is not 1 to {LABEL_LEN} printable characters"),
            Self::Fetch(e) => write!(f, "{e}"),
        }
    }
}

fn text(buf: &[u8]) -> Result<&str, ParseError<'_>> {
    let s = core::str::from_utf8(buf).map_err(|_| ParseError::NotText)?;
    let s = s.trim();
    if s.is_empty() {
        Err(ParseError::Empty)
    } else {
        Ok(s)
    }
}

fn number<'a>(what: &'static str, given: &'a str, radix: u32, min: u64, max: u64) -> Result<u64, ParseError<'a>> {
    let digits = if radix == 16 {
        given
            .strip_prefix("0x")
            .or_else(|| given.strip_prefix("0X"))
            .unwrap_or(given)
    } else {
        given
    };
    // from_str_radix accepts a leading '+'; we do not.
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(ParseError::NotANumber { what, given });
    }
    let v = u64::from_str_radix(digits, radix).map_err(|_| {
        if digits.bytes().all(|c| (c as char).is_digit(radix)) {
            ParseError::OutOfRange { what, given, min, max }
        } else {
            ParseError::NotANumber { what, given }
        }
    })?;
    if v < min || v > max {
        return Err(ParseError::OutOfRange { what, given, min, max });
    }
    Ok(v)
}

/// `enable`: `0` or `1`.
pub fn parse_enable(buf: &[u8]) -> Result<bool, ParseError<'_>> {
    let s = text(buf)?;
    Ok(number("enable value", s, 10, 0, 1)? == 1)
}

/// `test_emit`: a record count, 1..=[`MAX_TEST_EMIT`].
pub fn parse_count(buf: &[u8]) -> Result<u64, ParseError<'_>> {
    let s = text(buf)?;
    number("count", s, 10, 1, MAX_TEST_EMIT)
}

fn label(given: &str) -> Result<FetchPlan, ParseError<'_>> {
    if given.is_empty() || given.len() > LABEL_LEN || !given.bytes().all(|c| c.is_ascii_graphic()) {
        return Err(ParseError::BadLabel(given));
    }
    Ok(FetchPlan::with_label(given))
}

/// A label and fetch arguments, as `add` takes them after its address.
fn plan_words<'a>(words: impl Iterator<Item = &'a str>) -> Result<FetchPlan, ParseError<'a>> {
    let mut words = words.peekable();
    let mut plan = match words.peek().and_then(|w| w.strip_prefix("label=")) {
        Some(l) => {
            words.next();
            label(l)?
        }
        None => FetchPlan::EMPTY,
    };
    for (i, w) in words.enumerate() {
        let arg = FetchArg::parse(w, i).map_err(ParseError::Fetch)?;
        if plan.args().iter().any(|a| a.name == arg.name) {
            return Err(ParseError::Fetch(FetchError::BadName(w)));
        }
        plan.push(arg).map_err(|_| ParseError::Fetch(FetchError::TooMany))?;
    }
    Ok(plan)
}

/// Writes ` label=<label>` and ` <arg>` for each argument.
fn write_plan(f: &mut fmt::Formatter<'_>, plan: &FetchPlan) -> fmt::Result {
    if let Ok(l) = core::str::from_utf8(plan.label()) {
        if !l.is_empty() {
            write!(f, " label={l}")?;
        }
    }
    for a in plan.args() {
        write!(f, " {a}")?;
    }
    Ok(())
}

/// `probes`: `add <vm> <hexaddr> [switch] [label=<label>] [ARG]...`,
/// `remove <vm> <id>`, `write <vm> <hexaddr> <size> <hexvalue>` or
/// `irq_timing <vm> 0|1`.
pub fn parse_probe(buf: &[u8]) -> Result<ProbeCmd, ParseError<'_>> {
    let s = text(buf)?;
    let mut words = s.split_ascii_whitespace();
    let verb = words.next().ok_or(ParseError::Empty)?;
    if !matches!(verb, "add" | "remove" | "write" | "irq_timing") {
        return Err(ParseError::UnknownCommand(verb));
    }
    let mut arg = |what: &'static str, radix: u32, min: u64, max: u64| {
        number(what, words.next().ok_or(ParseError::Missing(what))?, radix, min, max)
    };
    let vm = arg("vm", 10, 0, 255)? as u8;
    let cmd = if verb == "add" {
        let addr = arg("address", 16, 1, u64::MAX)?;
        if addr % 4 != 0 {
            return Err(ParseError::Misaligned(addr));
        }
        let mut rest = words.by_ref().peekable();
        let kind = match rest.peek().copied() {
            Some("switch") => AddKind::Switch,
            Some("entry") => AddKind::Entry,
            Some(w) if w.starts_with("return=") => {
                let id = number("entry probe id", &w[7..], 10, 1, u64::from(MAX_PROBE_ID) - 1)?;
                AddKind::Return { entry: id as u16 }
            }
            _ => AddKind::Plain,
        };
        if kind != AddKind::Plain {
            rest.next();
        }
        let plan = plan_words(rest)?;
        ProbeCmd::Add { vm, addr, kind, plan }
    } else if verb == "irq_timing" {
        let on = arg("on (0 or 1)", 10, 0, 1)? == 1;
        ProbeCmd::IrqTiming { vm, on }
    } else if verb == "write" {
        let addr = arg("address", 16, 0, u64::MAX)?;
        let given = words.next().ok_or(ParseError::Missing("size"))?;
        let size = match given {
            "1" | "2" | "4" | "8" => given.as_bytes()[0] - b'0',
            _ => return Err(ParseError::BadSize(given)),
        };
        let size = u64::from(size);
        if addr % size != 0 {
            return Err(ParseError::Unaligned { addr, size });
        }
        let mut arg = |what: &'static str, radix: u32, min: u64, max: u64| {
            number(what, words.next().ok_or(ParseError::Missing(what))?, radix, min, max)
        };
        let max = if size == 8 { u64::MAX } else { (1 << (size * 8)) - 1 };
        let value = arg("value", 16, 0, max)?;
        ProbeCmd::Write {
            vm,
            addr,
            size: size as u8,
            value,
        }
    } else {
        let id = arg("probe id", 10, 0, u64::from(MAX_PROBE_ID) - 1)? as u16;
        ProbeCmd::Remove { vm, id }
    };
    match words.next() {
        None => Ok(cmd),
        Some(w) => Err(ParseError::Trailing(w)),
    }
}

impl fmt::Display for ProbeCmd {
    /// The command as the module parses it ([`parse_probe`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Add { vm, addr, kind, plan } => {
                write!(f, "add {vm} {addr:x}")?;
                match kind {
                    AddKind::Plain => {}
                    AddKind::Switch => write!(f, " switch")?,
                    AddKind::Entry => write!(f, " entry")?,
                    AddKind::Return { entry } => write!(f, " return={entry}")?,
                }
                write_plan(f, &plan)
            }
            Self::Remove { vm, id } => write!(f, "remove {vm} {id}"),
            Self::Write { vm, addr, size, value } => write!(f, "write {vm} {addr:x} {size} {value:x}"),
            Self::IrqTiming { vm, on } => write!(f, "irq_timing {vm} {}", u8::from(on)),
        }
    }
}

/// What a probe records, as the listing names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListedKind {
    /// A context switch (`kind=switch`).
    Switch,
    /// A plain hit (`kind=plain`).
    Plain,
    /// A function entry for return probes (`kind=entry`).
    Entry,
    /// A return site (`kind=return`).
    Return,
}

impl ListedKind {
    /// The word of the listing.
    pub const fn word(self) -> &'static str {
        match self {
            Self::Switch => "switch",
            Self::Plain => "plain",
            Self::Entry => "entry",
            Self::Return => "return",
        }
    }
}

/// One line of the `probes` listing:
/// `vm=<vm> id=<id> addr=<0xhex> kind=<switch|plain> hits=<n> owner=<hvtrace|other>`,
/// then the probe's `label=<label>` and fetch arguments, if it has them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeLine {
    /// The VM the probe is in.
    pub vm: u8,
    /// Its id.
    pub id: u16,
    /// The guest virtual address of its site.
    pub addr: u64,
    /// What a hit records.
    pub kind: ListedKind,
    /// Hits so far (summed over the VM's cores).
    pub hits: u64,
    /// Whether this module added it (and removes it when unloaded).
    pub owned: bool,
    /// Its label and fetch arguments.
    pub plan: FetchPlan,
}

impl fmt::Display for ProbeLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "vm={} id={} addr={:#x} kind={} hits={} owner={}",
            self.vm,
            self.id,
            self.addr,
            self.kind.word(),
            self.hits,
            if self.owned { "hvtrace" } else { "other" }
        )?;
        write_plan(f, &self.plan)
    }
}

/// Why a listing line could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineError<'a> {
    /// A `key=` field is absent.
    Missing(&'static str),
    /// A field's value is not what its key takes.
    Bad {
        /// The key.
        key: &'static str,
        /// What was given.
        given: &'a str,
    },
    /// The label or a fetch argument after the fields does not parse.
    Plan(ParseError<'a>),
}

impl fmt::Display for LineError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing(key) => write!(f, "no {key}= field"),
            Self::Bad { key, given } => write!(f, "{key}={given} is not a valid value"),
            Self::Plan(e) => write!(f, "{e}"),
        }
    }
}

impl ProbeLine {
    /// Reads one listing line (as [`ProbeLine`]'s `Display` writes it).
    /// A line of another shape (`vm=<vm> error: …`) is an error.
    pub fn parse(line: &str) -> Result<Self, LineError<'_>> {
        let field = |key: &'static str| {
            line.split_ascii_whitespace()
                .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
                .ok_or(LineError::Missing(key))
        };
        let num = |key: &'static str, radix: u32, max: u64| -> Result<u64, LineError<'_>> {
            let given = field(key)?;
            let digits = if radix == 16 {
                given.strip_prefix("0x").ok_or(LineError::Bad { key, given })?
            } else {
                given
            };
            match u64::from_str_radix(digits, radix) {
                Ok(v) if v <= max && digits.bytes().all(|c| c.is_ascii_hexdigit()) => Ok(v),
                _ => Err(LineError::Bad { key, given }),
            }
        };
        let kind = match field("kind")? {
            "switch" => ListedKind::Switch,
            "plain" => ListedKind::Plain,
            "entry" => ListedKind::Entry,
            "return" => ListedKind::Return,
            given => return Err(LineError::Bad { key: "kind", given }),
        };
        let owned = match field("owner")? {
            "hvtrace" => true,
            "other" => false,
            given => return Err(LineError::Bad { key: "owner", given }),
        };
        let plan = plan_words(
            line.split_ascii_whitespace()
                .skip_while(|w| !w.starts_with("owner="))
                .skip(1),
        )
        .map_err(LineError::Plan)?;
        Ok(ProbeLine {
            plan,
            vm: num("vm", 10, u64::from(u8::MAX))? as u8,
            id: num("id", 10, u64::from(MAX_PROBE_ID) - 1)? as u16,
            addr: num("addr", 16, u64::MAX)?,
            kind,
            hits: num("hits", 10, u64::MAX)?,
            owned,
        })
    }
}

/// The `name value` lines of the `stats` attribute (`records 12`,
/// `hyp_drops 0`, …); other lines (`region …`, `ring0 …`) are skipped.
pub fn stat_lines(text: &str) -> impl Iterator<Item = (&str, u64)> {
    text.lines().filter_map(|l| {
        let (k, v) = l.trim().split_once(' ')?;
        Some((k, v.trim().parse().ok()?))
    })
}
