//! Any bytes as a streamed recording from the data port: the decoder and the
//! capture must take or skip them cleanly, and what they kept must assemble
//! or fail with an error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("fuzz-capture-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let Ok(mut capture) = trace_convert::capture::Capture::create(&dir) else {
        return;
    };
    for chunk in data.chunks(97) {
        if capture.feed(chunk).is_err() {
            break;
        }
    }
    let _ = trace_convert::capture::assemble(&dir, &dir.join("out.dat"));
    let _ = std::fs::remove_dir_all(&dir);
});
