//! Any bytes given to the hvtrace ring-dump reader.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = trace_convert::ringdump::RingDump::parse(std::sync::Arc::new(data.to_vec())) {
        for s in d.streams() {
            for ev in s {
                if ev.is_err() {
                    break;
                }
            }
        }
    }
});
