//! PL011 UART output for the hypervisor's own log (QEMU virt's UART0).

use crate::arch::Mmio;
use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

/// UART0, a device the hypervisor owns (never mapped to a guest for writing).
const UART0: Mmio = Mmio(0x0900_0000);
const DR: u64 = 0x00;
const FR: u64 = 0x18;
const FR_TXFF: u32 = 1 << 5;

/// Serialises lines from several cores.
static LOCK: AtomicBool = AtomicBool::new(false);

fn put_byte(byte: u8) {
    while UART0.offset(FR).read32() & FR_TXFF != 0 {}
    UART0.offset(DR).write32(u32::from(byte));
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
