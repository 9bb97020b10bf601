//! The physical GICv3, owned by the hypervisor: distributor and
//! redistributor bring-up, the EL2 CPU interface, and virtual interrupt
//! injection through list registers.

use crate::arch::Mmio;
use crate::{read_sysreg, write_sysreg};
use hyp_core::gicv3::{self, gicd, gicr};

pub const GICD: Mmio = Mmio(0x0800_0000);
pub const GICR: Mmio = Mmio(0x080A_0000);

/// The SGI one core sends another to raise a virtual interrupt there.
pub const DOORBELL_SGI: u32 = 8;
/// The SGI that asks a core to run a probe request (`probe::serve_mailbox`).
pub const REQUEST_SGI: u32 = 9;
/// Priority of injected virtual interrupts.
const VIRQ_PRIORITY: u8 = 0xa0;
const SPURIOUS: u32 = 1023;

pub fn redistributor(cpu: usize) -> Mmio {
    GICR.offset(cpu as u64 * gicr::STRIDE)
}

/// Distributor bring-up (boot core, once): affinity routing, group 1 enabled;
/// every SPI in group 1 with a default priority, disabled until a VM enables it.
pub fn init_distributor() {
    GICD.offset(gicd::CTLR).write32(0);
    wait_rwp(GICD);
    let lines = ((GICD.offset(gicd::TYPER).read32() & gicd::TYPER_IT_LINES) + 1) * 32;
    for n in (32..lines).step_by(32) {
        GICD.offset(gicd::IGROUPR + u64::from(n / 8)).write32(!0); // group 1
        GICD.offset(gicd::ICENABLER + u64::from(n / 8)).write32(!0);
    }
    for n in (32..lines).step_by(4) {
        GICD.offset(gicd::IPRIORITYR + u64::from(n)).write32(0xa0a0_a0a0);
    }
    GICD.offset(gicd::CTLR).write32(gicd::CTLR_ARE | gicd::CTLR_ENABLE_GRP1);
    wait_rwp(GICD);
}

/// Waits for a CTLR write to take effect (GICD_CTLR.RWP).
fn wait_rwp(base: Mmio) {
    while base.offset(gicd::CTLR).read32() & gicd::CTLR_RWP != 0 {
        core::hint::spin_loop();
    }
}

/// This core's redistributor and EL2 CPU interface; enables the doorbell SGI
/// and the virtual CPU interface.
pub fn init_cpu(cpu: usize) {
    let rd = redistributor(cpu);
    let waker = rd.offset(gicr::WAKER);
    waker.write32(waker.read32() & !gicr::WAKER_PROCESSOR_SLEEP);
    while waker.read32() & gicr::WAKER_CHILDREN_ASLEEP != 0 {
        core::hint::spin_loop();
    }
    rd.offset(gicr::IGROUPR0).write32(!0); // group 1
    rd.offset(gicr::ICENABLER0).write32(!0); // guests enable their PPIs
    for n in (0..32).step_by(4) {
        rd.offset(gicr::IPRIORITYR + n).write32(0xa0a0_a0a0);
    }
    rd.offset(gicr::ISENABLER0)
        .write32((1 << DOORBELL_SGI) | (1 << REQUEST_SGI));
    // ICC_SRE_EL2: system registers at EL2 (SRE) and allow EL1 to use them (Enable).
    write_sysreg!("icc_sre_el2", read_sysreg!("icc_sre_el2") | 0b1001);
    crate::arch::isb();
    write_sysreg!("icc_pmr_el1", 0xff);
    // EOImode = 1: EOIR only drops priority; the guest's EOI deactivates
    // hardware-forwarded interrupts, the hypervisor deactivates its own.
    write_sysreg!("icc_ctlr_el1", read_sysreg!("icc_ctlr_el1") | (1 << 1));
    write_sysreg!("icc_igrpen1_el1", 1);
    // ICH_HCR_EL2.En: the virtual CPU interface is on.
    write_sysreg!("ich_hcr_el2", 1);
    write_sysreg!("ich_vmcr_el2", 0);
    crate::arch::isb();
}

/// Acknowledge the highest-priority pending physical interrupt (group 1).
pub fn acknowledge() -> Option<u32> {
    let intid = crate::arch::acknowledge_group1() as u32 & 0xff_ffff;
    (intid < SPURIOUS - 3).then_some(intid)
}

/// Priority drop (EOImode = 1): the interrupt stays active until deactivated.
pub fn end_of_interrupt(intid: u32) {
    write_sysreg!("icc_eoir1_el1", u64::from(intid));
}

/// Deactivate an interrupt the hypervisor handled itself.
pub fn deactivate(intid: u32) {
    write_sysreg!("icc_dir_el1", u64::from(intid));
}

/// Send SGI `intid` to core `cpu`.
pub fn send_sgi(intid: u32, cpu: usize) {
    crate::arch::dsb_sy();
    write_sysreg!("icc_sgi1r_el1", gicv3::sgi1r(intid, cpu as u8));
    crate::arch::isb();
}

fn read_lr(n: usize) -> u64 {
    match n {
        0 => read_sysreg!("ich_lr0_el2"),
        1 => read_sysreg!("ich_lr1_el2"),
        2 => read_sysreg!("ich_lr2_el2"),
        _ => read_sysreg!("ich_lr3_el2"),
    }
}

fn write_lr(n: usize, v: u64) {
    match n {
        0 => write_sysreg!("ich_lr0_el2", v),
        1 => write_sysreg!("ich_lr1_el2", v),
        2 => write_sysreg!("ich_lr2_el2", v),
        _ => write_sysreg!("ich_lr3_el2", v),
    }
}

/// List registers we use (QEMU's cortex-a72 has 4; ICH_VTR_EL2.ListRegs + 1).
fn list_registers() -> usize {
    ((read_sysreg!("ich_vtr_el2") & 0x1f) as usize + 1).min(4)
}

/// Make `vintid` pending in this core's guest. Returns false when every list
/// register is busy (the caller keeps it pending and retries).
pub fn inject(vintid: u32, pintid: Option<u32>) -> bool {
    let n = list_registers();
    // Already pending (e.g. a coalesced doorbell): nothing to add.
    for i in 0..n {
        let lr = read_lr(i);
        if gicv3::lr_state(lr) & 1 != 0 && gicv3::lr_vintid(lr) == vintid {
            return true;
        }
    }
    for i in 0..n {
        if gicv3::lr_state(read_lr(i)) == 0 {
            write_lr(i, gicv3::list_register(vintid, pintid, VIRQ_PRIORITY));
            return true;
        }
    }
    false
}

/// Physical distributor/redistributor access for the vGIC emulation.
pub fn read_reg(base: Mmio, size: u8) -> u64 {
    match size {
        1 => u64::from(base.read8()),
        8 => base.read64(),
        _ => u64::from(base.read32()),
    }
}

pub fn write_reg(base: Mmio, size: u8, v: u64) {
    match size {
        1 => base.write8(v as u8),
        8 => base.write64(v),
        _ => base.write32(v as u32),
    }
}
