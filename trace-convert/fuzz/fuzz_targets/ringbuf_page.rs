//! One ring-buffer page with either commit size.
#![no_main]
use libfuzzer_sys::fuzz_target;
use trace_convert::bytes::Endian;
use trace_convert::format::PageHeader;
use trace_convert::ringbuf::PageRecords;

fuzz_target!(|data: &[u8]| {
    for (commit_size, endian) in [(8, Endian::Little), (4, Endian::Big)] {
        let hdr = PageHeader { commit_size, data_offset: 8 + commit_size };
        if let Ok(recs) = PageRecords::new(data, &hdr, endian, 0) {
            for r in recs {
                if r.is_err() {
                    break;
                }
            }
        }
    }
});
