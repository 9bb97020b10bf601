//! Stage-1 and stage-2 translation-table walks, as the hardware does them.
//!
//! - [`Stage2`] is decoded from VTTBR_EL2/VTCR_EL2 and translates IPA → PA.
//! - [`Stage1`] is decoded from TTBR0_EL1/TTBR1_EL1/TCR_EL1 (and optionally
//!   SCTLR_EL1.WXN) and translates VA → IPA. When a stage-2 context is present,
//!   every stage-1 table address is itself translated through stage 2 (a fault
//!   there is reported as a stage-2 fault with `s1ptw` set), as on hardware.
//! - [`Translator`] combines the two (either may be absent: no stage 1 = guest
//!   MMU off, VA = IPA; no stage 2 = IPA = PA) and offers page-by-page virtual
//!   reads and writes.
//!
//! Supported: 4K, 16K and 64K granules, every start level (stage-2 start
//! levels with concatenated tables too), block descriptors where the granule
//! allows them, 48-bit output addresses (IPS/PS of 52 are treated as 48, as on
//! hardware without FEAT_LPA), TBI, EPDx, hierarchical permissions (and HPDx),
//! implicit PXN for EL0-writable pages, WXN, hardware access-flag management
//! (HA set: a clear AF is not a fault; the walker never writes descriptors).
//!
//! Faults are reported in the hardware's priority order: translation, address
//! size, access flag, permission; stage-1 before stage-2 for the final access.
//! An input address outside the configured range (or a walk disabled by
//! EPDx) is a translation fault at level 0.

use core::fmt;

use crate::addr::{GuestVirtAddr, IntermPhysAddr, PhysAddr};
use crate::memory::{GuestMemory, MemError};
use crate::regs::{ConfigError, DescKind, Descriptor, Granule, Tcr, Ttbr, Vtcr, Vttbr};

/// Which translation stage a fault belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// The guest's own tables (VA → IPA).
    One,
    /// The hypervisor's tables (IPA → PA).
    Two,
}

/// The kind of access being translated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// An EL1 data read.
    Read,
    /// An EL1 data write.
    Write,
    /// An EL1 instruction fetch (TBI does not apply).
    Execute,
    /// No permission check: the hypervisor inspecting guest memory. TBI is
    /// honoured as for data accesses.
    Inspect,
}

/// What went wrong, in the Arm ARM's fault vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FaultKind {
    /// Invalid or reserved descriptor, input address out of range, or walks
    /// disabled (EPDx).
    #[error("translation fault")]
    Translation,
    /// A table base or output address beyond the configured size.
    #[error("address size fault")]
    AddressSize,
    /// AF clear and hardware AF management disabled.
    #[error("access flag fault")]
    AccessFlag,
    /// The leaf does not allow the access.
    #[error("permission fault")]
    Permission,
    /// Reading a descriptor failed (synchronous external abort on the walk).
    #[error("external abort on table walk: {0}")]
    ExternalAbort(MemError),
    /// The control registers are unusable.
    #[error("bad translation control: {0}")]
    Config(ConfigError),
}

/// A translation fault, named like the hardware would name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The stage whose tables faulted.
    pub stage: Stage,
    /// The level of the lookup that faulted (0..=3).
    pub level: u8,
    /// What went wrong.
    pub kind: FaultKind,
    /// The input address of the faulting stage (VA for stage 1, IPA for
    /// stage 2).
    pub input: u64,
    /// A stage-2 fault taken while translating a stage-1 table address.
    pub s1ptw: bool,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (stage, what) = match self.stage {
            Stage::One => (1, "VA"),
            Stage::Two => (2, "IPA"),
        };
        write!(
            f,
            "stage {stage} {} at level {} ({what} {:#x}",
            self.kind, self.level, self.input
        )?;
        if self.s1ptw {
            write!(f, ", during the stage-1 table walk")?;
        }
        write!(f, ")")
    }
}

impl core::error::Error for Fault {}

/// Read, write and execute permission at one exception level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Perms {
    /// Data reads allowed.
    pub read: bool,
    /// Data writes allowed.
    pub write: bool,
    /// Instruction fetches allowed.
    pub exec: bool,
}

impl Perms {
    /// Everything allowed.
    pub const ALL: Perms = Perms {
        read: true,
        write: true,
        exec: true,
    };

    const fn and(self, o: Perms) -> Perms {
        Perms {
            read: self.read && o.read,
            write: self.write && o.write,
            exec: self.exec && o.exec,
        }
    }

    const fn allows(self, access: Access) -> bool {
        match access {
            Access::Read => self.read,
            Access::Write => self.write,
            Access::Execute => self.exec,
            Access::Inspect => true,
        }
    }
}

/// The leaf entry that ended one stage's walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leaf {
    /// The lookup level of the leaf.
    pub level: u8,
    /// Bytes mapped by the leaf (page or block size).
    pub size: u64,
    /// The raw descriptor.
    pub descriptor: Descriptor,
    /// Where the descriptor was read, in the address space the stage's
    /// tables live in (IPA for stage 1, PA for stage 2): lets a cache
    /// re-validate a translation with one read.
    pub entry: u64,
}

/// One stage's successful walk, before permission checks.
#[derive(Clone, Copy, Debug)]
struct Walked {
    leaf: Leaf,
    output: u64,
    /// APTable bits accumulated over the table descriptors.
    ap_table: u8,
    pxn_table: bool,
    uxn_table: bool,
}

/// Geometry of one walk: where it starts and how many bits each level takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Geometry {
    granule: Granule,
    base: u64,
    start_level: u8,
    /// Input bits resolved at the start level (more than one table's worth
    /// for concatenated stage-2 tables).
    start_bits: u32,
    /// Input address size in bits.
    ia_bits: u32,
    /// Output address size in bits (≤ 48).
    oa_bits: u32,
}

impl Geometry {
    /// Walks the tables for `input` (already checked against `ia_bits`),
    /// reading each descriptor with `read(level, entry_address)`.
    fn walk(
        &self,
        stage: Stage,
        input: u64,
        mut read: impl FnMut(u8, u64) -> Result<u64, Fault>,
    ) -> Result<Walked, Fault> {
        let fault = |level, kind| Fault {
            stage,
            level,
            kind,
            input,
            s1ptw: false,
        };
        let g = self.granule;
        let start_table_size = 8u64 << self.start_bits;
        let mut table = self.base & !(start_table_size - 1);
        if table >> self.oa_bits != 0 {
            return Err(fault(0, FaultKind::AddressSize));
        }
        let (mut ap_table, mut pxn_table, mut uxn_table) = (0u8, false, false);
        let mut level = self.start_level;
        loop {
            let nbits = if level == self.start_level {
                self.start_bits
            } else {
                g.bits_per_level()
            };
            let shift = g.level_shift(level);
            let index = (input >> shift) & ((1u64 << nbits) - 1);
            let entry = table | (index * 8);
            let desc = Descriptor(read(level, entry)?);
            let kind = desc.kind(level, g);
            match kind {
                DescKind::Invalid | DescKind::Reserved => return Err(fault(level, FaultKind::Translation)),
                DescKind::Table | DescKind::Block | DescKind::Page => {}
            }
            if desc.high_oa_bits() != 0 || desc.output_address(g) >> self.oa_bits != 0 {
                return Err(fault(level, FaultKind::AddressSize));
            }
            if kind == DescKind::Table {
                ap_table |= desc.ap_table();
                pxn_table |= desc.pxn_table();
                uxn_table |= desc.uxn_table();
                table = desc.output_address(g);
                level += 1;
                continue;
            }
            let size = 1u64 << shift;
            let output = (desc.output_address(g) & !(size - 1)) | (input & (size - 1));
            return Ok(Walked {
                leaf: Leaf {
                    level,
                    size,
                    descriptor: desc,
                    entry,
                },
                output,
                ap_table,
                pxn_table,
                uxn_table,
            });
        }
    }
}

/// A decoded stage-2 context (VTTBR_EL2 + VTCR_EL2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stage2 {
    geom: Geometry,
    ha: bool,
    vmid: u16,
}

/// A successful stage-2 translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stage2Translation {
    /// The physical address.
    pub pa: PhysAddr,
    /// Stage-2 permissions (apply to EL1 and EL0 alike).
    pub perms: Perms,
    /// The leaf entry.
    pub leaf: Leaf,
}

impl Stage2 {
    /// Decodes and validates a stage-2 context.
    pub fn new(vttbr: u64, vtcr: u64) -> Result<Self, ConfigError> {
        let vtcr = Vtcr(vtcr);
        let vttbr = Vttbr(vttbr);
        let granule = vtcr.tg0()?;
        let t0sz = vtcr.t0sz();
        if !(16..=48).contains(&t0sz) {
            return Err(ConfigError::TxszOutOfRange(t0sz));
        }
        let ia_bits = 64 - u32::from(t0sz);
        let level = vtcr.start_level(granule)?;
        let top = granule.level_shift(level);
        // The start level must resolve at least one bit and at most one table
        // plus 16 concatenated tables' worth (4 extra bits).
        if ia_bits <= top || ia_bits - top > granule.bits_per_level() + 4 {
            return Err(ConfigError::StartLevelMismatch { t0sz, level });
        }
        let oa_bits = vtcr.ps_bits()?.min(48);
        Ok(Self {
            geom: Geometry {
                granule,
                base: vttbr.baddr(),
                start_level: level,
                start_bits: ia_bits - top,
                ia_bits,
                oa_bits,
            },
            ha: vtcr.ha(),
            vmid: vttbr.vmid(vtcr.vmid16()),
        })
    }

    /// The VMID from VTTBR_EL2.
    pub fn vmid(&self) -> u16 {
        self.vmid
    }

    /// The stage-2 granule.
    pub fn granule(&self) -> Granule {
        self.geom.granule
    }

    /// The IPA size in bits.
    pub fn ipa_bits(&self) -> u32 {
        self.geom.ia_bits
    }

    /// The start level of the walk.
    pub fn start_level(&self) -> u8 {
        self.geom.start_level
    }

    /// Translates an IPA, checking `access` against S2AP/XN.
    pub fn translate<M: GuestMemory + ?Sized>(
        &self,
        mem: &M,
        ipa: IntermPhysAddr,
        access: Access,
    ) -> Result<Stage2Translation, Fault> {
        let input = ipa.raw();
        let fault = |level, kind| Fault {
            stage: Stage::Two,
            level,
            kind,
            input,
            s1ptw: false,
        };
        if input >> self.geom.ia_bits != 0 {
            return Err(fault(0, FaultKind::Translation));
        }
        let w = self.geom.walk(Stage::Two, input, |level, entry| {
            mem.read_u64_le(PhysAddr::new(entry))
                .map_err(|e| fault(level, FaultKind::ExternalAbort(e)))
        })?;
        let d = w.leaf.descriptor;
        if !d.af() && !self.ha {
            return Err(fault(w.leaf.level, FaultKind::AccessFlag));
        }
        let perms = Perms {
            read: d.s2ap() & 1 != 0,
            write: d.s2ap() & 2 != 0,
            exec: !d.s2_xn(),
        };
        if !perms.allows(access) {
            return Err(fault(w.leaf.level, FaultKind::Permission));
        }
        Ok(Stage2Translation {
            pa: PhysAddr::new(w.output),
            perms,
            leaf: w.leaf,
        })
    }
}

/// One half of the stage-1 address space (TTBR0 or TTBR1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Region {
    geom: Geometry,
    /// Top byte ignored for data accesses.
    tbi: bool,
    /// Hierarchical permissions disabled.
    hpd: bool,
    /// Walks disabled (EPDx).
    disabled: bool,
}

impl Region {
    fn decode(
        ttbr: Ttbr,
        tsz: u8,
        granule: Result<Granule, ConfigError>,
        tcr: Tcr,
        upper: bool,
    ) -> Result<Self, ConfigError> {
        let granule = granule?;
        let oa_bits = tcr.ips_bits()?.min(48);
        if !(16..=48).contains(&tsz) || 64 - u32::from(tsz) <= granule.page_shift() {
            return Err(ConfigError::TxszOutOfRange(tsz));
        }
        let ia_bits = 64 - u32::from(tsz);
        let start_level = granule.stage1_start_level(ia_bits);
        Ok(Self {
            geom: Geometry {
                granule,
                base: ttbr.baddr(),
                start_level,
                start_bits: ia_bits - granule.level_shift(start_level),
                ia_bits,
                oa_bits,
            },
            tbi: if upper { tcr.tbi1() } else { tcr.tbi0() },
            hpd: if upper { tcr.hpd1() } else { tcr.hpd0() },
            disabled: if upper { tcr.epd1() } else { tcr.epd0() },
        })
    }
}

/// A decoded stage-1 context for the EL1&0 regime.
///
/// Decoding never fails as a whole: a half whose controls are unusable (say
/// TTBR1 with a reserved TG1 while EPD1 is set) only faults when an address
/// in that half is translated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stage1 {
    lower: Result<Region, ConfigError>,
    upper: Result<Region, ConfigError>,
    ha: bool,
    wxn: bool,
}

impl Stage1 {
    /// Decodes TTBR0_EL1, TTBR1_EL1 and TCR_EL1 (SCTLR_EL1.WXN clear).
    pub fn new(ttbr0: u64, ttbr1: u64, tcr: u64) -> Self {
        let tcr = Tcr(tcr);
        Self {
            lower: Region::decode(Ttbr(ttbr0), tcr.t0sz(), tcr.tg0(), tcr, false),
            upper: Region::decode(Ttbr(ttbr1), tcr.t1sz(), tcr.tg1(), tcr, true),
            ha: tcr.ha(),
            wxn: false,
        }
    }

    /// Applies SCTLR_EL1.WXN: writable memory is never executable.
    pub fn with_wxn(mut self, wxn: bool) -> Self {
        self.wxn = wxn;
        self
    }

    /// The decode error of a half (`upper` = TTBR1), if it is unusable.
    pub fn config_error(&self, upper: bool) -> Option<ConfigError> {
        let r = if upper { &self.upper } else { &self.lower };
        r.err()
    }

    /// Walks the stage-1 tables for `va`; `table_pa` maps each table-entry
    /// IPA to the PA to read (identity, or a stage-2 translation).
    fn walk<M: GuestMemory + ?Sized>(
        &self,
        mem: &M,
        va: u64,
        access: Access,
        stage2: Option<&Stage2>,
    ) -> Result<(IntermPhysAddr, Perms, Perms, Leaf), Fault> {
        let fault = |level, kind| Fault {
            stage: Stage::One,
            level,
            kind,
            input: va,
            s1ptw: false,
        };
        let upper = (va >> 55) & 1 == 1;
        let region = if upper { self.upper } else { self.lower };
        let region = region.map_err(|e| fault(0, FaultKind::Config(e)))?;
        let ia = region.geom.ia_bits;
        let top_bit = if region.tbi && access != Access::Execute {
            56
        } else {
            64
        };
        // Bits [top_bit-1 : ia] must all equal bit 55 (the half selector).
        let range_mask = if top_bit - ia >= 64 {
            u64::MAX
        } else {
            ((1u64 << (top_bit - ia)) - 1) << ia
        };
        let expect = if upper { range_mask } else { 0 };
        if va & range_mask != expect || region.disabled {
            return Err(fault(0, FaultKind::Translation));
        }
        // Only bits below `ia` index the tables (the start-level index is
        // masked to `start_bits`), so the walk can take `va` as it is.
        let w = region.geom.walk(Stage::One, va, |level, entry_ipa| {
            let pa = match stage2 {
                None => PhysAddr::new(entry_ipa),
                Some(s2) => {
                    s2.translate(mem, IntermPhysAddr::new(entry_ipa), Access::Read)
                        .map_err(|f| Fault { s1ptw: true, ..f })?
                        .pa
                }
            };
            mem.read_u64_le(pa)
                .map_err(|e| fault(level, FaultKind::ExternalAbort(e)))
        });
        let w = w?;
        let d = w.leaf.descriptor;
        if !d.af() && !self.ha {
            return Err(fault(w.leaf.level, FaultKind::AccessFlag));
        }
        let (ap_table, pxn_table, uxn_table) = if region.hpd {
            (0, false, false)
        } else {
            (w.ap_table, w.pxn_table, w.uxn_table)
        };
        let ap = d.ap();
        let el1_write = ap & 0b10 == 0 && ap_table & 0b10 == 0;
        let el0_read = ap & 0b01 != 0 && ap_table & 0b01 == 0;
        let el0_write = ap == 0b01 && ap_table == 0;
        let el1 = Perms {
            read: true,
            write: el1_write,
            // EL0-writable memory is never executable at EL1 (implicit PXN).
            exec: !(d.pxn() || pxn_table || ap == 0b01 || (self.wxn && el1_write)),
        };
        let el0 = Perms {
            read: el0_read,
            write: el0_write,
            exec: !(d.uxn() || uxn_table || (self.wxn && el0_write)),
        };
        if !el1.allows(access) {
            return Err(fault(w.leaf.level, FaultKind::Permission));
        }
        Ok((IntermPhysAddr::new(w.output), el1, el0, w.leaf))
    }
}

/// A complete VA → IPA → PA translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The input.
    pub va: GuestVirtAddr,
    /// The stage-1 output.
    pub ipa: IntermPhysAddr,
    /// The stage-2 output.
    pub pa: PhysAddr,
    /// Combined (stage 1 ∧ stage 2) permissions at EL1.
    pub el1: Perms,
    /// Combined permissions at EL0.
    pub el0: Perms,
    /// The stage-1 leaf, if stage 1 is enabled.
    pub stage1: Option<Leaf>,
    /// The stage-2 leaf, if stage 2 is enabled.
    pub stage2: Option<Leaf>,
}

impl Translation {
    /// Bytes from `va` that are known to map contiguously (to the end of the
    /// smaller of the two leaves; unbounded when neither stage is enabled).
    pub fn contiguous_len(&self) -> u64 {
        let rest = |leaf: Option<Leaf>, addr: u64| match leaf {
            Some(l) => l.size - (addr & (l.size - 1)),
            None => u64::MAX,
        };
        rest(self.stage1, self.va.raw()).min(rest(self.stage2, self.ipa.raw()))
    }
}

/// Why a virtual read or write failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// The translation faulted.
    #[error("{0}")]
    Fault(Fault),
    /// The memory access itself failed after `completed` bytes.
    #[error("memory error after {completed} bytes at {va}: {error}")]
    Memory {
        /// The virtual address of the failing piece.
        va: GuestVirtAddr,
        /// Bytes done before it.
        completed: usize,
        /// The underlying error.
        error: MemError,
    },
    /// The access wraps around the top of the address space.
    #[error("access at {0} wraps around the address space")]
    Wrap(GuestVirtAddr),
}

/// Two-stage translation for one vCPU: an optional stage 1 (guest MMU on)
/// and an optional stage 2 (hypervisor tables).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Translator {
    /// The guest's stage 1; `None` when its MMU is off (VA = IPA).
    pub stage1: Option<Stage1>,
    /// The hypervisor's stage 2; `None` for IPA = PA.
    pub stage2: Option<Stage2>,
}

impl Translator {
    /// A translator from the two optional stages.
    pub fn new(stage1: Option<Stage1>, stage2: Option<Stage2>) -> Self {
        Self { stage1, stage2 }
    }

    /// Translates `va` for `access`.
    pub fn translate<M: GuestMemory + ?Sized>(
        &self,
        mem: &M,
        va: GuestVirtAddr,
        access: Access,
    ) -> Result<Translation, Fault> {
        let (ipa, s1_el1, s1_el0, s1_leaf) = match &self.stage1 {
            Some(s1) => {
                let (ipa, el1, el0, leaf) = s1.walk(mem, va.raw(), access, self.stage2.as_ref())?;
                (ipa, el1, el0, Some(leaf))
            }
            None => (IntermPhysAddr::new(va.raw()), Perms::ALL, Perms::ALL, None),
        };
        let (pa, s2_perms, s2_leaf) = match &self.stage2 {
            Some(s2) => {
                let t = s2.translate(mem, ipa, access)?;
                (t.pa, t.perms, Some(t.leaf))
            }
            None => (PhysAddr::new(ipa.raw()), Perms::ALL, None),
        };
        Ok(Translation {
            va,
            ipa,
            pa,
            el1: s1_el1.and(s2_perms),
            el0: s1_el0.and(s2_perms),
            stage1: s1_leaf,
            stage2: s2_leaf,
        })
    }

    /// Reads `buf.len()` bytes at `va`, translating each page separately.
    pub fn read_virt<M: GuestMemory + ?Sized>(
        &self,
        mem: &M,
        va: GuestVirtAddr,
        buf: &mut [u8],
        access: Access,
    ) -> Result<(), AccessError> {
        let len = buf.len();
        self.pieces(&mut &*mem, va, len, access, |m, pa, range| m.read(pa, &mut buf[range]))
    }

    /// Writes `data` at `va`, translating each page separately.
    ///
    /// With [`Access::Inspect`] no permission is checked: this is how the
    /// hypervisor patches read-only guest code.
    pub fn write_virt<M: GuestMemory + ?Sized>(
        &self,
        mem: &mut M,
        va: GuestVirtAddr,
        data: &[u8],
        access: Access,
    ) -> Result<(), AccessError> {
        self.pieces(mem, va, data.len(), access, |m, pa, range| m.write(pa, &data[range]))
    }

    /// Splits `[va, va + len)` into pieces that map contiguously and runs `f`
    /// on each with its physical address and its range in the buffer.
    fn pieces<M: GuestMemory + ?Sized>(
        &self,
        mem: &mut M,
        va: GuestVirtAddr,
        len: usize,
        access: Access,
        mut f: impl FnMut(&mut M, PhysAddr, core::ops::Range<usize>) -> Result<(), MemError>,
    ) -> Result<(), AccessError> {
        let mut done = 0usize;
        while done < len {
            let cur = va.checked_add(done as u64).ok_or(AccessError::Wrap(va))?;
            let t = self.translate(&*mem, cur, access).map_err(AccessError::Fault)?;
            let n = (t.contiguous_len().min((len - done) as u64)) as usize;
            f(mem, t.pa, done..done + n).map_err(|error| AccessError::Memory {
                va: cur,
                completed: done,
                error,
            })?;
            done += n;
        }
        Ok(())
    }

    /// Reads a little-endian `u64` at `va`.
    pub fn read_u64<M: GuestMemory + ?Sized>(&self, mem: &M, va: GuestVirtAddr) -> Result<u64, AccessError> {
        let mut b = [0u8; 8];
        self.read_virt(mem, va, &mut b, Access::Inspect)?;
        Ok(u64::from_le_bytes(b))
    }
}
