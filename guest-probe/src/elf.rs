//! Shared ELF/DWARF loading for the host-side readers: section data with
//! relocations applied to the debug sections of relocatable objects (so a
//! `gcc -c` object reads like a linked image), and DWARF type walking helpers.

use std::borrow::Cow;

use gimli::{AttributeValue, EndianSlice, LittleEndian, UnitOffset};
use object::{Object, ObjectSection, ObjectSymbol, RelocationKind, RelocationTarget};

/// A gimli reader over loaded section bytes.
pub(crate) type R<'a> = EndianSlice<'a, LittleEndian>;

/// Why an ELF file or one of its debug sections could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ElfError {
    /// The object crate could not parse the file.
    #[error("not a readable ELF file: {0}")]
    Unreadable(String),
    /// Another object format (PE, Mach-O, …).
    #[error("not an ELF file ({0})")]
    NotElf(String),
    /// A big-endian file (our guests are little-endian AArch64).
    #[error("big-endian ELF files are not supported")]
    BigEndian,
    /// A section's data could not be read (or decompressed).
    #[error("section {section}: {why}")]
    Section {
        /// The section's name.
        section: String,
        /// The reader's complaint.
        why: String,
    },
    /// A relocation of a relocatable object's debug section that cannot be applied.
    #[error("section {section}: {problem} at {offset:#x}")]
    Relocation {
        /// The section's name.
        section: String,
        /// Its offset in the section.
        offset: u64,
        /// What is wrong with it.
        problem: RelocationProblem,
    },
    /// The DWARF itself is malformed.
    #[error("{0}")]
    Dwarf(gimli::Error),
}

impl From<gimli::Error> for ElfError {
    fn from(e: gimli::Error) -> Self {
        ElfError::Dwarf(e)
    }
}

/// What is wrong with a relocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RelocationProblem {
    /// Only 4- and 8-byte absolute relocations are applied.
    #[error("unsupported {0}-byte relocation")]
    Size(usize),
    /// It would patch bytes outside its section.
    #[error("relocation outside the section")]
    OutsideSection,
}

/// Parses an ELF file, refusing big-endian ones (our guests are LE AArch64).
pub(crate) fn parse(bytes: &[u8]) -> Result<object::File<'_>, ElfError> {
    let file = object::File::parse(bytes).map_err(|e| ElfError::Unreadable(e.to_string()))?;
    if file.format() != object::BinaryFormat::Elf {
        return Err(ElfError::NotElf(format!("{:?}", file.format())));
    }
    if !file.is_little_endian() {
        return Err(ElfError::BigEndian);
    }
    Ok(file)
}

/// The bytes of a DWARF section, relocated for `ET_REL` objects.
fn section_data<'a>(file: &object::File<'a>, name: &str) -> Result<Cow<'a, [u8]>, ElfError> {
    let Some(section) = file.section_by_name(name) else {
        return Ok(Cow::Borrowed(&[]));
    };
    let data = section.uncompressed_data().map_err(|e| ElfError::Section {
        section: name.to_string(),
        why: e.to_string(),
    })?;
    if file.kind() != object::ObjectKind::Relocatable {
        return Ok(data);
    }
    let mut data = data.into_owned();
    for (offset, reloc) in section.relocations() {
        if reloc.kind() != RelocationKind::Absolute {
            continue;
        }
        let base = match reloc.target() {
            RelocationTarget::Symbol(i) => file.symbol_by_index(i).map(|s| s.address()).unwrap_or(0),
            RelocationTarget::Section(i) => file.section_by_index(i).map(|s| s.address()).unwrap_or(0),
            _ => 0,
        };
        let size = usize::from(reloc.size() / 8);
        let Some(at) = usize::try_from(offset)
            .ok()
            .filter(|&o| size > 0 && o.checked_add(size).is_some_and(|e| e <= data.len()))
        else {
            return Err(ElfError::Relocation {
                section: name.to_string(),
                offset,
                problem: RelocationProblem::OutsideSection,
            });
        };
        let implicit = if reloc.has_implicit_addend() {
            let mut b = [0u8; 8];
            b[..size].copy_from_slice(&data[at..at + size]);
            u64::from_le_bytes(b) as i64
        } else {
            0
        };
        let value = base.wrapping_add_signed(reloc.addend()).wrapping_add_signed(implicit);
        match size {
            4 => data[at..at + 4].copy_from_slice(&(value as u32).to_le_bytes()),
            8 => data[at..at + 8].copy_from_slice(&value.to_le_bytes()),
            _ => {
                return Err(ElfError::Relocation {
                    section: name.to_string(),
                    offset,
                    problem: RelocationProblem::Size(size),
                })
            }
        }
    }
    Ok(Cow::Owned(data))
}

/// Loaded DWARF sections.
pub(crate) struct DwarfSections<'a> {
    sections: gimli::DwarfSections<Cow<'a, [u8]>>,
    has_info: bool,
}

impl<'a> DwarfSections<'a> {
    pub(crate) fn load(file: &object::File<'a>) -> Result<Self, ElfError> {
        let sections = gimli::DwarfSections::load(|id| section_data(file, id.name()))?;
        let has_info = file.section_by_name(".debug_info").is_some_and(|s| s.size() > 0);
        Ok(Self { sections, has_info })
    }

    pub(crate) fn dwarf(&self) -> gimli::Dwarf<R<'_>> {
        self.sections.borrow(|s| EndianSlice::new(s, LittleEndian))
    }

    pub(crate) fn is_empty(&self) -> bool {
        !self.has_info
    }
}

/// Reads a DIE attribute as a name string.
pub(crate) fn die_name(
    dwarf: &gimli::Dwarf<R<'_>>,
    unit: &gimli::Unit<R<'_>>,
    entry: &gimli::DebuggingInformationEntry<R<'_>>,
) -> Option<String> {
    let v = entry.attr_value(gimli::DW_AT_name).ok()??;
    let s = dwarf.attr_string(unit, v).ok()?;
    Some(s.to_string_lossy().into_owned())
}

/// An unsigned constant attribute.
pub(crate) fn die_udata(entry: &gimli::DebuggingInformationEntry<R<'_>>, at: gimli::DwAt) -> Option<u64> {
    entry.attr_value(at).ok()?.and_then(|v| v.udata_value())
}

/// What a type reference resolves to, for sizes and name storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TypeShape {
    Pointer,
    Array,
    Other,
}

/// Follows `DW_AT_type` from `entry` through typedefs and qualifiers; returns
/// the size in bytes and the shape. Depth-limited against cycles.
pub(crate) fn type_size(
    unit: &gimli::Unit<R<'_>>,
    entry: &gimli::DebuggingInformationEntry<R<'_>>,
) -> Option<(u64, TypeShape)> {
    let mut off = match entry.attr_value(gimli::DW_AT_type).ok()?? {
        AttributeValue::UnitRef(o) => o,
        _ => return None,
    };
    for _ in 0..32 {
        let die = unit.entry(off).ok()?;
        match die.tag() {
            gimli::DW_TAG_typedef
            | gimli::DW_TAG_const_type
            | gimli::DW_TAG_volatile_type
            | gimli::DW_TAG_atomic_type
            | gimli::DW_TAG_restrict_type => {
                off = match die.attr_value(gimli::DW_AT_type).ok()?? {
                    AttributeValue::UnitRef(o) => o,
                    _ => return None,
                };
            }
            gimli::DW_TAG_pointer_type => {
                let size = die_udata(&die, gimli::DW_AT_byte_size).unwrap_or(u64::from(unit.encoding().address_size));
                return Some((size, TypeShape::Pointer));
            }
            gimli::DW_TAG_array_type => {
                let (elem, _) = type_size(unit, &die)?;
                let count = array_count(unit, off)?;
                return Some((elem.checked_mul(count)?, TypeShape::Array));
            }
            _ => return Some((die_udata(&die, gimli::DW_AT_byte_size)?, TypeShape::Other)),
        }
    }
    None
}

/// The element count of an array type (product of its subranges).
fn array_count(unit: &gimli::Unit<R<'_>>, off: UnitOffset) -> Option<u64> {
    let mut tree = unit.entries_tree(Some(off)).ok()?;
    let root = tree.root().ok()?;
    let mut children = root.children();
    let mut count = 1u64;
    let mut any = false;
    while let Some(child) = children.next().ok()? {
        let e = child.entry();
        if e.tag() != gimli::DW_TAG_subrange_type {
            continue;
        }
        any = true;
        let n = match die_udata(e, gimli::DW_AT_count) {
            Some(c) => c,
            None => die_udata(e, gimli::DW_AT_upper_bound)?.checked_add(1)?,
        };
        count = count.checked_mul(n)?;
    }
    any.then_some(count)
}

/// The byte offset of a member (`DW_AT_data_member_location`), as a
/// constant or a `DW_OP_plus_uconst` expression.
pub(crate) fn member_offset(unit: &gimli::Unit<R<'_>>, entry: &gimli::DebuggingInformationEntry<R<'_>>) -> Option<u64> {
    match entry.attr_value(gimli::DW_AT_data_member_location).ok()? {
        None => Some(0), // union members and the first member may omit it
        Some(AttributeValue::Exprloc(expr)) => {
            let mut ops = expr.operations(unit.encoding());
            match ops.next().ok()?? {
                gimli::Operation::PlusConstant { value } => Some(value),
                _ => None,
            }
        }
        Some(v) => v.udata_value(),
    }
}
