//! The panic handler: say where, then stop this core cleanly. The other
//! cores (and their guests) are not touched.

use core::panic::PanicInfo;

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    crate::error!("PANIC: {}", info);
    crate::arch::halt()
}
