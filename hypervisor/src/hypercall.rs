//! The hypercall ABI (`HVC #0`, function id in x0, arguments x1-x5, result in
//! x0; negative = error; defined once in `guest_probe::abi`) and probe hits
//! (`HVC #0x8000 | id`).

use crate::arch::exceptions::TrapFrame;
use crate::trace;
use core::sync::atomic::Ordering;
use guest_probe::abi::{self, HvError, HvcFunction, HvcImm, Stat};
use hyp_core::config::{GuestKind, VmConfig};

pub fn handle(vm: &'static VmConfig, frame: &mut TrapFrame, imm: u16) {
    match HvcImm::from_imm(imm) {
        HvcImm::Probe(id) => crate::probe::hit(vm, frame, id),
        HvcImm::Call => {
            trace::count(Stat::Hypercalls);
            let args = [frame.x[1], frame.x[2], frame.x[3], frame.x[4], frame.x[5]];
            let result = match HvcFunction::from_id(frame.x[0]) {
                Some(f) => call(vm, f, args, frame),
                None => Err(HvError::NotSupported),
            };
            frame.x[0] = abi::encode_result(result);
        }
        HvcImm::Reserved(_) => frame.x[0] = abi::encode_result(Err(HvError::NotSupported)),
    }
}

/// Only Linux (the VM that hosts the tracing tools) may control tracing.
fn require_linux(vm: &VmConfig) -> Result<(), HvError> {
    if vm.kind == GuestKind::Linux {
        Ok(())
    } else {
        Err(HvError::Denied)
    }
}

/// An on/off argument: 0 or 1.
fn switch(v: u64) -> Result<bool, HvError> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(HvError::InvalidArgument),
    }
}

fn call(vm: &'static VmConfig, f: HvcFunction, a: [u64; 5], frame: &mut TrapFrame) -> Result<u64, HvError> {
    match f {
        HvcFunction::Version => Ok(abi::abi_version()),
        HvcFunction::ConsoleWrite => console_write(vm, a[0], a[1]),
        HvcFunction::TraceEnable => {
            require_linux(vm)?;
            let on = switch(a[0])?;
            Ok(u64::from(trace::ENABLED.swap(on, Ordering::AcqRel)))
        }
        HvcFunction::RingInfo => {
            require_linux(vm)?;
            let (size, ipa, cpu) = trace::ring_info(a[0]).ok_or(HvError::NotFound)?;
            frame.x[1] = ipa; // the shared region is identity mapped in Linux
            frame.x[2] = cpu;
            Ok(size)
        }
        HvcFunction::Stats => {
            let stat = match a[0] {
                0 => Stat::ProbeHits,
                1 => Stat::Records,
                2 => Stat::Drops,
                3 => Stat::Irqs,
                4 => Stat::Hypercalls,
                5 => Stat::Steps,
                6 => Stat::Reruns,
                guest_probe::abi::STAT_TRACING => {
                    return Ok(u64::from(trace::ENABLED.load(core::sync::atomic::Ordering::Relaxed)))
                }
                _ => return Err(HvError::InvalidArgument),
            };
            Ok(trace::stat(stat))
        }
        HvcFunction::TestEmit => {
            require_linux(vm)?;
            if a[0] == 0 || a[0] > 1 << 20 {
                return Err(HvError::InvalidArgument);
            }
            Ok(trace::test_emit(a[0], vm.id))
        }
        HvcFunction::ProbeAdd => {
            require_linux(vm)?;
            crate::probe::request_add(vm, a[0], a[1], a[2], a[3], a[4])
        }
        HvcFunction::ProbePlan => {
            require_linux(vm)?;
            crate::probe::plan(vm, a[0], a[1], a[2], a[3])
        }
        HvcFunction::IrqTiming => {
            require_linux(vm)?;
            let flag = usize::try_from(a[0])
                .ok()
                .and_then(|i| trace::IRQ_TIMING.get(i))
                .filter(|_| crate::partition().vm(a[0] as u8).is_some())
                .ok_or(HvError::InvalidArgument)?;
            Ok(u64::from(flag.swap(switch(a[1])?, Ordering::AcqRel)))
        }
        HvcFunction::MemWrite => {
            require_linux(vm)?;
            crate::probe::request_write(a[0], a[1], a[2], a[3])
        }
        HvcFunction::ProbeRemove => {
            require_linux(vm)?;
            crate::probe::request_remove(a[0], a[1])
        }
        HvcFunction::ProbeList => {
            require_linux(vm)?;
            let (info, va, hits) = crate::probe::list(a[0], a[1])?;
            frame.x[1] = va;
            frame.x[2] = hits;
            Ok(info)
        }
        HvcFunction::ProfileSet => {
            require_linux(vm)?;
            crate::probe::set_profile(vm, a[0], a[1], a[2])
        }
    }
}

/// Print `len` bytes at guest IPA `ipa` as a line of the VM's console.
fn console_write(vm: &VmConfig, ipa: u64, len: u64) -> Result<u64, HvError> {
    if len > abi::CONSOLE_WRITE_MAX {
        return Err(HvError::InvalidArgument);
    }
    let pa = crate::vm::ipa_to_pa(vm, ipa, len).ok_or(HvError::Unmapped)?;
    let mut buf = [0u8; abi::CONSOLE_WRITE_MAX as usize];
    crate::guestmem::read_bytes(pa, &mut buf[..len as usize]);
    let text = core::str::from_utf8(&buf[..len as usize]).unwrap_or("<non-UTF-8 output>");
    crate::log::guest_line(vm.name, text.trim_end_matches('\n'));
    Ok(len)
}
