//! Single-stepping a displaced instruction in place: the original word goes
//! back, the guest steps it with interrupts masked and debug exceptions
//! routed here, then the `HVC` is put back.

use super::patch::patch;
use super::{partition, table, Probe};
use crate::arch::{self, exceptions::TrapFrame};
use crate::guestmem::VmPhysMem;
use crate::percpu::{this_cpu, PendingStep};
use crate::{read_sysreg, vm, write_sysreg};
use guest_probe::abi;
use hyp_core::config::VmConfig;

const SPSR_SS: u64 = 1 << 21;
const SPSR_IF: u64 = 0b11 << 6;
const MDSCR_SS: u64 = 1;
const MDCR_TDE: u64 = 1 << 8;

pub(super) fn start_step(vm: &'static VmConfig, frame: &mut TrapFrame, probe: &Probe) {
    crate::trace::count(guest_probe::abi::Stat::Steps);
    let mut mem = VmPhysMem { vm };
    if patch(&mut mem, probe.pa, probe.original).is_err() {
        vm::stop_vm(
            vm,
            frame,
            format_args!("probe {}: cannot restore the original instruction", probe.id),
        );
    }
    let mdscr = read_sysreg!("mdscr_el1");
    this_cpu().step = Some(PendingStep {
        vm: vm.id,
        id: probe.id,
        pa: probe.pa,
        daif: frame.spsr & SPSR_IF,
        mdscr,
    });
    // Step exactly the original instruction, with interrupts masked so the
    // step is not taken into the guest's IRQ handler, and debug exceptions
    // routed here.
    frame.elr = probe.va;
    frame.spsr |= SPSR_SS | SPSR_IF;
    write_sysreg!("mdscr_el1", mdscr | MDSCR_SS);
    write_sysreg!("mdcr_el2", read_sysreg!("mdcr_el2") | MDCR_TDE);
    arch::isb();
}

/// After any trap on a core with a step in flight (normally the software
/// step exception): put the probe back and restore the guest's state.
pub fn finish_step(frame: &mut TrapFrame) -> bool {
    let Some(step) = this_cpu().step.take() else {
        return false;
    };
    write_sysreg!("mdscr_el1", step.mdscr);
    write_sysreg!("mdcr_el2", read_sysreg!("mdcr_el2") & !MDCR_TDE);
    frame.spsr = (frame.spsr & !(SPSR_SS | SPSR_IF)) | step.daif;
    if let (Ok(t), Some(vm)) = (table(step.vm), partition().vm(step.vm)) {
        let still_there = t
            .lock()
            .slots
            .iter()
            .flatten()
            .any(|p| p.id == step.id && p.pa == step.pa);
        if still_there {
            if let Some(hvc) = abi::probe_hvc(step.id) {
                let _ = patch(&mut VmPhysMem { vm }, step.pa, hvc);
            }
        }
    }
    true
}
