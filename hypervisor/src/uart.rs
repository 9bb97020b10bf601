//! PL011 UART output for the hypervisor's own log (QEMU virt's UART0).

use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

const UART0_BASE: usize = 0x0900_0000;
const DR: usize = 0x00;
const FR: usize = 0x18;
const FR_TXFF: u32 = 1 << 5;

/// Serialises lines from several cores.
static LOCK: AtomicBool = AtomicBool::new(false);

fn put_byte(byte: u8) {
    // SAFETY: UART0 is a device the hypervisor owns (never mapped to a guest
    // for writing); FR and DR are 32-bit registers at these offsets.
    unsafe {
        while core::ptr::read_volatile((UART0_BASE + FR) as *const u32) & FR_TXFF != 0 {}
        core::ptr::write_volatile((UART0_BASE + DR) as *mut u32, u32::from(byte));
    }
}

/// A locked writer; the lock is released when it is dropped.
pub struct Writer(());

impl Writer {
    pub fn lock() -> Self {
        while LOCK
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        Writer(())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        LOCK.store(false, Ordering::Release);
    }
}

impl fmt::Write for Writer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                put_byte(b'\r');
            }
            put_byte(b);
        }
        Ok(())
    }
}
