//! Leveled log lines on the console: `[hyp E|W|I] message`.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU8, Ordering};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    Error = 0,
    Warn = 1,
    Info = 2,
}

static MAX_LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

#[allow(dead_code)]
pub fn set_max_level(level: Level) {
    MAX_LEVEL.store(level as u8, Ordering::Relaxed);
}

pub fn log(level: Level, args: fmt::Arguments) {
    if level as u8 > MAX_LEVEL.load(Ordering::Relaxed) {
        return;
    }
    let tag = match level {
        Level::Error => 'E',
        Level::Warn => 'W',
        Level::Info => 'I',
    };
    let mut w = crate::uart::Writer::lock();
    let _ = write!(w, "[hyp {tag}] ");
    let _ = w.write_fmt(args);
    let _ = w.write_str("\n");
}

#[macro_export]
macro_rules! error { ($($a:tt)*) => { $crate::log::log($crate::log::Level::Error, format_args!($($a)*)) } }
#[macro_export]
macro_rules! warn { ($($a:tt)*) => { $crate::log::log($crate::log::Level::Warn, format_args!($($a)*)) } }
#[macro_export]
macro_rules! info { ($($a:tt)*) => { $crate::log::log($crate::log::Level::Info, format_args!($($a)*)) } }

/// A complete output line of a guest's emulated console, tagged with its name.
pub fn guest_line(vm: &str, text: &str) {
    let mut w = crate::uart::Writer::lock();
    let _ = write!(w, "[{vm}] {text}\n");
}
