//! PSCI client (SMC conduit on QEMU virt): what the hypervisor itself asks of
//! the firmware.

use crate::arch;

const SYSTEM_OFF: u64 = 0x8400_0008;

/// Power the machine off (QEMU exits with status 0). Never returns.
pub fn system_off() -> ! {
    crate::info!("PSCI SYSTEM_OFF");
    arch::smc_call(SYSTEM_OFF, 0, 0, 0);
    crate::error!("PSCI SYSTEM_OFF returned; halting");
    arch::halt()
}
