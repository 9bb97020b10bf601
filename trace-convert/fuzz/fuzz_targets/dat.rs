//! Any bytes given to the `.dat` reader: metadata and every event must decode or fail cleanly.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Seed with tests/fixtures/*.dat.
    if let Ok(t) = trace_convert::dat::DatFile::parse(std::sync::Arc::new(data.to_vec())) {
        for s in t.cpu_streams() {
            for ev in s.take(100_000) {
                if ev.is_err() {
                    break;
                }
            }
        }
    }
});
