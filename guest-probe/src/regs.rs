//! Typed views of the system registers and descriptors a page walk needs.
//!
//! Each type wraps the raw 64-bit value and names its fields after the Arm
//! Architecture Reference Manual (DDI 0487). Decoding is total: reserved field
//! values come back as `None` or as a [`ConfigError`], never as a guess.
//! Descriptors also have constructors so tests (and the hypervisor building
//! its stage-2 tables) write entries by name instead of by magic number.

/// Why a translation-control register value cannot be used for a walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// TGx holds a reserved encoding.
    #[error("reserved translation granule encoding {0:#b}")]
    ReservedGranule(u8),
    /// IPS/PS holds a reserved encoding.
    #[error("reserved physical address size encoding {0:#b}")]
    ReservedPaSize(u8),
    /// TxSZ is outside the range this walker supports (16..=48; no 52-bit VAs).
    #[error("TxSZ {0} out of range (supported: 16..=48)")]
    TxszOutOfRange(u8),
    /// VTCR_EL2.SL0 holds a reserved encoding for the granule.
    #[error("VTCR_EL2.SL0 {sl0:#b} is reserved for this granule")]
    ReservedStartLevel {
        /// The SL0 field.
        sl0: u8,
    },
    /// SL0 and T0SZ are inconsistent: the start level cannot resolve the
    /// input size, even with concatenated tables.
    #[error("VTCR_EL2 T0SZ {t0sz} cannot start at level {level}")]
    StartLevelMismatch {
        /// The T0SZ field.
        t0sz: u8,
        /// The start level SL0 asked for.
        level: u8,
    },
}

/// Translation granule (page) size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Granule {
    /// 4 KiB pages, 9 bits per level.
    K4,
    /// 16 KiB pages, 11 bits per level.
    K16,
    /// 64 KiB pages, 13 bits per level.
    K64,
}

impl Granule {
    /// Decodes TCR_EL1.TG0 / VTCR_EL2.TG0 (00 = 4K, 01 = 64K, 10 = 16K).
    pub const fn from_tg0(tg0: u8) -> Result<Self, ConfigError> {
        match tg0 {
            0b00 => Ok(Self::K4),
            0b01 => Ok(Self::K64),
            0b10 => Ok(Self::K16),
            other => Err(ConfigError::ReservedGranule(other)),
        }
    }

    /// Decodes TCR_EL1.TG1 (01 = 16K, 10 = 4K, 11 = 64K).
    pub const fn from_tg1(tg1: u8) -> Result<Self, ConfigError> {
        match tg1 {
            0b01 => Ok(Self::K16),
            0b10 => Ok(Self::K4),
            0b11 => Ok(Self::K64),
            other => Err(ConfigError::ReservedGranule(other)),
        }
    }

    /// log2 of the page size.
    pub const fn page_shift(self) -> u32 {
        match self {
            Self::K4 => 12,
            Self::K16 => 14,
            Self::K64 => 16,
        }
    }

    /// The page size in bytes.
    pub const fn size(self) -> u64 {
        1 << self.page_shift()
    }

    /// Input-address bits resolved by one full table.
    pub const fn bits_per_level(self) -> u32 {
        self.page_shift() - 3
    }

    /// log2 of the size mapped by one entry at `level` (0..=3).
    pub const fn level_shift(self, level: u8) -> u32 {
        self.page_shift() + (3 - level as u32) * self.bits_per_level()
    }

    /// Whether a block descriptor is allowed at `level` (without 52-bit
    /// addressing: 4K at levels 1 and 2; 16K and 64K at level 2).
    pub const fn block_allowed(self, level: u8) -> bool {
        match self {
            Self::K4 => level == 1 || level == 2,
            Self::K16 | Self::K64 => level == 2,
        }
    }

    /// The level a stage-1 walk starts at for an input size of `ia_bits`.
    pub const fn stage1_start_level(self, ia_bits: u32) -> u8 {
        let bits = self.bits_per_level();
        let levels = (ia_bits - self.page_shift()).div_ceil(bits);
        (4 - levels) as u8
    }
}

/// Decodes a TCR_EL1.IPS / VTCR_EL2.PS field into a number of address bits.
///
/// 52 (0b110) is accepted but, as on hardware without FEAT_LPA/LPA2, walks
/// treat it as 48.
pub const fn pa_size_bits(enc: u8) -> Result<u32, ConfigError> {
    match enc {
        0b000 => Ok(32),
        0b001 => Ok(36),
        0b010 => Ok(40),
        0b011 => Ok(42),
        0b100 => Ok(44),
        0b101 => Ok(48),
        0b110 => Ok(52),
        other => Err(ConfigError::ReservedPaSize(other)),
    }
}

const fn bits(v: u64, hi: u32, lo: u32) -> u64 {
    (v >> lo) & ((1u64 << (hi - lo + 1)) - 1)
}

const fn bit(v: u64, n: u32) -> bool {
    (v >> n) & 1 == 1
}

/// TCR_EL1: stage-1 translation control for the EL1&0 regime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tcr(pub u64);

impl Tcr {
    /// T0SZ: the TTBR0 region is `2^(64 - T0SZ)` bytes.
    pub const fn t0sz(self) -> u8 {
        bits(self.0, 5, 0) as u8
    }
    /// EPD0: walks through TTBR0 disabled (translation fault).
    pub const fn epd0(self) -> bool {
        bit(self.0, 7)
    }
    /// TG0: granule of the TTBR0 tables.
    pub const fn tg0(self) -> Result<Granule, ConfigError> {
        Granule::from_tg0(bits(self.0, 15, 14) as u8)
    }
    /// T1SZ: the TTBR1 region is `2^(64 - T1SZ)` bytes.
    pub const fn t1sz(self) -> u8 {
        bits(self.0, 21, 16) as u8
    }
    /// A1: the ASID comes from TTBR1 (else TTBR0).
    pub const fn a1(self) -> bool {
        bit(self.0, 22)
    }
    /// EPD1: walks through TTBR1 disabled (translation fault).
    pub const fn epd1(self) -> bool {
        bit(self.0, 23)
    }
    /// TG1: granule of the TTBR1 tables.
    pub const fn tg1(self) -> Result<Granule, ConfigError> {
        Granule::from_tg1(bits(self.0, 31, 30) as u8)
    }
    /// IPS: intermediate physical address size, in bits.
    pub const fn ips_bits(self) -> Result<u32, ConfigError> {
        pa_size_bits(bits(self.0, 34, 32) as u8)
    }
    /// AS: 16-bit ASIDs.
    pub const fn asid16(self) -> bool {
        bit(self.0, 36)
    }
    /// TBI0: top byte ignored for data addresses in the TTBR0 region.
    pub const fn tbi0(self) -> bool {
        bit(self.0, 37)
    }
    /// TBI1: top byte ignored for data addresses in the TTBR1 region.
    pub const fn tbi1(self) -> bool {
        bit(self.0, 38)
    }
    /// HA: hardware management of the access flag.
    pub const fn ha(self) -> bool {
        bit(self.0, 39)
    }
    /// HD: hardware management of the dirty state.
    pub const fn hd(self) -> bool {
        bit(self.0, 40)
    }
    /// HPD0: hierarchical permissions disabled for TTBR0.
    pub const fn hpd0(self) -> bool {
        bit(self.0, 41)
    }
    /// HPD1: hierarchical permissions disabled for TTBR1.
    pub const fn hpd1(self) -> bool {
        bit(self.0, 42)
    }
}

/// VTCR_EL2: stage-2 translation control.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Vtcr(pub u64);

impl Vtcr {
    /// T0SZ: the IPA space is `2^(64 - T0SZ)` bytes.
    pub const fn t0sz(self) -> u8 {
        bits(self.0, 5, 0) as u8
    }
    /// SL0: encodes the start level (meaning depends on the granule).
    pub const fn sl0(self) -> u8 {
        bits(self.0, 7, 6) as u8
    }
    /// TG0: the stage-2 granule.
    pub const fn tg0(self) -> Result<Granule, ConfigError> {
        Granule::from_tg0(bits(self.0, 15, 14) as u8)
    }
    /// PS: physical address size, in bits.
    pub const fn ps_bits(self) -> Result<u32, ConfigError> {
        pa_size_bits(bits(self.0, 18, 16) as u8)
    }
    /// VS: 16-bit VMIDs.
    pub const fn vmid16(self) -> bool {
        bit(self.0, 19)
    }
    /// HA: hardware management of the stage-2 access flag.
    pub const fn ha(self) -> bool {
        bit(self.0, 21)
    }

    /// The start level SL0 encodes for `granule` (4K: 0→2, 1→1, 2→0,
    /// 3→3 as with FEAT_TTST; 16K/64K: 0→3, 1→2, 2→1, 3 reserved).
    pub const fn start_level(self, granule: Granule) -> Result<u8, ConfigError> {
        let sl0 = self.sl0();
        match (granule, sl0) {
            (Granule::K4, 0) => Ok(2),
            (Granule::K4, 1) => Ok(1),
            (Granule::K4, 2) => Ok(0),
            (Granule::K4, 3) => Ok(3),
            (_, 0) => Ok(3),
            (_, 1) => Ok(2),
            (_, 2) => Ok(1),
            _ => Err(ConfigError::ReservedStartLevel { sl0 }),
        }
    }
}

/// TTBR0_EL1 / TTBR1_EL1: stage-1 table base and ASID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ttbr(pub u64);

impl Ttbr {
    /// BADDR: the table base (bits 47:1; bit 0 is CnP).
    pub const fn baddr(self) -> u64 {
        self.0 & 0x0000_FFFF_FFFF_FFFE
    }
    /// ASID (bits 63:48; only 7:0 meaningful with 8-bit ASIDs).
    pub const fn asid(self) -> u16 {
        (self.0 >> 48) as u16
    }
    /// CnP: common not private.
    pub const fn cnp(self) -> bool {
        bit(self.0, 0)
    }
}

/// VTTBR_EL2: stage-2 table base and VMID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Vttbr(pub u64);

impl Vttbr {
    /// BADDR: the table base (bits 47:1).
    pub const fn baddr(self) -> u64 {
        self.0 & 0x0000_FFFF_FFFF_FFFE
    }
    /// VMID (bits 63:48 with 16-bit VMIDs, else 55:48).
    pub const fn vmid(self, vmid16: bool) -> u16 {
        if vmid16 {
            (self.0 >> 48) as u16
        } else {
            ((self.0 >> 48) & 0xff) as u16
        }
    }
    /// Builds a VTTBR value from a table base and a VMID.
    pub const fn new(baddr: u64, vmid: u16) -> Self {
        Self((baddr & 0x0000_FFFF_FFFF_FFFE) | ((vmid as u64) << 48))
    }
}

/// The kind of a translation-table entry at a given level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DescKind {
    /// Bit 0 clear: translation fault.
    Invalid,
    /// Points to the next-level table (levels 0..=2).
    Table,
    /// Maps a block (levels 0..=2, where the granule allows it).
    Block,
    /// Maps a page (level 3).
    Page,
    /// Bit pattern reserved at this level (level-3 with bit 1 clear, or a
    /// block where none is allowed): a translation fault.
    Reserved,
}

/// A VMSAv8-64 translation-table descriptor (stage 1 or stage 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Descriptor(pub u64);

impl Descriptor {
    /// Bit 10: access flag.
    pub const AF: u64 = 1 << 10;
    /// Bit 6: stage-1 AP[1] (EL0 access) / stage-2 S2AP[0] (read).
    pub const AP1_EL0: u64 = 1 << 6;
    /// Bit 7: stage-1 AP[2] (read-only) / stage-2 S2AP[1] (write).
    pub const AP2_RO: u64 = 1 << 7;
    /// Stage-2 S2AP read permission (bit 6).
    pub const S2AP_R: u64 = 1 << 6;
    /// Stage-2 S2AP write permission (bit 7).
    pub const S2AP_W: u64 = 1 << 7;
    /// Bit 11: not global.
    pub const NG: u64 = 1 << 11;
    /// Bit 52: contiguous hint.
    pub const CONTIGUOUS: u64 = 1 << 52;
    /// Bit 53: stage-1 PXN.
    pub const PXN: u64 = 1 << 53;
    /// Bit 54: stage-1 UXN / stage-2 XN.
    pub const UXN: u64 = 1 << 54;
    /// Table bit 59: PXNTable.
    pub const PXN_TABLE: u64 = 1 << 59;
    /// Table bit 60: UXNTable.
    pub const UXN_TABLE: u64 = 1 << 60;
    /// Table bit 61: APTable[0] (no EL0 access below).
    pub const AP_TABLE_NO_EL0: u64 = 1 << 61;
    /// Table bit 62: APTable[1] (read-only below).
    pub const AP_TABLE_RO: u64 = 1 << 62;
    /// Table bit 63: NSTable.
    pub const NS_TABLE: u64 = 1 << 63;
    /// Mask of output-address bits 47:12 (narrowed by the granule).
    pub const OA_MASK_48: u64 = 0x0000_FFFF_FFFF_F000;

    /// A table descriptor pointing at `next` (attributes are added by OR).
    pub const fn table(next: u64) -> Self {
        Self((next & Self::OA_MASK_48) | 0b11)
    }
    /// A level-3 page descriptor for `oa` with `attrs` (AF is not implied).
    pub const fn page(oa: u64, attrs: u64) -> Self {
        Self((oa & Self::OA_MASK_48) | attrs | 0b11)
    }
    /// A block descriptor for `oa` with `attrs` (AF is not implied).
    pub const fn block(oa: u64, attrs: u64) -> Self {
        Self((oa & Self::OA_MASK_48) | attrs | 0b01)
    }

    /// Bit 0.
    pub const fn valid(self) -> bool {
        bit(self.0, 0)
    }

    /// What this entry is when found at `level` with `granule`.
    pub const fn kind(self, level: u8, granule: Granule) -> DescKind {
        if !self.valid() {
            DescKind::Invalid
        } else if level == 3 {
            if bit(self.0, 1) {
                DescKind::Page
            } else {
                DescKind::Reserved
            }
        } else if bit(self.0, 1) {
            DescKind::Table
        } else if granule.block_allowed(level) {
            DescKind::Block
        } else {
            DescKind::Reserved
        }
    }

    /// The output (or next-table) address for `granule`: bits 47:page_shift.
    pub const fn output_address(self, granule: Granule) -> u64 {
        self.0 & Self::OA_MASK_48 & !(granule.size() - 1)
    }
    /// Bits 49:48, which must be zero without 52-bit addressing. (Bits 51
    /// and 50 are attributes in block and page descriptors — DBM, which
    /// Linux uses as its software write bit, and GP — and ignored in table
    /// descriptors.)
    pub const fn high_oa_bits(self) -> u64 {
        bits(self.0, 49, 48)
    }
    /// AF (bit 10).
    pub const fn af(self) -> bool {
        bit(self.0, 10)
    }
    /// Stage-1 AP[2:1] (bits 7:6).
    pub const fn ap(self) -> u8 {
        bits(self.0, 7, 6) as u8
    }
    /// Stage-2 S2AP (bits 7:6): bit 0 read, bit 1 write.
    pub const fn s2ap(self) -> u8 {
        bits(self.0, 7, 6) as u8
    }
    /// Stage-1 AttrIndx (bits 4:2) / stage-2 MemAttr[2:0].
    pub const fn attr_index(self) -> u8 {
        bits(self.0, 4, 2) as u8
    }
    /// SH (bits 9:8).
    pub const fn sh(self) -> u8 {
        bits(self.0, 9, 8) as u8
    }
    /// nG (bit 11).
    pub const fn ng(self) -> bool {
        bit(self.0, 11)
    }
    /// DBM (bit 51).
    pub const fn dbm(self) -> bool {
        bit(self.0, 51)
    }
    /// Contiguous hint (bit 52).
    pub const fn contiguous(self) -> bool {
        bit(self.0, 52)
    }
    /// Stage-1 PXN (bit 53).
    pub const fn pxn(self) -> bool {
        bit(self.0, 53)
    }
    /// Stage-1 UXN (bit 54).
    pub const fn uxn(self) -> bool {
        bit(self.0, 54)
    }
    /// Stage-2 XN (bit 54; XN[0] of FEAT_XNX is ignored).
    pub const fn s2_xn(self) -> bool {
        bit(self.0, 54)
    }
    /// Table PXNTable (bit 59).
    pub const fn pxn_table(self) -> bool {
        bit(self.0, 59)
    }
    /// Table UXNTable (bit 60).
    pub const fn uxn_table(self) -> bool {
        bit(self.0, 60)
    }
    /// Table APTable (bits 62:61).
    pub const fn ap_table(self) -> u8 {
        bits(self.0, 62, 61) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcr_fields() {
        // A Linux-like TCR_EL1: T0SZ=T1SZ=25 (39-bit), TG0=4K, TG1=4K, IPS=48-bit,
        // AS, TBI0, HA.
        let tcr = Tcr(25 | (25 << 16) | (0b10 << 30) | (0b101 << 32) | (1 << 36) | (1 << 37) | (1 << 39) | (1 << 23));
        assert_eq!(tcr.t0sz(), 25);
        assert_eq!(tcr.t1sz(), 25);
        assert_eq!(tcr.tg0(), Ok(Granule::K4));
        assert_eq!(tcr.tg1(), Ok(Granule::K4));
        assert_eq!(tcr.ips_bits(), Ok(48));
        assert!(tcr.asid16() && tcr.tbi0() && !tcr.tbi1() && tcr.ha() && !tcr.hd() && tcr.epd1() && !tcr.epd0());
        assert_eq!(Tcr(0b01 << 14).tg0(), Ok(Granule::K64));
        assert_eq!(Tcr(0b10 << 14).tg0(), Ok(Granule::K16));
        assert_eq!(Tcr(0b11 << 14).tg0(), Err(ConfigError::ReservedGranule(3)));
        assert_eq!(Tcr(0).tg1(), Err(ConfigError::ReservedGranule(0)));
        assert_eq!(Tcr(0b01 << 30).tg1(), Ok(Granule::K16));
        assert_eq!(Tcr(0b11 << 30).tg1(), Ok(Granule::K64));
        assert_eq!(Tcr(0b111 << 32).ips_bits(), Err(ConfigError::ReservedPaSize(7)));
    }

    #[test]
    fn vtcr_fields_and_start_levels() {
        let v = Vtcr(24 | (1 << 6) | (0b010 << 16) | (1 << 19));
        assert_eq!(v.t0sz(), 24);
        assert_eq!(v.start_level(Granule::K4), Ok(1));
        assert_eq!(v.ps_bits(), Ok(40));
        assert!(v.vmid16());
        let table = [
            (Granule::K4, [2, 1, 0, 3]),
            (Granule::K16, [3, 2, 1, 255]),
            (Granule::K64, [3, 2, 1, 255]),
        ];
        for (g, levels) in table {
            for (sl0, want) in levels.into_iter().enumerate() {
                let got = Vtcr((sl0 as u64) << 6).start_level(g);
                if want == 255 {
                    assert_eq!(got, Err(ConfigError::ReservedStartLevel { sl0: sl0 as u8 }));
                } else {
                    assert_eq!(got, Ok(want), "{g:?} sl0={sl0}");
                }
            }
        }
    }

    #[test]
    fn ttbr_and_vttbr() {
        let t = Ttbr(0x0042_0000_4008_0001);
        assert_eq!(t.baddr(), 0x4008_0000);
        assert_eq!(t.asid(), 0x42);
        assert!(t.cnp());
        let v = Vttbr::new(0x4100_0000, 0x1ab);
        assert_eq!(v.baddr(), 0x4100_0000);
        assert_eq!(v.vmid(true), 0x1ab);
        assert_eq!(v.vmid(false), 0xab);
    }

    #[test]
    fn descriptor_kinds_per_level() {
        let t = Descriptor::table(0x1234_5000);
        let b = Descriptor::block(0x4000_0000, Descriptor::AF);
        assert_eq!(Descriptor(0).kind(0, Granule::K4), DescKind::Invalid);
        assert_eq!(t.kind(0, Granule::K4), DescKind::Table);
        assert_eq!(t.kind(3, Granule::K4), DescKind::Page);
        assert_eq!(b.kind(0, Granule::K4), DescKind::Reserved);
        assert_eq!(b.kind(1, Granule::K4), DescKind::Block);
        assert_eq!(b.kind(2, Granule::K4), DescKind::Block);
        assert_eq!(b.kind(3, Granule::K4), DescKind::Reserved);
        assert_eq!(b.kind(1, Granule::K16), DescKind::Reserved);
        assert_eq!(b.kind(2, Granule::K64), DescKind::Block);
        assert_eq!(t.output_address(Granule::K4), 0x1234_5000);
        assert_eq!(t.output_address(Granule::K16), 0x1234_4000);
        assert_eq!(t.output_address(Granule::K64), 0x1234_0000);
        let p = Descriptor::page(
            0x8000,
            Descriptor::AF | Descriptor::AP2_RO | Descriptor::PXN | Descriptor::UXN | Descriptor::NG,
        );
        assert!(p.af() && p.pxn() && p.uxn() && p.ng());
        assert_eq!(p.ap(), 0b10);
        let tt = Descriptor(t.0 | Descriptor::AP_TABLE_RO | Descriptor::PXN_TABLE | Descriptor::UXN_TABLE);
        assert_eq!(tt.ap_table(), 0b10);
        assert!(tt.pxn_table() && tt.uxn_table());
        assert_eq!(Descriptor(0x000F_0000_0000_0003).high_oa_bits(), 0x3);
        // Linux's writable kernel pages carry DBM (bit 51): not an address bit.
        assert_eq!(Descriptor(0x0008_0000_4400_0713).high_oa_bits(), 0);
    }

    #[test]
    fn granule_geometry() {
        assert_eq!(Granule::K4.level_shift(0), 39);
        assert_eq!(Granule::K4.level_shift(1), 30);
        assert_eq!(Granule::K16.level_shift(2), 25);
        assert_eq!(Granule::K64.level_shift(2), 29);
        assert_eq!(Granule::K4.stage1_start_level(48), 0);
        assert_eq!(Granule::K4.stage1_start_level(39), 1);
        assert_eq!(Granule::K4.stage1_start_level(31), 1);
        assert_eq!(Granule::K4.stage1_start_level(30), 2);
        assert_eq!(Granule::K4.stage1_start_level(21), 3);
        assert_eq!(Granule::K16.stage1_start_level(48), 0);
        assert_eq!(Granule::K16.stage1_start_level(47), 1);
        assert_eq!(Granule::K64.stage1_start_level(48), 1);
        assert_eq!(Granule::K64.stage1_start_level(42), 2);
    }
}
