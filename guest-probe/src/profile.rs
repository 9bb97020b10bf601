//! OS profile extraction from ELF symbols and DWARF (host side).
//!
//! - [`extract_ucos`]: the uC/OS-II globals (`OSTCBCur`, `OSTCBHighRdy`,
//!   `OSPrioCur`, `OSPrioHighRdy`, `OSTime`) from the symbol table, the
//!   `OS_TCB` layout from DWARF (through the `OS_TCB` typedef chain or
//!   `struct os_tcb`), and the default context-switch probe sites
//!   (`OSCtxSw`, `OSIntCtxSw`, `OSTaskSwHook` where present).
//! - [`extract_linux`]: `task_struct.comm`/`.pid`/`.prio` from a vmlinux.
//!
//! Works on linked images and on relocatable objects (`gcc -g -c`), whose
//! debug sections are relocated first. Corrupt input is an
//! [`ExtractError`], never a panic.

use std::collections::HashMap;

use gimli::AttributeValue;
use object::{Object, ObjectSymbol, SymbolKind};

use crate::abi::profile::{CurrentTask, Field, Global, NameKind, OsKind, OsProfile, ProfileError};
use crate::abi::ProbeKind;
use crate::elf::{self, TypeShape, R};

/// Why a profile could not be extracted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    /// The file is not a usable ELF.
    #[error("{0}")]
    Elf(crate::elf::ElfError),
    /// The DWARF is corrupt or uses something we cannot read.
    #[error("DWARF: {0}")]
    Dwarf(String),
    /// No `.debug_info`.
    #[error("no DWARF debug info (build the image with -g)")]
    NoDebugInfo,
    /// A required symbol is not in the symbol table.
    #[error("required symbol {0} not found in the symbol table")]
    MissingSymbol(&'static str),
    /// The struct definition is not in the DWARF.
    #[error("no definition of {0} in the DWARF (is the file that defines it compiled with -g?)")]
    MissingType(&'static str),
    /// A required member is missing from the struct.
    #[error("{ty} has no member {member}, which is required")]
    MissingMember {
        /// The struct.
        ty: &'static str,
        /// The member.
        member: &'static str,
    },
    /// The extracted profile does not validate.
    #[error("extracted profile is invalid: {0}")]
    Invalid(#[from] ProfileError),
}

/// A default probe site found in the image.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProbeSite {
    /// The symbol.
    pub symbol: String,
    /// Its guest virtual address.
    pub va: u64,
    /// What the probe records.
    pub kind: ProbeKind,
}

/// A uC/OS-II profile plus the default probe sites.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UcosProfile {
    /// The blob for `PROFILE_SET`.
    pub profile: OsProfile,
    /// Context-switch sites, in preference order.
    pub probe_sites: Vec<ProbeSite>,
}

/// A struct member found in the DWARF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Member {
    offset: u64,
    size: u64,
    shape: TypeShape,
}

/// A struct layout: its size and members by name (anonymous struct/union
/// members flattened in).
#[derive(Debug, Default)]
struct Layout {
    size: u64,
    members: HashMap<String, Member>,
}

/// Which struct to look for: typedef names first, then struct tags.
struct Wanted<'a> {
    typedefs: &'a [&'a str],
    tags: &'a [&'a str],
}

fn dwarf_err(e: gimli::Error) -> ExtractError {
    ExtractError::Dwarf(e.to_string())
}

/// Follows typedefs and qualifiers from `entry`'s `DW_AT_type` to a struct
/// or union definition.
fn resolve_struct(
    unit: &gimli::Unit<R<'_>>,
    entry: &gimli::DebuggingInformationEntry<R<'_>>,
) -> Option<gimli::UnitOffset> {
    let mut off = match entry.attr_value(gimli::DW_AT_type).ok()?? {
        AttributeValue::UnitRef(o) => o,
        _ => return None,
    };
    for _ in 0..32 {
        let die = unit.entry(off).ok()?;
        match die.tag() {
            gimli::DW_TAG_structure_type | gimli::DW_TAG_union_type => return Some(off),
            gimli::DW_TAG_typedef | gimli::DW_TAG_const_type | gimli::DW_TAG_volatile_type => {
                off = match die.attr_value(gimli::DW_AT_type).ok()?? {
                    AttributeValue::UnitRef(o) => o,
                    _ => return None,
                };
            }
            _ => return None,
        }
    }
    None
}

fn collect_members(
    unit: &gimli::Unit<R<'_>>,
    dwarf: &gimli::Dwarf<R<'_>>,
    off: gimli::UnitOffset,
    base: u64,
    depth: u32,
    out: &mut Layout,
) -> Result<(), ExtractError> {
    if depth > 8 {
        return Ok(());
    }
    let mut tree = unit.entries_tree(Some(off)).map_err(dwarf_err)?;
    let root = tree.root().map_err(dwarf_err)?;
    let mut children = root.children();
    while let Some(child) = children.next().map_err(dwarf_err)? {
        let e = child.entry();
        if e.tag() != gimli::DW_TAG_member {
            continue;
        }
        let Some(offset) = elf::member_offset(unit, e).and_then(|o| o.checked_add(base)) else {
            continue;
        };
        match elf::die_name(dwarf, unit, e) {
            Some(name) => {
                let Some((size, shape)) = elf::type_size(unit, e) else {
                    continue;
                };
                let size = elf::die_udata(e, gimli::DW_AT_byte_size).unwrap_or(size);
                out.members.entry(name).or_insert(Member { offset, size, shape });
            }
            None => {
                if let Some(inner) = resolve_struct(unit, e) {
                    collect_members(unit, dwarf, inner, offset, depth + 1, out)?;
                }
            }
        }
    }
    Ok(())
}

/// Finds the first complete definition of the wanted struct.
fn find_struct(dwarf: &gimli::Dwarf<R<'_>>, wanted: &Wanted<'_>) -> Result<Option<Layout>, ExtractError> {
    let mut units = dwarf.units();
    let mut by_tag: Option<Layout> = None;
    while let Some(header) = units.next().map_err(dwarf_err)? {
        let unit = dwarf.unit(header).map_err(dwarf_err)?;
        let mut cursor = unit.entries();
        while let Some((_, entry)) = cursor.next_dfs().map_err(dwarf_err)? {
            let tag = entry.tag();
            if tag != gimli::DW_TAG_typedef && tag != gimli::DW_TAG_structure_type {
                continue;
            }
            let Some(name) = elf::die_name(dwarf, &unit, entry) else {
                continue;
            };
            let target = if tag == gimli::DW_TAG_typedef && wanted.typedefs.contains(&name.as_str()) {
                resolve_struct(&unit, entry)
            } else if tag == gimli::DW_TAG_structure_type && by_tag.is_none() && wanted.tags.contains(&name.as_str()) {
                Some(entry.offset())
            } else {
                None
            };
            let Some(off) = target else { continue };
            let die = unit.entry(off).map_err(dwarf_err)?;
            // Skip declarations: only a definition has a size.
            let Some(size) = elf::die_udata(&die, gimli::DW_AT_byte_size) else {
                continue;
            };
            let mut layout = Layout {
                size,
                members: HashMap::new(),
            };
            collect_members(&unit, dwarf, off, 0, 0, &mut layout)?;
            if tag == gimli::DW_TAG_typedef {
                return Ok(Some(layout));
            }
            by_tag = Some(layout);
            if wanted.typedefs.is_empty() {
                return Ok(by_tag);
            }
        }
    }
    Ok(by_tag)
}

fn load_layout<'a>(
    bytes: &'a [u8],
    wanted: &Wanted,
    what: &'static str,
) -> Result<(object::File<'a>, Layout), ExtractError> {
    let file = elf::parse(bytes).map_err(ExtractError::Elf)?;
    let sections = elf::DwarfSections::load(&file).map_err(|e| ExtractError::Dwarf(e.to_string()))?;
    if sections.is_empty() {
        return Err(ExtractError::NoDebugInfo);
    }
    let dwarf = sections.dwarf();
    let layout = find_struct(&dwarf, wanted)?.ok_or(ExtractError::MissingType(what))?;
    Ok((file, layout))
}

fn to_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn field(layout: &Layout, ty: &'static str, member: &'static str, required: bool) -> Result<Field, ExtractError> {
    match layout.members.get(member) {
        Some(m) => Ok(Field {
            offset: to_u32(m.offset),
            size: to_u32(m.size),
        }),
        None if required => Err(ExtractError::MissingMember { ty, member }),
        None => Ok(Field::ABSENT),
    }
}

/// Finds a data or function symbol by exact name (globals preferred).
fn symbol<'a>(file: &'a object::File<'a>, name: &str) -> Option<object::Symbol<'a, 'a>> {
    let mut found = None;
    for s in file.symbols() {
        if s.name() == Ok(name)
            && !s.is_undefined()
            && matches!(s.kind(), SymbolKind::Data | SymbolKind::Text | SymbolKind::Unknown)
        {
            if s.is_global() {
                return Some(s);
            }
            found.get_or_insert(s);
        }
    }
    found
}

/// Extracts a uC/OS-II profile and the default probe sites from an ELF.
pub fn extract_ucos(bytes: &[u8]) -> Result<UcosProfile, ExtractError> {
    let wanted = Wanted {
        typedefs: &["OS_TCB"],
        tags: &["os_tcb"],
    };
    let (file, layout) = load_layout(bytes, &wanted, "OS_TCB (struct os_tcb)")?;
    let ptr = if file.is_64() { 8 } else { 4 };
    let global = |name: &'static str, required: bool, default_size: u32| -> Result<Global, ExtractError> {
        match symbol(&file, name) {
            Some(s) => {
                let size = if s.size() == 0 { default_size } else { to_u32(s.size()) };
                Ok(Global {
                    va: s.address(),
                    size,
                    reserved: 0,
                })
            }
            None if required => Err(ExtractError::MissingSymbol(name)),
            None => Ok(Global::ABSENT),
        }
    };
    const TY: &str = "OS_TCB";
    let mut p = OsProfile::empty(OsKind::UcosII);
    p.os_tcb_cur = global("OSTCBCur", true, ptr)?;
    p.os_tcb_high_rdy = global("OSTCBHighRdy", true, ptr)?;
    p.os_prio_cur = global("OSPrioCur", false, 1)?;
    p.os_prio_high_rdy = global("OSPrioHighRdy", false, 1)?;
    p.os_time = global("OSTime", false, 4)?;
    p.tcb_size = to_u32(layout.size);
    p.tcb_stk_ptr = field(&layout, TY, "OSTCBStkPtr", true)?;
    p.tcb_prio = field(&layout, TY, "OSTCBPrio", true)?;
    p.tcb_stat = field(&layout, TY, "OSTCBStat", true)?;
    p.tcb_stat_pend = field(&layout, TY, "OSTCBStatPend", false)?;
    p.tcb_task_name = field(&layout, TY, "OSTCBTaskName", false)?;
    p.tcb_id = field(&layout, TY, "OSTCBId", false)?;
    p.tcb_dly = field(&layout, TY, "OSTCBDly", false)?;
    p.tcb_ctx_sw_ctr = field(&layout, TY, "OSTCBCtxSwCtr", false)?;
    p.name_kind = match layout.members.get("OSTCBTaskName").map(|m| m.shape) {
        None => NameKind::None,
        Some(TypeShape::Pointer) => NameKind::Pointer,
        Some(TypeShape::Array) => NameKind::Inline,
        Some(TypeShape::Other) => NameKind::None,
    } as u32;
    if p.name_kind == NameKind::None as u32 {
        p.tcb_task_name = Field::ABSENT;
    }
    p.validate()?;
    let probe_sites = ["OSCtxSw", "OSIntCtxSw", "OSTaskSwHook"]
        .into_iter()
        .filter_map(|name| {
            let s = symbol(&file, name)?;
            Some(ProbeSite {
                symbol: name.to_string(),
                va: s.address(),
                kind: ProbeKind::ContextSwitch,
            })
        })
        .collect();
    Ok(UcosProfile {
        profile: p,
        probe_sites,
    })
}

/// The size and members (offset and size, anonymous members flattened in)
/// of the first complete definition of `struct TAG` in an ELF's DWARF.
pub fn struct_layout(bytes: &[u8], tag: &'static str) -> Result<(u64, HashMap<String, Field>), ExtractError> {
    let tags = [tag];
    let wanted = Wanted {
        typedefs: &[],
        tags: &tags,
    };
    let (_, layout) = load_layout(bytes, &wanted, tag)?;
    let members = layout
        .members
        .into_iter()
        .map(|(k, m)| {
            (
                k,
                Field {
                    offset: to_u32(m.offset),
                    size: to_u32(m.size),
                },
            )
        })
        .collect();
    Ok((layout.size, members))
}

/// Extracts the Linux `task_struct` layout from a vmlinux with DWARF.
pub fn extract_linux(bytes: &[u8]) -> Result<OsProfile, ExtractError> {
    let wanted = Wanted {
        typedefs: &[],
        tags: &["task_struct"],
    };
    let (_, layout) = load_layout(bytes, &wanted, "struct task_struct")?;
    const TY: &str = "task_struct";
    let mut p = OsProfile::empty(OsKind::Linux);
    p.linux_current = CurrentTask::SpEl0 as u32;
    p.task_struct_size = to_u32(layout.size);
    p.task_comm = field(&layout, TY, "comm", true)?;
    p.task_pid = field(&layout, TY, "pid", true)?;
    p.task_prio = field(&layout, TY, "prio", false)?;
    p.validate()?;
    Ok(p)
}
