//! Every reader over a few thousand deterministic mutations and truncations of real inputs:
//! each must return events or an error that names where (offset or line) — never panic,
//! hang or allocate without bound.

use std::path::Path;
use std::sync::Arc;

use trace_convert::{Error, Trace};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, orig: &[u8]) -> Vec<u8> {
    let mut d = orig.to_vec();
    match rng.below(6) {
        0 => d.truncate(rng.below(orig.len())),
        1 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(d.len());
                d[i] ^= 1 << rng.below(8);
            }
        }
        2 => {
            // Overwrite a 4- or 8-byte word with an extreme value (sizes, offsets, counts).
            let vals = [0u64, 1, 0x7fff_ffff, 0xffff_ffff, u64::MAX, 1 << 40, 4096, 16];
            let v = vals[rng.below(vals.len())];
            let w = if rng.below(2) == 0 { 4 } else { 8 };
            if d.len() > w {
                let i = rng.below(d.len() - w);
                d[i..i + w].copy_from_slice(&v.to_le_bytes()[..w]);
            }
        }
        3 => {
            // Mutate inside the event data (last quarter of the file).
            let start = d.len() * 3 / 4;
            for _ in 0..1 + rng.below(4) {
                let i = start + rng.below(d.len() - start);
                d[i] = rng.next() as u8;
            }
        }
        4 => {
            let i = rng.below(d.len());
            let n = rng.below(64).min(d.len() - i);
            d.drain(i..i + n);
        }
        _ => {
            let i = rng.below(d.len());
            d.insert(i, rng.next() as u8);
        }
    }
    d
}

/// An error names where the problem is, and a file offset it names lies
/// in the file, unless the message says it is past the end or into
/// decompressed data. Regression: a truncated file's offset table gave
/// "at offset 0x24000: truncated options: need 1 bytes, 0 left" for a
/// 145,788-byte file, and errors in compressed data gave offsets into the
/// decompressed data as if they were the file's.
fn check_error(e: &Error, len: usize) {
    let s = e.to_string();
    assert!(
        s.contains("offset 0x") || s.starts_with("line ") || s.contains("output") || s.contains("block at 0x"),
        "error without a location: {s}"
    );
    if s.contains("past the end of the") {
        return; // an offset past the end, said as such
    }
    let file_part = s.split("(offsets into that data)").next().unwrap_or(&s);
    for part in file_part
        .split("offset 0x")
        .skip(1)
        .chain(file_part.split("block at 0x").skip(1))
    {
        let hex: String = part.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
        let at = u64::from_str_radix(&hex, 16).unwrap();
        assert!(
            at <= len as u64,
            "offset {at:#x} past the end of a {len}-byte file: {s}"
        );
    }
}

/// Opens and fully decodes `bytes`; returns whether it was accepted.
fn exercise(bytes: Vec<u8>) -> bool {
    let len = bytes.len();
    match Trace::from_bytes(Arc::new(bytes)) {
        Ok(t) => {
            // Printed as `trace-cmd report` prints: the file's print formats
            // and kallsyms are outside input too.
            let mut text = trace_convert::write::text::TextWriter::new(std::io::sink(), t.meta(), Default::default())
                .expect("a sink takes the header");
            for ev in t.events().take(200_000) {
                match ev {
                    Ok(ev) => {
                        use trace_convert::write::EventSink;
                        let _ = text.event(&ev);
                    }
                    Err(e) => {
                        check_error(&e, len);
                        return false;
                    }
                }
            }
            true
        }
        Err(e) => {
            check_error(&e, len);
            false
        }
    }
}

fn run(name: &str, orig: Vec<u8>, n: usize, seed: u64) {
    assert!(exercise(orig.clone()), "{name} itself must read");
    let mut rng = Rng(seed);
    let mut rejected = 0;
    for _ in 0..n {
        if !exercise(mutate(&mut rng, &orig)) {
            rejected += 1;
        }
    }
    eprintln!("{name}: {n} mutations, {rejected} rejected with an error");
    assert!(rejected > 0, "{name}: no mutation was noticed");
}

fn fixture(n: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(n)).unwrap()
}

#[test]
fn dat_v6_mutations() {
    run("tc-v6.dat", fixture("tc-v6.dat"), 800, 1);
}

#[test]
fn dat_v7_mutations() {
    run("tc-v7.dat", fixture("tc-v7.dat"), 800, 2);
}

#[test]
fn dat_v7_zstd_mutations() {
    run("tc-v7-zstd.dat", fixture("tc-v7-zstd.dat"), 800, 3);
}

#[test]
fn our_dat_mutations() {
    let out = trace_convert::synth::write_dat(std::io::Cursor::new(Vec::new()), 300).unwrap();
    run("synthetic.dat", out.into_inner(), 600, 4);
}

#[test]
fn text_mutations() {
    let t = Trace::open(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tc-v6.dat")).unwrap();
    let mut text = Vec::new();
    {
        let (meta, events) = trace_convert::pipeline::prepare(std::slice::from_ref(&t), false).unwrap();
        let mut w = trace_convert::write::text::TextWriter::new(&mut text, &meta, Default::default()).unwrap();
        use trace_convert::write::EventSink;
        for ev in events {
            w.event(&ev.unwrap()).unwrap();
        }
        w.finish().unwrap();
    }
    text.truncate(40_000);
    let cut = text.iter().rposition(|&b| b == b'\n').unwrap() + 1;
    text.truncate(cut);
    run("report text", text, 600, 5);
}

#[test]
fn truncation_error_names_offset_and_problem() {
    let d = fixture("tc-v6.dat");
    let e = Trace::from_bytes(Arc::new(d[..5000].to_vec())).unwrap_err().to_string();
    assert!(e.contains("offset 0x") && e.contains("truncated"), "{e}");
    let mut bad = d.clone();
    bad[0] = 0;
    let e = Trace::from_bytes(Arc::new(bad)).unwrap_err().to_string();
    assert!(e.contains("offset 0x0"), "{e}");
}

#[path = "ringdump.rs"]
#[allow(dead_code)]
mod ringdump_fixture;

#[test]
fn ring_dump_mutations() {
    run("ring dump", ringdump_fixture::dump(), 600, 6);
}

/// A streamed recording's bytes as the guest agent sends them: a hello, the
/// metadata a .dat needs, the pages of the stream-cut fixture, the end.
fn stream_bytes() -> Vec<u8> {
    use guest_probe::abi::stream::{FrameHeader, FrameKind};
    let dat = fixture("stream-cut.dat");
    let pages = &dat[dat.len() - 60 * 4096..];
    let mut out = Vec::new();
    let mut seq = 0u64;
    let mut frame = |kind, cpu, payload: &[u8]| {
        out.extend_from_slice(&FrameHeader::new(kind, cpu, seq, payload).encode());
        out.extend_from_slice(payload);
        seq += 1;
    };
    frame(FrameKind::Hello, 0, b"hvtrace-stream 1 cpus=1 page_size=4096\n");
    let header_page = trace_convert::format::PageHeader::standard_text(4096);
    for (name, text) in [
        ("events/header_page", header_page.as_str()),
        ("events/header_event", trace_convert::format::STANDARD_HEADER_EVENT),
        ("events/ftrace/print/format", "name: print\nID: 5\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\tfield:unsigned long ip;\toffset:8;\tsize:8;\tsigned:0;\n\tfield:char buf[];\toffset:16;\tsize:0;\tsigned:0;\n\nprint fmt: \"%ps: %s\", (void *)REC->ip, REC->buf\n"),
    ] {
        let mut p = name.as_bytes().to_vec();
        p.push(0);
        p.extend_from_slice(text.as_bytes());
        frame(FrameKind::File, 0, &p);
    }
    for page in pages.chunks(4096).take(20) {
        frame(FrameKind::Page, 0, page);
    }
    // Frames before End: hello, 3 files, 20 pages.
    frame(FrameKind::End, 0, b"frames=24 pages=20 page_bytes=81920\n");
    out
}

/// Feeds `bytes` to a capture in `dir`, assembles it and reads what came
/// out; the capture's verdict on completeness.
fn capture_of(bytes: &[u8], dir: &Path) -> Option<String> {
    let _ = std::fs::remove_dir_all(dir);
    let mut c = trace_convert::capture::Capture::create(dir).unwrap();
    for chunk in bytes.chunks(1000) {
        c.feed(chunk).unwrap();
    }
    if trace_convert::capture::assemble(dir, &dir.join("out.dat")).is_ok() {
        let d = std::fs::read(dir.join("out.dat")).unwrap();
        exercise(d);
    }
    c.stats.incomplete()
}

/// Every damaged stream is noticed (a CRC, a gap in the sequence, or totals
/// that do not add up) and what did arrive still assembles and reads.
#[test]
fn stream_mutations_are_all_noticed() {
    let orig = stream_bytes();
    let dir = std::env::temp_dir().join(format!("tc-corrupt-stream-{}", std::process::id()));
    assert_eq!(capture_of(&orig, &dir), None, "the stream itself is whole");
    let mut rng = Rng(7);
    for i in 0..300 {
        let bytes = mutate(&mut rng, &orig);
        if bytes == orig {
            continue;
        }
        assert!(capture_of(&bytes, &dir).is_some(), "mutation {i} went unnoticed");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
