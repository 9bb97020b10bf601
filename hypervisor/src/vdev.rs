//! Emulated devices: the console UART of VMs that do not own the physical
//! one, and the filtered GIC distributor/redistributors; trapped GIC system
//! register writes (SGIs).

use crate::arch::exceptions::TrapFrame;
use crate::arch::Mmio;
use crate::gic;
use crate::percpu::this_cpu;
use hyp_core::config::{DeviceAccess, EmulatedDevice, VmConfig};
use hyp_core::mmio::MmioAccess;
use hyp_core::regs::{Esr, SysRegAccess};
use hyp_core::vgic::{self, Decision};

/// Emulates a trapped access; false when no emulated device covers it.
pub fn emulate(vm: &VmConfig, frame: &mut TrapFrame, a: &MmioAccess) -> bool {
    let Some(dev) = vm.devices.iter().find(|d| a.ipa >= d.base && a.ipa - d.base < d.size) else {
        return false;
    };
    let DeviceAccess::Emulated(kind) = dev.access else {
        return false;
    };
    let offset = a.ipa - dev.base;
    match kind {
        EmulatedDevice::ConsoleUart => uart(vm, frame, a, offset),
        EmulatedDevice::GicDistributor => {
            let d = vgic::distributor(vm, offset, a.size, Some(crate::HVTRACE_INTID));
            gic_access(frame, a, gic::GICD.offset(offset), d)
        }
        EmulatedDevice::GicRedistributors => {
            let d = vgic::redistributor(vm, offset, a.size);
            gic_access(frame, a, gic::GICR.offset(offset), d)
        }
    }
    true
}

fn store_value(frame: &TrapFrame, a: &MmioAccess) -> u64 {
    if a.reg == 31 {
        0
    } else {
        frame.x[usize::from(a.reg)]
    }
}

fn load(frame: &mut TrapFrame, a: &MmioAccess, value: u64) {
    if a.reg != 31 {
        frame.x[usize::from(a.reg)] = a.load_result(value);
    }
}

fn gic_access(frame: &mut TrapFrame, a: &MmioAccess, reg: Mmio, d: Decision) {
    match (d, a.write) {
        (Decision::Ignore, false) => load(frame, a, 0),
        (Decision::Ignore, true) => {}
        (Decision::Physical { read_mask, .. }, false) => load(frame, a, gic::read_reg(reg, a.size) & read_mask),
        (Decision::Physical { write_mask, rmw, .. }, true) => {
            if write_mask == 0 {
                return;
            }
            let v = store_value(frame, a);
            let new = if rmw {
                (gic::read_reg(reg, a.size) & !write_mask) | (v & write_mask)
            } else {
                v & write_mask
            };
            gic::write_reg(reg, a.size, new);
        }
    }
}

/// PL011 as far as a polling console needs it: DR writes collect a line that
/// is printed with the VM's name; FR reads say "transmitter empty".
fn uart(vm: &VmConfig, frame: &mut TrapFrame, a: &MmioAccess, offset: u64) {
    const FR_TXFE: u64 = 1 << 7;
    const FR_RXFE: u64 = 1 << 4;
    match (offset, a.write) {
        (0x00, true) => {
            let byte = store_value(frame, a) as u8;
            let cpu = this_cpu();
            if byte != b'\n' && byte != b'\r' && cpu.line_len < cpu.line.len() {
                cpu.line[cpu.line_len] = byte;
                cpu.line_len += 1;
            }
            if byte == b'\n' || cpu.line_len == cpu.line.len() {
                let text = core::str::from_utf8(&cpu.line[..cpu.line_len]).unwrap_or("<non-UTF-8 output>");
                crate::log::guest_line(vm.name, text);
                cpu.line_len = 0;
            }
        }
        (0x18, false) => load(frame, a, FR_TXFE | FR_RXFE),
        (_, false) => load(frame, a, 0),
        (_, true) => {}
    }
}

/// A trapped system register access (EC 0x18). With HCR_EL2.IMO set, EL1
/// writes of ICC_SGI1R_EL1 trap here: deliver the SGI to the VM's own cores.
pub fn sysreg_trap(vm: &VmConfig, frame: &mut TrapFrame, esr: u64) {
    let access = SysRegAccess::decode(Esr(esr));
    let (read, rt) = (access.read, usize::from(access.rt));
    let is_sgi1r = access.register() == SysRegAccess::ICC_SGI1R_EL1;
    if is_sgi1r && !read {
        let value = if rt == 31 { 0 } else { frame.x[rt] };
        let (intid, targets, all_others) = hyp_core::gicv3::decode_sgi1r(value);
        let me = crate::arch::cpu_id();
        for &cpu in vm.cpus {
            let cpu = usize::from(cpu);
            let hit = if all_others {
                cpu != me
            } else {
                targets & (1 << cpu) != 0
            };
            if !hit {
                continue;
            }
            if cpu == me {
                crate::virq::queue_virq(intid, None);
            } else {
                gic::send_sgi(intid, cpu);
            }
        }
        return;
    }
    let (op0, op1, crn, crm, op2) = access.register();
    crate::warn!(
        "VM {}: trapped system register access op0={op0} op1={op1} CRn={crn} CRm={crm} op2={op2} ignored",
        vm.name
    );
    if read && rt != 31 {
        frame.x[rt] = 0;
    }
}
