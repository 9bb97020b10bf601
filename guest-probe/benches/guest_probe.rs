//! `cargo bench -p guest-probe`: walker translations per second (stage 1
//! only, stage 2 only, both stages) and profile extraction time (a compiled
//! sample, the real RTOS ELF and the guest's vmlinux when present).
//! A plain harness that prints numbers; no external bench framework.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use guest_probe::addr::{GuestVirtAddr, IntermPhysAddr, PhysAddr};
use guest_probe::memory::SparseMemory;
use guest_probe::regs::Descriptor;
use guest_probe::walk::{Access, Stage1, Stage2, Translator};

const AF: u64 = Descriptor::AF;
const S2: u64 = Descriptor::AF | Descriptor::S2AP_R | Descriptor::S2AP_W;

/// Writes 4K-granule tables mapping `pages` consecutive pages from `va` to
/// `out`, leaf level 3, starting at level 0 (48-bit input). Tables are
/// allocated from `next` (bytes at `addr + pa_offset`).
#[allow(clippy::too_many_arguments)] // a test-table builder: all of them are coordinates
fn map_pages(
    mem: &mut SparseMemory,
    root: u64,
    next: &mut u64,
    pa_offset: u64,
    va: u64,
    out: u64,
    pages: u64,
    attrs: u64,
) {
    for i in 0..pages {
        let (input, output) = (va + i * 4096, out + i * 4096);
        let mut table = root;
        for level in 0..3u32 {
            let entry = table + ((input >> (39 - 9 * level)) & 511) * 8;
            let cur = Descriptor(u64::from_le_bytes(peek(mem, entry + pa_offset)));
            table = if cur.valid() {
                cur.output_address(guest_probe::regs::Granule::K4)
            } else {
                let t = *next;
                *next += 4096;
                mem.map(t + pa_offset, 4096);
                mem.poke_u64(entry + pa_offset, Descriptor::table(t).0);
                t
            };
        }
        mem.poke_u64(
            table + ((input >> 12) & 511) * 8 + pa_offset,
            Descriptor::page(output, attrs).0,
        );
    }
}

fn peek(mem: &SparseMemory, addr: u64) -> [u8; 8] {
    use guest_probe::memory::GuestMemory;
    let mut b = [0u8; 8];
    mem.read(PhysAddr::new(addr), &mut b).unwrap();
    b
}

fn rate(name: &str, mut f: impl FnMut(u64) -> u64) {
    let mut n = 0u64;
    let mut sink = 0u64;
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(700) {
        for _ in 0..1000 {
            sink = sink.wrapping_add(f(n));
            n += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    black_box(sink);
    println!(
        "{name:<48} {:>12.0} translations/s ({:.0} ns each)",
        n as f64 / secs,
        secs * 1e9 / n as f64
    );
}

fn walker() {
    const PAGES: u64 = 1024;
    let kva = 0xFFFF_0000_4010_0000u64;
    let mut mem = SparseMemory::new();
    // Stage 2: 40-bit IPA, start level 1 (VTCR SL0=1, two concatenated tables),
    // pages 4K mapped IPA 0x4000_0000.. -> PA 0x8000_0000...
    let s2_root = 0x1000_0000u64;
    mem.map(s2_root, 0x2000);
    let mut s2_next = s2_root + 0x2000;
    let vtcr = 24 | (1 << 6) | (0b010 << 16);
    let s2 = Stage2::new(s2_root, vtcr).unwrap();
    // Stage-1 tables live at IPA 0x4080_0000 (PA 0x8080_0000).
    let s1_root = 0x4080_0000u64;
    let mut s1_next = s1_root + 0x1000;
    mem.map(s1_root + 0x4000_0000, 0x1000);
    map_pages(
        &mut mem,
        s1_root,
        &mut s1_next,
        0x4000_0000,
        kva,
        0x4010_0000,
        PAGES,
        AF,
    );
    // Identity-ish stage 2 for RAM: map 16 MiB of IPA with 4K pages at level 3.
    let s2_map = |mem: &mut SparseMemory, next: &mut u64, ipa: u64, pa: u64| {
        let mut table = s2_root + ((ipa >> 30) & 1023) * 8;
        let mut entry = table;
        for level in 1..3u32 {
            let cur = Descriptor(u64::from_le_bytes(peek(mem, entry)));
            table = if cur.valid() {
                cur.output_address(guest_probe::regs::Granule::K4)
            } else {
                let t = *next;
                *next += 4096;
                mem.map(t, 4096);
                mem.poke_u64(entry, Descriptor::table(t).0);
                t
            };
            entry = table + ((ipa >> (30 - 9 * level)) & 511) * 8;
        }
        mem.poke_u64(entry, Descriptor::page(pa, S2).0);
    };
    for i in 0..4096u64 {
        s2_map(&mut mem, &mut s2_next, 0x4000_0000 + i * 4096, 0x8000_0000 + i * 4096);
    }
    mem.map(0x8000_0000, 16 << 20);
    let tcr = 16 | (16 << 16) | (0b10 << 30) | (0b101 << 32);
    let s1 = Stage1::new(0, s1_root, tcr);
    let both = Translator::new(Some(s1), Some(s2));
    let check = both
        .translate(&mem, GuestVirtAddr::new(kva + 0x1234), Access::Read)
        .unwrap();
    assert_eq!(check.pa, PhysAddr::new(0x8010_1234));
    let va = |n: u64| kva + (n.wrapping_mul(0x9E37_79B9) % PAGES) * 4096 + (n & 0xff8);
    rate("stage 1 + stage 2 (4K, 4 levels + 3 levels)", |n| {
        both.translate(&mem, GuestVirtAddr::new(va(n)), Access::Read)
            .map(|t| t.pa.raw())
            .unwrap_or(0)
    });
    // Stage-1 only: its tables are read at IPA = PA; build a second set there.
    let mut mem1 = SparseMemory::new();
    mem1.map(s1_root, 0x1000);
    let mut next = s1_root + 0x1000;
    map_pages(&mut mem1, s1_root, &mut next, 0, kva, 0x4010_0000, PAGES, AF);
    let one = Translator::new(Some(s1), None);
    rate("stage 1 only (4K, 4 levels)", |n| {
        one.translate(&mem1, GuestVirtAddr::new(va(n)), Access::Read)
            .map(|t| t.pa.raw())
            .unwrap_or(0)
    });
    rate("stage 2 only (IPA -> PA, 3 levels)", |n| {
        s2.translate(&mem, IntermPhysAddr::new(0x4000_0000 + (n % 4096) * 4096), Access::Read)
            .map(|t| t.pa.raw())
            .unwrap_or(0)
    });
    let mut buf = [0u8; 64];
    rate("read_virt 64 bytes (both stages)", |n| {
        both.read_virt(&mem, GuestVirtAddr::new(va(n)), &mut buf, Access::Read)
            .map(|_| u64::from(buf[0]))
            .unwrap_or(0)
    });
}

fn time_extract(name: &str, bytes: &[u8], f: impl Fn(&[u8]) -> bool) {
    let iters = 20;
    let start = Instant::now();
    let mut ok = true;
    for _ in 0..iters {
        ok &= f(black_box(bytes));
    }
    let each = start.elapsed() / iters;
    println!(
        "{name:<48} {each:>12.2?} per extraction ({} KiB{})",
        bytes.len() / 1024,
        if ok { "" } else { ", FAILED" }
    );
}

fn profiles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guests/ucos-ii");
    let dir = std::env::temp_dir().join(format!("gp-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    if root.join("Makefile").exists()
        && Command::new("make")
            .arg("-C")
            .arg(&root)
            .arg(format!("BUILD={}", dir.display()))
            .arg("-j2")
            .output()
            .is_ok_and(|o| o.status.success())
    {
        let bytes = std::fs::read(dir.join("ucos-ii.elf")).unwrap();
        time_extract("uC/OS-II profile, RTOS ELF", &bytes, |b| {
            guest_probe::profile::extract_ucos(b).is_ok()
        });
        time_extract("symbol table, RTOS ELF", &bytes, |b| {
            guest_probe::symbols::SymbolTable::from_elf(b).is_ok()
        });
    } else {
        println!("(RTOS ELF not built: guests/ucos-ii missing or make failed)");
    }
    std::fs::remove_dir_all(&dir).ok();
    let vmlinux: Option<PathBuf> = std::env::var_os("HV_TRACE_VMLINUX")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from(std::env::var_os("HOME")?).join(".cache/hv-trace/linux/build/vmlinux")))
        .filter(|p| p.exists());
    match vmlinux {
        Some(p) => {
            let bytes = std::fs::read(&p).unwrap();
            time_extract("Linux profile, vmlinux", &bytes, |b| {
                guest_probe::profile::extract_linux(b).is_ok()
            });
        }
        None => println!("(no vmlinux: set HV_TRACE_VMLINUX)"),
    }
}

fn main() {
    // `cargo test` runs benches in test mode with --test... keep it quick.
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    walker();
    profiles();
}
