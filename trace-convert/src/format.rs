//! Event format files (`events/<system>/<event>/format`) and the values they describe.
//!
//! A format file lists the fields of one event's binary record: name, C type, offset, size and
//! signedness. [`EventFormat::parse`] reads one; [`EventFormat::decode`] turns a record payload
//! into [`Value`]s and [`EventFormat::encode`] does the reverse for the `.dat` writer.
//! Layouts are always read from the format text, never assumed.

use std::fmt;

use crate::bytes::Endian;
use crate::error::{Error, Result};

/// How a field's bytes are to be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldKind {
    /// A signed or unsigned integer of 1, 2, 4 or 8 bytes.
    Int,
    /// A fixed `char name[N]` array, read as a NUL-terminated string.
    CharArray,
    /// A fixed array of `len` integers of `size / len` bytes each.
    Array {
        /// Element count.
        len: u32,
    },
    /// `__data_loc` (or `__rel_loc`) dynamic data: a 32-bit word holding length << 16 | offset.
    DataLoc {
        /// The element type is `char`, so the data is a string.
        string: bool,
        /// `__rel_loc`: the offset is relative to the end of the 4-byte word.
        relative: bool,
    },
    /// Anything else (odd sizes, structs): kept as raw bytes.
    Bytes,
}

/// One `field:` line of a format file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDef {
    /// Field name (`prev_comm`).
    pub name: String,
    /// The declared C type without the name (`char[16]`, `pid_t`, `__data_loc char[]`).
    pub type_name: String,
    /// Byte offset in the record.
    pub offset: u32,
    /// Byte size in the record.
    pub size: u32,
    /// `signed:1`.
    pub signed: bool,
    /// How to read it.
    pub kind: FieldKind,
}

impl FieldDef {
    /// A scalar integer field.
    pub fn int(name: &str, type_name: &str, offset: u32, size: u32, signed: bool) -> Self {
        FieldDef {
            name: name.into(),
            type_name: type_name.into(),
            offset,
            size,
            signed,
            kind: FieldKind::Int,
        }
    }

    /// A `char name[len]` field.
    pub fn chars(name: &str, offset: u32, len: u32) -> Self {
        FieldDef {
            name: name.into(),
            type_name: format!("char[{len}]"),
            offset,
            size: len,
            signed: false,
            kind: FieldKind::CharArray,
        }
    }

    /// A `__data_loc char[] name` (dynamic string) field.
    pub fn string_loc(name: &str, offset: u32) -> Self {
        FieldDef {
            name: name.into(),
            type_name: "__data_loc char[]".into(),
            offset,
            size: 4,
            signed: false,
            kind: FieldKind::DataLoc {
                string: true,
                relative: false,
            },
        }
    }

    /// The `field:` declaration as the kernel prints it (`char prev_comm[16]`).
    pub fn declaration(&self) -> String {
        match &self.kind {
            FieldKind::DataLoc { .. } => format!("{} {}", self.type_name, self.name),
            _ => {
                if let Some(i) = self.type_name.find('[') {
                    format!("{} {}{}", &self.type_name[..i], self.name, &self.type_name[i..])
                } else {
                    format!("{} {}", self.type_name, self.name)
                }
            }
        }
    }
}

/// A decoded field value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    UInt(u64),
    /// A string (char array or `__data_loc char[]`).
    Str(String),
    /// An integer array, elements widened to `i64` (signed) ...
    IntArray(Vec<i64>),
    /// ... or `u64` (unsigned).
    UIntArray(Vec<u64>),
    /// Raw bytes of a field this crate does not interpret.
    Bytes(Vec<u8>),
}

impl Value {
    /// The value as a signed integer, when it is one.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(v) => Some(v),
            Value::UInt(v) => Some(v as i64),
            _ => None,
        }
    }

    /// The value as an unsigned integer, when it is one.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Int(v) => Some(v as u64),
            Value::UInt(v) => Some(v),
            _ => None,
        }
    }

    /// The value as a string, when it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    /// The form `trace-cmd report -R` uses: decimal integers, strings as they are, arrays and
    /// bytes as hex lists.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::UInt(v) => write!(f, "{v}"),
            Value::Str(s) => f.write_str(s),
            Value::IntArray(a) => {
                f.write_str("ARRAY[")?;
                for (i, v) in a.iter().enumerate() {
                    write!(f, "{}{:02x}", if i > 0 { ", " } else { "" }, v)?;
                }
                f.write_str("]")
            }
            Value::UIntArray(a) => {
                f.write_str("ARRAY[")?;
                for (i, v) in a.iter().enumerate() {
                    write!(f, "{}{:02x}", if i > 0 { ", " } else { "" }, v)?;
                }
                f.write_str("]")
            }
            Value::Bytes(b) => {
                f.write_str("ARRAY[")?;
                for (i, v) in b.iter().enumerate() {
                    write!(f, "{}{:02x}", if i > 0 { ", " } else { "" }, v)?;
                }
                f.write_str("]")
            }
        }
    }
}

/// One event type: its id, system, name, fields and print format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFormat {
    /// The event id (`common_type` of its records).
    pub id: u32,
    /// Subsystem (`sched`, `hvtrace`, `ftrace`).
    pub system: String,
    /// Event name (`sched_switch`).
    pub name: String,
    /// The `common_*` fields that start every record.
    pub common: Vec<FieldDef>,
    /// The event's own fields.
    pub fields: Vec<FieldDef>,
    /// The `print fmt:` line's content (may be empty).
    pub print_fmt: String,
}

/// Where the common fields sit, read from a format's `common` list.
#[derive(Debug, Clone, Copy, Default)]
pub struct CommonLayout {
    /// `common_type` (offset, size).
    pub type_: (u32, u32),
    /// `common_flags`.
    pub flags: Option<(u32, u32)>,
    /// `common_preempt_count`.
    pub preempt: Option<(u32, u32)>,
    /// `common_pid`.
    pub pid: Option<(u32, u32)>,
}

impl CommonLayout {
    /// The layout of `common` fields; the kernel's standard one when a field is missing.
    pub fn of(common: &[FieldDef]) -> Self {
        let find = |n: &str| common.iter().find(|f| f.name == n).map(|f| (f.offset, f.size));
        CommonLayout {
            type_: find("common_type").unwrap_or((0, 2)),
            flags: find("common_flags"),
            preempt: find("common_preempt_count"),
            pid: find("common_pid"),
        }
    }
}

/// The kernel's standard common fields (u16 type, u8 flags, u8 preempt count, s32 pid).
pub fn standard_common() -> Vec<FieldDef> {
    vec![
        FieldDef::int("common_type", "unsigned short", 0, 2, false),
        FieldDef::int("common_flags", "unsigned char", 2, 1, false),
        FieldDef::int("common_preempt_count", "unsigned char", 3, 1, false),
        FieldDef::int("common_pid", "int", 4, 4, true),
    ]
}

fn kv<'a>(part: &'a str, key: &str) -> Option<&'a str> {
    part.trim().strip_prefix(key).map(str::trim)
}

/// What is wrong with one field line of a format file (the callers add
/// where it is).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum FieldError {
    #[error("bad {what} {given:?}")]
    BadNumber { what: &'static str, given: String },
    #[error("field without {0}")]
    Missing(&'static str),
}

/// Parses one `field:...;\toffset:N;\tsize:N;\tsigned:N;` line.
fn parse_field(line: &str) -> std::result::Result<FieldDef, FieldError> {
    let number = |what: &'static str, v: &str| {
        v.parse::<u32>().map_err(|_| FieldError::BadNumber {
            what,
            given: v.to_string(),
        })
    };
    let mut decl = None;
    let (mut offset, mut size, mut signed) = (None, None, None);
    for part in line.split(';') {
        let part = part.trim();
        if let Some(d) = kv(part, "field:") {
            decl = Some(d.to_string());
        } else if let Some(v) = kv(part, "offset:") {
            offset = Some(number("offset", v)?);
        } else if let Some(v) = kv(part, "size:") {
            size = Some(number("size", v)?);
        } else if let Some(v) = kv(part, "signed:") {
            signed = Some(v == "1");
        }
    }
    let decl = decl.ok_or(FieldError::Missing("declaration"))?;
    let offset = offset.ok_or(FieldError::Missing("offset"))?;
    let size = size.ok_or(FieldError::Missing("size"))?;
    let signed = signed.unwrap_or(false);
    // Split "type name[N]" into type and name.
    let decl = decl.trim();
    let (head, array) = match decl.find('[') {
        Some(i) if decl.ends_with(']') => (&decl[..i], Some(&decl[i..])),
        _ => (decl, None),
    };
    let head = head.trim_end();
    let split = head
        .rfind(|c: char| c.is_whitespace() || c == '*')
        .ok_or(FieldError::Missing("type"))?;
    let name = head[split + 1..].to_string();
    let base = head[..split + 1].trim().to_string();
    if name.is_empty() {
        return Err(FieldError::Missing("name"));
    }
    let is_char = {
        let b = base
            .trim_start_matches("const ")
            .trim_start_matches("unsigned ")
            .trim_start_matches("signed ");
        b == "char"
    };
    let data_loc = base.starts_with("__data_loc") || base.starts_with("__rel_loc");
    let (type_name, kind) = if data_loc {
        // "__data_loc char[] name": the [] sits on the type, not the name.
        let t = format!("{}{}", base, array.unwrap_or(""));
        let string = t.contains("char");
        (
            t.clone(),
            FieldKind::DataLoc {
                string,
                relative: base.starts_with("__rel_loc"),
            },
        )
    } else if let Some(arr) = array {
        let n = arr[1..arr.len() - 1].trim();
        let len: u32 = n.parse().unwrap_or(0);
        let t = format!("{base}{arr}");
        if is_char {
            (t, FieldKind::CharArray)
        } else if len > 0 && size % len == 0 && matches!(size / len, 1 | 2 | 4 | 8) {
            (t, FieldKind::Array { len })
        } else {
            (t, FieldKind::Bytes)
        }
    } else if matches!(size, 1 | 2 | 4 | 8) {
        (base, FieldKind::Int)
    } else {
        (base, FieldKind::Bytes)
    };
    Ok(FieldDef {
        name,
        type_name,
        offset,
        size,
        signed,
        kind,
    })
}

impl EventFormat {
    /// Parses a format file of event `system`. `offset` is where the text starts in the
    /// trace file, for error messages.
    pub fn parse(system: &str, text: &str, offset: u64) -> Result<EventFormat> {
        let bad = |what: String| Error::malformed(offset, format!("event format of system {system:?}: {what}"));
        let mut name = None;
        let mut id = None;
        let mut common = Vec::new();
        let mut fields = Vec::new();
        let mut print_fmt = String::new();
        let mut in_common = true;
        let mut seen_field = false;
        for line in text.lines() {
            let t = line.trim();
            if let Some(v) = t.strip_prefix("name:") {
                name = Some(v.trim().to_string());
            } else if let Some(v) = t.strip_prefix("ID:") {
                id = Some(
                    v.trim()
                        .parse::<u32>()
                        .map_err(|_| bad(format!("bad ID {:?}", v.trim())))?,
                );
            } else if t.starts_with("field:") || t.starts_with("field ") {
                let f = parse_field(t).map_err(|e| bad(format!("{e} in {t:?}")))?;
                seen_field = true;
                if in_common && f.name.starts_with("common_") {
                    common.push(f);
                } else {
                    in_common = false;
                    fields.push(f);
                }
            } else if t.is_empty() && seen_field {
                in_common = false;
            } else if let Some(v) = t.strip_prefix("print fmt:") {
                print_fmt = v.trim().to_string();
            }
        }
        let name = name.ok_or_else(|| bad("no name: line".into()))?;
        let id = id.ok_or_else(|| bad(format!("event {name}: no ID: line")))?;
        Ok(EventFormat {
            id,
            system: system.to_string(),
            name,
            common,
            fields,
            print_fmt,
        })
    }

    /// The format file text, as the kernel writes it.
    pub fn to_format_text(&self) -> String {
        let mut s = format!("name: {}\nID: {}\nformat:\n", self.name, self.id);
        let line = |f: &FieldDef| {
            format!(
                "\tfield:{};\toffset:{};\tsize:{};\tsigned:{};\n",
                f.declaration(),
                f.offset,
                f.size,
                f.signed as u8
            )
        };
        for f in &self.common {
            s += &line(f);
        }
        s.push('\n');
        for f in &self.fields {
            s += &line(f);
        }
        s += &format!("\nprint fmt: {}\n", self.print_fmt);
        s
    }

    /// The field called `name`, and its index in [`EventFormat::fields`].
    pub fn field(&self, name: &str) -> Option<(usize, &FieldDef)> {
        self.fields.iter().enumerate().find(|(_, f)| f.name == name)
    }

    /// Decodes the event's own fields from a record payload. Fields that do not fit in
    /// `data` are an error naming `offset` (the payload's file offset).
    pub fn decode(&self, data: &[u8], endian: Endian, offset: u64) -> Result<Vec<Value>> {
        let mut out = Vec::with_capacity(self.fields.len());
        for f in &self.fields {
            out.push(decode_field(f, data, endian, offset, &self.name)?);
        }
        Ok(out)
    }

    /// Encodes a record payload: common fields from `common`, then `values` (one per field,
    /// in order). Dynamic (`__data_loc`) data is placed after the fixed part.
    pub fn encode(&self, common: &CommonValues, values: &[Value], endian: Endian, out: &mut Vec<u8>) -> Result<()> {
        if values.len() != self.fields.len() {
            return Err(Error::Write(format!(
                "{}: {} values for {} fields",
                self.name,
                values.len(),
                self.fields.len()
            )));
        }
        let fixed_end = self
            .common
            .iter()
            .chain(&self.fields)
            .map(|f| f.offset + f.size)
            .max()
            .unwrap_or(0) as usize;
        let start = out.len();
        out.resize(start + fixed_end, 0);
        let put = |out: &mut Vec<u8>, off: u32, size: u32, v: u64| {
            let mut tmp = Vec::with_capacity(8);
            endian.put(&mut tmp, v, size as usize);
            let at = start + off as usize;
            out[at..at + tmp.len()].copy_from_slice(&tmp);
        };
        for f in &self.common {
            let v = match f.name.as_str() {
                "common_type" => self.id as u64,
                "common_flags" => common.flags as u64,
                "common_preempt_count" => common.preempt_count as u64,
                "common_pid" => common.pid as i64 as u64,
                _ => 0,
            };
            if f.kind == FieldKind::Int {
                put(out, f.offset, f.size, v);
            }
        }
        for (f, v) in self.fields.iter().zip(values) {
            match (&f.kind, v) {
                (FieldKind::Int, v) => put(out, f.offset, f.size, v.as_u64().unwrap_or(0)),
                (FieldKind::CharArray, v) => {
                    let s = match v {
                        Value::Str(s) => s.as_bytes(),
                        Value::Bytes(b) => b.as_slice(),
                        _ => b"",
                    };
                    let at = start + f.offset as usize;
                    if f.size == 0 {
                        // `char buf[]` (ftrace's print): the string, NUL-ended,
                        // runs to the record's end.
                        out.truncate(at);
                        out.extend_from_slice(s);
                        out.push(0);
                        continue;
                    }
                    let n = s.len().min(f.size.saturating_sub(1) as usize);
                    out[at..at + n].copy_from_slice(&s[..n]);
                }
                (FieldKind::Array { len }, v) => {
                    let es = f.size / len;
                    let items: Vec<u64> = match v {
                        Value::IntArray(a) => a.iter().map(|&x| x as u64).collect(),
                        Value::UIntArray(a) => a.clone(),
                        _ => Vec::new(),
                    };
                    for (i, x) in items.iter().take(*len as usize).enumerate() {
                        put(out, f.offset + i as u32 * es, es, *x);
                    }
                }
                (FieldKind::DataLoc { string, relative }, v) => {
                    let mut bytes: Vec<u8> = match v {
                        Value::Str(s) => s.as_bytes().to_vec(),
                        Value::Bytes(b) => b.clone(),
                        Value::UIntArray(a) => a.iter().flat_map(|x| x.to_le_bytes()).collect(),
                        _ => Vec::new(),
                    };
                    if *string {
                        bytes.push(0);
                    }
                    let data_off = out.len() - start;
                    out.extend_from_slice(&bytes);
                    let rel = if *relative {
                        data_off - (f.offset as usize + 4)
                    } else {
                        data_off
                    };
                    if rel > 0xffff || bytes.len() > 0xffff {
                        return Err(Error::Write(format!(
                            "{}: dynamic field {} too large",
                            self.name, f.name
                        )));
                    }
                    put(out, f.offset, 4, ((bytes.len() as u64) << 16) | rel as u64);
                }
                (FieldKind::Bytes, Value::Bytes(b)) => {
                    let n = b.len().min(f.size as usize);
                    let at = start + f.offset as usize;
                    out[at..at + n].copy_from_slice(&b[..n]);
                }
                (FieldKind::Bytes, _) => {}
            }
        }
        Ok(())
    }
}

/// The common (per-record) values besides the event type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommonValues {
    /// `common_pid`.
    pub pid: i32,
    /// `common_flags` (irqs-off, need-resched, hardirq, softirq bits).
    pub flags: u8,
    /// `common_preempt_count`.
    pub preempt_count: u8,
}

fn cstr_of(b: &[u8]) -> String {
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..n]).into_owned()
}

fn decode_field(f: &FieldDef, data: &[u8], endian: Endian, offset: u64, ev: &str) -> Result<Value> {
    let (o, n) = (f.offset as usize, f.size as usize);
    let Some(b) = data.get(o..o + n) else {
        return Err(Error::malformed(
            offset,
            format!(
                "{ev} record of {} bytes too short for field {} at {}+{}",
                data.len(),
                f.name,
                o,
                n
            ),
        ));
    };
    Ok(match &f.kind {
        FieldKind::Int => {
            if f.signed {
                Value::Int(endian.int(b))
            } else {
                Value::UInt(endian.uint(b))
            }
        }
        // `char buf[]` (size 0, as ftrace's print): the rest of the record.
        FieldKind::CharArray if n == 0 => Value::Str(cstr_of(&data[o.min(data.len())..])),
        FieldKind::CharArray => Value::Str(cstr_of(b)),
        FieldKind::Array { len } => {
            let es = n / *len as usize;
            if f.signed {
                Value::IntArray(b.chunks(es).map(|c| endian.int(c)).collect())
            } else {
                Value::UIntArray(b.chunks(es).map(|c| endian.uint(c)).collect())
            }
        }
        FieldKind::DataLoc { string, relative } => {
            let word = endian.uint(&b[..4.min(b.len())]) as usize;
            let (len, mut off) = (word >> 16, word & 0xffff);
            if *relative {
                off += o + 4;
            }
            let Some(d) = data.get(off..off + len) else {
                return Err(Error::malformed(
                    offset,
                    format!(
                        "{ev}: dynamic field {} at {off}+{len} outside its {}-byte record",
                        f.name,
                        data.len()
                    ),
                ));
            };
            if *string {
                Value::Str(cstr_of(d))
            } else {
                Value::Bytes(d.to_vec())
            }
        }
        FieldKind::Bytes => Value::Bytes(b.to_vec()),
    })
}

/// What the `header_page` format says about ring-buffer pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageHeader {
    /// Size of the `commit` word (the kernel's `long`): 4 or 8.
    pub commit_size: u32,
    /// Offset of the event data within a page.
    pub data_offset: u32,
}

impl PageHeader {
    /// Parses `header_page`; falls back to `long_size` when fields are missing.
    pub fn parse(text: &str, long_size: u32, offset: u64) -> Result<PageHeader> {
        let mut commit = None;
        let mut data = None;
        for line in text.lines() {
            let t = line.trim();
            if !t.starts_with("field") {
                continue;
            }
            let f = parse_field(t).map_err(|e| Error::malformed(offset, format!("header_page: {e}")))?;
            match f.name.as_str() {
                "commit" => commit = Some(f.size),
                "data" => data = Some(f.offset),
                _ => {}
            }
        }
        let commit_size = commit.unwrap_or(long_size);
        if commit_size != 4 && commit_size != 8 {
            return Err(Error::malformed(
                offset,
                format!("header_page: commit size {commit_size}"),
            ));
        }
        Ok(PageHeader {
            commit_size,
            data_offset: data.unwrap_or(8 + commit_size),
        })
    }

    /// The kernel's `header_page` text for a 64-bit kernel and `page_size` pages.
    pub fn standard_text(page_size: u32) -> String {
        format!(
            "\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n\
             \tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;\n\
             \tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;\n\
             \tfield: char data;\toffset:16;\tsize:{};\tsigned:0;\n",
            page_size - 16
        )
    }
}

/// The kernel's `header_event` text.
pub const STANDARD_HEADER_EVENT: &str = "# compressed entry header\n\ttype_len    :    5 bits\n\ttime_delta  :   27 bits\n\tarray       :   32 bits\n\n\tpadding     : type == 29\n\ttime_extend : type == 30\n\ttime_stamp : type == 31\n\tdata max type_len  == 28\n";

#[cfg(test)]
mod tests {
    use super::*;

    const SWITCH: &str = "name: sched_switch\nID: 372\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\tfield:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;\n\tfield:pid_t prev_pid;\toffset:24;\tsize:4;\tsigned:1;\n\tfield:__data_loc char[] name;\toffset:28;\tsize:4;\tsigned:0;\n\tfield:unsigned long args[6];\toffset:32;\tsize:48;\tsigned:0;\n\nprint fmt: \"prev_comm=%s\", REC->prev_comm\n";

    #[test]
    fn parses_fields_and_round_trips() {
        let f = EventFormat::parse("sched", SWITCH, 0).unwrap();
        assert_eq!(f.id, 372);
        assert_eq!(f.common.len(), 4);
        assert_eq!(f.fields.len(), 4);
        assert_eq!(f.fields[0].kind, FieldKind::CharArray);
        assert_eq!(f.fields[1].kind, FieldKind::Int);
        assert!(f.fields[1].signed);
        assert_eq!(
            f.fields[2].kind,
            FieldKind::DataLoc {
                string: true,
                relative: false
            }
        );
        assert_eq!(f.fields[3].kind, FieldKind::Array { len: 6 });
        let again = EventFormat::parse("sched", &f.to_format_text(), 0).unwrap();
        assert_eq!(f, again);
        let values = vec![
            Value::Str("bash".into()),
            Value::Int(-5),
            Value::Str("hello".into()),
            Value::UIntArray(vec![1, 2, 3, 4, 5, 6]),
        ];
        let mut buf = Vec::new();
        let c = CommonValues {
            pid: 42,
            flags: 1,
            preempt_count: 2,
        };
        f.encode(&c, &values, Endian::Little, &mut buf).unwrap();
        assert_eq!(f.decode(&buf, Endian::Little, 0).unwrap(), values);
        assert_eq!(Endian::Little.int(&buf[4..8]), 42);
    }

    #[test]
    fn short_record_is_an_error_not_a_panic() {
        let f = EventFormat::parse("sched", SWITCH, 0).unwrap();
        let e = f.decode(&[0u8; 20], Endian::Little, 0x40).unwrap_err().to_string();
        assert!(e.contains("0x40") && e.contains("too short"), "{e}");
    }
}
