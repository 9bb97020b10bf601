//! Any bytes given to the ftrace text reader.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = trace_convert::text::TextTrace::parse(data) {
        for ev in t.events() {
            if ev.is_err() {
                break;
            }
        }
    }
});
