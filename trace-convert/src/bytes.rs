//! A bounds-checked cursor over borrowed bytes that knows its absolute file offset.

use crate::error::{Error, Result};

/// Byte order of the traced machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endian {
    /// Little endian (flag byte 0 in a `.dat` file).
    Little,
    /// Big endian (flag byte 1).
    Big,
}

impl Endian {
    /// Reads an unsigned integer of 1, 2, 4 or 8 bytes (`b.len()`); other sizes read as 0.
    #[inline]
    pub fn uint(self, b: &[u8]) -> u64 {
        match (b.len(), self) {
            (1, _) => b[0] as u64,
            (2, Endian::Little) => u16::from_le_bytes([b[0], b[1]]) as u64,
            (2, Endian::Big) => u16::from_be_bytes([b[0], b[1]]) as u64,
            (4, Endian::Little) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64,
            (4, Endian::Big) => u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64,
            (8, Endian::Little) => u64::from_le_bytes(b.try_into().unwrap_or([0; 8])),
            (8, Endian::Big) => u64::from_be_bytes(b.try_into().unwrap_or([0; 8])),
            _ => 0,
        }
    }

    /// Reads a signed integer of 1, 2, 4 or 8 bytes, sign-extended.
    #[inline]
    pub fn int(self, b: &[u8]) -> i64 {
        let v = self.uint(b);
        match b.len() {
            1 => v as u8 as i8 as i64,
            2 => v as u16 as i16 as i64,
            4 => v as u32 as i32 as i64,
            _ => v as i64,
        }
    }

    /// Appends `v` as `size` bytes (1, 2, 4 or 8) in this byte order.
    pub fn put(self, out: &mut Vec<u8>, v: u64, size: usize) {
        let le = v.to_le_bytes();
        let be = v.to_be_bytes();
        match self {
            Endian::Little => out.extend_from_slice(&le[..size.min(8)]),
            Endian::Big => out.extend_from_slice(&be[8 - size.min(8)..]),
        }
    }
}

/// A cursor over `data`, whose first byte sits at absolute offset `base` in the file.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    base: u64,
    /// Byte order used by the integer readers.
    pub endian: Endian,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `data`.
    pub fn new(data: &'a [u8], base: u64, endian: Endian) -> Self {
        Cursor {
            data,
            pos: 0,
            base,
            endian,
        }
    }

    /// Absolute offset of the next byte.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Index of the next byte within `data`.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// Moves to index `pos` of `data`.
    pub fn seek(&mut self, pos: usize, what: &'static str) -> Result<()> {
        if pos > self.data.len() {
            return Err(Error::Truncated {
                offset: self.base + pos as u64,
                what,
                need: 0,
                have: 0,
            });
        }
        self.pos = pos;
        Ok(())
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: u64, what: &'static str) -> Result<&'a [u8]> {
        let have = self.remaining() as u64;
        if n > have {
            return Err(Error::Truncated {
                offset: self.offset(),
                what,
                need: n,
                have,
            });
        }
        let s = &self.data[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    /// Reads a `u8`.
    pub fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }

    /// Reads a `u16` in the cursor's byte order.
    pub fn u16(&mut self, what: &'static str) -> Result<u16> {
        Ok(self.endian.uint(self.take(2, what)?) as u16)
    }

    /// Reads a `u32` in the cursor's byte order.
    pub fn u32(&mut self, what: &'static str) -> Result<u32> {
        Ok(self.endian.uint(self.take(4, what)?) as u32)
    }

    /// Reads a `u64` in the cursor's byte order.
    pub fn u64(&mut self, what: &'static str) -> Result<u64> {
        self.take(8, what).map(|b| self.endian.uint(b))
    }

    /// Reads a NUL-terminated string (the NUL is consumed, not returned).
    pub fn cstr(&mut self, what: &'static str) -> Result<&'a str> {
        let start = self.offset();
        let rest = &self.data[self.pos..];
        let Some(n) = rest.iter().position(|&b| b == 0) else {
            return Err(Error::malformed(
                start,
                format!("{what}: string without NUL terminator"),
            ));
        };
        let s = std::str::from_utf8(&rest[..n]).map_err(|_| Error::malformed(start, format!("{what}: not UTF-8")))?;
        self.pos += n + 1;
        Ok(s)
    }

    /// Reads exactly `lit` or fails naming `what`.
    pub fn expect(&mut self, lit: &[u8], what: &'static str) -> Result<()> {
        let at = self.offset();
        let got = self.take(lit.len() as u64, what)?;
        if got != lit {
            return Err(Error::malformed(
                at,
                format!(
                    "expected {what} {:?}, found {:?}",
                    String::from_utf8_lossy(lit),
                    String::from_utf8_lossy(got)
                ),
            ));
        }
        Ok(())
    }
}

/// Interprets `b` as text, replacing invalid UTF-8.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
