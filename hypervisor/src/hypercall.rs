//! The hypercall ABI (`HVC #0`, function id in x0, arguments x1-x5, result in
//! x0; negative = error) and probe hits (`HVC #0x8000 | id`).

use crate::arch::exceptions::TrapFrame;
use hyp_core::config::VmConfig;

pub const ABI_VERSION: u64 = 1 << 16;

pub mod func {
    pub const VERSION: u64 = 0x00;
    pub const CONSOLE_WRITE: u64 = 0x01;
}

pub mod err {
    pub const NOT_SUPPORTED: i64 = -1;
    pub const INVALID_ARGUMENT: i64 = -2;
    pub const UNMAPPED: i64 = -7;
}

const CONSOLE_MAX: u64 = 256;

pub fn handle(vm: &VmConfig, frame: &mut TrapFrame, imm: u16) {
    if imm & 0x8000 != 0 {
        crate::warn!("VM {}: HVC #{imm:#x} at {:#x} is not a probe of ours; ignored", vm.name, frame.elr - 4);
        return;
    }
    if imm != 0 {
        frame.x[0] = err::NOT_SUPPORTED as u64;
        return;
    }
    let result = match frame.x[0] {
        func::VERSION => ABI_VERSION as i64,
        func::CONSOLE_WRITE => console_write(vm, frame.x[1], frame.x[2]),
        _ => err::NOT_SUPPORTED,
    };
    frame.x[0] = result as u64;
}

/// Print `len` bytes at guest IPA `ipa` as a line of the VM's console.
fn console_write(vm: &VmConfig, ipa: u64, len: u64) -> i64 {
    if len > CONSOLE_MAX {
        return err::INVALID_ARGUMENT;
    }
    let Some(pa) = crate::vm::ipa_to_pa(vm, ipa, len) else { return err::UNMAPPED };
    let mut buf = [0u8; CONSOLE_MAX as usize];
    for (i, b) in buf[..len as usize].iter_mut().enumerate() {
        *b = crate::guestmem::read_u8(pa + i as u64);
    }
    let text = core::str::from_utf8(&buf[..len as usize]).unwrap_or("<non-UTF-8 output>");
    crate::log::guest_line(vm.name, text.trim_end_matches('\n'));
    len as i64
}
