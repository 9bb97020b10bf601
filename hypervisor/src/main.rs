//! hv-trace's hypervisor: a minimal AArch64 EL2 hypervisor that statically
//! partitions a QEMU `virt` machine between Linux and a uC/OS-II RTOS and
//! inserts tracepoints into the RTOS at run time.
//!
//! Design principles:
//! - Thin: pure logic (partition, stage-2 tables, trap decoding, GIC and PSCI
//!   policy) lives in the host-tested `hyp-core` crate; page walks, instruction
//!   decoding and OS layouts in `guest-probe`. This crate wires them to the
//!   hardware.
//! - Safe code by default: inline assembly and raw memory access sit in a few
//!   small, documented places (`arch`, `uart`, `guestmem`, `percpu`).
//! - A guest's mistake stops that guest with a log line, never the hypervisor
//!   or the other guest.
#![no_std]
#![no_main]
#![forbid(unsafe_op_in_unsafe_fn)]

mod arch;
mod gic;
mod guestmem;
mod hypercall;
mod log;
mod panic;
mod percpu;
mod probe;
mod psci;
mod sync;
mod trace;
mod trap;
mod uart;
mod vdev;
mod virq;
mod vm;

use arch::exceptions::{self, TrapFrame};
use core::sync::atomic::{AtomicU8, Ordering};
use hyp_core::bootinfo::{self, BootInfo, BootInfoError};
use hyp_core::config::{self, Partition};

/// The hypervisor's version, printed in the banner.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Virtual INTID of the hvtrace doorbell in Linux (SPI 80, unused by QEMU virt).
pub const HVTRACE_INTID: u32 = 112;

/// Cores of this machine (0 until the boot core counted them).
static CORES: AtomicU8 = AtomicU8::new(0);

/// The partition in force (after boot).
pub fn partition() -> &'static Partition {
    config::for_cores(CORES.load(Ordering::Acquire)).expect("the boot core checked the layout")
}

/// Rust entry point of every core, called by `arch` with a stack and (on the
/// boot core) a zeroed BSS.
#[no_mangle]
extern "C" fn hyp_main(cpu: u64, _dtb: u64) -> ! {
    let cpu = cpu as usize;
    if cpu == 0 {
        arch::mmu::build();
    }
    arch::mmu::enable();
    exceptions::install();
    if cpu == 0 {
        boot_core()
    }
    secondary_core(cpu)
}

fn boot_core() -> ! {
    info!(
        "hv-trace hypervisor {} starting at EL{} on CPU0",
        VERSION,
        arch::current_el()
    );
    let info = match read_bootinfo() {
        Ok(info) => info,
        Err(BootInfoError::Missing) => {
            info!("no partition config loaded: nothing to run, powering off");
            psci::system_off();
        }
        Err(e) => {
            error!(
                "boot info at {:#x} is invalid ({e:?}); powering off",
                bootinfo::BOOTINFO_PA
            );
            psci::system_off();
        }
    };
    let cores = count_cores();
    let Some(partition) = config::for_cores(cores) else {
        error!("no partition layout for {cores} cores (use -smp 2 or -smp 4); powering off");
        psci::system_off();
    };
    if let Err(e) = partition.validate(cores) {
        error!("partition {} is invalid: {e:?}; powering off", partition.name);
        psci::system_off();
    }
    info!("{} cores, partition {}", cores, partition.name);
    CORES.store(cores, Ordering::Release);
    let order = (info.flags >> bootinfo::RING_ORDER_SHIFT) & 0xff;
    let capacity = if order == 0 {
        trace::DEFAULT_CAPACITY
    } else {
        1 << order.min(16)
    };
    let linux_cpu = partition
        .vms
        .iter()
        .find(|v| v.kind == config::GuestKind::Linux)
        .map_or(0, |v| v.cpus[0]);
    match trace::init_rings(partition, usize::from(cores), capacity, usize::from(linux_cpu)) {
        Ok(()) => info!(
            "trace rings: {} x {} records at {:#x}",
            cores, capacity, partition.trace_ring.pa
        ),
        Err(e) => error!("trace rings: {e}; tracing unavailable"),
    }
    gic::init_distributor();
    gic::init_cpu(0);
    let mut linux = None;
    for vm in partition.vms {
        let present = match vm.kind {
            config::GuestKind::Linux => info.flags & bootinfo::FLAG_LINUX != 0,
            config::GuestKind::Bare => info.flags & bootinfo::FLAG_RTOS != 0,
        };
        if !present {
            info!("VM {} ({}): no image loaded, not started", vm.id, vm.name);
            continue;
        }
        if let Err(e) = vm::build_stage2(vm) {
            error!("VM {} ({}): stage-2 tables: {e:?}; not started", vm.id, vm.name);
            continue;
        }
        describe(vm);
        let (flag, offset) = match vm.kind {
            config::GuestKind::Linux => (bootinfo::FLAG_LINUX_PROFILE, bootinfo::LINUX_PROFILE_OFFSET),
            config::GuestKind::Bare => (bootinfo::FLAG_RTOS_PROFILE, bootinfo::RTOS_PROFILE_OFFSET),
        };
        if info.flags & flag != 0 {
            let mut blob = [0u8; guest_probe::abi::profile::PROFILE_SIZE];
            guestmem::read_bytes(bootinfo::BOOTINFO_PA + offset, &mut blob);
            probe::set_boot_profile(vm, &blob);
        }
        if vm.cpus.contains(&0) {
            linux = Some(vm);
        } else {
            psci::start_core(usize::from(vm.cpus[0]), vm.id, vm.entry_ipa, 0);
        }
    }
    let Some(vm) = linux else {
        info!("CPU0 has no VM; idling");
        idle(partition)
    };
    if let Err(why) = write_linux_dtb(vm, partition, &info) {
        error!(
            "VM {} ({}): cannot build its device tree: {why}; not started",
            vm.id, vm.name
        );
        idle(partition)
    }
    psci::mark_online(0);
    vm::enter(vm, TrapFrame::new_el1(vm.entry_ipa, vm.dtb_ipa))
}

/// Derive Linux's device tree from QEMU's and place it in Linux's memory.
fn write_linux_dtb(vm: &config::VmConfig, partition: &Partition, info: &BootInfo) -> Result<(), &'static str> {
    const DTB_MAX: usize = 0x1_0000;
    let qemu = guestmem::qemu_dtb().ok_or("no device tree from QEMU at 0x40000000")?;
    let qemu = hyp_core::fdt::Fdt::parse(qemu).map_err(|_| "QEMU's device tree is malformed")?;
    let dtb_pa = vm::ipa_to_pa(vm, vm.dtb_ipa, DTB_MAX as u64).ok_or("the DTB address is outside its RAM")?;
    let initrd_ipa = vm.initrd_pa; // Linux's RAM is identity mapped (IPA = PA)
                                   // SAFETY: the range was checked to be inside the VM's RAM, the VM has not
                                   // started, and this is the only reference to it.
    let out = unsafe { guestmem::slice_mut(dtb_pa, DTB_MAX) };
    let size = hyp_core::linux_dtb::derive(&qemu, vm, partition, info, initrd_ipa, out)
        .map_err(|_| "the derived device tree does not fit")?;
    info!(
        "VM {} ({}): device tree ({} bytes) at IPA {:#x}",
        vm.id, vm.name, size, vm.dtb_ipa
    );
    Ok(())
}

fn idle(_partition: &Partition) -> ! {
    loop {
        core::hint::spin_loop();
        crate::arch::wait_for_event();
    }
}

fn describe(vm: &config::VmConfig) {
    for r in vm.memory {
        info!(
            "VM {} ({}): IPA {:#x}..{:#x} -> PA {:#x}{}",
            vm.id,
            vm.name,
            r.ipa,
            r.ipa + r.size,
            r.pa,
            if r.shared { " (shared)" } else { "" }
        );
    }
}

fn secondary_core(cpu: usize) -> ! {
    gic::init_cpu(cpu);
    let Some((vm_id, entry, x0)) = psci::take_mailbox(cpu) else {
        error!("CPU{cpu} started with nothing to run");
        arch::halt()
    };
    let partition = partition();
    let vm = partition.vm(vm_id).expect("the mailbox names a configured VM");
    vm::enter(vm, TrapFrame::new_el1(entry, x0))
}

fn read_bootinfo() -> Result<BootInfo, BootInfoError> {
    let mut bytes = [0u8; bootinfo::SIZE];
    // The blob lies in the hypervisor's own reserved range (link.ld).
    guestmem::read_bytes(bootinfo::BOOTINFO_PA, &mut bytes);
    BootInfo::parse(&bytes)
}

/// Cores present: the redistributor frames up to the one marked Last.
fn count_cores() -> u8 {
    let mut n = 0u8;
    loop {
        let typer = gic::redistributor(usize::from(n))
            .offset(hyp_core::gicv3::gicr::TYPER)
            .read64();
        n += 1;
        if typer & hyp_core::gicv3::gicr::TYPER_LAST != 0 || n == percpu::MAX_CPUS as u8 {
            return n;
        }
    }
}
