//! Which GICv3 distributor and redistributor registers a VM may see and
//! change. The hypervisor owns the physical GIC; a VM's accesses trap and are
//! applied to the physical registers only for the interrupts and cores it owns,
//! so Linux cannot reconfigure the RTOS's interrupts or cores (and vice versa).

use crate::config::VmConfig;
use crate::gicv3::{gicd, gicr};

/// SGIs the hypervisor keeps for itself (cross-core doorbells); guests use 0-7.
pub const HYP_SGIS: core::ops::Range<u32> = 8..16;
/// Distributor features hidden from guests: LPIS (bit 17) — no ITS/LPIs.
const GICD_TYPER_HIDE: u64 = 1 << 17;
/// Redistributor features hidden: PLPIS (0), VLPIS (1), DirectLPI (3).
const GICR_TYPER_HIDE: u64 = (1 << 0) | (1 << 1) | (1 << 3);

/// How to carry out one trapped access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Access the physical register at the same offset: reads return
    /// `value & read_mask`; writes change only `write_mask` bits — set/clear
    /// registers get `value & write_mask`, plain registers (`rmw`) are merged
    /// so the other bits keep their physical value.
    Physical { read_mask: u64, write_mask: u64, rmw: bool },
    /// Reads return 0, writes are ignored (a register the VM may not use).
    Ignore,
}

impl Decision {
    fn rw(mask: u64, rmw: bool) -> Self {
        Decision::Physical {
            read_mask: mask,
            write_mask: mask,
            rmw,
        }
    }
    fn read_only(mask: u64) -> Self {
        Decision::Physical {
            read_mask: mask,
            write_mask: 0,
            rmw: true,
        }
    }
    /// Bits a read may return.
    pub fn read_mask(self) -> u64 {
        match self {
            Decision::Physical { read_mask, .. } => read_mask,
            Decision::Ignore => 0,
        }
    }
    /// Bits a write may change.
    pub fn write_mask(self) -> u64 {
        match self {
            Decision::Physical { write_mask, .. } => write_mask,
            Decision::Ignore => 0,
        }
    }
}

/// One bit per INTID registers (IGROUPR, ISENABLER, …): which INTIDs of the
/// 32 covered by the register at `offset` (from the array's base) are `owned`.
fn bit_per_intid(rel: u64, owned: impl Fn(u32, u32) -> u32, bits_per: u32) -> u64 {
    let per_reg = 32 / bits_per;
    let first = (rel / 4) as u32 * per_reg;
    let bits = owned(first, per_reg);
    if bits_per == 1 {
        return u64::from(bits);
    }
    let mut mask = 0u64;
    for i in 0..per_reg {
        if bits >> i & 1 == 1 {
            mask |= ((1u64 << bits_per) - 1) << (i * bits_per);
        }
    }
    mask
}

/// Which of the `count` INTIDs from `first` (a multiple of `count`, which
/// divides 32) `vm` owns, as bits: its SPIs, plus `extra`.
fn owned_spis(vm: &VmConfig, first: u32, count: u32, extra: Option<u32>) -> u32 {
    let mut bits = if first >= 32 {
        vm.spis.word(first / 32) >> (first % 32)
    } else {
        0
    };
    if count < 32 {
        bits &= (1 << count) - 1;
    }
    if let Some(x) = extra.filter(|&x| x >= 32 && x >= first && x - first < count) {
        bits |= 1 << (x - first);
    }
    bits
}

/// Does `vm` own shared interrupt `intid` (≥ 32)? `extra` is a virtual-only
/// INTID the VM may configure (the hvtrace doorbell).
pub fn owns_spi(vm: &VmConfig, intid: u32, extra: Option<u32>) -> bool {
    intid >= 32 && (vm.spis.contains(intid) || extra == Some(intid))
}

/// A distributor access at `offset` of `size` bytes by `vm`.
pub fn distributor(vm: &VmConfig, offset: u64, size: u8, extra: Option<u32>) -> Decision {
    let owned = |intid: u32| owns_spi(vm, intid, extra);
    let owned_bits = |first: u32, count: u32| owned_spis(vm, first, count, extra);
    let word = |d: Decision| if size == 4 { d } else { Decision::Ignore };
    match offset {
        // CTLR: visible, but the hypervisor keeps the groups enabled.
        gicd::CTLR => word(Decision::read_only(0xffff_ffff)),
        gicd::TYPER => word(Decision::read_only(0xffff_ffff & !GICD_TYPER_HIDE)),
        gicd::IIDR | gicd::TYPER2 => word(Decision::read_only(0xffff_ffff)),
        gicd::IGROUPR..=gicd::IGROUPR_LAST | gicd::IGRPMODR..=gicd::IGRPMODR_LAST => {
            word(Decision::rw(bit_per_intid(offset & 0x7f, owned_bits, 1), true))
        }
        gicd::ISENABLER..=gicd::ICACTIVER_LAST => {
            word(Decision::rw(bit_per_intid(offset & 0x7f, owned_bits, 1), false))
        }
        gicd::IPRIORITYR..=gicd::IPRIORITYR_LAST => {
            let first = (offset - gicd::IPRIORITYR) as u32;
            match size {
                1 if owned(first) => Decision::rw(0xff, true),
                4 => Decision::rw(bit_per_intid(first as u64, owned_bits, 8), true),
                _ => Decision::Ignore,
            }
        }
        gicd::ICFGR..=gicd::ICFGR_LAST => word(Decision::rw(bit_per_intid(offset - gicd::ICFGR, owned_bits, 2), true)),
        gicd::IROUTER_FIRST_SPI..=gicd::IROUTER_LAST if size == 8 && owned(((offset - gicd::IROUTER) / 8) as u32) => {
            Decision::rw(u64::MAX, true)
        }
        gicd::ID_REGS..=gicd::ID_REGS_LAST => word(Decision::read_only(0xffff_ffff)),
        _ => Decision::Ignore,
    }
}

/// A redistributor access at `offset` from the first frame by `vm`.
pub fn redistributor(vm: &VmConfig, offset: u64, size: u8) -> Decision {
    let frame = (offset / gicr::STRIDE) as u8;
    let own = vm.cpus.contains(&frame);
    let reg = offset % gicr::STRIDE;
    match (reg, size) {
        // Identification, needed to find one's own frame: readable everywhere.
        (gicr::TYPER, 8) => Decision::read_only(!GICR_TYPER_HIDE),
        (gicr::TYPER, 4) => Decision::read_only(0xffff_ffff & !GICR_TYPER_HIDE),
        (gicr::TYPER_HIGH, 4) => Decision::read_only(0xffff_ffff),
        (gicr::CTLR | gicr::IIDR, 4) | (gicr::ID_REGS..=gicr::ID_REGS_LAST, 4) => Decision::read_only(0xffff_ffff),
        _ if !own => Decision::Ignore,
        // WAKER: ProcessorSleep (bit 1) of one's own core.
        (gicr::WAKER, 4) => Decision::rw(
            u64::from(gicr::WAKER_PROCESSOR_SLEEP | gicr::WAKER_CHILDREN_ASLEEP),
            true,
        ),
        // SGI_base frame: PPIs and guest SGIs; the hypervisor's SGIs are masked.
        (r, 4) if (gicr::IGROUPR0..=gicr::ICACTIVER0).contains(&r) && r % 0x80 == 0 => {
            Decision::rw(guest_private_mask(1), r == gicr::IGROUPR0)
        }
        (gicr::IGRPMODR0, 4) => Decision::rw(guest_private_mask(1), true),
        (r, 4) if (gicr::IPRIORITYR..=gicr::IPRIORITYR_LAST).contains(&r) => {
            let first = (r - gicr::IPRIORITYR) as u32;
            let mut mask = 0;
            for i in 0..4 {
                if !HYP_SGIS.contains(&(first + i)) {
                    mask |= 0xff << (8 * i);
                }
            }
            Decision::rw(mask, true)
        }
        (r, 1)
            if (gicr::IPRIORITYR..=gicr::IPRIORITYR_LAST + 3).contains(&r)
                && !HYP_SGIS.contains(&((r - gicr::IPRIORITYR) as u32)) =>
        {
            Decision::rw(0xff, true)
        }
        (gicr::ICFGR1, 4) => Decision::rw(0xffff_ffff, true),
        _ => Decision::Ignore,
    }
}

fn guest_private_mask(bits_per: u32) -> u64 {
    let guest = |first: u32, count: u32| {
        let mut bits = u32::MAX >> (32 - count);
        for sgi in HYP_SGIS.filter(|&sgi| sgi >= first && sgi - first < count) {
            bits &= !(1 << (sgi - first));
        }
        bits
    };
    bit_per_intid(0, guest, bits_per)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TWO_CORE;

    fn linux() -> &'static VmConfig {
        TWO_CORE.vm(0).unwrap()
    }
    fn rtos() -> &'static VmConfig {
        TWO_CORE.vm(1).unwrap()
    }

    /// The masks, INTID by INTID, as the GICv3 spec lays the registers out.
    fn reference_mask(vm: &VmConfig, offset: u64, extra: Option<u32>) -> Option<u64> {
        let (base, bits_per) = match offset {
            0x0080..=0x00FC => (0x0080, 1),
            0x0100..=0x03FC => (0x0100 + (offset - 0x100) / 0x80 * 0x80, 1),
            0x0400..=0x07F8 => (0x0400, 8),
            0x0C00..=0x0CFC => (0x0C00, 2),
            _ => return None,
        };
        let per_reg = 32 / bits_per;
        let first = ((offset - base) / 4) as u32 * per_reg;
        let mut mask = 0u64;
        for i in 0..per_reg {
            if owns_spi(vm, first + i, extra) {
                mask |= ((1u64 << bits_per) - 1) << (i * bits_per);
            }
        }
        Some(mask)
    }

    #[test]
    fn word_masks_match_intid_by_intid_ownership() {
        use crate::config::{FOUR_CORE, TWO_CORE};
        for vm in TWO_CORE.vms.iter().chain(FOUR_CORE.vms.iter()) {
            for extra in [None, Some(112), Some(40)] {
                for offset in (0x0080..0x0D00).step_by(4) {
                    let Some(want) = reference_mask(vm, offset, extra) else {
                        continue;
                    };
                    let got = match distributor(vm, offset, 4, extra) {
                        Decision::Physical { write_mask, .. } => write_mask,
                        Decision::Ignore => 0,
                    };
                    assert_eq!(got, want, "{} offset {offset:#x} extra {extra:?}", vm.name);
                }
            }
        }
    }

    #[test]
    fn linux_enables_only_its_own_spis() {
        // ISENABLER1 covers INTIDs 32..64: Linux owns 33, 34 and 48..64.
        let d = distributor(linux(), 0x104, 4, Some(112));
        let expect = (1 << 1) | (1 << 2) | (0xffff << 16);
        assert_eq!(d.write_mask(), expect);
        assert_eq!(d, Decision::rw(expect, false));
        // ISENABLER3 covers 96..128: only the hvtrace doorbell 112.
        assert_eq!(distributor(linux(), 0x10C, 4, Some(112)).write_mask(), 1 << 16);
        // The RTOS owns no SPIs at all.
        assert_eq!(distributor(rtos(), 0x104, 4, None).write_mask(), 0);
    }

    #[test]
    fn priorities_and_routing_per_interrupt() {
        assert_eq!(distributor(linux(), 0x400 + 33, 1, None), Decision::rw(0xff, true));
        assert_eq!(distributor(linux(), 0x400 + 35, 1, None), Decision::Ignore);
        assert_eq!(distributor(linux(), 0x400 + 32, 4, None).write_mask(), 0x00ff_ff00);
        assert_eq!(distributor(linux(), 0x6000 + 8 * 33, 8, None).write_mask(), u64::MAX);
        assert_eq!(distributor(rtos(), 0x6000 + 8 * 33, 8, None), Decision::Ignore);
    }

    #[test]
    fn control_and_id_registers_are_read_only_and_lpis_hidden() {
        let ctlr = distributor(linux(), 0, 4, None);
        assert_eq!(ctlr.write_mask(), 0);
        assert_eq!(ctlr.read_mask(), 0xffff_ffff);
        assert_eq!(distributor(linux(), 4, 4, None).read_mask() & (1 << 17), 0);
    }

    #[test]
    fn redistributors_are_per_core() {
        // Everyone may read every frame's TYPER to find their own.
        let t = redistributor(rtos(), 0x8, 8);
        assert_eq!(t.write_mask(), 0);
        assert_eq!(t.read_mask() & 1, 0, "PLPIS hidden");
        assert_ne!(t.read_mask() >> 32, 0, "affinity visible");
        // The RTOS (CPU1) may wake and enable PPIs in frame 1 only.
        assert_eq!(redistributor(rtos(), gicr::STRIDE + 0x14, 4).write_mask(), 0b110);
        assert_eq!(redistributor(rtos(), 0x14, 4), Decision::Ignore);
        let en = redistributor(rtos(), gicr::STRIDE + 0x1_0100, 4);
        assert_eq!(en.write_mask() & (1 << 27), 1 << 27, "the virtual timer PPI");
        assert_eq!(en.write_mask() & 0xff00, 0, "the hypervisor's SGIs");
        // Linux may not touch the RTOS's core.
        assert_eq!(redistributor(linux(), gicr::STRIDE + 0x1_0100, 4), Decision::Ignore);
    }
}
