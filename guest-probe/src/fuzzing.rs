//! Fuzz entry points: one per parser, shared by the cargo-fuzz targets in
//! `fuzz/` and by the deterministic mutation tests (`tests/fuzz.rs`). Each
//! must return without panicking for every input.

use crate::a64;
use crate::abi::OsProfile;
use crate::addr::{GuestVirtAddr, IntermPhysAddr, PhysAddr};
use crate::memory::SliceMemory;
use crate::walk::{Access, Stage1, Stage2, Translator};

/// The walkers over arbitrary memory and registers: the first 40 bytes
/// are TTBR0, TTBR1, TCR, VTTBR, VTCR (little-endian), the next 8 the VA;
/// the rest is physical memory at address 0.
pub fn walk(data: &[u8]) {
    if data.len() < 48 {
        return;
    }
    let word = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&data[i * 8..i * 8 + 8]);
        u64::from_le_bytes(b)
    };
    // Keep table bases inside the small memory so walks go deep.
    let mem = SliceMemory::new(PhysAddr::new(0), &data[48..]);
    let span = (data.len() as u64).next_power_of_two();
    let s1 = Stage1::new(word(0) % span, word(1) % span, word(2));
    let s2 = Stage2::new(word(3) % span, word(4)).ok();
    let va = GuestVirtAddr::new(word(5));
    for access in [Access::Read, Access::Write, Access::Execute, Access::Inspect] {
        let t = Translator::new(Some(s1), s2);
        let _ = t.translate(&mem, va, access);
        let _ = Translator::new(None, s2).translate(&mem, va, access);
        if let Some(s2) = s2 {
            let _ = s2.translate(&mem, IntermPhysAddr::new(word(5) % span), access);
        }
        let mut buf = [0u8; 24];
        let _ = t.read_virt(&mem, va, &mut buf, access);
    }
}

/// The A64 decoder and simulator over consecutive instruction words.
pub fn a64(data: &[u8]) {
    let words: Vec<u32> = data
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let mem = SliceMemory::new(PhysAddr::new(0), data);
    let tr = Translator::default();
    let view = a64::GuestView {
        translator: &tr,
        mem: &mem,
    };
    for (i, &w) in words.iter().enumerate() {
        let _ = a64::classify_site(&words, i);
        let mut regs = a64::Regs {
            pc: (i as u64) * 4,
            ..a64::Regs::default()
        };
        regs.x[(w % 31) as usize] = u64::from(w).rotate_left(w % 64);
        regs.nzcv = w & 0xF000_0000;
        let _ = a64::simulate_insn(w, &mut regs, &view);
    }
}

/// The profile-blob parser (the hypervisor's `PROFILE_SET` input).
pub fn profile_blob(data: &[u8]) {
    if let Ok(p) = OsProfile::from_bytes(data) {
        assert_eq!(OsProfile::from_bytes(&p.to_bytes()), Ok(p));
    }
}

/// The ring-dump parser.
pub fn ring_dump(data: &[u8]) {
    let _ = crate::abi::dump::parse_ring_dump(data);
}

/// The ELF/DWARF readers: uC/OS-II and Linux profiles and symbols.
pub fn elf(data: &[u8]) {
    let _ = crate::profile::extract_ucos(data);
    let _ = crate::profile::extract_linux(data);
    if let Ok(t) = crate::symbols::SymbolTable::from_elf(data) {
        for spec in ["OSCtxSw", "OSCtxSw+4", "main+0x10", "0x0", "0x40100000"] {
            let _ = t.resolve(spec);
        }
        if let Some(s) = t.symbols().first() {
            let _ = t.symbolize(s.addr);
            let _ = t.resolve(&s.name.clone());
        }
    }
}

/// The sysfs control protocol (`abi::control`): a probe command, enable and
/// count writes, and listing and stats lines. A command that parses formats
/// back to itself.
pub fn control(data: &[u8]) {
    use crate::abi::control::{parse_count, parse_enable, parse_probe, stat_lines, ProbeLine};
    let _ = parse_enable(data);
    let _ = parse_count(data);
    if let Ok(cmd) = parse_probe(data) {
        let text = cmd.to_string();
        assert_eq!(parse_probe(text.as_bytes()), Ok(cmd), "{text:?}");
    }
    if let Ok(text) = core::str::from_utf8(data) {
        for line in text.lines() {
            if let Ok(p) = ProbeLine::parse(line) {
                let again = p.to_string();
                assert_eq!(ProbeLine::parse(&again), Ok(p), "{again:?}");
            }
        }
        let _ = stat_lines(text).count();
    }
}
