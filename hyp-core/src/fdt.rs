//! Flattened device tree: a reader over borrowed bytes and a writer into a
//! caller-provided buffer (no allocation), enough to derive a guest's device
//! tree from QEMU's. Format: Devicetree Specification v0.4, chapter 5.

const MAGIC: u32 = 0xd00d_feed;
const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;
const HEADER_LEN: usize = 40;
const RSVMAP_LEN: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdtError {
    /// Not a device tree (bad magic).
    BadMagic,
    /// A header field, token or string points outside the blob.
    Truncated { offset: usize },
    /// An unknown token.
    BadToken { offset: usize, token: u32 },
    /// The output buffer (or the writer's string table) is full.
    OutOfSpace,
    /// Begin/end nodes do not pair up.
    Unbalanced,
}

fn be32(data: &[u8], at: usize) -> Result<u32, FdtError> {
    let b = data.get(at..at + 4).ok_or(FdtError::Truncated { offset: at })?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// A parsed device tree blob.
#[derive(Clone, Copy)]
pub struct Fdt<'a> {
    data: &'a [u8],
    structs: (usize, usize),
    strings: (usize, usize),
}

/// One structure-block token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token<'a> {
    Begin(&'a [u8]),
    Prop { name: &'a [u8], value: &'a [u8] },
    End,
}

impl<'a> Fdt<'a> {
    pub fn parse(data: &'a [u8]) -> Result<Self, FdtError> {
        if be32(data, 0)? != MAGIC {
            return Err(FdtError::BadMagic);
        }
        let total = be32(data, 4)? as usize;
        let data = data.get(..total).ok_or(FdtError::Truncated { offset: 4 })?;
        let structs = (be32(data, 8)? as usize, be32(data, 36)? as usize);
        let strings = (be32(data, 12)? as usize, be32(data, 32)? as usize);
        for (off, len) in [structs, strings] {
            if off.checked_add(len).is_none_or(|end| end > data.len()) {
                return Err(FdtError::Truncated { offset: off });
            }
        }
        Ok(Fdt { data, structs, strings })
    }

    /// Total size of the blob in bytes (from its header).
    pub fn total_size(data: &[u8]) -> Result<usize, FdtError> {
        if be32(data, 0)? != MAGIC {
            return Err(FdtError::BadMagic);
        }
        Ok(be32(data, 4)? as usize)
    }

    pub fn tokens(&self) -> Tokens<'a> {
        Tokens {
            fdt: *self,
            at: self.structs.0,
            done: false,
        }
    }

    fn string(&self, off: usize) -> Result<&'a [u8], FdtError> {
        let strings = &self.data[self.strings.0..self.strings.0 + self.strings.1];
        let s = strings.get(off..).ok_or(FdtError::Truncated {
            offset: self.strings.0 + off,
        })?;
        let end = s.iter().position(|&c| c == 0).ok_or(FdtError::Truncated {
            offset: self.strings.0 + off,
        })?;
        Ok(&s[..end])
    }
}

pub struct Tokens<'a> {
    fdt: Fdt<'a>,
    at: usize,
    done: bool,
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Result<Token<'a>, FdtError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = self.step();
        if !matches!(r, Ok(Some(_))) {
            self.done = true;
        }
        r.transpose()
    }
}

impl<'a> Tokens<'a> {
    fn step(&mut self) -> Result<Option<Token<'a>>, FdtError> {
        let data = self.fdt.data;
        let limit = self.fdt.structs.0 + self.fdt.structs.1;
        loop {
            if self.at + 4 > limit {
                return Err(FdtError::Truncated { offset: self.at });
            }
            let token = be32(data, self.at)?;
            let start = self.at;
            self.at += 4;
            match token {
                BEGIN_NODE => {
                    let rest = &data[self.at..limit];
                    let len = rest
                        .iter()
                        .position(|&c| c == 0)
                        .ok_or(FdtError::Truncated { offset: self.at })?;
                    self.at = align4(self.at + len + 1);
                    return Ok(Some(Token::Begin(&rest[..len])));
                }
                END_NODE => return Ok(Some(Token::End)),
                PROP => {
                    let len = be32(data, self.at)? as usize;
                    let name = self.fdt.string(be32(data, self.at + 4)? as usize)?;
                    let v = self.at + 8;
                    let value = data.get(v..v + len).filter(|_| v + len <= limit);
                    let value = value.ok_or(FdtError::Truncated { offset: v })?;
                    self.at = align4(v + len);
                    return Ok(Some(Token::Prop { name, value }));
                }
                NOP => continue,
                END => return Ok(None),
                other => {
                    return Err(FdtError::BadToken {
                        offset: start,
                        token: other,
                    })
                }
            }
        }
    }
}

/// Writes a device tree into `out`; the string table is kept in the writer
/// (up to 2 KiB of distinct property names) and appended by `finish`.
pub struct FdtWriter<'o> {
    out: &'o mut [u8],
    pos: usize,
    strings: [u8; 2048],
    strings_len: usize,
    depth: usize,
    error: Option<FdtError>,
}

impl<'o> FdtWriter<'o> {
    pub fn new(out: &'o mut [u8]) -> Self {
        FdtWriter {
            out,
            pos: HEADER_LEN + RSVMAP_LEN,
            strings: [0; 2048],
            strings_len: 0,
            depth: 0,
            error: None,
        }
    }

    fn put(&mut self, bytes: &[u8]) {
        if self.error.is_some() {
            return;
        }
        match self.out.get_mut(self.pos..self.pos + bytes.len()) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.pos += bytes.len();
            }
            None => self.error = Some(FdtError::OutOfSpace),
        }
    }

    fn pad(&mut self) {
        while !self.pos.is_multiple_of(4) && self.error.is_none() {
            self.put(&[0]);
        }
    }

    fn string_offset(&mut self, name: &[u8]) -> u32 {
        let mut at = 0;
        while at < self.strings_len {
            let end = at
                + self.strings[at..self.strings_len]
                    .iter()
                    .position(|&c| c == 0)
                    .unwrap_or(0);
            if &self.strings[at..end] == name {
                return at as u32;
            }
            at = end + 1;
        }
        let off = self.strings_len;
        if off + name.len() + 1 > self.strings.len() {
            self.error = Some(FdtError::OutOfSpace);
            return 0;
        }
        self.strings[off..off + name.len()].copy_from_slice(name);
        self.strings[off + name.len()] = 0;
        self.strings_len += name.len() + 1;
        off as u32
    }

    pub fn begin_node(&mut self, name: &[u8]) {
        self.put(&BEGIN_NODE.to_be_bytes());
        self.put(name);
        self.put(&[0]);
        self.pad();
        self.depth += 1;
    }

    pub fn end_node(&mut self) {
        if self.depth == 0 {
            self.error = Some(FdtError::Unbalanced);
            return;
        }
        self.depth -= 1;
        self.put(&END_NODE.to_be_bytes());
    }

    pub fn prop(&mut self, name: &[u8], value: &[u8]) {
        let nameoff = self.string_offset(name);
        self.put(&PROP.to_be_bytes());
        self.put(&(value.len() as u32).to_be_bytes());
        self.put(&nameoff.to_be_bytes());
        self.put(value);
        self.pad();
    }

    pub fn prop_u32(&mut self, name: &[u8], v: u32) {
        self.prop(name, &v.to_be_bytes());
    }

    /// A property of big-endian 32-bit cells.
    pub fn prop_cells(&mut self, name: &[u8], cells: &[u32]) {
        let mut buf = [0u8; 64];
        let n = cells.len().min(16);
        for (i, c) in cells[..n].iter().enumerate() {
            buf[i * 4..i * 4 + 4].copy_from_slice(&c.to_be_bytes());
        }
        if cells.len() > 16 {
            self.error = Some(FdtError::OutOfSpace);
        }
        self.prop(name, &buf[..n * 4]);
    }

    /// A string property (NUL-terminated in the blob).
    pub fn prop_str(&mut self, name: &[u8], s: &[u8]) {
        let mut buf = [0u8; 258];
        let n = s.len().min(256);
        buf[..n].copy_from_slice(&s[..n]);
        self.prop(name, &buf[..n + 1]);
    }

    /// Close the structure block, append the strings, write the header.
    /// Returns the blob's total size.
    pub fn finish(mut self, boot_cpuid: u32) -> Result<usize, FdtError> {
        if self.depth != 0 {
            return Err(FdtError::Unbalanced);
        }
        self.put(&END.to_be_bytes());
        let struct_size = self.pos - HEADER_LEN - RSVMAP_LEN;
        let strings_off = self.pos;
        let strings = self.strings;
        let len = self.strings_len;
        self.put(&strings[..len]);
        self.pad();
        if let Some(e) = self.error {
            return Err(e);
        }
        let total = self.pos;
        let header: [u32; 10] = [
            MAGIC,
            total as u32,
            (HEADER_LEN + RSVMAP_LEN) as u32,
            strings_off as u32,
            HEADER_LEN as u32,
            17,
            16,
            boot_cpuid,
            len as u32,
            struct_size as u32,
        ];
        for (i, v) in header.iter().enumerate() {
            self.out[i * 4..i * 4 + 4].copy_from_slice(&v.to_be_bytes());
        }
        self.out[HEADER_LEN..HEADER_LEN + RSVMAP_LEN].fill(0);
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QEMU: &[u8] = include_bytes!("../tests/fixtures/qemu-virt-2cpu.dtb");

    #[test]
    fn reads_qemus_tree() {
        let fdt = Fdt::parse(QEMU).unwrap();
        let names: Vec<_> = fdt
            .tokens()
            .filter_map(|t| match t.unwrap() {
                Token::Begin(n) => Some(String::from_utf8_lossy(n).into_owned()),
                _ => None,
            })
            .collect();
        for n in [
            "",
            "psci",
            "memory@40000000",
            "pl011@9000000",
            "intc@8000000",
            "its@8080000",
            "cpu@1",
            "chosen",
        ] {
            assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
        }
    }

    #[test]
    fn writes_what_it_reads() {
        let fdt = Fdt::parse(QEMU).unwrap();
        let mut out = vec![0u8; 16384];
        let mut w = FdtWriter::new(&mut out);
        for t in fdt.tokens() {
            match t.unwrap() {
                Token::Begin(n) => w.begin_node(n),
                Token::Prop { name, value } => w.prop(name, value),
                Token::End => w.end_node(),
            }
        }
        let size = w.finish(0).unwrap();
        let copy = Fdt::parse(&out[..size]).unwrap();
        assert!(fdt.tokens().map(|t| t.unwrap()).eq(copy.tokens().map(|t| t.unwrap())));
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        assert_eq!(Fdt::parse(&[0; 8]).err(), Some(FdtError::BadMagic));
        for cut in [3usize, 40, 100, 1000, QEMU.len() - 1] {
            let mut data = QEMU[..cut].to_vec();
            if cut >= 8 {
                // Lie about the size so the parser must check every offset.
                data[4..8].copy_from_slice(&(cut as u32).to_be_bytes());
            }
            if let Ok(fdt) = Fdt::parse(&data) {
                for t in fdt.tokens() {
                    let _ = t;
                }
            }
        }
        // Flip every byte of the structure block in turn.
        let fdt = Fdt::parse(QEMU).unwrap();
        for i in (fdt.structs.0..fdt.structs.0 + 400).step_by(3) {
            let mut data = QEMU.to_vec();
            data[i] ^= 0xa5;
            if let Ok(f) = Fdt::parse(&data) {
                let _ = f.tokens().count();
            }
        }
    }

    #[test]
    fn writer_reports_a_full_buffer() {
        let mut out = [0u8; 64];
        let mut w = FdtWriter::new(&mut out);
        w.begin_node(b"");
        w.prop(b"compatible", b"a-very-long-compatible-string-that-does-not-fit\0");
        w.end_node();
        assert_eq!(w.finish(0), Err(FdtError::OutOfSpace));
    }
}
