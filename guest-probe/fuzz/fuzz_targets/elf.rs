//! Fuzz target: `guest_probe::fuzzing::elf`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| guest_probe::fuzzing::elf(data));
