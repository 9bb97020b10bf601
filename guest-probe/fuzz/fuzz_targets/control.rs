//! Fuzz target: `guest_probe::fuzzing::control`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| guest_probe::fuzzing::control(data));
