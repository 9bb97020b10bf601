//! The host-side compiler from `perf probe`-style argument specs
//! (`pevent->OSEventCnt`, `pname:string`, `OSTime`) to the fetch arguments
//! the hypervisor runs ([`crate::abi::fetch`]), resolved against an image's
//! DWARF: where a parameter or local is at the probe address, where a global
//! lives, the offset of a member, the size and signedness of the result.
//!
//! [`DebugInfo::load`] reads a linked image (the RTOS ELF or a vmlinux) and
//! keeps its bytes; each query then reads only what it needs: the unit that
//! holds an address is found through `.debug_aranges`, never by walking every
//! DIE, and a global is looked for in that unit first, then unit by unit
//! until its definition. [`DebugInfo::functions`] is the one query that reads
//! every unit's top level (once; the list is kept, and also answers for the
//! addresses `.debug_aranges` leaves out, as the assembler's units do).
//!
//! What a spec may say is documented on [`DebugInfo::compile`]; what can be
//! fetched at an address (like `perf probe -V`) is [`DebugInfo::vars_at`].
//! Malformed input (ELF, DWARF, spec) is a [`DebugInfoError`] that says what to
//! do next, never a panic.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;
use std::sync::{Mutex, OnceLock};

use gimli::{AttributeValue, Operation, UnitOffset, UnwindSection};
use object::{Object, ObjectKind, ObjectSection, ObjectSymbol, SymbolKind};

use crate::abi::fetch::{Base, FetchArg, TypeKind, ValueType, MAX_DEREFS, NAME_MAX};
use crate::elf::{self, ElfError, R};

/// Why an image could not be read or a spec could not be compiled.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DebugInfoError {
    /// The file is not a usable ELF.
    #[error("{0}")]
    Elf(#[from] ElfError),
    /// The image has no `.debug_info`.
    #[error("the image has no DWARF debug info: rebuild it with -g (a vmlinux with CONFIG_DEBUG_INFO_DWARF5=y)")]
    NoDebugInfo,
    /// The DWARF is corrupt or uses something we cannot read.
    #[error("DWARF: {0}")]
    Dwarf(String),
    /// The address is in no function the DWARF describes.
    #[error("{addr:#x} is in no function with debug info: give an address inside a C function compiled with -g")]
    NoFunction {
        /// The address asked about.
        addr: u64,
    },
    /// The spec does not parse.
    #[error("argument '{spec}': {why}")]
    Syntax {
        /// The argument as given.
        spec: String,
        /// What is wrong with it.
        why: String,
    },
    /// Raw kprobe text that [`FetchArg::parse`] refused.
    #[error("{0}")]
    Fetch(String),
    /// `@SYMBOL` names no symbol.
    #[error("argument '{spec}': no data symbol named '{symbol}' in the image's symbol table; check the spelling or write @0xADDRESS")]
    NoSymbol {
        /// The argument as given.
        spec: String,
        /// The symbol.
        symbol: String,
    },
    /// `@SYMBOL` names several symbols at different addresses.
    #[error("argument '{spec}': symbol '{symbol}' is defined at several addresses ({}); write @0xADDRESS", hex_list(.addrs))]
    AmbiguousSymbol {
        /// The argument as given.
        spec: String,
        /// The symbol.
        symbol: String,
        /// Its addresses.
        addrs: Vec<u64>,
    },
    /// No parameter, local or global has that name.
    #[error("argument '{spec}': no parameter, local or global variable named '{name}' at {site}; in scope there: {}", known_list(.known))]
    UnknownName {
        /// The argument as given.
        spec: String,
        /// The name.
        name: String,
        /// The probe site (`function+0xOFF`).
        site: String,
        /// The parameters and locals in scope there.
        known: Vec<String>,
    },
    /// The variable exists but its value cannot be recovered at the probe address.
    #[error("argument '{spec}': '{name}' is not available at {site} ({why}); probe the function entry or use %xN")]
    Unavailable {
        /// The argument as given.
        spec: String,
        /// The variable.
        name: String,
        /// The probe site (`function+0xOFF`).
        site: String,
        /// Why, in a few words.
        why: String,
    },
    /// A global the DWARF declares but neither defines nor the symbol table has.
    #[error("argument '{spec}': the global '{name}' is declared in the DWARF but has no address (no definition, no symbol); is it compiled out?")]
    NoAddress {
        /// The argument as given.
        spec: String,
        /// The variable.
        name: String,
    },
    /// A struct or union has no member of that name.
    #[error("argument '{spec}': {ty} has no member '{member}'; its members: {}", known_list(.members))]
    NoMember {
        /// The argument as given.
        spec: String,
        /// The struct or union type.
        ty: String,
        /// The member asked for.
        member: String,
        /// Its members' names (the first few).
        members: Vec<String>,
    },
    /// `->`, `.` or the final value does not fit the type it is applied to.
    #[error("argument '{spec}': '{expr}' is {ty}: {hint}")]
    WrongType {
        /// The argument as given.
        spec: String,
        /// The part of the argument that has the type.
        expr: String,
        /// Its C type.
        ty: String,
        /// What to write instead.
        hint: String,
    },
    /// More memory loads than a probe may make.
    #[error("argument '{spec}': needs {loads} memory loads, more than the {MAX_DEREFS} a probe may make; fetch a shorter chain")]
    TooDeep {
        /// The argument as given.
        spec: String,
        /// How many loads it needs.
        loads: usize,
    },
}

impl From<gimli::Error> for DebugInfoError {
    fn from(e: gimli::Error) -> Self {
        DebugInfoError::Dwarf(e.to_string())
    }
}

fn hex_list(addrs: &[u64]) -> String {
    addrs.iter().map(|a| format!("{a:#x}")).collect::<Vec<_>>().join(", ")
}

/// The first ten names of a list, for error messages.
fn known_list(names: &[String]) -> String {
    const SHOWN: usize = 10;
    if names.is_empty() {
        return "none".to_string();
    }
    let mut s = names.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > SHOWN {
        s.push_str(&format!(", … ({} more)", names.len() - SHOWN));
    }
    s
}

/// A function with code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Function {
    /// Its name.
    pub name: String,
    /// Its entry address (`DW_AT_low_pc`, or the start of its first range).
    pub entry: u64,
    /// Bytes of code from the entry (of its first range when it has several).
    pub size: u64,
}

/// Whether a variable is a parameter or a local.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VarKind {
    /// A formal parameter.
    Parameter,
    /// A local variable (of the function or of a block containing the address).
    Local,
}

/// Where a variable's value is at an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// In general register xN.
    Register(u8),
    /// In memory at `base + offset` (a stack slot, a static, a struct passed by reference).
    Memory {
        /// The register, stack pointer or address it is relative to.
        base: Base,
        /// The offset from it.
        offset: i64,
    },
    /// The value the caller passed in xN: only known at the entry, where xN still holds it.
    AtEntry(u8),
    /// No usable DWARF location, but at the function's entry the AAPCS64 puts it in xN.
    Aapcs(u8),
    /// No usable DWARF location, but at the entry the AAPCS64 passes it by
    /// reference: it is in memory at the address in xN.
    AapcsByReference(u8),
    /// Not recoverable here (the reason, in a few words).
    Unavailable(&'static str),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Location::Register(r) => write!(f, "x{r}"),
            Location::Memory {
                base: Base::Imm(a),
                offset,
            } => write!(f, "memory at {:#x}", a.wrapping_add_signed(offset)),
            Location::Memory { base, offset } => {
                let base = match base {
                    Base::Sp => "%sp".to_string(),
                    Base::Reg(r) => format!("%x{r}"),
                    _ => "?".to_string(),
                };
                if offset < 0 {
                    write!(f, "memory at -{}({base})", offset.unsigned_abs())
                } else {
                    write!(f, "memory at +{offset}({base})")
                }
            }
            Location::AtEntry(r) => write!(f, "x{r} at entry"),
            Location::Aapcs(r) => write!(f, "x{r} at entry (AAPCS64)"),
            Location::AapcsByReference(r) => write!(f, "memory at +0(%x{r}) at entry (AAPCS64, by reference)"),
            Location::Unavailable(why) => write!(f, "unavailable ({why})"),
        }
    }
}

/// A variable that can be named at an address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Var {
    /// Its name.
    pub name: String,
    /// Its C type, as written in C (`OS_EVENT *`, `INT16U`, `char [16]`).
    pub type_name: String,
    /// Parameter or local.
    pub kind: VarKind,
    /// Where it is at the address.
    pub location: Location,
}

impl fmt::Display for Var {
    /// `OS_EVENT * pevent (x0)`, as `perf probe -V` lists them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sep = if self.type_name.ends_with('*') { "" } else { " " };
        write!(f, "{}{sep}{} ({})", self.type_name, self.name, self.location)
    }
}

/// An image's debug info, ready to compile argument specs against.
pub struct DebugInfo {
    /// The ELF, owned: every query parses what it needs from it again.
    image: Vec<u8>,
    /// `ET_REL`: addresses are section-relative and 0 is a real one.
    relocatable: bool,
    /// The `.debug_info` offsets of the units' headers, ascending.
    unit_starts: Vec<usize>,
    /// Address ranges → unit, from `.debug_aranges`.
    aranges: Vec<CuRange>,
    /// Every function and its DIE, sorted by name (built on the first
    /// [`DebugInfo::functions`], or an address `.debug_aranges` misses).
    functions: OnceLock<Vec<(Function, usize)>>,
    /// Globals looked up so far, by name and the unit looked in first.
    globals: Mutex<HashMap<GlobalKey, Option<Global>>>,
    /// Struct/union definitions looked up by kind and tag so far.
    definitions: Mutex<HashMap<(u16, String), Option<usize>>>,
}

impl fmt::Debug for DebugInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DebugInfo")
            .field("image_bytes", &self.image.len())
            .field("units", &self.unit_starts.len())
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, Debug)]
struct CuRange {
    begin: u64,
    end: u64,
    unit: usize,
}

/// A global's name and the unit it was looked for in first.
type GlobalKey = (String, Option<usize>);

/// A global variable: its address and its DWARF type.
#[derive(Clone, Copy, Debug)]
struct Global {
    addr: u64,
    ty: Option<usize>,
}

impl DebugInfo {
    /// From a linked ELF image (the RTOS ELF, or a vmlinux). Error if no DWARF.
    pub fn load(elf: &[u8]) -> Result<DebugInfo, DebugInfoError> {
        let file = elf::parse(elf)?;
        let relocatable = file.kind() == ObjectKind::Relocatable;
        let sections = elf::DwarfSections::load(&file)?;
        if sections.is_empty() {
            return Err(DebugInfoError::NoDebugInfo);
        }
        let dwarf = sections.dwarf();
        let mut unit_starts = Vec::new();
        let mut headers = dwarf.units();
        while let Some(h) = headers.next()? {
            if let Some(o) = h.offset().as_debug_info_offset() {
                unit_starts.push(o.0);
            }
        }
        if unit_starts.is_empty() {
            return Err(DebugInfoError::NoDebugInfo);
        }
        let mut aranges = Vec::new();
        let mut sets = dwarf.debug_aranges.headers();
        while let Some(set) = sets.next()? {
            let unit = set.debug_info_offset().0;
            let mut entries = set.entries();
            while let Some(e) = entries.next()? {
                let r = e.range();
                if r.end > r.begin && (relocatable || r.begin != 0) {
                    aranges.push(CuRange {
                        begin: r.begin,
                        end: r.end,
                        unit,
                    });
                }
            }
        }
        aranges.sort_by_key(|r| (r.begin, r.end));
        Ok(DebugInfo {
            image: elf.to_vec(),
            relocatable,
            unit_starts,
            aranges,
            functions: OnceLock::new(),
            globals: Mutex::new(HashMap::new()),
            definitions: Mutex::new(HashMap::new()),
        })
    }

    /// Functions with code (DW_TAG_subprogram with low_pc), name matching a glob-ish
    /// pattern (`*` wildcard; None = all), sorted by name: name, entry address, size.
    pub fn functions(&self, pattern: Option<&str>) -> Vec<Function> {
        if self.functions.get().is_none() {
            // Fills the index; an image that no longer parses lists nothing.
            let _ = self.with_cx(|cx| Ok(cx.function_index().len()));
        }
        let Some(all) = self.functions.get() else {
            return Vec::new();
        };
        all.iter()
            .filter(|(f, _)| pattern.is_none_or(|p| glob_match(p, &f.name)))
            .map(|(f, _)| f.clone())
            .collect()
    }

    /// What can be fetched at `addr` (like `perf probe -V`): the parameters (and locals
    /// with a usable location) of the function containing addr, each with its C type
    /// name (e.g. "OS_EVENT *", "INT16U") and where it is at addr (register xN, or
    /// "x1 at entry (AAPCS64)", or "unavailable"). Error if addr is in no function.
    pub fn vars_at(&self, addr: u64) -> Result<Vec<Var>, DebugInfoError> {
        self.with_cx(|cx| {
            let scope = cx.scope_at(addr)?.ok_or(DebugInfoError::NoFunction { addr })?;
            let mut out = Vec::new();
            for v in &scope.vars {
                if v.kind == VarKind::Local && matches!(v.location, Location::Unavailable(_)) {
                    continue;
                }
                out.push(Var {
                    name: v.name.clone(),
                    type_name: cx.type_name(v.ty, 0),
                    kind: v.kind,
                    location: v.location,
                });
            }
            Ok(out)
        })
    }

    /// Compiles one argument spec, at probe address `addr`, into a FetchArg.
    /// `position` is the 0-based index, for default names.
    ///
    /// A spec is either
    /// - raw kprobe text `[NAME=]FETCHARG[:TYPE]` whose FETCHARG starts with
    ///   `%`, `$`, `\`, `+`, `-` or `@`: parsed by [`FetchArg::parse`] as it
    ///   is, except that `@SYMBOL[+OFF]` (anywhere in it) is first replaced
    ///   by the symbol's address from the symbol table (`@OSTime:u32`);
    /// - or `perf probe` style `[NAME=]VAR[->member|.member]...[:TYPE]`: VAR
    ///   is a parameter or local of the function containing `addr` (the
    ///   innermost scope wins), else a global variable. `->` loads a pointer
    ///   to a struct or union and moves to a member, `.` moves to a member of
    ///   a struct in memory; anonymous members are looked through. The value
    ///   gets its DWARF type (`u16`, `s32`, `x64` for pointers, `symbol` for
    ///   function pointers) unless `:TYPE` says otherwise; a char array or a
    ///   char pointer is read as a string only with `:string`. The name is
    ///   NAME, else the last member or the variable (cut to 14 characters).
    pub fn compile(&self, addr: u64, spec: &str, position: usize) -> Result<FetchArg, DebugInfoError> {
        let text = spec.trim();
        let (name, rest) = match text.split_once('=') {
            Some((n, r)) => (Some(n.trim()), r.trim()),
            None => (None, text),
        };
        let (expr, ty) = match rest.rsplit_once(':') {
            Some((e, t)) => (e.trim(), Some(t.trim())),
            None => (rest, None),
        };
        if expr.starts_with(['%', '$', '\\', '+', '-', '@']) {
            let resolved = self.resolve_at_symbols(text)?;
            // Errors quote the argument as the user wrote it, not as resolved.
            return FetchArg::parse(&resolved, position)
                .map_err(|e| DebugInfoError::Fetch(e.to_string().replacen(&resolved, text, 1)));
        }
        let syntax = |why: String| DebugInfoError::Syntax {
            spec: text.to_string(),
            why,
        };
        if let Some(n) = name {
            if !valid_name(n) {
                return Err(syntax(format!(
                    "'{n}' is not a valid name: 1 to {NAME_MAX} characters of [A-Za-z0-9_], starting with a letter or '_'"
                )));
            }
        }
        let ty = match ty {
            Some(t) => Some(ValueType::parse(t).ok_or_else(|| {
                syntax(format!(
                    "unknown type '{t}': use u8..u64, s8..s64, x8..x64, string or symbol"
                ))
            })?),
            None => None,
        };
        let path = Path::parse(expr).map_err(syntax)?;
        let q = Query {
            spec: text,
            name,
            path: &path,
            ty,
            position,
        };
        self.with_cx(|cx| cx.compile(addr, &q))
    }

    /// Replaces every `@SYMBOL[+OFF]` in raw kprobe text by `@0xADDRESS`.
    fn resolve_at_symbols(&self, text: &str) -> Result<String, DebugInfoError> {
        if !text.contains('@') {
            return Ok(text.to_string());
        }
        let file = elf::parse(&self.image)?;
        let mut out = String::with_capacity(text.len() + 16);
        let mut rest = text;
        while let Some(at) = rest.find('@') {
            out.push_str(&rest[..=at]);
            rest = &rest[at + 1..];
            if !rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '.') {
                continue; // @0x… or @123: an address already
            }
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                .unwrap_or(rest.len());
            let symbol = &rest[..end];
            rest = &rest[end..];
            let mut off = 0i64;
            if let Some(tail) = rest.strip_prefix(['+', '-']) {
                let len = tail.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(tail.len());
                if let Some(v) = parse_num(&tail[..len]).and_then(|v| i64::try_from(v).ok()) {
                    off = if rest.starts_with('-') { -v } else { v };
                    rest = &tail[len..];
                }
            }
            let addr = data_symbol(&file, symbol).map_err(|addrs| {
                if addrs.is_empty() {
                    DebugInfoError::NoSymbol {
                        spec: text.to_string(),
                        symbol: symbol.to_string(),
                    }
                } else {
                    DebugInfoError::AmbiguousSymbol {
                        spec: text.to_string(),
                        symbol: symbol.to_string(),
                        addrs,
                    }
                }
            })?;
            out.push_str(&format!("{:#x}", addr.wrapping_add_signed(off)));
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Parses the image again and runs `f` over its DWARF.
    fn with_cx<T>(&self, f: impl FnOnce(&Cx<'_>) -> Result<T, DebugInfoError>) -> Result<T, DebugInfoError> {
        let file = elf::parse(&self.image)?;
        let sections = elf::DwarfSections::load(&file)?;
        let dwarf = sections.dwarf();
        let cx = Cx {
            di: self,
            file: &file,
            dwarf: &dwarf,
            units: RefCell::new(HashMap::new()),
        };
        f(&cx)
    }
}

use crate::abi::fetch::valid_name;

fn parse_num(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// `*` matches any run of characters, `?` any one; everything else itself.
fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The address of a data (or untyped) symbol: a global one, else the one
/// local one; `Err` with the addresses when there is none or several.
fn data_symbol(file: &object::File<'_>, name: &str) -> Result<u64, Vec<u64>> {
    let mut locals = Vec::new();
    for s in file.symbols() {
        if s.name() != Ok(name)
            || s.is_undefined()
            || !matches!(s.kind(), SymbolKind::Data | SymbolKind::Unknown | SymbolKind::Text)
        {
            continue;
        }
        if s.is_global() {
            return Ok(s.address());
        }
        if !locals.contains(&s.address()) {
            locals.push(s.address());
        }
    }
    match locals.as_slice() {
        [one] => Ok(*one),
        _ => Err(locals),
    }
}

/// One step of a perf-style path.
#[derive(Clone, Debug)]
enum Step {
    /// `->member`
    Arrow(String),
    /// `.member`
    Dot(String),
}

/// `VAR[->member|.member]...`
#[derive(Clone, Debug)]
struct Path {
    var: String,
    steps: Vec<Step>,
}

impl Path {
    fn parse(expr: &str) -> Result<Path, String> {
        fn ident(s: &str) -> Option<(&str, &str)> {
            let end = s
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(s.len());
            let id = &s[..end];
            id.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                .then_some((id, &s[end..]))
        }
        let expected = "expected VAR[->member|.member]...[:TYPE], or kprobe text such as +8(%x0):u16";
        let (var, mut rest) = ident(expr).ok_or_else(|| expected.to_string())?;
        let mut steps = Vec::new();
        while !rest.is_empty() {
            let (arrow, after) = if let Some(r) = rest.strip_prefix("->") {
                (true, r)
            } else if let Some(r) = rest.strip_prefix('.') {
                (false, r)
            } else {
                return Err(format!("unexpected '{rest}': {expected}"));
            };
            let (m, r) = ident(after)
                .ok_or_else(|| format!("a member name must follow '{}'", &rest[..rest.len() - after.len()]))?;
            steps.push(if arrow {
                Step::Arrow(m.to_string())
            } else {
                Step::Dot(m.to_string())
            });
            rest = r;
        }
        Ok(Path {
            var: var.to_string(),
            steps,
        })
    }
}

/// A parsed perf-style argument.
struct Query<'a> {
    spec: &'a str,
    name: Option<&'a str>,
    path: &'a Path,
    ty: Option<ValueType>,
    position: usize,
}

/// What a DWARF type is, once typedefs and qualifiers are looked through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Void,
    Int { signed: bool, bytes: u64 },
    Float { bytes: u64 },
    Pointer { target: Option<usize> },
    Aggregate { die: usize, union: bool },
    Array { elem: Option<usize> },
    Func,
    Other,
}

/// A parameter or local of the function at an address.
struct ScopeVar {
    name: String,
    ty: Option<usize>,
    kind: VarKind,
    depth: u32,
    location: Location,
}

/// The function containing an address and the variables in scope there.
struct Scope {
    func: Function,
    /// The `.debug_info` offset of the function's unit.
    unit: usize,
    addr: u64,
    vars: Vec<ScopeVar>,
}

impl Scope {
    fn site(&self) -> String {
        match self.addr.checked_sub(self.func.entry) {
            Some(0) => self.func.name.clone(),
            Some(off) => format!("{}+{off:#x}", self.func.name),
            None => format!("{} (at {:#x}, below its entry)", self.func.name, self.addr),
        }
    }
}

/// How a subprogram's `DW_AT_frame_base` is computed.
#[derive(Clone, Copy, Debug)]
enum FrameBase {
    /// `DW_OP_call_frame_cfa`: from the call frame information.
    Cfa,
    /// A register plus an offset.
    Reg(Base, i64),
    /// None, or one we cannot use.
    Unknown,
}

/// One query's view of the image: the parsed file, its DWARF, and the units read so far.
struct Cx<'d> {
    di: &'d DebugInfo,
    file: &'d object::File<'d>,
    dwarf: &'d gimli::Dwarf<R<'d>>,
    units: RefCell<HashMap<usize, Rc<gimli::Unit<R<'d>>>>>,
}

/// A reference attribute as a `.debug_info` offset.
fn ref_attr(start: usize, e: &gimli::DebuggingInformationEntry<'_, '_, R<'_>>, at: gimli::DwAt) -> Option<usize> {
    match e.attr_value(at).ok()?? {
        AttributeValue::UnitRef(o) => start.checked_add(o.0),
        AttributeValue::DebugInfoRef(o) => Some(o.0),
        _ => None,
    }
}

fn has_flag(e: &gimli::DebuggingInformationEntry<'_, '_, R<'_>>, at: gimli::DwAt) -> bool {
    matches!(e.attr_value(at), Ok(Some(AttributeValue::Flag(true))))
}

/// An AArch64 DWARF register number as a base: x0..x30, sp.
fn reg_base(r: u16) -> Option<Base> {
    match r {
        0..=30 => Some(Base::Reg(r as u8)),
        31 => Some(Base::Sp),
        _ => None,
    }
}

impl<'d> Cx<'d> {
    /// The unit starting at `start`.
    fn unit(&self, start: usize) -> Result<Rc<gimli::Unit<R<'d>>>, DebugInfoError> {
        if let Some(u) = self.units.borrow().get(&start) {
            return Ok(u.clone());
        }
        let header = self
            .dwarf
            .debug_info
            .header_from_offset(gimli::DebugInfoOffset(start))?;
        let unit = Rc::new(self.dwarf.unit(header)?);
        self.units.borrow_mut().insert(start, unit.clone());
        Ok(unit)
    }

    /// The unit holding the DIE at `die`, its start, and the DIE's offset in it.
    fn unit_of(&self, die: usize) -> Result<(Rc<gimli::Unit<R<'d>>>, usize, UnitOffset), DebugInfoError> {
        let i = self.di.unit_starts.partition_point(|&s| s <= die);
        let start = match i.checked_sub(1) {
            Some(i) => self.di.unit_starts[i],
            None => {
                return Err(DebugInfoError::Dwarf(format!(
                    "reference {die:#x} is before the first unit"
                )))
            }
        };
        Ok((self.unit(start)?, start, UnitOffset(die - start)))
    }

    /// Runs `f` on the DIE at `die`.
    fn with_die<T>(
        &self,
        die: usize,
        f: impl FnOnce(&gimli::Unit<R<'d>>, usize, &gimli::DebuggingInformationEntry<'_, '_, R<'d>>) -> T,
    ) -> Result<T, DebugInfoError> {
        let (unit, start, off) = self.unit_of(die)?;
        let e = unit.entry(off)?;
        Ok(f(&unit, start, &e))
    }

    /// The first of `die`, its abstract origin and its specification (and
    /// theirs) for which `f` says something.
    fn deep<T>(
        &self,
        die: usize,
        f: impl Fn(&gimli::Unit<R<'d>>, usize, &gimli::DebuggingInformationEntry<'_, '_, R<'d>>) -> Option<T>,
    ) -> Result<Option<T>, DebugInfoError> {
        let mut cur = die;
        for _ in 0..8 {
            let (found, next) = self.with_die(cur, |u, s, e| {
                let next =
                    ref_attr(s, e, gimli::DW_AT_abstract_origin).or_else(|| ref_attr(s, e, gimli::DW_AT_specification));
                (f(u, s, e), next)
            })?;
            if found.is_some() {
                return Ok(found);
            }
            match next {
                Some(n) => cur = n,
                None => break,
            }
        }
        Ok(None)
    }

    fn name_of(&self, die: usize) -> Result<Option<String>, DebugInfoError> {
        self.deep(die, |u, _, e| elf::die_name(self.dwarf, u, e))
    }

    fn type_of(&self, die: usize) -> Result<Option<usize>, DebugInfoError> {
        self.deep(die, |_, s, e| ref_attr(s, e, gimli::DW_AT_type))
    }

    /// A function DIE's entry and size, if it has code.
    fn extent(
        &self,
        unit: &gimli::Unit<R<'d>>,
        e: &gimli::DebuggingInformationEntry<'_, '_, R<'d>>,
    ) -> Result<Option<(u64, u64)>, DebugInfoError> {
        let low = match e.attr_value(gimli::DW_AT_low_pc)? {
            Some(v) => self.dwarf.attr_address(unit, v)?,
            None => None,
        };
        let (entry, size) = if let Some(low) = low {
            let size = match e.attr_value(gimli::DW_AT_high_pc)? {
                Some(AttributeValue::Addr(h)) => h.saturating_sub(low),
                Some(v @ AttributeValue::DebugAddrIndex(_)) => {
                    self.dwarf.attr_address(unit, v)?.unwrap_or(low).saturating_sub(low)
                }
                Some(v) => v.udata_value().unwrap_or(0),
                None => 0,
            };
            (low, size)
        } else if e.attr_value(gimli::DW_AT_ranges)?.is_some() {
            let mut ranges = self.dwarf.die_ranges(unit, e)?;
            match ranges.next()? {
                Some(r) => (r.begin, r.end.saturating_sub(r.begin)),
                None => return Ok(None),
            }
        } else {
            return Ok(None);
        };
        // A linked image gives functions the linker discarded address 0 (or a tombstone).
        if !self.di.relocatable && (entry == 0 || entry >= u64::MAX - 1) {
            return Ok(None);
        }
        Ok(Some((entry, size)))
    }

    fn covers(
        &self,
        unit: &gimli::Unit<R<'d>>,
        e: &gimli::DebuggingInformationEntry<'_, '_, R<'d>>,
        addr: u64,
    ) -> Result<bool, DebugInfoError> {
        let mut ranges = self.dwarf.die_ranges(unit, e)?;
        while let Some(r) = ranges.next()? {
            if r.begin <= addr && addr < r.end {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Every function with code in every unit and its DIE, sorted by name
    /// and address (read once).
    fn function_index(&self) -> &'d [(Function, usize)] {
        self.di.functions.get_or_init(|| {
            let mut out = Vec::new();
            for &start in &self.di.unit_starts {
                // A unit we cannot read contributes nothing; the others still count.
                let _ = self.unit_functions(start, &mut out);
                self.units.borrow_mut().clear();
            }
            out.sort_by(|a, b| (&a.0.name, a.0.entry).cmp(&(&b.0.name, b.0.entry)));
            out.dedup_by(|a, b| a.0 == b.0);
            out
        })
    }

    fn unit_functions(&self, start: usize, out: &mut Vec<(Function, usize)>) -> Result<(), DebugInfoError> {
        let unit = self.unit(start)?;
        let mut tree = unit.entries_tree(None)?;
        let root = tree.root()?;
        let mut children = root.children();
        while let Some(child) = children.next()? {
            let e = child.entry();
            if e.tag() != gimli::DW_TAG_subprogram || has_flag(e, gimli::DW_AT_declaration) {
                continue;
            }
            let Some((entry, size)) = self.extent(&unit, e)? else {
                continue;
            };
            let die = start + e.offset().0;
            let name = match elf::die_name(self.dwarf, &unit, e) {
                Some(n) => Some(n),
                None => self.name_of(die)?,
            };
            if let Some(name) = name {
                out.push((Function { name, entry, size }, die));
            }
        }
        Ok(())
    }

    /// The units `.debug_aranges` says hold `addr`.
    fn units_for(&self, addr: u64) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .di
            .aranges
            .iter()
            .filter(|r| r.begin <= addr && addr < r.end)
            .map(|r| r.unit)
            .collect();
        v.dedup();
        v
    }

    /// The function DIE containing `addr`, and the function.
    fn function_at(&self, addr: u64) -> Result<Option<(usize, Function)>, DebugInfoError> {
        for start in self.units_for(addr) {
            if let Some(found) = self.function_in(start, addr)? {
                return Ok(Some(found));
            }
        }
        // `.debug_aranges` may leave a unit, or some of its code, out (the
        // assembler's often do): then every function, read once.
        let found = self
            .function_index()
            .iter()
            .filter(|(f, _)| f.entry <= addr && addr - f.entry < f.size)
            .max_by_key(|(f, _)| f.entry);
        Ok(found.map(|(f, die)| (*die, f.clone())))
    }

    /// The top-level function DIE of the unit at `start` containing `addr`.
    fn function_in(&self, start: usize, addr: u64) -> Result<Option<(usize, Function)>, DebugInfoError> {
        let unit = self.unit(start)?;
        let mut tree = unit.entries_tree(None)?;
        let root = tree.root()?;
        let mut children = root.children();
        while let Some(child) = children.next()? {
            let e = child.entry();
            if e.tag() != gimli::DW_TAG_subprogram
                || has_flag(e, gimli::DW_AT_declaration)
                || !self.covers(&unit, e, addr)?
            {
                continue;
            }
            let Some((entry, size)) = self.extent(&unit, e)? else {
                continue;
            };
            let die = start + e.offset().0;
            let name = match elf::die_name(self.dwarf, &unit, e) {
                Some(n) => n,
                None => self.name_of(die)?.unwrap_or_else(|| format!("{entry:#x}")),
            };
            return Ok(Some((die, Function { name, entry, size })));
        }
        Ok(None)
    }

    /// The function containing `addr` and its variables there.
    fn scope_at(&self, addr: u64) -> Result<Option<Scope>, DebugInfoError> {
        let Some((die, func)) = self.function_at(addr)? else {
            return Ok(None);
        };
        let (unit, start, off) = self.unit_of(die)?;
        let (frame, origin) = {
            let e = unit.entry(off)?;
            let frame = match e.attr_value(gimli::DW_AT_frame_base)? {
                Some(AttributeValue::Exprloc(expr)) => {
                    let mut ops = expr.operations(unit.encoding());
                    match (ops.next()?, ops.next()?) {
                        (Some(Operation::CallFrameCFA), None) => FrameBase::Cfa,
                        (Some(Operation::Register { register }), None) => {
                            reg_base(register.0).map_or(FrameBase::Unknown, |b| FrameBase::Reg(b, 0))
                        }
                        (Some(Operation::RegisterOffset { register, offset, .. }), None) => {
                            reg_base(register.0).map_or(FrameBase::Unknown, |b| FrameBase::Reg(b, offset))
                        }
                        _ => FrameBase::Unknown,
                    }
                }
                _ => FrameBase::Unknown,
            };
            (frame, ref_attr(start, &e, gimli::DW_AT_abstract_origin))
        };
        let at_entry = addr == func.entry;
        let walk = Walk {
            addr,
            entry: func.entry,
            frame,
            cfa: std::cell::OnceCell::new(),
        };
        let mut found = ScopeDies::default();
        {
            let mut tree = unit.entries_tree(Some(off))?;
            let root = tree.root()?;
            self.walk_scope(&unit, start, root, 0, &walk, &mut found)?;
        }
        let ScopeDies { params, locals } = found;
        // An out-of-line copy of an inline function may drop parameters its
        // abstract instance lists: order them as the abstract instance does.
        let abstract_params = match origin {
            Some(o) => self.children_with_tag(o, gimli::DW_TAG_formal_parameter)?,
            None => Vec::new(),
        };
        let ordered: Vec<(usize, Location)> = if abstract_params.is_empty() {
            params.iter().map(|&(d, _, l)| (d, l)).collect()
        } else {
            abstract_params
                .iter()
                .map(|&a| match params.iter().find(|p| p.1 == Some(a)) {
                    Some(&(d, _, l)) => (d, l),
                    None => (a, Location::Unavailable("optimised away")),
                })
                .collect()
        };
        let mut vars = Vec::new();
        let mut types = Vec::new();
        for &(d, location) in &ordered {
            types.push(self.type_of(d)?);
            vars.push(ScopeVar {
                name: self.name_of(d)?.unwrap_or_default(),
                ty: *types.last().unwrap_or(&None),
                kind: VarKind::Parameter,
                depth: 0,
                location,
            });
        }
        if at_entry {
            // Before the prologue the AAPCS64 holds: arguments are in x0..x7,
            // not yet in the stack slots the DWARF describes for the body.
            let by_abi = self.aapcs(&types)?;
            for (v, abi) in vars.iter_mut().zip(by_abi) {
                let fallback = match v.location {
                    Location::Unavailable(_) => true,
                    Location::Memory { base, .. } => base == Base::Sp || base == Base::Reg(29),
                    _ => false,
                };
                if let (true, Some(abi)) = (fallback, abi) {
                    v.location = abi;
                }
            }
        }
        for &(d, depth, location) in &locals {
            let Some(name) = self.name_of(d)? else { continue };
            vars.push(ScopeVar {
                name,
                ty: self.type_of(d)?,
                kind: VarKind::Local,
                depth,
                location,
            });
        }
        vars.retain(|v| !v.name.is_empty());
        Ok(Some(Scope {
            func,
            unit: start,
            addr,
            vars,
        }))
    }

    /// The children of `die` with tag `tag`, in order.
    fn children_with_tag(&self, die: usize, tag: gimli::DwTag) -> Result<Vec<usize>, DebugInfoError> {
        let (unit, start, off) = self.unit_of(die)?;
        let mut tree = unit.entries_tree(Some(off))?;
        let root = tree.root()?;
        let mut children = root.children();
        let mut out = Vec::new();
        while let Some(child) = children.next()? {
            if child.entry().tag() == tag {
                out.push(start + child.entry().offset().0);
            }
        }
        Ok(out)
    }

    /// Collects the parameters of the function `node` is and the variables
    /// of it and of its blocks that contain `walk.addr`.
    fn walk_scope(
        &self,
        unit: &gimli::Unit<R<'d>>,
        start: usize,
        node: gimli::EntriesTreeNode<'_, '_, '_, R<'d>>,
        depth: u32,
        walk: &Walk,
        out: &mut ScopeDies,
    ) -> Result<(), DebugInfoError> {
        let mut children = node.children();
        while let Some(child) = children.next()? {
            let e = child.entry();
            let die = start + e.offset().0;
            match e.tag() {
                gimli::DW_TAG_formal_parameter if depth == 0 => {
                    let loc = self.location(unit, e, walk);
                    out.params
                        .push((die, ref_attr(start, e, gimli::DW_AT_abstract_origin), loc));
                }
                gimli::DW_TAG_variable => {
                    let loc = self.location(unit, e, walk);
                    out.locals.push((die, depth, loc));
                }
                gimli::DW_TAG_lexical_block if depth < 32 && self.covers(unit, e, walk.addr)? => {
                    self.walk_scope(unit, start, child, depth + 1, walk, out)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Where the variable `e` is at `walk.addr`; a location the DWARF
    /// reader cannot parse (a vendor operation) makes only this variable
    /// unavailable.
    fn location(
        &self,
        unit: &gimli::Unit<R<'d>>,
        e: &gimli::DebuggingInformationEntry<'_, '_, R<'d>>,
        walk: &Walk,
    ) -> Location {
        self.try_location(unit, e, walk)
            .unwrap_or(Location::Unavailable("a DWARF location we cannot read"))
    }

    fn try_location(
        &self,
        unit: &gimli::Unit<R<'d>>,
        e: &gimli::DebuggingInformationEntry<'_, '_, R<'d>>,
        walk: &Walk,
    ) -> Result<Location, DebugInfoError> {
        let Some(v) = e.attr_value(gimli::DW_AT_location)? else {
            if e.attr_value(gimli::DW_AT_const_value)?.is_some() {
                return Ok(Location::Unavailable("a constant folded into the code"));
            }
            return Ok(Location::Unavailable("optimised away"));
        };
        if let AttributeValue::Exprloc(expr) = v {
            return self.eval(unit, expr, walk);
        }
        match self.dwarf.attr_locations(unit, v)? {
            Some(mut list) => {
                while let Some(entry) = list.next()? {
                    if entry.range.begin <= walk.addr && walk.addr < entry.range.end {
                        return self.eval(unit, entry.data, walk);
                    }
                }
                Ok(Location::Unavailable("optimised away here"))
            }
            None => Ok(Location::Unavailable("a location form we cannot read")),
        }
    }

    /// Evaluates the location expressions probes can follow.
    fn eval(
        &self,
        unit: &gimli::Unit<R<'d>>,
        expr: gimli::Expression<R<'d>>,
        walk: &Walk,
    ) -> Result<Location, DebugInfoError> {
        let mut ops = Vec::new();
        let mut iter = expr.operations(unit.encoding());
        while let Some(op) = iter.next()? {
            if ops.len() == 4 {
                return Ok(Location::Unavailable("computed by a DWARF expression"));
            }
            ops.push(op);
        }
        let in_fp = Location::Unavailable("in a floating-point register");
        Ok(match ops.as_slice() {
            [] => Location::Unavailable("optimised away"),
            [Operation::Register { register }] => match register.0 {
                0..=30 => Location::Register(register.0 as u8),
                _ => in_fp,
            },
            [Operation::RegisterOffset {
                register, offset: 0, ..
            }, Operation::StackValue]
                if register.0 <= 30 =>
            {
                Location::Register(register.0 as u8)
            }
            [Operation::RegisterOffset { register, offset, .. }] => match reg_base(register.0) {
                Some(base) => Location::Memory { base, offset: *offset },
                None => in_fp,
            },
            [Operation::FrameOffset { offset }] => match self.frame_base(walk) {
                Some((base, fo)) => Location::Memory {
                    base,
                    offset: fo.saturating_add(*offset),
                },
                None => Location::Unavailable("on the stack, but the image has no call frame information"),
            },
            [Operation::Address { address }] => Location::Memory {
                base: Base::Imm(*address),
                offset: 0,
            },
            [Operation::AddressIndex { index }] => Location::Memory {
                base: Base::Imm(self.dwarf.address(unit, *index)?),
                offset: 0,
            },
            [Operation::EntryValue { expression }, Operation::StackValue] => {
                let mut inner = gimli::Expression(*expression).operations(unit.encoding());
                match (inner.next()?, inner.next()?) {
                    (Some(Operation::Register { register }), None) if register.0 <= 30 => {
                        if walk.addr == walk.entry {
                            Location::AtEntry(register.0 as u8)
                        } else {
                            Location::Unavailable("known only at the function's entry")
                        }
                    }
                    _ => Location::Unavailable("computed from entry values"),
                }
            }
            [Operation::ImplicitPointer { .. }] => Location::Unavailable("optimised away (an implicit pointer)"),
            ops if ops.iter().any(|o| matches!(o, Operation::Piece { .. })) => {
                Location::Unavailable("split across registers")
            }
            [.., Operation::StackValue] | [Operation::ImplicitValue { .. }] => {
                Location::Unavailable("computed, not stored")
            }
            _ => Location::Unavailable("computed by a DWARF expression"),
        })
    }

    /// The frame base at `walk.addr`: a register (or sp) and an offset.
    fn frame_base(&self, walk: &Walk) -> Option<(Base, i64)> {
        match walk.frame {
            FrameBase::Reg(b, o) => Some((b, o)),
            FrameBase::Cfa => *walk.cfa.get_or_init(|| self.cfa_at(walk.addr)),
            FrameBase::Unknown => None,
        }
    }

    /// The canonical frame address at `addr`, from `.debug_frame` or `.eh_frame`.
    fn cfa_at(&self, addr: u64) -> Option<(Base, i64)> {
        if self.di.relocatable {
            return None; // unrelocated FDE addresses
        }
        let cfa = |rule: &gimli::CfaRule<usize>| match *rule {
            gimli::CfaRule::RegisterAndOffset { register, offset } => Some((reg_base(register.0)?, offset)),
            gimli::CfaRule::Expression(_) => None,
        };
        let mut ctx = gimli::UnwindContext::new();
        if let Some(s) = self.file.section_by_name(".debug_frame") {
            if let Ok(data) = s.uncompressed_data() {
                let mut frame = gimli::DebugFrame::new(&data, gimli::LittleEndian);
                frame.set_address_size(8);
                let bases = gimli::BaseAddresses::default();
                if let Ok(row) =
                    frame.unwind_info_for_address(&bases, &mut ctx, addr, gimli::DebugFrame::cie_from_offset)
                {
                    return cfa(row.cfa());
                }
            }
        }
        let s = self.file.section_by_name(".eh_frame")?;
        let data = s.uncompressed_data().ok()?;
        let mut frame = gimli::EhFrame::new(&data, gimli::LittleEndian);
        frame.set_address_size(8);
        let mut bases = gimli::BaseAddresses::default().set_eh_frame(s.address());
        if let Some(text) = self.file.section_by_name(".text") {
            bases = bases.set_text(text.address());
        }
        let row = frame
            .unwind_info_for_address(&bases, &mut ctx, addr, gimli::EhFrame::cie_from_offset)
            .ok()?;
        cfa(row.cfa())
    }

    /// Where the AAPCS64 puts each parameter at the function's entry, as far
    /// as it can be told: integers, enums and pointers of up to 8 bytes in
    /// the next x register, composites over 16 bytes by reference; floats do
    /// not use x registers; anything else stops the count.
    fn aapcs(&self, types: &[Option<usize>]) -> Result<Vec<Option<Location>>, DebugInfoError> {
        let mut out = Vec::with_capacity(types.len());
        let mut next = 0u8;
        let mut lost = false;
        for &ty in types {
            if lost || next >= 8 {
                out.push(None);
                continue;
            }
            let (shape, size) = self.shape_and_size(ty)?;
            match shape {
                Shape::Int { bytes, .. } if bytes <= 8 => {
                    out.push(Some(Location::Aapcs(next)));
                    next += 1;
                }
                Shape::Pointer { .. } => {
                    out.push(Some(Location::Aapcs(next)));
                    next += 1;
                }
                Shape::Float { .. } => out.push(None),
                Shape::Aggregate { .. } | Shape::Array { .. } if size.is_some_and(|s| s > 16) => {
                    out.push(Some(Location::AapcsByReference(next)));
                    next += 1;
                }
                Shape::Aggregate { die, .. } if !self.has_float(die, 0)? => {
                    // Passed by value in one or two x registers: not addressable.
                    out.push(None);
                    next = next.saturating_add(size.unwrap_or(16).div_ceil(8) as u8);
                }
                _ => {
                    out.push(None);
                    lost = true;
                }
            }
        }
        Ok(out)
    }

    /// Whether a struct has a floating-point member (it may then travel in v registers).
    fn has_float(&self, die: usize, depth: u32) -> Result<bool, DebugInfoError> {
        if depth > 8 {
            return Ok(true);
        }
        let def = self.definition(die)?.unwrap_or(die);
        for m in self.children_with_tag(def, gimli::DW_TAG_member)? {
            let (shape, _) = self.shape_and_size(self.type_of(m)?)?;
            let float = match shape {
                Shape::Float { .. } => true,
                Shape::Aggregate { die, .. } => self.has_float(die, depth + 1)?,
                Shape::Array { elem } => matches!(self.shape(elem)?, Shape::Float { .. }),
                _ => false,
            };
            if float {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn shape(&self, ty: Option<usize>) -> Result<Shape, DebugInfoError> {
        Ok(self.shape_and_size(ty)?.0)
    }

    /// What `ty` is, through typedefs and qualifiers, and its size in bytes if known.
    fn shape_and_size(&self, ty: Option<usize>) -> Result<(Shape, Option<u64>), DebugInfoError> {
        let Some(mut die) = ty else {
            return Ok((Shape::Void, None));
        };
        for _ in 0..32 {
            let (tag, next, size, encoding) = self.with_die(die, |_, s, e| {
                let encoding = match e.attr_value(gimli::DW_AT_encoding) {
                    Ok(Some(AttributeValue::Encoding(enc))) => Some(enc),
                    _ => None,
                };
                (
                    e.tag(),
                    ref_attr(s, e, gimli::DW_AT_type),
                    elf::die_udata(e, gimli::DW_AT_byte_size),
                    encoding,
                )
            })?;
            let shape = match tag {
                gimli::DW_TAG_typedef
                | gimli::DW_TAG_const_type
                | gimli::DW_TAG_volatile_type
                | gimli::DW_TAG_restrict_type
                | gimli::DW_TAG_atomic_type => match next {
                    Some(n) => {
                        die = n;
                        continue;
                    }
                    None => Shape::Void,
                },
                gimli::DW_TAG_base_type => match (encoding, size) {
                    (Some(gimli::DW_ATE_float), Some(bytes)) => Shape::Float { bytes },
                    (Some(gimli::DW_ATE_signed | gimli::DW_ATE_signed_char), Some(bytes)) => {
                        Shape::Int { signed: true, bytes }
                    }
                    (
                        Some(
                            gimli::DW_ATE_unsigned
                            | gimli::DW_ATE_unsigned_char
                            | gimli::DW_ATE_boolean
                            | gimli::DW_ATE_UTF,
                        ),
                        Some(bytes),
                    ) => Shape::Int { signed: false, bytes },
                    _ => Shape::Other,
                },
                gimli::DW_TAG_enumeration_type => {
                    let signed = match next {
                        Some(under) => self.signed_base(under)?,
                        None => matches!(encoding, Some(gimli::DW_ATE_signed | gimli::DW_ATE_signed_char)),
                    };
                    match size {
                        Some(bytes) => Shape::Int { signed, bytes },
                        None => Shape::Other,
                    }
                }
                gimli::DW_TAG_pointer_type => Shape::Pointer { target: next },
                gimli::DW_TAG_structure_type | gimli::DW_TAG_class_type => Shape::Aggregate { die, union: false },
                gimli::DW_TAG_union_type => Shape::Aggregate { die, union: true },
                gimli::DW_TAG_array_type => Shape::Array { elem: next },
                gimli::DW_TAG_subroutine_type => Shape::Func,
                gimli::DW_TAG_unspecified_type => Shape::Void,
                _ => Shape::Other,
            };
            let size = match shape {
                Shape::Pointer { .. } => Some(size.unwrap_or(8)),
                Shape::Aggregate { die, .. } => match size {
                    Some(s) => Some(s),
                    None => match self.definition(die)? {
                        Some(d) => self.with_die(d, |_, _, e| elf::die_udata(e, gimli::DW_AT_byte_size))?,
                        None => None,
                    },
                },
                // Arrays are never parameters (they decay to pointers): no size needed.
                Shape::Array { .. } => None,
                _ => size,
            };
            return Ok((shape, size));
        }
        Ok((Shape::Other, None))
    }

    /// Whether `die` is (a typedef of) a signed base type: an enum's underlying type.
    fn signed_base(&self, mut die: usize) -> Result<bool, DebugInfoError> {
        for _ in 0..8 {
            let (tag, next, encoding) = self.with_die(die, |_, s, e| {
                let encoding = match e.attr_value(gimli::DW_AT_encoding) {
                    Ok(Some(AttributeValue::Encoding(enc))) => Some(enc),
                    _ => None,
                };
                (e.tag(), ref_attr(s, e, gimli::DW_AT_type), encoding)
            })?;
            match (tag, next) {
                (gimli::DW_TAG_base_type, _) => {
                    return Ok(matches!(
                        encoding,
                        Some(gimli::DW_ATE_signed | gimli::DW_ATE_signed_char)
                    ))
                }
                (gimli::DW_TAG_typedef | gimli::DW_TAG_const_type | gimli::DW_TAG_volatile_type, Some(n)) => die = n,
                _ => break,
            }
        }
        Ok(false)
    }

    /// The definition of a struct or union `die` names (itself unless it is
    /// only a declaration): the first of its kind and tag, in its own unit
    /// first, then in unit order. `None` if there is none.
    fn definition(&self, die: usize) -> Result<Option<usize>, DebugInfoError> {
        let (tag, name, declared) = self.with_die(die, |u, _, e| {
            (
                e.tag(),
                elf::die_name(self.dwarf, u, e),
                has_flag(e, gimli::DW_AT_declaration) || e.attr_value(gimli::DW_AT_byte_size).ok().flatten().is_none(),
            )
        })?;
        if !declared {
            return Ok(Some(die));
        }
        let Some(name) = name else { return Ok(None) };
        let key = (tag.0, name.clone());
        if let Some(found) = lock(&self.di.definitions).get(&key) {
            return Ok(*found);
        }
        let own = self.unit_of(die)?.1;
        let mut found = None;
        for start in std::iter::once(own).chain(self.di.unit_starts.iter().copied().filter(|&s| s != own)) {
            let defined_here = self.find_top_level(start, |u, e| {
                e.tag() == tag
                    && !has_flag(e, gimli::DW_AT_declaration)
                    && e.attr_value(gimli::DW_AT_byte_size).ok().flatten().is_some()
                    && elf::die_name(self.dwarf, u, e).as_deref() == Some(name.as_str())
            });
            // An unreadable unit does not hide the others.
            if let Ok(Some(d)) = defined_here {
                found = Some(d);
                break;
            }
        }
        lock(&self.di.definitions).insert(key, found);
        Ok(found)
    }

    /// The first top-level DIE of the unit at `start` that `pred` accepts.
    fn find_top_level(
        &self,
        start: usize,
        pred: impl Fn(&gimli::Unit<R<'d>>, &gimli::DebuggingInformationEntry<'_, '_, R<'d>>) -> bool,
    ) -> Result<Option<usize>, DebugInfoError> {
        let unit = self.unit(start)?;
        let mut tree = unit.entries_tree(None)?;
        let root = tree.root()?;
        let mut children = root.children();
        while let Some(child) = children.next()? {
            if pred(&unit, child.entry()) {
                return Ok(Some(start + child.entry().offset().0));
            }
        }
        Ok(None)
    }

    /// The member `name` of the struct or union `die`, anonymous members
    /// looked through.
    fn member(&self, die: usize, name: &str, depth: u32) -> Result<Member, DebugInfoError> {
        let mut names = Vec::new();
        if depth > 8 {
            return Ok(Member::Missing(names));
        }
        let def = self.definition(die)?.unwrap_or(die);
        for m in self.children_with_tag(def, gimli::DW_TAG_member)? {
            let (mname, offset, bitfield) = self.with_die(m, |u, _, e| {
                (
                    elf::die_name(self.dwarf, u, e),
                    elf::member_offset(u, e),
                    e.attr_value(gimli::DW_AT_bit_size).ok().flatten().is_some(),
                )
            })?;
            let offset = offset.and_then(|o| i64::try_from(o).ok());
            let ty = self.type_of(m)?;
            match (mname, offset) {
                (Some(n), _) if n == name && bitfield => {
                    return Ok(Member::Unusable(
                        "a bit-field",
                        "fetch the word that holds it with +OFF(...) syntax and mask it yourself",
                    ))
                }
                (Some(n), Some(offset)) if n == name => return Ok(Member::Found(offset, ty)),
                (Some(n), None) if n == name => {
                    return Ok(Member::Unusable(
                        "a member at an offset the DWARF computes",
                        "use +OFF(...) syntax",
                    ))
                }
                (Some(n), _) => names.push(n),
                (None, Some(base)) => {
                    if let Shape::Aggregate { die: inner, .. } = self.shape(ty)? {
                        match self.member(inner, name, depth + 1)? {
                            Member::Found(o, t) => return Ok(Member::Found(base.saturating_add(o), t)),
                            Member::Missing(more) => names.extend(more),
                            unusable => return Ok(unusable),
                        }
                    }
                }
                (None, None) => {}
            }
        }
        Ok(Member::Missing(names))
    }

    /// `ty` as C writes it: `OS_EVENT *`, `const char *`, `struct os_tcb`, `char [16]`.
    fn type_name(&self, ty: Option<usize>, depth: u32) -> String {
        let Some(die) = ty else { return "void".to_string() };
        if depth > 16 {
            return "…".to_string();
        }
        let Ok((tag, name, next, dims)) = self.with_die(die, |u, s, e| {
            let dims = if e.tag() == gimli::DW_TAG_array_type {
                array_dims(u, e.offset())
            } else {
                Vec::new()
            };
            (
                e.tag(),
                elf::die_name(self.dwarf, u, e),
                ref_attr(s, e, gimli::DW_AT_type),
                dims,
            )
        }) else {
            return "?".to_string();
        };
        let named = |kind: &str| match &name {
            Some(n) => format!("{kind} {n}"),
            None => format!("{kind} <anonymous>"),
        };
        match tag {
            gimli::DW_TAG_base_type | gimli::DW_TAG_typedef | gimli::DW_TAG_unspecified_type => {
                name.unwrap_or_else(|| "?".to_string())
            }
            gimli::DW_TAG_structure_type => named("struct"),
            gimli::DW_TAG_class_type => named("class"),
            gimli::DW_TAG_union_type => named("union"),
            gimli::DW_TAG_enumeration_type => named("enum"),
            gimli::DW_TAG_pointer_type => {
                let is_fn = next.is_some_and(|n| {
                    self.with_die(n, |_, _, e| e.tag() == gimli::DW_TAG_subroutine_type)
                        .unwrap_or(false)
                });
                if is_fn {
                    let ret = next.and_then(|n| self.type_of(n).ok().flatten());
                    return format!("{} (*)()", self.type_name(ret, depth + 1));
                }
                let inner = self.type_name(next, depth + 1);
                if inner.ends_with('*') {
                    format!("{inner}*")
                } else {
                    format!("{inner} *")
                }
            }
            gimli::DW_TAG_const_type | gimli::DW_TAG_volatile_type => {
                let q = if tag == gimli::DW_TAG_const_type {
                    "const"
                } else {
                    "volatile"
                };
                let inner = self.type_name(next, depth + 1);
                if inner.ends_with('*') {
                    format!("{inner} {q}")
                } else {
                    format!("{q} {inner}")
                }
            }
            gimli::DW_TAG_restrict_type | gimli::DW_TAG_atomic_type => self.type_name(next, depth + 1),
            gimli::DW_TAG_array_type => {
                let mut s = self.type_name(next, depth + 1);
                s.push(' ');
                for d in dims {
                    match d {
                        Some(n) => s.push_str(&format!("[{n}]")),
                        None => s.push_str("[]"),
                    }
                }
                s
            }
            gimli::DW_TAG_subroutine_type => format!("{} ()", self.type_name(next, depth + 1)),
            _ => name.unwrap_or_else(|| "?".to_string()),
        }
    }

    /// A global variable by name: defined in the unit at `near` first, else
    /// the first definition in unit order; a declaration's type with the
    /// symbol table's address when no unit defines it.
    fn global(&self, name: &str, near: Option<usize>) -> Result<Option<Global>, DebugInfoError> {
        let key = (name.to_string(), near);
        if let Some(g) = lock(&self.di.globals).get(&key) {
            return Ok(*g);
        }
        let mut declared: Option<Option<usize>> = None;
        let mut found = None;
        let order = near
            .into_iter()
            .chain(self.di.unit_starts.iter().copied().filter(|&s| Some(s) != near));
        for start in order {
            // An unreadable unit elsewhere does not hide the others.
            let here = match self.global_in(start, name) {
                Ok(here) => here,
                Err(e) if Some(start) == near => return Err(e),
                Err(_) => None,
            };
            match here {
                Some(Ok(g)) => {
                    found = Some(g);
                    break;
                }
                Some(Err(ty)) => {
                    declared.get_or_insert(ty);
                }
                None => {}
            }
            // A declaration and the symbol table are enough: no need to read every unit.
            if let Some(ty) = declared {
                if let Ok(addr) = data_symbol(self.file, name) {
                    found = Some(Global { addr, ty });
                    break;
                }
            }
            if self.units.borrow().len() > 64 {
                self.units.borrow_mut().clear();
            }
        }
        lock(&self.di.globals).insert(key, found);
        Ok(found)
    }

    /// A top-level variable `name` in the unit at `start`: `Ok` when it is
    /// defined there with an address, `Err(type)` when only declared.
    fn global_in(&self, start: usize, name: &str) -> Result<Option<Result<Global, Option<usize>>>, DebugInfoError> {
        let unit = self.unit(start)?;
        let mut tree = unit.entries_tree(None)?;
        let root = tree.root()?;
        let mut children = root.children();
        let mut declared = None;
        while let Some(child) = children.next()? {
            let e = child.entry();
            if e.tag() != gimli::DW_TAG_variable {
                continue;
            }
            let die = start + e.offset().0;
            let matches = match elf::die_name(self.dwarf, &unit, e) {
                Some(n) => n == name,
                None if e.attr_value(gimli::DW_AT_specification)?.is_some() => {
                    self.name_of(die)?.as_deref() == Some(name)
                }
                None => false,
            };
            if !matches {
                continue;
            }
            let addr = match e.attr_value(gimli::DW_AT_location)? {
                Some(AttributeValue::Exprloc(expr)) => {
                    let mut ops = expr.operations(unit.encoding());
                    match (ops.next()?, ops.next()?) {
                        (Some(Operation::Address { address }), None) => Some(address),
                        (Some(Operation::AddressIndex { index }), None) => Some(self.dwarf.address(&unit, index)?),
                        _ => None,
                    }
                }
                _ => None,
            };
            let ty = self.type_of(die)?;
            match addr {
                Some(addr) if self.di.relocatable || addr != 0 => return Ok(Some(Ok(Global { addr, ty }))),
                _ => {
                    declared.get_or_insert(ty);
                }
            }
        }
        Ok(declared.map(Err))
    }

    fn compile(&self, addr: u64, q: &Query<'_>) -> Result<FetchArg, DebugInfoError> {
        let spec = q.spec.to_string();
        let scope = self.scope_at(addr)?;
        let site = scope.as_ref().map_or_else(|| format!("{addr:#x}"), Scope::site);
        let var = &q.path.var;
        // The innermost variable of that name, else a global.
        let local = scope.as_ref().and_then(|s| {
            s.vars
                .iter()
                .filter(|v| &v.name == var)
                .max_by_key(|v| (v.depth, std::cmp::Reverse(v.kind == VarKind::Local)))
        });
        let (mut acc, mut ty) = match local {
            Some(v) => {
                let place = match v.location {
                    Location::Register(r) | Location::AtEntry(r) | Location::Aapcs(r) => Access::value(Base::Reg(r)),
                    Location::AapcsByReference(r) => Access::memory(Base::Reg(r), 0),
                    Location::Memory { base, offset } => Access::memory(base, offset),
                    Location::Unavailable(why) => {
                        return Err(DebugInfoError::Unavailable {
                            spec,
                            name: var.clone(),
                            site,
                            why: why.to_string(),
                        })
                    }
                };
                (place, v.ty)
            }
            None => {
                // Statics of the function's own file first.
                let near = match &scope {
                    Some(s) => Some(s.unit),
                    None => self.units_for(addr).first().copied(),
                };
                match self.global(var, near)? {
                    Some(g) => (Access::memory(Base::Imm(g.addr), 0), g.ty),
                    None if data_symbol(self.file, var).is_ok() => {
                        return Err(DebugInfoError::WrongType {
                            spec,
                            expr: var.clone(),
                            ty: "a symbol without DWARF type".to_string(),
                            hint: format!("fetch it as @{var}:TYPE (e.g. @{var}:u32)"),
                        })
                    }
                    None if self.has_declaration(var, near)? => {
                        return Err(DebugInfoError::NoAddress {
                            spec,
                            name: var.clone(),
                        })
                    }
                    None => {
                        return Err(DebugInfoError::UnknownName {
                            spec,
                            name: var.clone(),
                            site,
                            known: scope
                                .map(|s| s.vars.into_iter().map(|v| v.name).collect())
                                .unwrap_or_default(),
                        })
                    }
                }
            }
        };
        let mut expr = var.clone();
        let wrong = |expr: &str, ty: Option<usize>, hint: &str| DebugInfoError::WrongType {
            spec: q.spec.to_string(),
            expr: expr.to_string(),
            ty: self.type_name(ty, 0),
            hint: hint.to_string(),
        };
        for step in &q.path.steps {
            let shape = self.shape(ty)?;
            let (member, arrow) = match step {
                Step::Arrow(m) => (m, true),
                Step::Dot(m) => (m, false),
            };
            let agg = match (shape, arrow) {
                (Shape::Pointer { target }, true) => match self.shape(target)? {
                    Shape::Aggregate { die, .. } => die,
                    _ => return Err(wrong(&expr, ty, "'->' needs a pointer to a struct or union")),
                },
                (Shape::Aggregate { .. }, true) => {
                    return Err(wrong(
                        &expr,
                        ty,
                        &format!("a struct, not a pointer: write {expr}.{member}"),
                    ))
                }
                (Shape::Aggregate { die, .. }, false) => die,
                (Shape::Pointer { .. }, false) => {
                    return Err(wrong(&expr, ty, &format!("a pointer: write {expr}->{member}")))
                }
                (_, true) => return Err(wrong(&expr, ty, "'->' needs a pointer to a struct or union")),
                (_, false) => return Err(wrong(&expr, ty, "'.' needs a struct or union")),
            };
            let (offset, mty) = match self.member(agg, member, 0)? {
                Member::Found(offset, mty) => (offset, mty),
                Member::Unusable(what, hint) => {
                    return Err(DebugInfoError::WrongType {
                        spec,
                        expr: format!("{expr}{}{member}", if arrow { "->" } else { "." }),
                        ty: what.to_string(),
                        hint: hint.to_string(),
                    })
                }
                Member::Missing(members) => {
                    let agg_ty = match (arrow, shape) {
                        (true, Shape::Pointer { target }) => target,
                        _ => ty,
                    };
                    let declared_only = if self.definition(agg)?.is_none() {
                        " (declared only: no definition in the DWARF)"
                    } else {
                        ""
                    };
                    return Err(DebugInfoError::NoMember {
                        spec,
                        ty: self.type_name(agg_ty, 0) + declared_only,
                        member: member.clone(),
                        members,
                    });
                }
            };
            if arrow {
                acc.arrow(offset);
            } else if !acc.dot(offset) {
                return Err(wrong(
                    &expr,
                    ty,
                    "a struct held in registers: its members cannot be fetched",
                ));
            }
            expr.push_str(if arrow { "->" } else { "." });
            expr.push_str(member);
            ty = mty;
        }
        let shape = self.shape(ty)?;
        let vt = match (q.ty, shape) {
            (Some(t), _) if t.kind == TypeKind::String => match shape {
                Shape::Array { elem } if self.is_byte(elem)? => {
                    if !acc.finish_in_place() {
                        return Err(wrong(&expr, ty, "an array held in registers"));
                    }
                    t
                }
                Shape::Pointer { target } if self.is_byte(target)? => {
                    acc.finish();
                    acc.loads.push(0);
                    t
                }
                _ => return Err(wrong(
                    &expr,
                    ty,
                    "only a char array or a char pointer is read as a string (for other memory write +0(...):string)",
                )),
            },
            (_, Shape::Aggregate { union, .. }) => {
                let kind = if union { "union" } else { "struct" };
                return Err(DebugInfoError::WrongType {
                    spec,
                    expr: expr.clone(),
                    ty: format!("a {kind} ({})", self.type_name(ty, 0)),
                    hint: "name a member with -> or .".to_string(),
                });
            }
            (_, Shape::Array { .. }) => {
                return Err(wrong(
                    &expr,
                    ty,
                    "an array: add :string for a char array, or fetch an element with +OFF(...) syntax",
                ))
            }
            (Some(t), _) => {
                acc.finish();
                t
            }
            (None, s) => {
                let vt = match s {
                    Shape::Int {
                        signed,
                        bytes: bytes @ (1 | 2 | 4 | 8),
                    } => ValueType {
                        kind: if signed { TypeKind::Signed } else { TypeKind::Unsigned },
                        bytes: bytes as u8,
                    },
                    Shape::Float { bytes: bytes @ (4 | 8) } => ValueType {
                        kind: TypeKind::Hex,
                        bytes: bytes as u8,
                    },
                    Shape::Pointer { target } if self.shape(target)? == Shape::Func => ValueType {
                        kind: TypeKind::Symbol,
                        bytes: 8,
                    },
                    Shape::Pointer { .. } => ValueType::DEFAULT,
                    _ => {
                        return Err(wrong(
                            &expr,
                            ty,
                            "a type a probe cannot fetch: give one with :TYPE (e.g. :x64)",
                        ))
                    }
                };
                acc.finish();
                vt
            }
        };
        if acc.loads.len() > MAX_DEREFS {
            return Err(DebugInfoError::TooDeep {
                spec,
                loads: acc.loads.len(),
            });
        }
        let mut derefs = [0i32; MAX_DEREFS];
        for (d, &l) in derefs.iter_mut().zip(&acc.loads) {
            *d = i32::try_from(l).map_err(|_| DebugInfoError::Syntax {
                spec: spec.clone(),
                why: format!("offset {l:#x} does not fit a fetch argument's 32 bits"),
            })?;
        }
        let default: String;
        let name = match q.name {
            Some(n) => n,
            None => {
                let last = match q.path.steps.last() {
                    Some(Step::Arrow(m) | Step::Dot(m)) => m,
                    None => var,
                };
                default = last.chars().take(NAME_MAX).collect();
                &default
            }
        };
        let mut arg = FetchArg {
            name: [0; NAME_MAX],
            base: acc.base,
            derefs,
            n_derefs: acc.loads.len() as u8,
            ty: vt,
        };
        arg.name[..name.len()].copy_from_slice(name.as_bytes());
        // The one parser has the last word on what the hypervisor accepts.
        FetchArg::parse(&arg.to_string(), q.position).map_err(|e| DebugInfoError::Fetch(e.to_string()))?;
        Ok(arg)
    }

    /// Whether some unit declares a top-level variable `name` (for the error message).
    fn has_declaration(&self, name: &str, near: Option<usize>) -> Result<bool, DebugInfoError> {
        match near {
            Some(start) => Ok(self.global_in(start, name)?.is_some()),
            None => Ok(false),
        }
    }

    /// A 1-byte integer (`char`, `unsigned char`, `INT8U`).
    fn is_byte(&self, ty: Option<usize>) -> Result<bool, DebugInfoError> {
        Ok(matches!(self.shape(ty)?, Shape::Int { bytes: 1, .. }))
    }
}

/// What looking a member up found.
enum Member {
    /// Its offset in the struct and its type.
    Found(i64, Option<usize>),
    /// It exists but cannot be fetched: what it is, and what to do instead.
    Unusable(&'static str, &'static str),
    /// No such member: the names there are.
    Missing(Vec<String>),
}

/// The concrete DIEs a scope walk finds, with their locations.
#[derive(Default)]
struct ScopeDies {
    /// Parameters: DIE, abstract origin, location.
    params: Vec<(usize, Option<usize>, Location)>,
    /// Locals: DIE, block depth, location.
    locals: Vec<(usize, u32, Location)>,
}

/// What a scope walk needs to evaluate locations.
struct Walk {
    addr: u64,
    entry: u64,
    frame: FrameBase,
    /// The canonical frame address at `addr`, once asked for.
    cfa: std::cell::OnceCell<Option<(Base, i64)>>,
}

/// An argument being built: the base, the loads so far, and where the
/// current object is if it is in memory not yet loaded (`lvalue`, an offset
/// from the current value), or `None` if the current value is the object.
struct Access {
    base: Base,
    loads: Vec<i64>,
    lvalue: Option<i64>,
}

impl Access {
    fn value(base: Base) -> Self {
        Access {
            base,
            loads: Vec::new(),
            lvalue: None,
        }
    }

    fn memory(base: Base, offset: i64) -> Self {
        Access {
            base,
            loads: Vec::new(),
            lvalue: Some(offset),
        }
    }

    /// Loads the current (pointer) value if it is in memory, then moves to `offset` from it.
    fn arrow(&mut self, offset: i64) {
        if let Some(o) = self.lvalue {
            self.loads.push(o);
        }
        self.lvalue = Some(offset);
    }

    /// Moves `offset` into the current object in memory; false if it is in a register.
    fn dot(&mut self, offset: i64) -> bool {
        match &mut self.lvalue {
            Some(o) => {
                *o = o.saturating_add(offset);
                true
            }
            None => false,
        }
    }

    /// Loads the current object, if it is in memory: the argument's value.
    fn finish(&mut self) {
        if let Some(o) = self.lvalue.take() {
            self.loads.push(o);
        }
    }

    /// The current object's address is the argument (a string read in place).
    fn finish_in_place(&mut self) -> bool {
        match self.lvalue.take() {
            Some(o) => {
                self.loads.push(o);
                true
            }
            None => false,
        }
    }
}

/// An array type's dimensions (`None` for an unknown bound).
fn array_dims(unit: &gimli::Unit<R<'_>>, off: UnitOffset) -> Vec<Option<u64>> {
    let mut dims = Vec::new();
    let Ok(mut tree) = unit.entries_tree(Some(off)) else {
        return dims;
    };
    let Ok(root) = tree.root() else { return dims };
    let mut children = root.children();
    while let Ok(Some(child)) = children.next() {
        let e = child.entry();
        if e.tag() != gimli::DW_TAG_subrange_type {
            continue;
        }
        let n = elf::die_udata(e, gimli::DW_AT_count)
            .or_else(|| elf::die_udata(e, gimli::DW_AT_upper_bound).and_then(|u| u.checked_add(1)));
        dims.push(n);
    }
    dims
}

/// A mutex's contents even if a panicking thread poisoned it (the maps are caches).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (p, n, ok) in [
            ("OSSem*", "OSSemPost", true),
            ("OSSem*", "OSSem", true),
            ("OSSem*", "OSQPost", false),
            ("*Post", "OSSemPost", true),
            ("OS*Po?t", "OSSemPost", true),
            ("do_sys_openat2", "do_sys_openat2", true),
            ("do_sys_openat2", "do_sys_openat", false),
            ("*", "", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
        ] {
            assert_eq!(glob_match(p, n), ok, "{p} ~ {n}");
        }
    }

    #[test]
    fn paths_parse_and_bad_ones_say_why() {
        let p = Path::parse("ptcb->OSTCBEventPtr->OSEventCnt").unwrap();
        assert_eq!(p.var, "ptcb");
        assert_eq!(p.steps.len(), 2);
        let p = Path::parse("OSTCBTbl.OSTCBPrio").unwrap();
        assert!(matches!(&p.steps[0], Step::Dot(m) if m == "OSTCBPrio"));
        for bad in ["", "1x", "a->", "a.", "a-b", "a->1", "a b"] {
            assert!(Path::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn access_folds_members_into_loads() {
        // A global struct's member: one load at the member's offset.
        let mut a = Access::memory(Base::Imm(0x1000), 0);
        assert!(a.dot(8));
        a.finish();
        assert_eq!((a.base, a.loads.as_slice()), (Base::Imm(0x1000), &[8i64][..]));
        // A pointer in x0, two members deep.
        let mut a = Access::value(Base::Reg(0));
        a.arrow(0x30);
        a.arrow(8);
        a.finish();
        assert_eq!(a.loads, [0x30, 8]);
        assert!(!Access::value(Base::Reg(1)).dot(4));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(matches!(DebugInfo::load(b"not an elf"), Err(DebugInfoError::Elf(_))));
        assert!(DebugInfo::load(&[]).is_err());
    }
}
