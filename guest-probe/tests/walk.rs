//! Table-driven walker tests over synthetic page tables built in a
//! [`SparseMemory`]: every granule, start level and block size, and every
//! fault kind, for stage 1 alone, stage 2 alone, and both together.

use guest_probe::addr::{GuestVirtAddr, IntermPhysAddr, PhysAddr};
use guest_probe::memory::{GuestMemory, MemError, SparseMemory};
use guest_probe::regs::{ConfigError, DescKind, Descriptor, Granule};
use guest_probe::walk::{Access, AccessError, Fault, FaultKind, Perms, Stage, Stage1, Stage2, Translator};

/// Allocates translation tables in one address space whose bytes live at
/// `addr + pa_offset` in physical memory.
struct Alloc {
    next: u64,
    pa_offset: u64,
}

/// Where one set of tables starts and how it is shaped.
#[derive(Clone, Copy)]
struct Tables {
    root: u64,
    granule: Granule,
    start_level: u8,
    start_bits: u32,
    pa_offset: u64,
}

impl Alloc {
    fn table(&mut self, mem: &mut SparseMemory, bytes: u64, granule: Granule) -> u64 {
        let align = bytes.max(granule.size());
        let a = self.next.div_ceil(align) * align;
        self.next = a + bytes;
        mem.map(a + self.pa_offset, bytes);
        a
    }

    fn tables(&mut self, mem: &mut SparseMemory, granule: Granule, ia_bits: u32, start_level: u8) -> Tables {
        let start_bits = ia_bits - granule.level_shift(start_level);
        let root = self.table(mem, 8 << start_bits, granule);
        Tables {
            root,
            granule,
            start_level,
            start_bits,
            pa_offset: self.pa_offset,
        }
    }
}

/// Maps `input` → `output` with a leaf at `level`; `leaf_attrs` are OR-ed into
/// the leaf and `table_attrs` into every table descriptor created on the way.
#[allow(clippy::too_many_arguments)]
fn map(
    mem: &mut SparseMemory,
    alloc: &mut Alloc,
    t: Tables,
    input: u64,
    output: u64,
    level: u8,
    leaf_attrs: u64,
    table_attrs: u64,
) -> u64 {
    let g = t.granule;
    let mut table = t.root;
    let mut l = t.start_level;
    loop {
        let nbits = if l == t.start_level {
            t.start_bits
        } else {
            g.bits_per_level()
        };
        let index = (input >> g.level_shift(l)) & ((1 << nbits) - 1);
        let entry = table + index * 8;
        if l == level {
            let d = if l == 3 {
                Descriptor::page(output, leaf_attrs)
            } else {
                Descriptor::block(output, leaf_attrs)
            };
            mem.poke_u64(entry + t.pa_offset, d.0);
            return entry;
        }
        let cur = Descriptor(mem.read_u64_le(PhysAddr::new(entry + t.pa_offset)).unwrap());
        // An existing block on the way is split into a fresh (empty) table.
        table = if cur.kind(l, g) == DescKind::Table {
            cur.output_address(g)
        } else {
            let next = alloc.table(mem, g.size(), g);
            mem.poke_u64(entry + t.pa_offset, Descriptor::table(next).0 | table_attrs);
            next
        };
        l += 1;
    }
}

const AF: u64 = Descriptor::AF;
const S2RW: u64 = Descriptor::AF | Descriptor::S2AP_R | Descriptor::S2AP_W;

fn tg0(g: Granule) -> u64 {
    match g {
        Granule::K4 => 0b00 << 14,
        Granule::K64 => 0b01 << 14,
        Granule::K16 => 0b10 << 14,
    }
}

fn tg1(g: Granule) -> u64 {
    match g {
        Granule::K16 => 0b01 << 30,
        Granule::K4 => 0b10 << 30,
        Granule::K64 => 0b11 << 30,
    }
}

/// TCR_EL1 with the same size and granule for both halves and 48-bit IPS.
fn tcr(tsz: u32, g: Granule) -> u64 {
    tsz as u64 | ((tsz as u64) << 16) | tg0(g) | tg1(g) | (0b101 << 32)
}

/// VTCR_EL2 for a granule, T0SZ, SL0 and 40-bit PS.
fn vtcr(t0sz: u32, sl0: u64, g: Granule) -> u64 {
    t0sz as u64 | (sl0 << 6) | tg0(g) | (0b010 << 16)
}

fn level_size(g: Granule, level: u8) -> u64 {
    1 << g.level_shift(level)
}

#[test]
fn stage1_every_granule_start_level_and_block_size() {
    // (granule, TxSZ, start level expected, leaf levels to try)
    let cases: &[(Granule, u32, u8, &[u8])] = &[
        (Granule::K4, 16, 0, &[1, 2, 3]),
        (Granule::K4, 25, 1, &[1, 2, 3]),
        (Granule::K4, 33, 1, &[1, 2, 3]),
        (Granule::K4, 34, 2, &[2, 3]),
        (Granule::K4, 39, 2, &[2, 3]),
        (Granule::K4, 43, 3, &[3]),
        (Granule::K16, 16, 0, &[2, 3]),
        (Granule::K16, 17, 1, &[2, 3]),
        (Granule::K16, 28, 2, &[2, 3]),
        (Granule::K16, 40, 3, &[3]),
        (Granule::K64, 16, 1, &[2, 3]),
        (Granule::K64, 22, 2, &[2, 3]),
        (Granule::K64, 36, 3, &[3]),
    ];
    let mut checked = 0;
    for &(g, tsz, start, leaves) in cases {
        assert_eq!(g.stage1_start_level(64 - tsz), start, "{g:?} tsz {tsz}");
        for &leaf in leaves {
            for upper in [false, true] {
                let mut mem = SparseMemory::new();
                let mut alloc = Alloc {
                    next: 0x4000_0000,
                    pa_offset: 0,
                };
                let t = alloc.tables(&mut mem, g, 64 - tsz, start);
                let size = level_size(g, leaf);
                let ia_top = 1u64 << (64 - tsz);
                // An input near the top of the range, offset inside the leaf.
                let input = (ia_top - size) | (size / 2) | 0x120;
                let out_base = 0x80_0000_0000u64.div_ceil(size) * size;
                map(&mut mem, &mut alloc, t, input, out_base, leaf, AF, 0);
                let (ttbr0, ttbr1, va) = if upper {
                    (0, t.root, input | !(ia_top - 1))
                } else {
                    (t.root, 0, input)
                };
                let tr = Translator::new(Some(Stage1::new(ttbr0, ttbr1, tcr(tsz, g))), None);
                let got = tr
                    .translate(&mem, GuestVirtAddr::new(va), Access::Read)
                    .unwrap_or_else(|f| panic!("{g:?} tsz {tsz} leaf {leaf} upper {upper}: {f}"));
                assert_eq!(
                    got.ipa,
                    IntermPhysAddr::new(out_base | (input & (size - 1))),
                    "{g:?} tsz {tsz} leaf {leaf}"
                );
                assert_eq!(got.pa.raw(), got.ipa.raw());
                let l = got.stage1.unwrap();
                assert_eq!((l.level, l.size), (leaf, size));
                assert_eq!(got.el1, Perms::ALL);
                // The neighbouring leaf is unmapped: translation fault at `leaf`
                // or above (a sibling table may be missing).
                let other = va ^ size;
                let f = tr.translate(&mem, GuestVirtAddr::new(other), Access::Read).unwrap_err();
                assert_eq!((f.stage, f.kind), (Stage::One, FaultKind::Translation));
                assert!(f.level <= leaf && f.level >= start);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 52);
}

#[test]
fn stage2_every_granule_start_level_and_concatenation() {
    // (granule, T0SZ, SL0, start level, start bits, leaf levels)
    type Case = (Granule, u32, u64, u8, u32, &'static [u8]);
    let cases: &[Case] = &[
        (Granule::K4, 16, 2, 0, 9, &[1, 2, 3]),
        (Granule::K4, 24, 1, 1, 10, &[1, 2, 3]), // 2 concatenated tables
        (Granule::K4, 25, 1, 1, 9, &[1, 2, 3]),
        (Granule::K4, 32, 1, 1, 2, &[1, 2, 3]),
        (Granule::K4, 30, 0, 2, 13, &[2, 3]), // 16 concatenated tables
        (Granule::K4, 34, 0, 2, 9, &[2, 3]),
        (Granule::K4, 40, 3, 3, 12, &[3]), // FEAT_TTST-style level 3 start
        (Granule::K16, 28, 1, 2, 11, &[2, 3]),
        (Granule::K16, 24, 2, 1, 4, &[2, 3]),
        (Granule::K16, 40, 0, 3, 10, &[3]),
        (Granule::K64, 22, 1, 2, 13, &[2, 3]),
        (Granule::K64, 16, 2, 1, 6, &[2, 3]),
        (Granule::K64, 34, 0, 3, 14, &[3]),
    ];
    for &(g, t0sz, sl0, start, start_bits, leaves) in cases {
        for &leaf in leaves {
            let mut mem = SparseMemory::new();
            let mut alloc = Alloc {
                next: 0x1_0000_0000,
                pa_offset: 0,
            };
            let t = alloc.tables(&mut mem, g, 64 - t0sz, start);
            assert_eq!(t.start_bits, start_bits);
            let s2 = Stage2::new(t.root | (5 << 48), vtcr(t0sz, sl0, g)).unwrap();
            assert_eq!(
                (s2.start_level(), s2.granule(), s2.ipa_bits(), s2.vmid()),
                (start, g, 64 - t0sz, 5)
            );
            let size = level_size(g, leaf);
            let ipa = ((1u64 << (64 - t0sz)) - size) | ((size / 3) & !7);
            let out = 0x20_0000_0000u64.div_ceil(size) * size;
            map(&mut mem, &mut alloc, t, ipa, out, leaf, S2RW, 0);
            let got = s2.translate(&mem, IntermPhysAddr::new(ipa), Access::Write).unwrap();
            assert_eq!(
                got.pa,
                PhysAddr::new(out | (ipa & (size - 1))),
                "{g:?} t0sz {t0sz} leaf {leaf}"
            );
            assert_eq!((got.leaf.level, got.leaf.size), (leaf, size));
            assert_eq!(got.perms, Perms::ALL);
            // Out of the IPA range.
            let f = s2
                .translate(&mem, IntermPhysAddr::new(1 << (64 - t0sz)), Access::Read)
                .unwrap_err();
            assert_eq!((f.stage, f.level, f.kind), (Stage::Two, 0, FaultKind::Translation));
        }
    }
}

#[test]
fn stage2_config_errors() {
    let g = Granule::K4;
    assert_eq!(
        Stage2::new(0, vtcr(25, 0, g)),
        Err(ConfigError::StartLevelMismatch { t0sz: 25, level: 2 })
    );
    assert_eq!(
        Stage2::new(0, vtcr(44, 2, g)),
        Err(ConfigError::StartLevelMismatch { t0sz: 44, level: 0 })
    );
    assert_eq!(Stage2::new(0, vtcr(12, 2, g)), Err(ConfigError::TxszOutOfRange(12)));
    assert_eq!(
        Stage2::new(0, vtcr(25, 3, Granule::K16)),
        Err(ConfigError::ReservedStartLevel { sl0: 3 })
    );
    assert_eq!(
        Stage2::new(0, 25 | (1 << 6) | (0b11 << 14)),
        Err(ConfigError::ReservedGranule(3))
    );
    assert_eq!(
        Stage2::new(0, 25 | (1 << 6) | (0b111 << 16)),
        Err(ConfigError::ReservedPaSize(7))
    );
}

/// A small two-stage world: the RTOS-like layout (kernel at a TTBR1 VA,
/// tables and RAM at IPA 0x4000_0000 that stage 2 maps to PA 0x8000_0000 with
/// a 1 GiB block), 4K granule everywhere.
struct World {
    mem: SparseMemory,
    s1_alloc: Alloc,
    s1: Tables,
    s2_alloc: Alloc,
    s2: Tables,
    tcr: u64,
    vtcr: u64,
}

const KVA: u64 = 0xFFFF_0000_4010_0000;
const IPA_RAM: u64 = 0x4000_0000;
const PA_RAM: u64 = 0x8000_0000;

impl World {
    fn new() -> Self {
        let mut mem = SparseMemory::new();
        let mut s2_alloc = Alloc {
            next: 0x1000_0000,
            pa_offset: 0,
        };
        // 40-bit IPA, start level 1 (two concatenated tables).
        let s2 = s2_alloc.tables(&mut mem, Granule::K4, 40, 1);
        let mut s1_alloc = Alloc {
            next: IPA_RAM + 0x80_0000,
            pa_offset: PA_RAM - IPA_RAM,
        };
        let s1 = s1_alloc.tables(&mut mem, Granule::K4, 48, 0);
        map(&mut mem, &mut s2_alloc, s2, IPA_RAM, PA_RAM, 1, S2RW, 0);
        Self {
            mem,
            s1_alloc,
            s1,
            s2_alloc,
            s2,
            tcr: tcr(16, Granule::K4),
            vtcr: vtcr(24, 1, Granule::K4),
        }
    }

    fn map1(&mut self, va: u64, ipa: u64, level: u8, attrs: u64, table_attrs: u64) -> u64 {
        map(
            &mut self.mem,
            &mut self.s1_alloc,
            self.s1,
            va,
            ipa,
            level,
            attrs,
            table_attrs,
        )
    }

    fn map2(&mut self, ipa: u64, pa: u64, level: u8, attrs: u64) -> u64 {
        map(&mut self.mem, &mut self.s2_alloc, self.s2, ipa, pa, level, attrs, 0)
    }

    fn translator(&self) -> Translator {
        Translator::new(
            Some(Stage1::new(self.s1.root, self.s1.root, self.tcr)),
            Some(Stage2::new(self.s2.root, self.vtcr).unwrap()),
        )
    }

    fn go(&self, va: u64, access: Access) -> Result<guest_probe::walk::Translation, Fault> {
        self.translator().translate(&self.mem, GuestVirtAddr::new(va), access)
    }
}

#[test]
fn two_stage_translation_goes_through_stage2_for_tables() {
    let mut w = World::new();
    w.map1(KVA, IPA_RAM + 0x10_0000, 3, AF, 0);
    let t = w.go(KVA + 0x18, Access::Execute).unwrap();
    assert_eq!(t.ipa, IntermPhysAddr::new(IPA_RAM + 0x10_0018));
    assert_eq!(t.pa, PhysAddr::new(PA_RAM + 0x10_0018));
    assert_eq!(t.stage2.unwrap().level, 1);
    assert_eq!(t.el1, Perms::ALL);
    assert_eq!(t.contiguous_len(), 0x1000 - 0x18);
    // Without stage 2, the same stage-1 tables are read at their IPA (where
    // nothing is): an external abort on the stage-1 walk at level 0.
    let s1_only = Translator::new(w.translator().stage1, None);
    let f = s1_only
        .translate(&w.mem, GuestVirtAddr::new(KVA), Access::Read)
        .unwrap_err();
    assert_eq!((f.stage, f.level), (Stage::One, 0));
    assert!(matches!(f.kind, FaultKind::ExternalAbort(MemError::Unmapped(_))), "{f}");
}

#[test]
fn fault_table() {
    struct Case {
        name: &'static str,
        setup: fn(&mut World) -> u64,
        access: Access,
        want: (Stage, u8, FaultKind, bool),
    }
    use FaultKind::*;
    let cases = [
        Case {
            name: "unmapped L0",
            setup: |_| KVA,
            access: Access::Read,
            want: (Stage::One, 0, Translation, false),
        },
        Case {
            name: "unmapped L1",
            setup: |w| {
                w.map1(KVA + (1 << 30), IPA_RAM, 3, AF, 0);
                KVA
            },
            access: Access::Read,
            want: (Stage::One, 1, Translation, false),
        },
        Case {
            name: "unmapped L2",
            setup: |w| {
                w.map1(KVA + (1 << 21), IPA_RAM, 3, AF, 0);
                KVA
            },
            access: Access::Read,
            want: (Stage::One, 2, Translation, false),
        },
        Case {
            name: "unmapped L3",
            setup: |w| {
                w.map1(KVA + 0x1000, IPA_RAM, 3, AF, 0);
                KVA
            },
            access: Access::Read,
            want: (Stage::One, 3, Translation, false),
        },
        Case {
            name: "reserved L3 encoding",
            setup: |w| {
                let e = w.map1(KVA, IPA_RAM, 3, AF, 0);
                w.mem.poke_u64(e + PA_RAM - IPA_RAM, Descriptor::block(IPA_RAM, AF).0);
                KVA
            },
            access: Access::Read,
            want: (Stage::One, 3, Translation, false),
        },
        Case {
            name: "block at L0 (4K)",
            setup: |w| {
                let e = w.map1(KVA, IPA_RAM, 3, AF, 0);
                let l0 = w.s1.root + ((KVA >> 39) & 511) * 8;
                assert_ne!(e, l0);
                w.mem.poke_u64(l0 + PA_RAM - IPA_RAM, Descriptor::block(0, AF).0);
                KVA
            },
            access: Access::Read,
            want: (Stage::One, 0, Translation, false),
        },
        Case {
            name: "non-canonical VA",
            setup: |w| {
                w.map1(KVA, IPA_RAM, 3, AF, 0);
                KVA & !(1 << 60)
            },
            access: Access::Read,
            want: (Stage::One, 0, Translation, false),
        },
        Case {
            name: "EPD1",
            setup: |w| {
                w.map1(KVA, IPA_RAM, 3, AF, 0);
                w.tcr |= 1 << 23;
                KVA
            },
            access: Access::Read,
            want: (Stage::One, 0, Translation, false),
        },
        Case {
            name: "output beyond IPS",
            setup: |w| {
                w.map1(KVA, 0x1_0000_0000, 3, AF, 0);
                w.tcr &= !(0b111 << 32); // IPS = 32 bits
                KVA
            },
            access: Access::Read,
            want: (Stage::One, 3, AddressSize, false),
        },
        Case {
            name: "descriptor bits 51:48 set",
            setup: |w| {
                let e = w.map1(KVA, IPA_RAM, 2, AF, 0);
                let pa = e + PA_RAM - IPA_RAM;
                let d = w.mem.read_u64_le(PhysAddr::new(pa)).unwrap();
                w.mem.poke_u64(pa, d | (1 << 49));
                KVA
            },
            access: Access::Read,
            want: (Stage::One, 2, AddressSize, false),
        },
        Case {
            name: "TTBR beyond IPS",
            setup: |w| {
                w.s1.root |= 1 << 40;
                w.tcr &= !(0b111 << 32);
                KVA
            },
            access: Access::Read,
            want: (Stage::One, 0, AddressSize, false),
        },
        Case {
            name: "access flag",
            setup: |w| {
                w.map1(KVA, IPA_RAM, 3, 0, 0);
                KVA
            },
            access: Access::Read,
            want: (Stage::One, 3, AccessFlag, false),
        },
        Case {
            name: "access flag on a block",
            setup: |w| {
                w.map1(KVA, IPA_RAM, 2, 0, 0);
                KVA
            },
            access: Access::Read,
            want: (Stage::One, 2, AccessFlag, false),
        },
        Case {
            name: "write to read-only",
            setup: |w| {
                w.map1(KVA, IPA_RAM, 3, AF | Descriptor::AP2_RO, 0);
                KVA
            },
            access: Access::Write,
            want: (Stage::One, 3, Permission, false),
        },
        Case {
            name: "APTable read-only",
            setup: |w| {
                w.map1(KVA, IPA_RAM, 3, AF, Descriptor::AP_TABLE_RO);
                KVA
            },
            access: Access::Write,
            want: (Stage::One, 3, Permission, false),
        },
        Case {
            name: "PXN",
            setup: |w| {
                w.map1(KVA, IPA_RAM, 1, AF | Descriptor::PXN, 0);
                KVA
            },
            access: Access::Execute,
            want: (Stage::One, 1, Permission, false),
        },
        Case {
            name: "PXNTable",
            setup: |w| {
                w.map1(KVA, IPA_RAM, 3, AF, Descriptor::PXN_TABLE);
                KVA
            },
            access: Access::Execute,
            want: (Stage::One, 3, Permission, false),
        },
        Case {
            name: "EL0-writable is not EL1-executable",
            setup: |w| {
                w.map1(KVA, IPA_RAM, 3, AF | Descriptor::AP1_EL0, 0);
                KVA
            },
            access: Access::Execute,
            want: (Stage::One, 3, Permission, false),
        },
        Case {
            name: "stage-2 hole under a stage-1 table",
            setup: |w| {
                // Stage-1 tables that live outside the IPA RAM block.
                w.s1.root = 0x8000_0000;
                KVA
            },
            access: Access::Read,
            want: (Stage::Two, 1, Translation, true),
        },
        Case {
            name: "stage-2 no read on a stage-1 table",
            setup: |w| {
                w.map1(KVA, IPA_RAM, 3, AF, 0);
                // Replace the 1G block by one without S2AP read.
                let e = w.map2(IPA_RAM, PA_RAM, 1, AF | Descriptor::S2AP_W);
                let _ = e;
                KVA
            },
            access: Access::Read,
            want: (Stage::Two, 1, Permission, true),
        },
        Case {
            name: "stage-2 access flag on a stage-1 table",
            setup: |w| {
                w.map2(IPA_RAM, PA_RAM, 1, Descriptor::S2AP_R);
                KVA
            },
            access: Access::Read,
            want: (Stage::Two, 1, AccessFlag, true),
        },
        Case {
            name: "stage-2 hole under the final IPA",
            setup: |w| {
                w.map1(KVA, 0x1_2345_6000, 3, AF, 0);
                KVA
            },
            access: Access::Read,
            want: (Stage::Two, 1, Translation, false),
        },
        Case {
            name: "stage-2 XN on the final IPA",
            setup: |w| {
                w.map1(KVA, 0x1_2345_6000, 3, AF, 0);
                w.map2(0x1_2345_6000, 0x9000_0000, 3, S2RW | Descriptor::UXN);
                KVA
            },
            access: Access::Execute,
            want: (Stage::Two, 3, Permission, false),
        },
        Case {
            name: "stage-2 read-only on the final IPA",
            setup: |w| {
                w.map1(KVA, 0x1_2345_6000, 3, AF, 0);
                w.map2(0x1_2345_6000, 0x9000_0000, 2, AF | Descriptor::S2AP_R);
                KVA
            },
            access: Access::Write,
            want: (Stage::Two, 2, Permission, false),
        },
        Case {
            name: "stage-2 output beyond PS",
            setup: |w| {
                w.map1(KVA, 0x1_2345_6000, 3, AF, 0);
                w.map2(0x1_2345_6000, 0x100_0000_0000, 3, S2RW);
                KVA
            },
            access: Access::Read,
            want: (Stage::Two, 3, AddressSize, false),
        },
        Case {
            name: "stage-1 table in a hole of PA",
            setup: |w| {
                w.map1(KVA, IPA_RAM, 3, AF, 0);
                // Stage 2 maps the IPA of the root table to PA nothing is at.
                w.map2(IPA_RAM + 0x80_0000, 0xC000_0000, 3, S2RW);
                KVA
            },
            access: Access::Read,
            want: (
                Stage::One,
                0,
                ExternalAbort(MemError::Unmapped(PhysAddr::new(0xC000_0000))),
                false,
            ),
        },
        Case {
            name: "reserved TG1",
            setup: |w| {
                w.tcr &= !(0b11 << 30);
                KVA
            },
            access: Access::Read,
            want: (Stage::One, 0, Config(ConfigError::ReservedGranule(0)), false),
        },
    ];
    for c in cases {
        let mut w = World::new();
        let va = (c.setup)(&mut w);
        let f = w.go(va, c.access).map(|t| t.pa).expect_err(c.name);
        assert_eq!((f.stage, f.level, f.kind, f.s1ptw), c.want, "{}: {f}", c.name);
        let expected_input = if f.stage == Stage::One { va } else { f.input };
        assert_eq!(f.input, expected_input);
    }
}

#[test]
fn permissions_are_reported_and_combined() {
    // (stage-1 leaf attrs, table attrs, stage-2 attrs, WXN, HPD1, EL1 perms, EL0 perms)
    let rwx = Perms::ALL;
    let p = |read, write, exec| Perms { read, write, exec };
    let cases = [
        (AF, 0, S2RW, false, false, rwx, p(false, false, true)),
        (AF | Descriptor::UXN, 0, S2RW, false, false, rwx, p(false, false, false)),
        (
            AF | Descriptor::AP1_EL0,
            0,
            S2RW,
            false,
            false,
            p(true, true, false),
            p(true, true, true),
        ),
        (
            AF | Descriptor::AP1_EL0 | Descriptor::AP2_RO,
            0,
            S2RW,
            false,
            false,
            p(true, false, true),
            p(true, false, true),
        ),
        (
            AF | Descriptor::AP2_RO | Descriptor::PXN,
            0,
            S2RW,
            false,
            false,
            p(true, false, false),
            p(false, false, true),
        ),
        (AF, 0, S2RW, true, false, p(true, true, false), p(false, false, true)),
        (
            AF | Descriptor::AP2_RO,
            0,
            S2RW,
            true,
            false,
            p(true, false, true),
            p(false, false, true),
        ),
        (
            AF | Descriptor::AP1_EL0,
            Descriptor::AP_TABLE_NO_EL0,
            S2RW,
            false,
            false,
            p(true, true, false),
            p(false, false, true),
        ),
        (
            AF,
            Descriptor::UXN_TABLE | Descriptor::AP_TABLE_RO,
            S2RW,
            false,
            false,
            p(true, false, true),
            p(false, false, false),
        ),
        // HPD1 ignores the table attributes.
        (
            AF,
            Descriptor::UXN_TABLE | Descriptor::AP_TABLE_RO | Descriptor::PXN_TABLE,
            S2RW,
            false,
            true,
            rwx,
            p(false, false, true),
        ),
        // Stage 2 narrows.
        (
            AF,
            0,
            AF | Descriptor::S2AP_R | Descriptor::UXN,
            false,
            false,
            p(true, false, false),
            p(false, false, false),
        ),
        (
            AF | Descriptor::AP1_EL0,
            0,
            AF | Descriptor::S2AP_R,
            false,
            false,
            p(true, false, false),
            p(true, false, true),
        ),
    ];
    for (i, (s1, table, s2, wxn, hpd1, el1, el0)) in cases.into_iter().enumerate() {
        let mut w = World::new();
        w.map1(KVA, 0x1_0000_0000, 3, s1, table);
        w.map2(0x1_0000_0000, 0x9000_0000, 3, s2);
        if hpd1 {
            w.tcr |= 1 << 42;
        }
        let mut tr = w.translator();
        tr.stage1 = tr.stage1.map(|s| s.with_wxn(wxn));
        let t = tr.translate(&w.mem, GuestVirtAddr::new(KVA), Access::Inspect).unwrap();
        assert_eq!((t.el1, t.el0), (el1, el0), "case {i}");
        assert_eq!(t.pa, PhysAddr::new(0x9000_0000));
        for (access, allowed) in [
            (Access::Read, el1.read),
            (Access::Write, el1.write),
            (Access::Execute, el1.exec),
        ] {
            assert_eq!(
                tr.translate(&w.mem, GuestVirtAddr::new(KVA), access).is_ok(),
                allowed,
                "case {i} {access:?}"
            );
        }
    }
}

#[test]
fn hardware_access_flag_is_not_a_fault() {
    let mut w = World::new();
    w.map1(KVA, IPA_RAM, 3, 0, 0);
    w.tcr |= 1 << 39; // HA
    assert!(w.go(KVA, Access::Read).is_ok());
    w.map2(IPA_RAM, PA_RAM, 1, Descriptor::S2AP_R | Descriptor::S2AP_W);
    assert_eq!(w.go(KVA, Access::Read).unwrap_err().kind, FaultKind::AccessFlag);
    w.vtcr |= 1 << 21; // VTCR.HA
    assert!(w.go(KVA, Access::Read).is_ok());
}

#[test]
fn tbi_applies_to_data_not_to_instructions() {
    let mut w = World::new();
    w.map1(0x40_0000, IPA_RAM, 3, AF, 0);
    w.tcr |= 1 << 37; // TBI0
    let tagged = 0x5A00_0000_0040_0000;
    assert_eq!(w.go(tagged, Access::Read).unwrap().pa, PhysAddr::new(PA_RAM));
    let f = w.go(tagged, Access::Execute).unwrap_err();
    assert_eq!((f.level, f.kind), (0, FaultKind::Translation));
    w.tcr &= !(1 << 37);
    assert!(w.go(tagged, Access::Read).is_err());
}

#[test]
fn virtual_reads_and_writes_cross_pages_that_map_apart() {
    let mut w = World::new();
    // Two consecutive VA pages on non-consecutive IPA pages, the second via a
    // separate stage-2 page.
    w.map1(KVA, IPA_RAM + 0x5000, 3, AF, 0);
    w.map1(KVA + 0x1000, 0x1_0000_3000, 3, AF | Descriptor::AP2_RO, 0);
    w.map2(0x1_0000_3000, 0xA000_0000, 3, S2RW);
    w.mem.map(0xA000_0000, 0x1000);
    w.mem.map(PA_RAM + 0x5000, 0x1000);
    let tr = w.translator();
    let data: Vec<u8> = (0..32u8).collect();
    // A write to the read-only second page faults with Write, not Inspect.
    let err = tr
        .write_virt(&mut w.mem, GuestVirtAddr::new(KVA + 0xff0), &data, Access::Write)
        .unwrap_err();
    assert!(matches!(err, AccessError::Fault(f) if f.kind == FaultKind::Permission && f.input == KVA + 0x1000));
    tr.write_virt(&mut w.mem, GuestVirtAddr::new(KVA + 0xff0), &data, Access::Inspect)
        .unwrap();
    assert_eq!(
        w.mem.read_u64_le(PhysAddr::new(PA_RAM + 0x5ff8)).unwrap(),
        u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15])
    );
    assert_eq!(
        w.mem.read_u64_le(PhysAddr::new(0xA000_0000)).unwrap(),
        u64::from_le_bytes([16, 17, 18, 19, 20, 21, 22, 23])
    );
    let mut back = [0u8; 32];
    tr.read_virt(&w.mem, GuestVirtAddr::new(KVA + 0xff0), &mut back, Access::Read)
        .unwrap();
    assert_eq!(&back[..], &data[..]);
    assert_eq!(
        tr.read_u64(&w.mem, GuestVirtAddr::new(KVA + 0xffc)).unwrap(),
        u64::from_le_bytes([12, 13, 14, 15, 16, 17, 18, 19])
    );
    // Running into an unmapped third page reports the fault at its VA.
    let mut big = [0u8; 0x1900];
    let err = tr
        .read_virt(&w.mem, GuestVirtAddr::new(KVA + 0x800), &mut big, Access::Read)
        .unwrap_err();
    assert!(
        matches!(err, AccessError::Fault(f) if f.input == KVA + 0x2000 && f.level == 3),
        "{err}"
    );
    // A stage-2 mapping to missing PA memory is a memory error with progress.
    w.map1(KVA + 0x2000, 0x1_0000_4000, 3, AF, 0);
    w.map2(0x1_0000_4000, 0xB000_0000, 3, S2RW);
    let err = tr
        .read_virt(&w.mem, GuestVirtAddr::new(KVA + 0x1ff0), &mut big[..0x20], Access::Read)
        .unwrap_err();
    assert_eq!(
        err,
        AccessError::Memory {
            va: GuestVirtAddr::new(KVA + 0x2000),
            completed: 0x10,
            error: MemError::Unmapped(PhysAddr::new(0xB000_0000))
        }
    );
    // Wrapping at the top of the address space.
    let err = tr
        .read_virt(&w.mem, GuestVirtAddr::new(u64::MAX), &mut [0u8; 2], Access::Inspect)
        .unwrap_err();
    assert!(matches!(err, AccessError::Fault(_) | AccessError::Wrap(_)));
}

#[test]
fn mmu_off_and_stage2_only() {
    let w = World::new();
    let tr = Translator::new(None, Some(Stage2::new(w.s2.root, w.vtcr).unwrap()));
    let t = tr
        .translate(&w.mem, GuestVirtAddr::new(IPA_RAM + 0x1234), Access::Execute)
        .unwrap();
    assert_eq!(t.pa, PhysAddr::new(PA_RAM + 0x1234));
    assert_eq!(t.stage1, None);
    assert_eq!(t.contiguous_len(), (1 << 30) - 0x1234);
    let id = Translator::default();
    let t = id.translate(&w.mem, GuestVirtAddr::new(0x1234), Access::Write).unwrap();
    assert_eq!((t.ipa.raw(), t.pa.raw(), t.el1), (0x1234, 0x1234, Perms::ALL));
}

#[test]
fn fault_messages_name_stage_level_and_address() {
    let mut w = World::new();
    w.s1.root = 0x8000_0000;
    let f = w.go(KVA, Access::Read).unwrap_err();
    assert_eq!(
        f.to_string(),
        "stage 2 translation fault at level 1 (IPA 0x80000000, during the stage-1 table walk)"
    );
    let w = World::new();
    let f = w.go(KVA, Access::Read).unwrap_err();
    assert_eq!(
        f.to_string(),
        "stage 1 translation fault at level 0 (VA 0xffff000040100000)"
    );
}
