//! The trace stream: how the guest's streaming agent (`hvtrace-stream`,
//! C, compiled against [`c_header`]) sends ftrace's ring-buffer pages and the
//! files that describe them home over the binary data port while a recording
//! runs.
//!
//! # Frames
//! The stream is a sequence of frames, each a 24-byte header and a payload:
//! ```text
//! offset  0  u32 magic "HVTS"
//!         4  u16 kind     (FrameKind)
//!         6  u16 cpu      (a page's CPU; 0 otherwise)
//!         8  u64 seq      (0, 1, 2, … over the whole stream)
//!        16  u32 len      (payload bytes, at most MAX_PAYLOAD)
//!        20  u32 crc      (CRC-32 of bytes 0..20 and the payload)
//! ```
//! All little-endian. The first frame is `Hello` (`hvtrace-stream 1
//! cpus=N page_size=P`), then `File` chunks (a path relative to tracefs, or
//! `kallsyms`/`uname`/…, a NUL, the next bytes of that file) and `Page`s
//! (one ring-buffer page of one CPU as `trace_pipe_raw` gave it, cut after
//! its data: the receiver pads it back to the page size), and last `End`
//! (`frames=N pages=N page_bytes=N`: what was sent before it).
//!
//! Nothing is lost unseen: a frame whose magic, length or CRC is wrong is
//! skipped to the next magic, and the `seq` gap after it counts the frames
//! lost; `End` states the totals the receiver checks.

/// `"HVTS"`, little-endian.
pub const STREAM_MAGIC: u32 = u32::from_le_bytes(*b"HVTS");
/// The protocol's version, in the `Hello` frame.
pub const STREAM_VERSION: u32 = 1;
/// Bytes in a frame header.
pub const FRAME_HEADER_SIZE: usize = 24;
/// The most payload bytes in one frame (a page, or a chunk of a file).
pub const MAX_PAYLOAD: u32 = 64 * 1024;

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum FrameKind {
    /// `hvtrace-stream VERSION cpus=N page_size=P`.
    Hello = 1,
    /// `NAME\0` and the next bytes of that file.
    File = 2,
    /// One ring-buffer page of CPU `cpu`, cut after its data.
    Page = 3,
    /// `frames=N pages=N page_bytes=N`: the totals sent before it.
    End = 4,
}

impl FrameKind {
    /// Every kind.
    pub const ALL: [FrameKind; 4] = [FrameKind::Hello, FrameKind::File, FrameKind::Page, FrameKind::End];

    /// The kind with this number.
    pub fn from_u16(v: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|k| *k as u16 == v)
    }

    /// The C name (`HVTRACE_FRAME_<NAME>`).
    pub fn c_name(self) -> &'static str {
        match self {
            FrameKind::Hello => "HELLO",
            FrameKind::File => "FILE",
            FrameKind::Page => "PAGE",
            FrameKind::End => "END",
        }
    }
}

/// A frame's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// What the payload is.
    pub kind: FrameKind,
    /// A page's CPU (0 for the other kinds).
    pub cpu: u16,
    /// The frame's number in the stream, from 0.
    pub seq: u64,
    /// Payload bytes.
    pub len: u32,
    /// CRC-32 of the header's first 20 bytes and the payload.
    pub crc: u32,
}

/// Why bytes are not a frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The bytes do not start with `HVTS`.
    #[error("no frame magic")]
    Magic,
    /// A kind this protocol does not have.
    #[error("unknown frame kind {0}")]
    Kind(u16),
    /// A payload longer than [`MAX_PAYLOAD`].
    #[error("payload of {0} bytes is over the limit")]
    Length(u32),
    /// The header or the payload is not what was sent.
    #[error("CRC mismatch")]
    Crc,
}

impl FrameHeader {
    /// A header for `payload`, its CRC computed.
    pub fn new(kind: FrameKind, cpu: u16, seq: u64, payload: &[u8]) -> Self {
        let mut h = FrameHeader {
            kind,
            cpu,
            seq,
            len: payload.len() as u32,
            crc: 0,
        };
        h.crc = h.crc_of(payload);
        h
    }

    /// The header's 24 bytes.
    pub fn encode(&self) -> [u8; FRAME_HEADER_SIZE] {
        let mut b = [0u8; FRAME_HEADER_SIZE];
        b[0..4].copy_from_slice(&STREAM_MAGIC.to_le_bytes());
        b[4..6].copy_from_slice(&(self.kind as u16).to_le_bytes());
        b[6..8].copy_from_slice(&self.cpu.to_le_bytes());
        b[8..16].copy_from_slice(&self.seq.to_le_bytes());
        b[16..20].copy_from_slice(&self.len.to_le_bytes());
        b[20..24].copy_from_slice(&self.crc.to_le_bytes());
        b
    }

    /// Reads a header (its CRC is checked with the payload, [`Self::check`]).
    pub fn decode(b: &[u8; FRAME_HEADER_SIZE]) -> Result<Self, FrameError> {
        let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        if u32_at(0) != STREAM_MAGIC {
            return Err(FrameError::Magic);
        }
        let kind = FrameKind::from_u16(u16_at(4)).ok_or(FrameError::Kind(u16_at(4)))?;
        let len = u32_at(16);
        if len > MAX_PAYLOAD {
            return Err(FrameError::Length(len));
        }
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&b[8..16]);
        Ok(FrameHeader {
            kind,
            cpu: u16_at(6),
            seq: u64::from_le_bytes(seq),
            len,
            crc: u32_at(20),
        })
    }

    fn crc_of(&self, payload: &[u8]) -> u32 {
        let head = self.encode();
        crc32_update(crc32(&head[..20]) ^ !0, payload) ^ !0
    }

    /// Whether `payload` is this header's.
    pub fn check(&self, payload: &[u8]) -> Result<(), FrameError> {
        if payload.len() as u32 != self.len || self.crc_of(payload) != self.crc {
            return Err(FrameError::Crc);
        }
        Ok(())
    }
}

/// CRC-32 (ISO-HDLC: reflected, polynomial 0x04C11DB7, as zlib and
/// Ethernet), the frames' check.
pub const CRC32_POLY: u32 = 0xEDB8_8320;

const CRC32_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ CRC32_POLY } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// The CRC-32 of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    crc32_update(!0, data) ^ !0
}

/// Continues a CRC-32 whose register (not yet inverted) is `crc`.
fn crc32_update(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = CRC32_TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

/// The C header for the streaming agent: `hvtrace_stream.h`.
#[cfg(feature = "std")]
pub fn c_header() -> String {
    use std::fmt::Write;
    let mut h = String::new();
    h.push_str("/* hvtrace_stream.h: generated by guest_probe::abi::stream::c_header(); do not edit. */\n");
    h.push_str("#ifndef HVTRACE_STREAM_H\n#define HVTRACE_STREAM_H\n#include <stdint.h>\n#include <stddef.h>\n\n");
    let mut d = |name: &str, value: String| {
        let _ = writeln!(h, "#define {name:<32} {value}");
    };
    d("HVTRACE_STREAM_MAGIC", format!("{STREAM_MAGIC:#010x}u"));
    d("HVTRACE_STREAM_VERSION", STREAM_VERSION.to_string());
    d("HVTRACE_FRAME_HEADER_SIZE", FRAME_HEADER_SIZE.to_string());
    d("HVTRACE_FRAME_MAX_PAYLOAD", MAX_PAYLOAD.to_string());
    d("HVTRACE_CRC32_POLY", format!("{:#010x}u", CRC32_POLY));
    for k in FrameKind::ALL {
        d(&format!("HVTRACE_FRAME_{}", k.c_name()), (k as u16).to_string());
    }
    h.push_str(
        "\nstruct hvtrace_frame {\n\tuint32_t magic;\n\tuint16_t kind;\n\tuint16_t cpu;\n\tuint64_t seq;\n\tuint32_t len;\n\tuint32_t crc; /* CRC-32 of bytes 0..20 and the payload */\n};\n",
    );
    for (field, off) in [
        ("magic", 0),
        ("kind", 4),
        ("cpu", 6),
        ("seq", 8),
        ("len", 16),
        ("crc", 20),
    ] {
        let _ = writeln!(
            h,
            "_Static_assert(offsetof(struct hvtrace_frame, {field}) == {off}, \"{field}\");"
        );
    }
    let _ = writeln!(
        h,
        "_Static_assert(sizeof(struct hvtrace_frame) == {FRAME_HEADER_SIZE}, \"frame size\");\n\n#endif"
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_is_the_standard_one() {
        // The check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn a_header_round_trips_and_checks_its_payload() {
        let payload = b"0123456789abcdef";
        let h = FrameHeader::new(FrameKind::Page, 3, 77, payload);
        let b = h.encode();
        assert_eq!(&b[..4], b"HVTS");
        let back = FrameHeader::decode(&b).unwrap();
        assert_eq!(back, h);
        back.check(payload).unwrap();
        let mut damaged = *payload;
        damaged[5] ^= 1;
        assert_eq!(back.check(&damaged), Err(FrameError::Crc));
        // The header's own fields are covered too.
        let mut moved = b;
        moved[8] ^= 1;
        let moved = FrameHeader::decode(&moved).unwrap();
        assert_eq!(moved.check(payload), Err(FrameError::Crc));
    }

    #[test]
    fn bad_headers_say_why() {
        let mut b = FrameHeader::new(FrameKind::End, 0, 1, b"").encode();
        b[4] = 9;
        assert_eq!(FrameHeader::decode(&b), Err(FrameError::Kind(9)));
        let mut b = FrameHeader::new(FrameKind::File, 0, 1, b"").encode();
        b[16..20].copy_from_slice(&(MAX_PAYLOAD + 1).to_le_bytes());
        assert_eq!(FrameHeader::decode(&b), Err(FrameError::Length(MAX_PAYLOAD + 1)));
        assert_eq!(FrameHeader::decode(&[0; 24]), Err(FrameError::Magic));
    }

    /// The generated header's layout is the one the C compilers agree to.
    #[test]
    fn the_c_header_compiles_for_the_guest_and_the_host() {
        crate::abi::header::assert_c_compilers_accept("hvtrace_stream.h", &c_header(), &[]);
    }
}
