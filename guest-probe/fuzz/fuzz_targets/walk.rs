//! Fuzz target: `guest_probe::fuzzing::walk`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| guest_probe::fuzzing::walk(data));
