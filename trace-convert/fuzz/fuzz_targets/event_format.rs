//! Format-file text, then decoding a record with the parsed layout and printing it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use trace_convert::bytes::Endian;
use trace_convert::format::EventFormat;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0xff).unwrap_or(data.len());
    let (text, record) = data.split_at(split);
    if let Ok(text) = std::str::from_utf8(text) {
        if let Ok(f) = EventFormat::parse("fuzz", text, 0) {
            let _ = f.decode(record, Endian::Little, 0);
            let _ = trace_convert::printfmt::compile(&f);
        }
    }
});
