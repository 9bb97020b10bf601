//! GICv3 encodings the hypervisor needs: the distributor's and
//! redistributors' register layout (shared by the hypervisor's bring-up in
//! `gic.rs` and the policy of what a VM may touch in `vgic`), list registers
//! and SGI generation. Offsets are from the GICv3 architecture specification
//! (IHI 0069).

/// Distributor registers: offsets from GICD_base, and fields.
pub mod gicd {
    pub const CTLR: u64 = 0x0000;
    pub const TYPER: u64 = 0x0004;
    pub const IIDR: u64 = 0x0008;
    pub const TYPER2: u64 = 0x000C;
    /// One bit per INTID (group).
    pub const IGROUPR: u64 = 0x0080;
    pub const IGROUPR_LAST: u64 = 0x00FC;
    /// Set/clear-enable, set/clear-pending, set/clear-active: one bit per
    /// INTID each, back to back.
    pub const ISENABLER: u64 = 0x0100;
    pub const ICENABLER: u64 = 0x0180;
    pub const ICACTIVER_LAST: u64 = 0x03FC;
    /// One byte per INTID.
    pub const IPRIORITYR: u64 = 0x0400;
    pub const IPRIORITYR_LAST: u64 = 0x07F8;
    /// Two bits per INTID (edge/level).
    pub const ICFGR: u64 = 0x0C00;
    pub const ICFGR_LAST: u64 = 0x0CFC;
    /// One bit per INTID (group modifier).
    pub const IGRPMODR: u64 = 0x0D00;
    pub const IGRPMODR_LAST: u64 = 0x0D7C;
    /// One doubleword per INTID; the first SPI's (INTID 32) is at 0x6100.
    pub const IROUTER: u64 = 0x6000;
    pub const IROUTER_FIRST_SPI: u64 = 0x6100;
    pub const IROUTER_LAST: u64 = 0x7FD8;
    /// Peripheral and component identification.
    pub const ID_REGS: u64 = 0xFFD0;
    pub const ID_REGS_LAST: u64 = 0xFFFC;

    /// GICD_CTLR.RWP: a register write is still in progress.
    pub const CTLR_RWP: u32 = 1 << 31;
    /// GICD_CTLR.ARE_NS: affinity routing.
    pub const CTLR_ARE: u32 = 1 << 4;
    /// GICD_CTLR.EnableGrp1A.
    pub const CTLR_ENABLE_GRP1: u32 = 1 << 1;
    /// GICD_TYPER.ITLinesNumber: (field + 1) * 32 interrupt lines.
    pub const TYPER_IT_LINES: u32 = 0x1f;
}

/// Redistributor registers: offsets from a core's RD_base, and fields.
pub mod gicr {
    /// One redistributor: its RD_base frame, then its SGI_base frame.
    pub const STRIDE: u64 = 0x2_0000;
    pub const CTLR: u64 = 0x0000;
    pub const IIDR: u64 = 0x0004;
    pub const TYPER: u64 = 0x0008;
    pub const TYPER_HIGH: u64 = 0x000C;
    pub const WAKER: u64 = 0x0014;
    pub const ID_REGS: u64 = 0xFFD0;
    pub const ID_REGS_LAST: u64 = 0xFFFC;
    /// GICR_TYPER.Last: the last redistributor of the series.
    pub const TYPER_LAST: u64 = 1 << 4;
    /// GICR_WAKER.ProcessorSleep.
    pub const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
    /// GICR_WAKER.ChildrenAsleep.
    pub const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;

    /// The SGI_base frame: SGIs and PPIs of the core (offsets from RD_base).
    pub const SGI_BASE: u64 = 0x1_0000;
    pub const IGROUPR0: u64 = SGI_BASE + 0x0080;
    pub const ISENABLER0: u64 = SGI_BASE + 0x0100;
    pub const ICENABLER0: u64 = SGI_BASE + 0x0180;
    pub const ICACTIVER0: u64 = SGI_BASE + 0x0380;
    pub const IPRIORITYR: u64 = SGI_BASE + 0x0400;
    pub const IPRIORITYR_LAST: u64 = SGI_BASE + 0x041C;
    pub const ICFGR1: u64 = SGI_BASE + 0x0C04;
    pub const IGRPMODR0: u64 = SGI_BASE + 0x0D00;
}

/// A list register value making `vintid` pending in the guest. With a
/// physical INTID the guest's EOI also deactivates the physical interrupt
/// (HW = 1); without one the interrupt is purely virtual.
pub fn list_register(vintid: u32, pintid: Option<u32>, priority: u8) -> u64 {
    let pending = 1u64 << 62;
    let group1 = 1u64 << 60;
    let hw = match pintid {
        Some(p) => (1u64 << 61) | (u64::from(p & 0x1fff) << 32),
        None => 0,
    };
    pending | group1 | hw | (u64::from(priority) << 48) | u64::from(vintid)
}

/// State field of a list register: 0 = free.
pub fn lr_state(lr: u64) -> u8 {
    (lr >> 62) as u8
}

pub fn lr_vintid(lr: u64) -> u32 {
    lr as u32
}

/// ICC_SGI1R_EL1 value sending SGI `intid` to core `aff0` of cluster 0.
pub fn sgi1r(intid: u32, aff0: u8) -> u64 {
    (u64::from(intid & 0xf) << 24) | (1u64 << (aff0 & 0xf))
}

/// The cores (Aff0, cluster 0 only) and INTID an ICC_SGI1R_EL1 write names.
/// `all_others`: IRM = 1.
pub fn decode_sgi1r(value: u64) -> (u32, u16, bool) {
    let intid = ((value >> 24) & 0xf) as u32;
    let targets = (value & 0xffff) as u16;
    let irm = value & (1 << 40) != 0;
    let cluster = (value >> 16) & 0xff | ((value >> 32) & 0xff) << 8 | ((value >> 48) & 0xff) << 16;
    let targets = if cluster == 0 { targets } else { 0 };
    (intid, targets, irm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_register_fields() {
        let lr = list_register(27, Some(27), 0xa0);
        assert_eq!(lr_state(lr), 1);
        assert_eq!(lr_vintid(lr), 27);
        assert_eq!((lr >> 61) & 1, 1);
        assert_eq!((lr >> 32) & 0x1fff, 27);
        assert_eq!((lr >> 48) & 0xff, 0xa0);
        let v = list_register(112, None, 0x80);
        assert_eq!((v >> 61) & 1, 0);
        assert_eq!((v >> 60) & 1, 1, "group 1");
    }

    #[test]
    fn sgi_encoding_round_trips() {
        let v = sgi1r(8, 0);
        assert_eq!(decode_sgi1r(v), (8, 1, false));
        assert_eq!(decode_sgi1r(sgi1r(3, 2)), (3, 4, false));
        // Another cluster: no core of ours.
        assert_eq!(decode_sgi1r((1 << 16) | (3 << 24) | 1).1, 0);
    }
}
