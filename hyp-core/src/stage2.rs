//! Stage-2 translation tables (4K granule, 39-bit IPA space starting at
//! level 1): the register values and the mapping of a VM's regions.
//!
//! Table memory is abstracted by [`TableStore`] so that the same code builds
//! real tables at EL2 and inspectable ones in host tests.

/// VTCR_EL2 for our tables: T0SZ=25 (39-bit IPA), SL0=1 (start at level 1),
/// inner/outer write-back cacheable, inner shareable walks, TG0=4K, PS=40 bits.
pub const VTCR_EL2: u64 = 25 | (1 << 6) | (1 << 8) | (1 << 10) | (3 << 12) | (2 << 16) | (1 << 31);
/// Largest IPA (exclusive) the tables can map.
pub const IPA_LIMIT: u64 = 1 << 39;

const VALID: u64 = 1;
const TABLE: u64 = 1 << 1; // at levels 1-2: table; at level 3: page
const AF: u64 = 1 << 10;
const SH_INNER: u64 = 3 << 8;
const S2AP_RW: u64 = 3 << 6;
const MEMATTR_NORMAL_WB: u64 = 0xf << 2;
const MEMATTR_DEVICE_NGNRE: u64 = 0x1 << 2;
const XN: u64 = 2 << 53;
const ADDR_MASK: u64 = 0x0000_ffff_ffff_f000;

/// What kind of memory a mapping is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attrs {
    /// Guest RAM: normal write-back, read/write/execute.
    Ram,
    /// Shared data (the trace ring): normal write-back, never executable.
    SharedData,
    /// A passed-through device: Device-nGnRE, never executable.
    Device,
}

impl Attrs {
    fn bits(self) -> u64 {
        let base = VALID | AF | S2AP_RW;
        match self {
            Attrs::Ram => base | SH_INNER | MEMATTR_NORMAL_WB,
            Attrs::SharedData => base | SH_INNER | MEMATTR_NORMAL_WB | XN,
            Attrs::Device => base | MEMATTR_DEVICE_NGNRE | XN,
        }
    }
}

/// Memory holding translation tables, addressed by their physical address.
pub trait TableStore {
    /// A zeroed, 4 KiB-aligned table; `None` when the pool is exhausted.
    fn alloc(&mut self) -> Option<u64>;
    fn read(&self, table: u64, index: usize) -> u64;
    fn write(&mut self, table: u64, index: usize, desc: u64);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// Address or size not 4 KiB aligned.
    Unaligned { ipa: u64 },
    /// Beyond the 39-bit IPA space.
    OutOfRange { ipa: u64 },
    /// Already mapped (regions of one VM must not overlap).
    Overlap { ipa: u64 },
    /// The table pool is exhausted.
    NoTableMemory,
}

/// Maps `size` bytes at `ipa` to `pa`, using 1 GiB / 2 MiB blocks where
/// alignment allows and 4 KiB pages elsewhere.
pub fn map(store: &mut impl TableStore, root: u64, ipa: u64, pa: u64, size: u64, attrs: Attrs) -> Result<(), MapError> {
    if (ipa | pa | size) & 0xfff != 0 {
        return Err(MapError::Unaligned { ipa });
    }
    let end = ipa
        .checked_add(size)
        .filter(|&e| e <= IPA_LIMIT)
        .ok_or(MapError::OutOfRange { ipa })?;
    let mut at = ipa;
    while at < end {
        let out = pa + (at - ipa);
        let left = end - at;
        let level = [1u32, 2]
            .into_iter()
            .find(|&l| {
                let bs = block_size(l);
                at.is_multiple_of(bs) && out.is_multiple_of(bs) && left >= bs
            })
            .unwrap_or(3);
        map_one(store, root, at, out, level, attrs)?;
        at += block_size(level);
    }
    Ok(())
}

fn block_size(level: u32) -> u64 {
    1 << (12 + 9 * (3 - level))
}

fn index(ipa: u64, level: u32) -> usize {
    ((ipa >> (12 + 9 * (3 - level))) & 0x1ff) as usize
}

fn map_one(
    store: &mut impl TableStore,
    root: u64,
    ipa: u64,
    pa: u64,
    level: u32,
    attrs: Attrs,
) -> Result<(), MapError> {
    let mut table = root;
    for l in 1..level {
        let i = index(ipa, l);
        let desc = store.read(table, i);
        table = if desc & VALID == 0 {
            let next = store.alloc().ok_or(MapError::NoTableMemory)?;
            store.write(table, i, next | VALID | TABLE);
            next
        } else if desc & TABLE == 0 {
            return Err(MapError::Overlap { ipa });
        } else {
            desc & ADDR_MASK
        };
    }
    let i = index(ipa, level);
    if store.read(table, i) & VALID != 0 {
        return Err(MapError::Overlap { ipa });
    }
    let kind = if level == 3 { TABLE } else { 0 };
    store.write(table, i, pa | kind | attrs.bits());
    Ok(())
}

/// VTTBR_EL2 for a VM: its VMID and the root table.
pub fn vttbr(vmid: u8, root: u64) -> u64 {
    (u64::from(vmid) << 48) | (root & ADDR_MASK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Tables in a hash map keyed by fake physical addresses.
    #[derive(Default)]
    struct FakeStore {
        tables: HashMap<u64, [u64; 512]>,
        next: u64,
        limit: usize,
    }

    impl TableStore for FakeStore {
        fn alloc(&mut self) -> Option<u64> {
            if self.tables.len() >= self.limit {
                return None;
            }
            self.next += 0x1000;
            let pa = 0x8000_0000 + self.next;
            self.tables.insert(pa, [0; 512]);
            Some(pa)
        }
        fn read(&self, table: u64, index: usize) -> u64 {
            self.tables[&table][index]
        }
        fn write(&mut self, table: u64, index: usize, desc: u64) {
            self.tables.get_mut(&table).unwrap()[index] = desc;
        }
    }

    /// A software walk of our own tables: IPA → (PA, descriptor, level).
    fn walk(s: &FakeStore, root: u64, ipa: u64) -> Option<(u64, u64, u32)> {
        let mut table = root;
        for level in 1..=3 {
            let d = s.read(table, index(ipa, level));
            if d & VALID == 0 {
                return None;
            }
            if level == 3 || d & TABLE == 0 {
                let bs = block_size(level);
                return Some(((d & ADDR_MASK & !(bs - 1)) | (ipa & (bs - 1)), d, level));
            }
            table = d & ADDR_MASK;
        }
        None
    }

    fn store() -> (FakeStore, u64) {
        let mut s = FakeStore {
            limit: 64,
            ..Default::default()
        };
        let root = s.alloc().unwrap();
        (s, root)
    }

    #[test]
    fn uses_2m_blocks_and_4k_pages_as_alignment_allows() {
        let (mut s, root) = store();
        // 16 MiB RTOS window, IPA != PA: eight 2 MiB blocks.
        map(&mut s, root, 0x4000_0000, 0x4100_0000, 16 << 20, Attrs::Ram).unwrap();
        let (pa, d, level) = walk(&s, root, 0x4012_3456).unwrap();
        assert_eq!((pa, level), (0x4112_3456, 2));
        assert_eq!(d & XN, 0, "RAM is executable");
        // A device page: 4 KiB, non-executable.
        map(&mut s, root, 0x0900_0000, 0x0900_0000, 0x1000, Attrs::Device).unwrap();
        let (pa, d, level) = walk(&s, root, 0x0900_0018).unwrap();
        assert_eq!((pa, level), (0x0900_0018, 3));
        assert_eq!(d & XN, XN);
        assert_eq!(walk(&s, root, 0x0900_1000), None, "the next page stays unmapped");
        assert_eq!(walk(&s, root, 0x4100_0000), None, "just past the window is unmapped");
    }

    #[test]
    fn uses_1g_blocks_when_possible() {
        let (mut s, root) = store();
        map(&mut s, root, 0x4000_0000, 0x4000_0000, 1 << 30, Attrs::Ram).unwrap();
        assert_eq!(walk(&s, root, 0x7fff_ffff).unwrap().2, 1);
    }

    #[test]
    fn mixed_alignment_region_splits_correctly() {
        let (mut s, root) = store();
        // Starts 4 KiB before a 2 MiB boundary, ends 4 KiB after the next one.
        map(&mut s, root, 0x401f_f000, 0x501f_f000, 0x20_2000, Attrs::SharedData).unwrap();
        for off in [0u64, 0x1000, 0x20_0fff, 0x20_1000] {
            let (pa, _, _) = walk(&s, root, 0x401f_f000 + off).unwrap();
            assert_eq!(pa, (0x501f_f000) + off);
        }
        assert_eq!(walk(&s, root, 0x401f_f000 + 0x20_2000), None);
    }

    #[test]
    fn refuses_overlap_misalignment_range_and_exhaustion() {
        let (mut s, root) = store();
        map(&mut s, root, 0x4000_0000, 0x4000_0000, 0x20_0000, Attrs::Ram).unwrap();
        assert_eq!(
            map(&mut s, root, 0x4010_0000, 0, 0x1000, Attrs::Ram),
            Err(MapError::Overlap { ipa: 0x4010_0000 })
        );
        assert_eq!(
            map(&mut s, root, 0x10, 0, 0x1000, Attrs::Ram),
            Err(MapError::Unaligned { ipa: 0x10 })
        );
        assert_eq!(
            map(&mut s, root, IPA_LIMIT, 0, 0x1000, Attrs::Ram),
            Err(MapError::OutOfRange { ipa: IPA_LIMIT })
        );
        let mut tiny = FakeStore {
            limit: 1,
            ..Default::default()
        };
        let r = tiny.alloc().unwrap();
        assert_eq!(
            map(&mut tiny, r, 0, 0, 0x1000, Attrs::Ram),
            Err(MapError::NoTableMemory)
        );
    }

    #[test]
    fn vtcr_fields() {
        assert_eq!(VTCR_EL2 & 0x3f, 25);
        assert_eq!((VTCR_EL2 >> 6) & 3, 1, "SL0: start at level 1");
        assert_eq!((VTCR_EL2 >> 14) & 3, 0, "TG0: 4K");
        assert_eq!(vttbr(1, 0x4030_1000), (1 << 48) | 0x4030_1000);
    }
}
