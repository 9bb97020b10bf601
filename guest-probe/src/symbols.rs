//! Probe-target resolution against an ELF symbol table (host side).
//!
//! A target is written as `name`, `name+offset` (decimal or `0x` hex) or a
//! raw address `0x...`. The result must lie inside an executable section,
//! inside the named symbol (when it has a size), and be 4-byte aligned.

use object::{Object, ObjectSection, ObjectSymbol, SectionFlags, SectionKind, SymbolKind};

use crate::elf;

/// Why a target could not be resolved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SymbolError {
    /// The file is not a usable ELF.
    #[error("{0}")]
    Elf(crate::elf::ElfError),
    /// The target text does not parse.
    #[error("cannot parse probe target {0:?} (expected NAME, NAME+OFFSET or 0xADDRESS)")]
    BadSpec(String),
    /// No symbol of that name.
    #[error("no symbol named {0:?}")]
    NotFound(String),
    /// Several symbols of that name at different addresses.
    #[error("symbol {name:?} is ambiguous: defined at {}", .addrs.iter().map(|a| format!("{a:#x}")).collect::<Vec<_>>().join(", "))]
    Ambiguous {
        /// The name.
        name: String,
        /// Its addresses.
        addrs: Vec<u64>,
    },
    /// The offset runs past the end of the symbol.
    #[error("offset {offset:#x} is outside {name} (size {size:#x})")]
    OutsideSymbol {
        /// The symbol.
        name: String,
        /// The offset asked for.
        offset: u64,
        /// The symbol's size.
        size: u64,
    },
    /// The address is not in an executable section.
    #[error("{addr:#x} is not in an executable section{}", .symbol.as_ref().map(|s| format!(" ({s} is data)")).unwrap_or_default())]
    NotExecutable {
        /// The address.
        addr: u64,
        /// The symbol it belongs to, if any.
        symbol: Option<String>,
    },
    /// Not 4-byte aligned (A64 instructions are).
    #[error("{0:#x} is not 4-byte aligned")]
    Misaligned(u64),
}

/// One symbol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    /// Its name.
    pub name: String,
    /// Its address (section-relative in relocatable objects).
    pub addr: u64,
    /// Its size (0 = unknown).
    pub size: u64,
    /// A function symbol.
    pub is_function: bool,
    /// Defined in an executable section.
    pub executable: bool,
    /// Defined in a writable section (`.data`, `.bss`): a variable.
    pub writable: bool,
}

/// A resolved probe target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The guest virtual address.
    pub addr: u64,
    /// The containing symbol and the offset in it, if any.
    pub symbol: Option<(String, u64)>,
    /// The instruction word at the address, from the file.
    pub insn: Option<u32>,
}

/// Where a function returns: for a return probe, fbt-style (no code in the
/// guest: each `RET` gets its own probe).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReturnSites {
    /// The function's entry.
    pub entry: u64,
    /// Its `RET` instructions.
    pub rets: Vec<u64>,
    /// Its tail calls (`B` out of the function): it returns through
    /// another function there, and such exits are not seen.
    pub tail_calls: Vec<u64>,
}

/// An executable section's address range and bytes.
#[derive(Clone, Debug)]
struct ExecSection {
    index: usize,
    addr: u64,
    data: Vec<u8>,
}

/// The symbols and executable sections of an ELF image.
#[derive(Clone, Debug)]
pub struct SymbolTable {
    symbols: Vec<Symbol>,
    exec: Vec<ExecSection>,
    relocatable: bool,
}

fn is_writable(section: &object::Section<'_, '_>) -> bool {
    match section.flags() {
        SectionFlags::Elf { sh_flags } => sh_flags & u64::from(object::elf::SHF_WRITE) != 0,
        _ => matches!(section.kind(), SectionKind::Data | SectionKind::UninitializedData),
    }
}

fn is_exec(section: &object::Section<'_, '_>) -> bool {
    match section.flags() {
        SectionFlags::Elf { sh_flags } => sh_flags & u64::from(object::elf::SHF_EXECINSTR) != 0,
        _ => section.kind() == SectionKind::Text,
    }
}

impl SymbolTable {
    /// Reads the symbol table (`.symtab`, else `.dynsym`) of an ELF image.
    pub fn from_elf(bytes: &[u8]) -> Result<Self, SymbolError> {
        let file = elf::parse(bytes).map_err(SymbolError::Elf)?;
        let relocatable = file.kind() == object::ObjectKind::Relocatable;
        let mut exec = Vec::new();
        let mut writable = Vec::new();
        for s in file.sections() {
            if is_writable(&s) && !is_exec(&s) {
                writable.push(s.index().0);
            }
            if is_exec(&s) {
                // NOBITS or unreadable sections contribute no bytes.
                let data = s.data().map(<[u8]>::to_vec).unwrap_or_default();
                exec.push(ExecSection {
                    index: s.index().0,
                    addr: s.address(),
                    data,
                });
            }
        }
        let mut symbols = Vec::new();
        let syms: Vec<_> = if file.symbols().next().is_some() {
            file.symbols().collect()
        } else {
            file.dynamic_symbols().collect()
        };
        for s in syms {
            if s.is_undefined() || matches!(s.kind(), SymbolKind::Section | SymbolKind::File) {
                continue;
            }
            let Ok(name) = s.name() else { continue };
            // Skip empty names and AArch64 mapping symbols ($x, $d, $x.123).
            if name.is_empty() || name.starts_with('$') {
                continue;
            }
            let executable = match s.section_index() {
                Some(i) => exec.iter().any(|e| e.index == i.0),
                None => false,
            };
            symbols.push(Symbol {
                name: name.to_string(),
                addr: s.address(),
                size: s.size(),
                is_function: s.kind() == SymbolKind::Text,
                executable,
                writable: s.section_index().is_some_and(|i| writable.contains(&i.0)),
            });
        }
        symbols.sort_by(|a, b| (a.addr, &a.name).cmp(&(b.addr, &b.name)));
        symbols.dedup();
        Ok(Self {
            symbols,
            exec,
            relocatable,
        })
    }

    /// All symbols, by address.
    pub fn symbols(&self) -> &[Symbol] {
        &self.symbols
    }

    /// The symbols named `name` (deduplicated by address).
    pub fn lookup(&self, name: &str) -> Vec<&Symbol> {
        let mut v: Vec<&Symbol> = self.symbols.iter().filter(|s| s.name == name).collect();
        v.dedup_by_key(|s| s.addr);
        v
    }

    /// The symbol containing `addr` (a sized symbol covering it, else the
    /// closest function at or below it in the same executable section).
    pub fn symbolize(&self, addr: u64) -> Option<(&Symbol, u64)> {
        if let Some(s) = self.containing(addr) {
            return Some((s, addr - s.addr));
        }
        // Labels without a size (assembly): the nearest function label below,
        // in the same executable section only.
        let section = self.exec_section(addr)?;
        self.symbols
            .iter()
            .filter(|s| s.is_function && s.size == 0 && s.addr <= addr && self.exec_section(s.addr) == Some(section))
            .max_by_key(|s| s.addr)
            .map(|s| (s, addr - s.addr))
    }

    /// The sized symbol `addr` lies in, if any.
    fn containing(&self, addr: u64) -> Option<&Symbol> {
        self.symbols
            .iter()
            .filter(|s| s.size > 0 && addr >= s.addr && addr - s.addr < s.size)
            .max_by_key(|s| s.addr)
    }

    /// The index of the executable section holding `addr`.
    fn exec_section(&self, addr: u64) -> Option<usize> {
        self.exec
            .iter()
            .position(|e| addr >= e.addr && addr - e.addr < e.data.len() as u64)
    }

    /// The 32-bit little-endian word at `addr` in an executable section.
    pub fn insn_at(&self, addr: u64) -> Option<u32> {
        if self.relocatable && self.exec.len() > 1 {
            return None; // addresses are section-relative: ambiguous
        }
        self.exec.iter().find_map(|e| {
            let off = usize::try_from(addr.checked_sub(e.addr)?).ok()?;
            let b = e.data.get(off..off.checked_add(4)?)?;
            Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        })
    }

    fn in_exec(&self, addr: u64) -> bool {
        self.exec
            .iter()
            .any(|e| addr >= e.addr && addr - e.addr < e.data.len() as u64)
    }

    /// The return sites of function `name` (its symbol's size bounds it).
    pub fn return_sites(&self, name: &str) -> Result<ReturnSites, SymbolError> {
        let r = self.resolve(name)?;
        let sym = match self.lookup(name).as_slice() {
            [one] if one.size > 0 => (*one).clone(),
            _ => return Err(SymbolError::BadSpec(format!("{name} (a function with a known size)"))),
        };
        let end = sym.addr + sym.size;
        let mut sites = ReturnSites {
            entry: r.addr,
            rets: Vec::new(),
            tail_calls: Vec::new(),
        };
        for pc in (sym.addr..end).step_by(4) {
            let Some(w) = self.insn_at(pc) else { continue };
            if crate::a64::is_return(w) {
                sites.rets.push(pc);
            } else if crate::a64::branch_target(w, pc).is_some_and(|t| t < sym.addr || t >= end) {
                sites.tail_calls.push(pc);
            }
        }
        Ok(sites)
    }

    /// Resolves `NAME`, `NAME+OFFSET` or `0xADDRESS`.
    pub fn resolve(&self, spec: &str) -> Result<Resolved, SymbolError> {
        let spec = spec.trim();
        let bad = || SymbolError::BadSpec(spec.to_string());
        let parse_num = |t: &str| -> Option<u64> {
            let t = t.trim();
            match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                Some(h) => u64::from_str_radix(h, 16).ok(),
                None => t.parse().ok(),
            }
        };
        if spec.is_empty() {
            return Err(bad());
        }
        let (addr, symbol) = if spec.starts_with("0x") || spec.starts_with("0X") {
            let addr = parse_num(spec).ok_or_else(bad)?;
            if !self.in_exec(addr) {
                // Only a data symbol the address lies in is named: the
                // nearest one below may have nothing to do with it.
                let symbol = self.containing(addr).filter(|s| !s.executable).map(|s| s.name.clone());
                return Err(SymbolError::NotExecutable { addr, symbol });
            }
            (addr, self.symbolize(addr).map(|(s, o)| (s.name.clone(), o)))
        } else {
            let (name, offset) = match spec.split_once('+') {
                Some((n, o)) => (n.trim(), parse_num(o).ok_or_else(bad)?),
                None => (spec, 0),
            };
            if name.is_empty() || name.chars().any(char::is_whitespace) {
                return Err(bad());
            }
            let found = self.lookup(name);
            let sym = match found.as_slice() {
                [] => return Err(SymbolError::NotFound(name.to_string())),
                [one] => *one,
                many => {
                    return Err(SymbolError::Ambiguous {
                        name: name.to_string(),
                        addrs: many.iter().map(|s| s.addr).collect(),
                    })
                }
            };
            if sym.size > 0 && offset >= sym.size {
                return Err(SymbolError::OutsideSymbol {
                    name: name.to_string(),
                    offset,
                    size: sym.size,
                });
            }
            let addr = sym.addr.checked_add(offset).ok_or_else(bad)?;
            if !sym.executable || !(self.relocatable || self.in_exec(addr)) {
                return Err(SymbolError::NotExecutable {
                    addr,
                    symbol: Some(name.to_string()),
                });
            }
            (addr, Some((name.to_string(), offset)))
        };
        if addr % 4 != 0 {
            return Err(SymbolError::Misaligned(addr));
        }
        Ok(Resolved {
            addr,
            symbol,
            insn: self.insn_at(addr),
        })
    }
}
