//! PSCI: the hypervisor's own calls to the firmware, and guests' calls
//! (trapped SMCs) checked against the partition.

use crate::arch::{self, exceptions::TrapFrame};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use hyp_core::config::VmConfig;
use hyp_core::psci::{func, Action};

/// Cores that run (or are starting) a guest.
static ONLINE: [AtomicBool; 4] = [const { AtomicBool::new(false) }; 4];
/// Where a starting core enters its VM: (VM id + 1, entry IPA, x0). The VM
/// id slot is 0 while the mailbox is empty.
static MAILBOX: [[AtomicU64; 3]; 4] = [const { [const { AtomicU64::new(0) }; 3] }; 4];

/// Power the machine off (QEMU exits with status 0). Never returns.
pub fn system_off() -> ! {
    crate::info!("PSCI SYSTEM_OFF");
    arch::smc_call(func::SYSTEM_OFF.into(), 0, 0, 0);
    crate::error!("PSCI SYSTEM_OFF returned; halting");
    arch::halt()
}

fn system_reset() -> ! {
    crate::info!("PSCI SYSTEM_RESET");
    arch::smc_call(func::SYSTEM_RESET.into(), 0, 0, 0);
    arch::halt()
}

/// Start physical core `cpu` in the hypervisor; it will enter VM `vm_id` at
/// `entry` with `x0`.
pub fn start_core(cpu: usize, vm_id: u8, entry: u64, x0: u64) -> i64 {
    extern "C" {
        fn _start();
    }
    MAILBOX[cpu][1].store(entry, Ordering::Relaxed);
    MAILBOX[cpu][2].store(x0, Ordering::Relaxed);
    MAILBOX[cpu][0].store(u64::from(vm_id) + 1, Ordering::Release);
    ONLINE[cpu].store(true, Ordering::Release);
    let r = arch::smc_call(func::CPU_ON.into(), cpu as u64, _start as *const () as u64, 0);
    if r != 0 {
        ONLINE[cpu].store(false, Ordering::Release);
        crate::error!("PSCI CPU_ON of CPU{cpu} failed: {r}");
    }
    r
}

/// A secondary core's assignment: (VM id, entry, x0).
pub fn take_mailbox(cpu: usize) -> Option<(u8, u64, u64)> {
    let vm = MAILBOX[cpu][0].swap(0, Ordering::Acquire);
    (vm != 0).then(|| {
        (
            (vm - 1) as u8,
            MAILBOX[cpu][1].load(Ordering::Relaxed),
            MAILBOX[cpu][2].load(Ordering::Relaxed),
        )
    })
}

pub fn mark_online(cpu: usize) {
    ONLINE[cpu].store(true, Ordering::Release);
}

/// A guest's PSCI call.
pub fn handle_guest(vm: &VmConfig, frame: &mut TrapFrame) {
    let args = [frame.x[1], frame.x[2], frame.x[3]];
    let action = hyp_core::psci::handle(frame.x[0], args, vm.cpus, |c| {
        ONLINE[usize::from(c)].load(Ordering::Acquire)
    });
    match action {
        Action::Return(v) => frame.x[0] = v as u64,
        Action::CpuOn { cpu, entry, context } => {
            crate::info!("VM {}: PSCI CPU_ON CPU{cpu} at {entry:#x}", vm.name);
            frame.x[0] = start_core(usize::from(cpu), vm.id, entry, context) as u64;
        }
        // Linux manages the machine: its power-off ends it (`hv-trace stop`).
        // Any other VM only ends itself (isolation: the RTOS cannot take
        // Linux down; its BSP's fault handler powers off to say it died).
        Action::SystemOff | Action::SystemReset if vm.kind != hyp_core::config::GuestKind::Linux => {
            crate::vm::stop_vm(vm, frame, format_args!("asked to power off or reset (PSCI)"))
        }
        Action::SystemOff => {
            crate::info!("VM {} asked for SYSTEM_OFF", vm.name);
            system_off()
        }
        Action::SystemReset => {
            crate::info!("VM {} asked for SYSTEM_RESET", vm.name);
            system_reset()
        }
        Action::CpuOff => {
            ONLINE[arch::cpu_id()].store(false, Ordering::Release);
            crate::info!("VM {}: CPU{} off", vm.name, arch::cpu_id());
            // Really off, so that a later CPU_ON can start it again.
            arch::smc_call(func::CPU_OFF.into(), 0, 0, 0);
            arch::halt()
        }
    }
}
