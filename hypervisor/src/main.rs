//! hv-trace's hypervisor: a minimal AArch64 EL2 hypervisor that statically
//! partitions a QEMU `virt` machine between Linux and a uC/OS-II RTOS and
//! inserts tracepoints into the RTOS at run time.
//!
//! Design principles:
//! - Thin: analysis (page walks, instruction decoding, OS layouts) lives in the
//!   host-tested `guest-probe` library; this crate wires it to the hardware.
//! - Safe code by default: inline assembly and raw memory access sit in a few
//!   small, documented places (`arch`, `uart`); the rest is ordinary Rust.
//! - Simple algorithms over clever ones; every failure is logged with where it
//!   happened, and a guest's mistake never stops the hypervisor.
#![no_std]
#![no_main]
#![forbid(unsafe_op_in_unsafe_fn)]

mod arch;
mod log;
mod panic;
mod psci;
mod uart;

/// The hypervisor's version, printed in the banner.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Rust entry point of every core, called by `arch::boot` with a stack and
/// (on the boot core) a zeroed BSS. `dtb` is the boot core's x0: QEMU's
/// device tree, or 0 when there is none.
#[no_mangle]
extern "C" fn hyp_main(cpu: u64, dtb: u64) -> ! {
    if cpu == 0 {
        info!(
            "hv-trace hypervisor {} starting at EL{} on CPU{} (dtb at {:#x})",
            VERSION,
            arch::current_el(),
            cpu,
            dtb
        );
        info!("no partition config loaded: nothing to run, powering off");
        psci::system_off();
    }
    arch::halt()
}
