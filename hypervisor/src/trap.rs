//! Traps from guests: hypercalls, PSCI calls, trapped device accesses,
//! stage-2 faults and physical interrupts.

use crate::arch::exceptions::TrapFrame;
use crate::percpu::this_cpu;
use crate::vm::stop_vm;
use crate::{gic, psci, read_sysreg, vdev, virq};
use hyp_core::config::VmConfig;
use hyp_core::mmio::{self, MmioError};
use hyp_core::regs::{Esr, ExceptionClass as Ec};

#[no_mangle]
extern "C" fn hyp_lower_sync(frame: &mut TrapFrame) {
    let esr = read_sysreg!("esr_el2");
    let cpu = this_cpu();
    let Some(vm) = cpu.vm else {
        crate::error!("trap on CPU{} with no VM: ESR={esr:#x}", crate::arch::cpu_id());
        crate::arch::halt();
    };
    match Esr(esr).class() {
        Ec::Hvc64 => crate::hypercall::handle(vm, frame, Esr(esr).imm16()),
        Ec::Smc64 => {
            // SMC is trapped before execution: step over it.
            frame.elr += 4;
            psci::handle_guest(vm, frame);
        }
        Ec::DataAbortLower => {
            data_abort(vm, frame, esr);
            // An emulated access was the stepped instruction: the step is over.
            crate::probe::finish_step(frame);
        }
        Ec::InstructionAbortLower => {
            let ipa = mmio::fault_ipa(read_sysreg!("hpfar_el2"), read_sysreg!("far_el2"));
            stop_vm(vm, frame, format_args!("instruction fetch from unmapped IPA {ipa:#x}"));
        }
        Ec::SysReg => {
            frame.elr += 4;
            vdev::sysreg_trap(vm, frame, esr);
        }
        Ec::Wfx => frame.elr += 4,
        Ec::SoftwareStepLower => {
            if !crate::probe::finish_step(frame) {
                stop_vm(vm, frame, format_args!("unexpected software step exception"));
            }
        }
        Ec::Other(ec) => stop_vm(vm, frame, format_args!("unhandled trap EC={ec:#x} ESR={esr:#x}")),
    }
    virq::flush_pending();
}

fn data_abort(vm: &'static VmConfig, frame: &mut TrapFrame, esr: u64) {
    let (hpfar, far) = (read_sysreg!("hpfar_el2"), read_sysreg!("far_el2"));
    match mmio::decode(esr, hpfar, far) {
        Ok(access) => {
            if vdev::emulate(vm, frame, &access) {
                frame.elr += 4;
            } else {
                let dir = if access.write { "write to" } else { "read of" };
                stop_vm(
                    vm,
                    frame,
                    format_args!("{dir} IPA {:#x} outside its memory map (VA {far:#x})", access.ipa),
                );
            }
        }
        Err(MmioError::NoSyndrome) => {
            let ipa = mmio::fault_ipa(hpfar, far);
            stop_vm(
                vm,
                frame,
                format_args!("access to IPA {ipa:#x} (VA {far:#x}) outside its memory map"),
            );
        }
        Err(e) => stop_vm(vm, frame, format_args!("unexpected abort {e:?}")),
    }
}

#[no_mangle]
extern "C" fn hyp_lower_irq(_frame: &mut TrapFrame) {
    // The counter (an ISB and a read) only when this VM's interrupts are timed.
    let timed = this_cpu().vm.filter(|vm| crate::trace::irq_timing_on(vm.id));
    let arrived = timed.map_or(0, |_| crate::arch::counter());
    while let Some(intid) = gic::acknowledge() {
        gic::end_of_interrupt(intid);
        let cpu = this_cpu();
        if intid == gic::DOORBELL_SGI {
            gic::deactivate(intid);
            continue; // the doorbell flag is checked below
        }
        if intid == gic::REQUEST_SGI {
            gic::deactivate(intid);
            crate::probe::serve_mailbox();
            continue;
        }
        let owned = cpu.vm.is_some_and(|vm| intid < 32 || vm.spis.contains(intid));
        if owned && intid < 16 {
            // A guest's SGI from another of its cores: SGIs cannot be
            // hardware-forwarded, so deactivate here and inject a virtual one.
            gic::deactivate(intid);
            virq::queue_virq(intid, None);
        } else if owned {
            // Hardware-forwarded: the guest's EOI deactivates the physical interrupt.
            virq::queue_virq(intid, Some(intid));
            if let Some(vm) = timed {
                crate::trace::irq_timing(vm.id, intid, arrived, crate::arch::counter());
            }
        } else {
            crate::warn!(
                "CPU{}: interrupt {intid} not owned by this core's VM; dropped",
                crate::arch::cpu_id()
            );
            gic::deactivate(intid);
        }
    }
    virq::flush_pending();
}
