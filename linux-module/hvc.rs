// SPDX-License-Identifier: GPL-2.0

//! Hypercalls to the hv-trace hypervisor and their errors.
//!
//! `HVC #0`, function id in x0, arguments in x1..x3 (x4, x5 unused by the
//! functions this module calls), results in x0..x2; a negative x0 is an
//! error code ([`crate::abi::err`]).

use kernel::bindings;
use kernel::prelude::*;

use crate::abi::err;

/// What a successful hypercall returned.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ret {
    /// The result.
    pub(crate) x0: u64,
    /// Extra result (PROBE_LIST: the address).
    pub(crate) x1: u64,
    /// Extra result (PROBE_LIST: the hit count).
    pub(crate) x2: u64,
}

/// A hypercall error: the negative x0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HvError(pub i64);

impl HvError {
    /// What the code means.
    pub(crate) fn describe(self) -> &'static str {
        match self.0 {
            err::NOTSUPP => "not supported by the hypervisor",
            err::INVAL => "invalid argument",
            err::NOSPC => "no space left (probe table or ring full)",
            err::NOENT => "no such VM, probe or index",
            err::EXIST => "already exists",
            err::UNSAFE => "the instruction at that address is not safe to patch",
            err::UNMAPPED => "the address is not mapped in that VM",
            err::PERM => "permission denied by the hypervisor",
            err::BUSY => "busy, try again",
            err::STOPPED => "the VM is stopped (it faulted, or powered itself off: see the hypervisor console)",
            _ => "unknown hypervisor error",
        }
    }

    /// The errno user space sees.
    pub(crate) fn errno(self) -> Error {
        match self.0 {
            err::NOTSUPP => Error::from_errno(-(bindings::EOPNOTSUPP as i32)),
            err::INVAL => EINVAL,
            err::NOSPC => ENOSPC,
            err::NOENT => ENOENT,
            err::EXIST => EEXIST,
            err::UNSAFE => EPERM,
            err::UNMAPPED => EFAULT,
            err::PERM => EACCES,
            err::BUSY => EBUSY,
            err::STOPPED => Error::from_errno(-(bindings::ENODEV as i32)),
            _ => EIO,
        }
    }

    /// Logs that `what` failed and returns the errno.
    pub(crate) fn fail(self, what: &str) -> Error {
        pr_warn!("{what} failed: {} (hypervisor error {})\n", self.describe(), self.0);
        self.errno()
    }
}

/// Issues hypercall `function` with arguments x1..x3.
pub(crate) fn call(function: u64, a1: u64, a2: u64, a3: u64) -> core::result::Result<Ret, HvError> {
    call5(function, [a1, a2, a3, 0, 0])
}

/// Issues hypercall `function` with arguments x1..x5.
pub(crate) fn call5(function: u64, a: [u64; 5]) -> core::result::Result<Ret, HvError> {
    let [a1, a2, a3, a4, a5] = a;
    let (x0, x1, x2): (u64, u64, u64);
    // SAFETY: Linux runs as VM0 of the hv-trace hypervisor, so `hvc #0`
    // traps to it. Per the hypercall ABI it reads x0..x5, returns in x0..x3
    // and may clobber the other caller-saved registers x4..x17 (all declared
    // here); it does not touch our stack. It may write the shared ring
    // region (TEST_EMIT), which this module only reads through volatile and
    // atomic accesses; no `nomem`, so the compiler keeps memory ordered
    // around the call.
    unsafe {
        core::arch::asm!(
            "hvc #0",
            inlateout("x0") function => x0,
            inlateout("x1") a1 => x1,
            inlateout("x2") a2 => x2,
            inlateout("x3") a3 => _,
            inlateout("x4") a4 => _,
            inlateout("x5") a5 => _,
            lateout("x6") _,
            lateout("x7") _,
            lateout("x8") _,
            lateout("x9") _,
            lateout("x10") _,
            lateout("x11") _,
            lateout("x12") _,
            lateout("x13") _,
            lateout("x14") _,
            lateout("x15") _,
            lateout("x16") _,
            lateout("x17") _,
            options(nostack),
        );
    }
    if (x0 as i64) < 0 {
        Err(HvError(x0 as i64))
    } else {
        Ok(Ret { x0, x1, x2 })
    }
}
