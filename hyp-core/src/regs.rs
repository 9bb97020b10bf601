//! The hypervisor's own system registers, with named fields: the exception
//! syndrome it decodes on every trap, and the control values it programs
//! (HCR_EL2, CPTR_EL2, CNTHCTL_EL2, MDCR_EL2, its own EL2 translation regime,
//! a guest's reset SCTLR_EL1). Bit positions are from the Arm Architecture
//! Reference Manual (DDI 0487); the guest's translation registers (TCR_EL1,
//! TTBRs, descriptors) are `guest_probe::regs`'.

/// ESR_EL2: why the hypervisor was entered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Esr(pub u64);

/// ESR_EL2.EC, the exception classes the hypervisor handles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExceptionClass {
    /// A trapped WFI or WFE.
    Wfx,
    /// `HVC` from AArch64 (a hypercall, or a probe's patched `HVC`).
    Hvc64,
    /// `SMC` from AArch64 (trapped by HCR_EL2.TSC: PSCI).
    Smc64,
    /// A trapped MSR, MRS or system instruction.
    SysReg,
    /// An instruction abort from a lower EL (a stage-2 fault on fetch).
    InstructionAbortLower,
    /// A data abort from a lower EL (a stage-2 fault: MMIO or a stray access).
    DataAbortLower,
    /// A software step completed at a lower EL.
    SoftwareStepLower,
    /// Anything else: the raw EC.
    Other(u8),
}

impl ExceptionClass {
    /// The class of raw EC `ec`.
    pub const fn from_raw(ec: u8) -> Self {
        match ec {
            0x01 => Self::Wfx,
            0x16 => Self::Hvc64,
            0x17 => Self::Smc64,
            0x18 => Self::SysReg,
            0x20 => Self::InstructionAbortLower,
            0x24 => Self::DataAbortLower,
            0x32 => Self::SoftwareStepLower,
            other => Self::Other(other),
        }
    }

    /// The raw EC.
    pub const fn raw(self) -> u8 {
        match self {
            Self::Wfx => 0x01,
            Self::Hvc64 => 0x16,
            Self::Smc64 => 0x17,
            Self::SysReg => 0x18,
            Self::InstructionAbortLower => 0x20,
            Self::DataAbortLower => 0x24,
            Self::SoftwareStepLower => 0x32,
            Self::Other(ec) => ec,
        }
    }
}

impl Esr {
    /// EC (bits 31:26).
    #[inline(always)]
    pub const fn class(self) -> ExceptionClass {
        ExceptionClass::from_raw(((self.0 >> 26) & 0x3f) as u8)
    }

    /// IL (bit 25): a 32-bit instruction trapped.
    pub const fn il(self) -> bool {
        self.0 & (1 << 25) != 0
    }

    /// ISS (bits 24:0).
    pub const fn iss(self) -> u32 {
        (self.0 & 0x1ff_ffff) as u32
    }

    /// The immediate of a trapped `HVC`/`SMC` (ISS bits 15:0).
    #[inline(always)]
    pub const fn imm16(self) -> u16 {
        self.0 as u16
    }
}

/// The ISS of a trapped MSR/MRS (EC 0x18): which system register, which
/// general register, and the direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SysRegAccess {
    pub op0: u8,
    pub op1: u8,
    pub crn: u8,
    pub crm: u8,
    pub op2: u8,
    /// The general register (31: XZR).
    pub rt: u8,
    /// MRS (a read) rather than MSR.
    pub read: bool,
}

impl SysRegAccess {
    /// ICC_SGI1R_EL1 (S3_0_C12_C11_5): an EL1 SGI, trapped with HCR_EL2.IMO.
    pub const ICC_SGI1R_EL1: (u8, u8, u8, u8, u8) = (3, 0, 12, 11, 5);

    /// Decodes the ISS of `esr`.
    pub const fn decode(esr: Esr) -> Self {
        let iss = esr.iss();
        SysRegAccess {
            op0: ((iss >> 20) & 0x3) as u8,
            op2: ((iss >> 17) & 0x7) as u8,
            op1: ((iss >> 14) & 0x7) as u8,
            crn: ((iss >> 10) & 0xf) as u8,
            rt: ((iss >> 5) & 0x1f) as u8,
            crm: ((iss >> 1) & 0xf) as u8,
            read: iss & 1 != 0,
        }
    }

    /// The register as (op0, op1, CRn, CRm, op2).
    pub const fn register(&self) -> (u8, u8, u8, u8, u8) {
        (self.op0, self.op1, self.crn, self.crm, self.op2)
    }
}

/// HCR_EL2 fields the hypervisor sets for its guests.
pub mod hcr {
    /// Stage 2 translation on.
    pub const VM: u64 = 1 << 0;
    /// Set/way invalidation upgraded to clean-and-invalidate.
    pub const SWIO: u64 = 1 << 1;
    /// Physical FIQs, IRQs and SErrors taken to EL2.
    pub const FMO: u64 = 1 << 3;
    pub const IMO: u64 = 1 << 4;
    pub const AMO: u64 = 1 << 5;
    /// TLB maintenance broadcast within the inner shareable domain.
    pub const FB: u64 = 1 << 9;
    /// Barriers upgraded to inner shareable (BSU = 0b01).
    pub const BSU_INNER: u64 = 1 << 10;
    /// `SMC` trapped (the guests' PSCI calls come here).
    pub const TSC: u64 = 1 << 19;
    /// EL1 is AArch64.
    pub const RW: u64 = 1 << 31;

    /// What every VM runs with.
    pub const GUEST: u64 = VM | SWIO | FMO | IMO | AMO | FB | BSU_INNER | TSC | RW;
}

/// CPTR_EL2 (HCR_EL2.E2H = 0): bits 13:12, 9 and 7:0 are RES1, and bit 8 (TZ)
/// is RES1 without SVE (set, it would trap SVE). TFP (bit 10) clear: FP and
/// SIMD are not trapped.
pub const CPTR_EL2_GUEST: u64 = 0b11 << 12 | 1 << 9 | 1 << 8 | 0xff;

/// CNTHCTL_EL2: EL1PCTEN and EL1PCEN, guests read the physical counter and
/// use the EL1 physical timer.
pub const CNTHCTL_EL2_GUEST: u64 = 0b11;

/// MDCR_EL2 for guests: HPMN = PMCR_EL0.N (every event counter to EL1), no
/// debug traps.
pub const fn mdcr_el2_guest(pmcr_el0: u64) -> u64 {
    (pmcr_el0 >> 11) & 0x1f
}

/// SCTLR_EL1 a VM starts with: its RES1 bits (29:28, 23:22, 20, 11), MMU and
/// caches off (the guest turns them on).
pub const SCTLR_EL1_RESET: u64 = 0b11 << 28 | 0b11 << 22 | 1 << 20 | 1 << 11;

/// The hypervisor's own EL2 translation regime: an identity map of 1 GiB
/// blocks.
pub mod el2 {
    /// MAIR_EL2 attribute index of device memory (Device-nGnRE).
    pub const ATTR_DEVICE: u64 = 0;
    /// MAIR_EL2 attribute index of normal memory (write-back, RW-allocate).
    pub const ATTR_NORMAL: u64 = 1;
    /// MAIR_EL2: index 0 Device-nGnRE (0x04), index 1 Normal WB RW-allocate (0xff).
    pub const MAIR: u64 = 0x04 << (8 * ATTR_DEVICE) | 0xff << (8 * ATTR_NORMAL);

    /// TCR_EL2: T0SZ = 25 (39-bit VA, walks start at level 1), walks inner
    /// and outer write-back (IRGN0, ORGN0), inner shareable (SH0), 4K granule
    /// (TG0 = 0), PS = 40 bits, RES1 bits 31 and 23.
    pub const TCR: u64 = 25 | 1 << 8 | 1 << 10 | 0b11 << 12 | 0b010 << 16 | 1 << 23 | 1 << 31;

    /// SCTLR_EL2: MMU (M), data cache (C), SP alignment check (SA),
    /// instruction cache (I), and its RES1 bits (29:28, 23:22, 18, 16, 11, 5:4).
    pub const SCTLR: u64 = M | C | SA | I | RES1;
    const M: u64 = 1 << 0;
    const C: u64 = 1 << 2;
    const SA: u64 = 1 << 3;
    const I: u64 = 1 << 12;
    const RES1: u64 = 0b11 << 28 | 0b11 << 22 | 1 << 18 | 1 << 16 | 1 << 11 | 0b11 << 4;

    /// Block descriptor fields of its level-1 table.
    pub const BLOCK: u64 = 0b01;
    /// Access flag.
    pub const AF: u64 = 1 << 10;
    /// Inner shareable.
    pub const SH_INNER: u64 = 0b11 << 8;
    /// Execute never.
    pub const XN: u64 = 1 << 54;
    /// AttrIndx (bits 4:2).
    pub const fn attr_index(index: u64) -> u64 {
        index << 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_named_values_are_the_ones_the_hypervisor_always_wrote() {
        // The literals these names replaced.
        assert_eq!(
            hcr::GUEST,
            1 | (1 << 1) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 9) | (1 << 10) | (1 << 19) | (1 << 31)
        );
        assert_eq!(CPTR_EL2_GUEST, 0x33ff);
        assert_eq!(SCTLR_EL1_RESET, 0x30d0_0800);
        assert_eq!(el2::MAIR, 0x04 | (0xff << 8));
        assert_eq!(el2::SCTLR, 0x30c5_0830 | 1 | (1 << 2) | (1 << 3) | (1 << 12));
        assert_eq!(el2::attr_index(el2::ATTR_NORMAL), 1 << 2);
        assert_eq!(mdcr_el2_guest(0x4104_3000 | (6 << 11)), 6);
    }

    #[test]
    fn exception_classes_round_trip() {
        for ec in 0..64u8 {
            assert_eq!(ExceptionClass::from_raw(ec).raw(), ec);
        }
        assert_eq!(ExceptionClass::from_raw(0x16), ExceptionClass::Hvc64);
        assert_eq!(ExceptionClass::from_raw(0x3c), ExceptionClass::Other(0x3c));
    }

    #[test]
    fn a_trapped_sgi_write_decodes() {
        // MSR ICC_SGI1R_EL1, X3: op0 3, op2 5, op1 0, CRn 12, Rt 3, CRm 11, write.
        let iss = 3 << 20 | 5 << 17 | 12 << 10 | 3 << 5 | 11 << 1;
        let a = SysRegAccess::decode(Esr(0x18 << 26 | 1 << 25 | iss));
        assert_eq!(a.register(), SysRegAccess::ICC_SGI1R_EL1);
        assert_eq!((a.rt, a.read), (3, false));
        let r = SysRegAccess::decode(Esr(0x18 << 26 | iss | 1));
        assert!(r.read);
    }

    #[test]
    fn esr_fields() {
        // HVC #0x8005 from AArch64.
        let e = Esr(0x16 << 26 | 1 << 25 | 0x8005);
        assert_eq!(e.class(), ExceptionClass::Hvc64);
        assert!(e.il());
        assert_eq!((e.imm16(), e.iss()), (0x8005, 0x8005));
        // A data abort with ISV and a 4-byte write.
        let d = Esr(0x24 << 26 | 1 << 25 | 1 << 24 | 2 << 22 | 1 << 6);
        assert_eq!(d.class(), ExceptionClass::DataAbortLower);
        assert_eq!(d.iss() >> 24, 1);
    }
}
