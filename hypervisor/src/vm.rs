//! Building a VM's stage-2 tables from the partition config and entering it
//! on a core.

use crate::arch::exceptions::{enter_guest, TrapFrame};
use crate::{read_sysreg, write_sysreg};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use hyp_core::config::{DeviceAccess, VmConfig};
use hyp_core::regs;
use hyp_core::stage2::{self, Attrs, MapError, TableStore};

const POOL_TABLES: usize = 64;

#[repr(C, align(4096))]
struct Table([AtomicU64; 512]);

/// Stage-2 tables of all VMs; table memory is never freed.
static POOL: [Table; POOL_TABLES] = [const { Table([const { AtomicU64::new(0) }; 512]) }; POOL_TABLES];
static POOL_USED: AtomicUsize = AtomicUsize::new(0);
/// Root table of each VM (index = VM id), 0 until built.
static ROOTS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

/// The table pool, addressed by physical address (the hypervisor's memory is
/// identity mapped).
struct Pool;

impl Pool {
    fn table(pa: u64) -> &'static Table {
        let base = POOL.as_ptr() as u64;
        let i = ((pa - base) / 4096) as usize;
        &POOL[i]
    }
}

impl TableStore for Pool {
    fn alloc(&mut self) -> Option<u64> {
        let i = POOL_USED.fetch_add(1, Ordering::Relaxed);
        (i < POOL_TABLES).then(|| &POOL[i] as *const Table as u64)
    }
    fn read(&self, table: u64, index: usize) -> u64 {
        Pool::table(table).0[index].load(Ordering::Relaxed)
    }
    fn write(&mut self, table: u64, index: usize, desc: u64) {
        Pool::table(table).0[index].store(desc, Ordering::Relaxed)
    }
}

/// Build `vm`'s stage-2 tables (boot core, before the VM's cores start).
pub fn build_stage2(vm: &VmConfig) -> Result<(), MapError> {
    let mut pool = Pool;
    let root = pool.alloc().ok_or(MapError::NoTableMemory)?;
    for r in vm.memory {
        let attrs = if r.shared { Attrs::SharedData } else { Attrs::Ram };
        stage2::map(&mut pool, root, r.ipa, r.pa, r.size, attrs)?;
    }
    for d in vm.devices.iter().filter(|d| d.access == DeviceAccess::Passthrough) {
        stage2::map(&mut pool, root, d.base, d.base, d.size, Attrs::Device)?;
    }
    crate::arch::dsb_sy();
    ROOTS[usize::from(vm.id)].store(root, Ordering::Release);
    Ok(())
}

/// Physical address of a VM's IPA, if the VM's memory maps it (linear regions).
pub fn ipa_to_pa(vm: &VmConfig, ipa: u64, len: u64) -> Option<u64> {
    vm.memory
        .iter()
        .find(|r| ipa >= r.ipa && ipa.checked_add(len).is_some_and(|end| end <= r.ipa + r.size))
        .map(|r| r.pa + (ipa - r.ipa))
}

/// Configure this core for `vm` and enter it at `frame`. Never returns: from
/// now on the core runs the guest and comes back only through traps.
pub fn enter(vm: &'static VmConfig, frame: TrapFrame) -> ! {
    let root = ROOTS[usize::from(vm.id)].load(Ordering::Acquire);
    crate::percpu::this_cpu().vm = Some(vm);
    write_sysreg!("vtcr_el2", stage2::VTCR_EL2);
    // VMID = VM id + 1 (VMID 0 is left unused).
    write_sysreg!("vttbr_el2", stage2::vttbr(vm.id + 1, root));
    crate::arch::isb();
    crate::arch::tlbi_vmalls12e1is();
    // Stage 2 on, physical interrupts to EL2, SMC trapped, EL1 AArch64.
    write_sysreg!("hcr_el2", regs::hcr::GUEST);
    // FP/SIMD not trapped.
    write_sysreg!("cptr_el2", regs::CPTR_EL2_GUEST);
    // Guests may read the physical counter and use the EL1 physical timer.
    write_sysreg!("cnthctl_el2", regs::CNTHCTL_EL2_GUEST);
    // Virtual counter = physical counter: all traces share one time base.
    write_sysreg!("cntvoff_el2", 0);
    write_sysreg!("vpidr_el2", read_sysreg!("midr_el1"));
    write_sysreg!("vmpidr_el2", read_sysreg!("mpidr_el1"));
    // MDCR_EL2.HPMN = all counters to EL1; no debug traps.
    write_sysreg!("mdcr_el2", regs::mdcr_el2_guest(read_sysreg!("pmcr_el0")));
    // Unlock the OS lock (locked at reset) so single-step debug exceptions
    // work for probes; Linux does this itself, a bare RTOS does not.
    write_sysreg!("oslar_el1", 0);
    // SCTLR_EL1: RES1 bits, MMU and caches off (the guest turns them on).
    write_sysreg!("sctlr_el1", regs::SCTLR_EL1_RESET);
    crate::arch::isb();
    crate::info!(
        "CPU{}: entering VM {} ({}) at {:#x}",
        crate::arch::cpu_id(),
        vm.id,
        vm.name,
        frame.elr
    );
    enter_guest(&frame)
}

/// Whether `pa..pa+len` lies in the stage-2 table pool (the walkers read it).
pub fn is_stage2_table(pa: u64, len: usize) -> bool {
    let base = POOL.as_ptr() as u64;
    let end = base + (POOL_TABLES * 4096) as u64;
    pa >= base && pa.checked_add(len as u64).is_some_and(|e| e <= end)
}

/// VMs that were stopped (by id): the probe hypercalls refuse them.
static STOPPED: [AtomicBool; 8] = [const { AtomicBool::new(false) }; 8];

/// Whether VM `id` was stopped.
pub fn is_stopped(id: u8) -> bool {
    STOPPED.get(usize::from(id)).is_some_and(|s| s.load(Ordering::Acquire))
}

/// A guest did something the partition forbids: say so and stop that VM's
/// core. The other VMs (and the hypervisor) keep running.
pub fn stop_vm(vm: &VmConfig, frame: &TrapFrame, why: core::fmt::Arguments) -> ! {
    if let Some(s) = STOPPED.get(usize::from(vm.id)) {
        s.store(true, Ordering::Release);
    }
    crate::trace::vm_stopped(vm.id, frame.elr);
    crate::error!(
        "VM {} ({}) on CPU{}: {} at pc {:#x}; VM stopped",
        vm.id,
        vm.name,
        crate::arch::cpu_id(),
        why,
        frame.elr
    );
    crate::arch::halt()
}
