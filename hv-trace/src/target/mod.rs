//! Driving a target system, bottom up: where things live ([`paths`]), build
//! inputs' [`fingerprint`]s, the cached [`artifacts`], one QEMU machine
//! ([`qemu`]), the boot description of the whole system ([`system`]), a
//! running one and its session directory ([`session`]), its two channels
//! ([`control`]: a shell in Linux; [`monitor`]: QEMU's HMP), the one way to
//! boot it and wait for its shell ([`boot`]), probe sites ([`probe`]), the
//! hvtrace module's control files ([`hvtrace`]), a recording ([`record`]),
//! streamed home while it runs ([`stream`]) or by trace-cmd in the guest,
//! and a long run under load ([`soak`]).

pub mod artifacts;
pub mod boot;
pub mod control;
pub mod fingerprint;
pub mod hvtrace;
pub mod monitor;
pub mod paths;
pub mod probe;
pub mod qemu;
pub mod record;
pub mod session;
pub mod soak;
pub mod stream;
pub mod system;
