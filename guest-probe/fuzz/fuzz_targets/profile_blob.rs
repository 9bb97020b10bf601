//! Fuzz target: `guest_probe::fuzzing::profile_blob`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| guest_probe::fuzzing::profile_blob(data));
