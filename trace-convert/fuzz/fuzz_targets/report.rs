//! Any bytes given to the `.dat` reader, printed as `trace-cmd report` would: the file's
//! print formats and kallsyms drive the body printer.
#![no_main]
use libfuzzer_sys::fuzz_target;
use trace_convert::write::EventSink;

fuzz_target!(|data: &[u8]| {
    // Seed with tests/fixtures/*.dat.
    if let Ok(t) = trace_convert::Trace::from_bytes(std::sync::Arc::new(data.to_vec())) {
        let Ok(mut w) = trace_convert::write::text::TextWriter::new(std::io::sink(), t.meta(), Default::default())
        else {
            return;
        };
        for ev in t.events().take(100_000) {
            match ev {
                Ok(ev) => {
                    let _ = w.event(&ev);
                }
                Err(_) => break,
            }
        }
    }
});
