//! Ring dumps: a file of consecutive rings exactly as they lay in memory
//! (header, then `capacity` records, then the next ring). The converter
//! reads post-mortem or snapshot dumps with [`parse_ring_dump`].

use super::ring::{ring_bytes, RING_HEADER_SIZE, RING_MAGIC};
use super::{Record, ABI_MAJOR, MAX_DATA_SLOTS};

/// What is wrong at some offset of a dump.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DumpErrorKind {
    /// The file ends inside a ring.
    #[error("truncated: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes this ring needs from its start.
        needed: u64,
        /// Bytes left from its start.
        available: u64,
    },
    /// Not a ring header.
    #[error("bad magic {0:#010x} (expected {RING_MAGIC:#010x})")]
    BadMagic(u32),
    /// A major ABI version this reader does not know.
    #[error("unsupported ABI {major}.{minor}")]
    UnsupportedAbi {
        /// Major version.
        major: u16,
        /// Minor version.
        minor: u16,
    },
    /// Record size other than 64.
    #[error("bad record size {0}")]
    BadRecordSize(u32),
    /// Capacity zero, not a power of two, or absurd.
    #[error("bad capacity {0}")]
    BadCapacity(u32),
    /// `tail` ahead of `head`, or more than `capacity` behind.
    #[error("inconsistent indices: head {head}, tail {tail}, capacity {capacity}")]
    Inconsistent {
        /// Head.
        head: u64,
        /// Tail.
        tail: u64,
        /// Capacity.
        capacity: u32,
    },
}

/// A dump error and the byte offset of the field at fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("ring dump offset {offset}: {kind}")]
pub struct DumpError {
    /// Byte offset in the dump.
    pub offset: u64,
    /// What is wrong there.
    pub kind: DumpErrorKind,
}

/// One ring read from a dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingDump {
    /// Where the ring starts in the file.
    pub offset: u64,
    /// Source CPU.
    pub cpu: u64,
    /// ABI minor version of the producer.
    pub abi_minor: u16,
    /// Slots.
    pub capacity: u32,
    /// Records ever written.
    pub head: u64,
    /// Records ever read.
    pub tail: u64,
    /// Records dropped.
    pub drops: u64,
    /// The unread records, oldest first.
    pub records: Vec<Record>,
    /// The fetched values after each record ([`Record::data_slots`] slots;
    /// empty for most), index for index with `records`.
    pub data: Vec<Vec<u8>>,
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

/// Parses a dump of zero or more consecutive rings.
pub fn parse_ring_dump(bytes: &[u8]) -> Result<Vec<RingDump>, DumpError> {
    let mut rings = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let err = |field: usize, kind| DumpError {
            offset: (at + field) as u64,
            kind,
        };
        if rest.len() < RING_HEADER_SIZE {
            return Err(err(
                0,
                DumpErrorKind::Truncated {
                    needed: RING_HEADER_SIZE as u64,
                    available: rest.len() as u64,
                },
            ));
        }
        let magic = u32_at(rest, 0);
        if magic != RING_MAGIC {
            return Err(err(0, DumpErrorKind::BadMagic(magic)));
        }
        let (major, minor) = (u16_at(rest, 4), u16_at(rest, 6));
        if major != ABI_MAJOR {
            return Err(err(4, DumpErrorKind::UnsupportedAbi { major, minor }));
        }
        let record_size = u32_at(rest, 8);
        if record_size != Record::SIZE as u32 {
            return Err(err(8, DumpErrorKind::BadRecordSize(record_size)));
        }
        let capacity = u32_at(rest, 12);
        if capacity == 0 || !capacity.is_power_of_two() || capacity > (1 << 26) {
            return Err(err(12, DumpErrorKind::BadCapacity(capacity)));
        }
        let needed = ring_bytes(capacity);
        if rest.len() < needed {
            return Err(err(
                0,
                DumpErrorKind::Truncated {
                    needed: needed as u64,
                    available: rest.len() as u64,
                },
            ));
        }
        let (head, tail, drops) = (u64_at(rest, 64), u64_at(rest, 128), u64_at(rest, 192));
        let unread = head.wrapping_sub(tail);
        if unread > u64::from(capacity) {
            return Err(err(128, DumpErrorKind::Inconsistent { head, tail, capacity }));
        }
        let slot_at = |i: u64| {
            let slot = (tail.wrapping_add(i) % u64::from(capacity)) as usize;
            let o = RING_HEADER_SIZE + slot * Record::SIZE;
            let mut b = [0u8; 64];
            b.copy_from_slice(&rest[o..o + 64]);
            (o, b)
        };
        let (mut records, mut data) = (Vec::new(), Vec::new());
        let mut i = 0;
        while i < unread {
            let (o, b) = slot_at(i);
            let r = Record::from_bytes(&b);
            let extra = r.data_slots() as u64;
            if extra > MAX_DATA_SLOTS as u64 || i + 1 + extra > unread {
                // Values that were never published with their record.
                return Err(err(
                    o + 22 - at.min(o),
                    DumpErrorKind::Inconsistent { head, tail, capacity },
                ));
            }
            data.push((1..=extra).flat_map(|k| slot_at(i + k).1).collect());
            records.push(r);
            i += 1 + extra;
        }
        rings.push(RingDump {
            offset: at as u64,
            cpu: u64_at(rest, 16),
            abi_minor: minor,
            capacity,
            head,
            tail,
            drops,
            records,
            data,
        });
        at += needed;
    }
    Ok(rings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::ring::OwnedRing;

    fn two_rings() -> Vec<u8> {
        let a = OwnedRing::new(4, 0).unwrap();
        let b = OwnedRing::new(8, 1).unwrap();
        let (mut pa, mut ca) = (a.ring().producer(), a.ring().consumer());
        for n in 0..6u64 {
            let _ = pa.push(&Record {
                timestamp: n,
                kind: 2,
                ..Record::default()
            });
            if n == 1 {
                ca.pop().unwrap();
            }
        }
        let mut pb = b.ring().producer();
        pb.push(&Record {
            timestamp: 100,
            kind: 1,
            cpu: 1,
            ..Record::default()
        })
        .unwrap();
        let mut out = a.to_bytes();
        out.extend(b.to_bytes());
        out
    }

    #[test]
    fn parses_consecutive_rings() {
        let rings = parse_ring_dump(&two_rings()).unwrap();
        assert_eq!(rings.len(), 2);
        let r0 = &rings[0];
        assert_eq!(
            (r0.offset, r0.cpu, r0.capacity, r0.head, r0.tail, r0.drops),
            (0, 0, 4, 5, 1, 1)
        );
        assert_eq!(
            r0.records.iter().map(|r| (r.timestamp, r.seq)).collect::<Vec<_>>(),
            vec![(1, 1), (2, 2), (3, 3), (4, 4)]
        );
        let r1 = &rings[1];
        assert_eq!((r1.offset, r1.cpu, r1.records.len()), (ring_bytes(4) as u64, 1, 1));
        assert_eq!(r1.records[0].timestamp, 100);
        assert_eq!(parse_ring_dump(&[]).unwrap(), vec![]);
    }

    #[test]
    fn errors_name_the_offset() {
        let good = two_rings();
        let second = ring_bytes(4);
        type Mutation = Box<dyn Fn(&mut Vec<u8>)>;
        let cases: Vec<(Mutation, DumpError)> = vec![
            (
                Box::new(|b: &mut Vec<u8>| b.truncate(100)),
                DumpError {
                    offset: 0,
                    kind: DumpErrorKind::Truncated {
                        needed: 256,
                        available: 100,
                    },
                },
            ),
            (
                Box::new(move |b: &mut Vec<u8>| b.truncate(second + 300)),
                DumpError {
                    offset: second as u64,
                    kind: DumpErrorKind::Truncated {
                        needed: ring_bytes(8) as u64,
                        available: 300,
                    },
                },
            ),
            (
                Box::new(move |b: &mut Vec<u8>| b[second] = b'X'),
                DumpError {
                    offset: second as u64,
                    kind: DumpErrorKind::BadMagic(0x5254_5658),
                },
            ),
            (
                Box::new(|b: &mut Vec<u8>| b[4] = 9),
                DumpError {
                    offset: 4,
                    kind: DumpErrorKind::UnsupportedAbi {
                        major: 9,
                        minor: crate::abi::ABI_MINOR,
                    },
                },
            ),
            (
                Box::new(|b: &mut Vec<u8>| b[8] = 32),
                DumpError {
                    offset: 8,
                    kind: DumpErrorKind::BadRecordSize(32),
                },
            ),
            (
                Box::new(|b: &mut Vec<u8>| b[12] = 3),
                DumpError {
                    offset: 12,
                    kind: DumpErrorKind::BadCapacity(3),
                },
            ),
            (
                Box::new(|b: &mut Vec<u8>| b[128] = 9),
                DumpError {
                    offset: 128,
                    kind: DumpErrorKind::Inconsistent {
                        head: 5,
                        tail: 9,
                        capacity: 4,
                    },
                },
            ),
        ];
        for (mutate, want) in cases {
            let mut b = good.clone();
            mutate(&mut b);
            let got = parse_ring_dump(&b).unwrap_err();
            assert_eq!(got, want);
            assert!(got
                .to_string()
                .starts_with(&format!("ring dump offset {}", want.offset)));
        }
    }
}
