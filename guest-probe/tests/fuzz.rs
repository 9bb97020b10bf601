//! The fuzz entry points (`guest_probe::fuzzing`, also used by the
//! cargo-fuzz targets in `fuzz/`) run briefly over deterministic random and
//! mutated inputs, so the test suite exercises them on every run: none may
//! panic.

use guest_probe::abi::profile::{Field, Global, NameKind, OsKind, OsProfile};
use guest_probe::abi::ring::OwnedRing;
use guest_probe::abi::Record;
use guest_probe::fuzzing;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// A mutation: flip bits, overwrite with interesting values, truncate,
/// duplicate a chunk, or insert bytes.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        if v.is_empty() {
            v.extend(rng.bytes(8));
        }
        let at = rng.below(v.len());
        match rng.below(6) {
            0 => v[at] ^= 1 << rng.below(8),
            1 => v[at] = [0, 0xff, 0x7f, 0x80, 1][rng.below(5)],
            2 => {
                let end = (at + 8).min(v.len());
                let val = [0u64, u64::MAX, 0x7fff_ffff, 1 << 63, rng.next()][rng.below(5)];
                let n = end - at;
                v[at..end].copy_from_slice(&val.to_le_bytes()[..n]);
            }
            3 => v.truncate(at),
            4 => {
                let len = rng.below(64).min(v.len() - at);
                let chunk = v[at..at + len].to_vec();
                let to = rng.below(v.len());
                v.splice(to..to, chunk);
            }
            _ => {
                let n = 1 + rng.below(16);
                let extra = rng.bytes(n);
                v.splice(at..at, extra);
            }
        }
    }
    v
}

fn run(name: &str, seeds: &[Vec<u8>], iterations: usize, f: fn(&[u8])) {
    let mut rng = Rng(0x5eed_0000_0000_0001 ^ name.len() as u64);
    for s in seeds {
        f(s);
    }
    for i in 0..iterations {
        let input = if seeds.is_empty() || i % 8 == 0 {
            let n = rng.below(512);
            rng.bytes(n)
        } else {
            let seed = &seeds[rng.below(seeds.len())];
            mutate(&mut rng, seed)
        };
        f(&input);
    }
}

/// Walker inputs whose memory is full of plausible descriptors pointing back
/// into the memory, so walks go deep.
fn walk_seeds(rng: &mut Rng) -> Vec<Vec<u8>> {
    (0..16)
        .map(|k| {
            let mem_len = 4096 * 4;
            let mut v = Vec::new();
            let regs = [
                0,
                0x1000,
                [16u64, 25, 33, 39, 43][k % 5]
                    | ([16u64, 25, 33][k % 3] << 16)
                    | ((k as u64 % 4) << 14)
                    | ((k as u64 % 4) << 30)
                    | (5 << 32),
                0x2000,
                [24u64, 25, 32, 34][k % 4] | (((k as u64) % 3) << 6) | ((k as u64 % 3) << 14) | (2 << 16),
                rng.next() & 0x0000_ffff_ffff_f000 | if k % 2 == 0 { 0 } else { 0xffff << 48 },
            ];
            for r in regs {
                v.extend(r.to_le_bytes());
            }
            for _ in 0..mem_len / 8 {
                let target = (rng.next() % 4) * 0x1000;
                let attrs = rng.next() & 0x0060_0000_0000_07fc;
                v.extend((target | attrs | [0b11, 0b01, 0b11, 0][rng.below(4)]).to_le_bytes());
            }
            v
        })
        .collect()
}

#[test]
fn fuzz_walker() {
    let mut rng = Rng(7);
    let seeds = walk_seeds(&mut rng);
    run("walk", &seeds, 20_000, fuzzing::walk);
}

#[test]
fn fuzz_a64() {
    let seeds = vec![[
        0x14000400u32,
        0x54ffffef,
        0xb5fff81e,
        0x981fffe6,
        0xd63f0100,
        0xc85ffc20,
        0x91000400,
        0xc802fc20,
    ]
    .iter()
    .flat_map(|w| w.to_le_bytes())
    .collect::<Vec<u8>>()];
    run("a64", &seeds, 20_000, fuzzing::a64);
}

#[test]
fn fuzz_profile_blob() {
    let mut p = OsProfile::empty(OsKind::UcosII);
    p.os_tcb_cur = Global {
        va: 0x1000,
        size: 8,
        reserved: 0,
    };
    p.os_tcb_high_rdy = Global {
        va: 0x1008,
        size: 8,
        reserved: 0,
    };
    p.tcb_size = 128;
    p.tcb_stk_ptr = Field { offset: 0, size: 8 };
    p.tcb_prio = Field { offset: 58, size: 1 };
    p.tcb_stat = Field { offset: 56, size: 1 };
    p.tcb_task_name = Field { offset: 100, size: 16 };
    p.name_kind = NameKind::Inline as u32;
    assert!(p.validate().is_ok());
    run("profile", &[p.to_bytes().to_vec()], 20_000, fuzzing::profile_blob);
}

#[test]
fn fuzz_ring_dump() {
    let a = OwnedRing::new(4, 0).unwrap();
    let mut prod = a.ring().producer();
    for n in 0..3 {
        prod.push(&Record {
            timestamp: n,
            kind: 2,
            ..Record::default()
        })
        .unwrap();
    }
    let b = OwnedRing::new(2, 1).unwrap();
    let mut seed = a.to_bytes();
    seed.extend(b.to_bytes());
    run("ring", &[seed], 20_000, fuzzing::ring_dump);
}

/// ELF/DWARF readers over mutated and truncated real objects (compiled here;
/// skipped without the cross compiler).
#[test]
fn fuzz_elf_readers() {
    let dir = std::env::temp_dir().join(format!("gp-fuzz-elf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("k.c");
    std::fs::write(
        &src,
        "typedef struct os_tcb { unsigned long *OSTCBStkPtr; unsigned char OSTCBStat, OSTCBPrio; char OSTCBTaskName[8]; } OS_TCB;\n\
         OS_TCB t[2]; OS_TCB *OSTCBCur, *OSTCBHighRdy; struct task_struct { int pid; char comm[16]; } init_task;\n\
         void OSCtxSw(void) { OSTCBCur = OSTCBHighRdy; }\n",
    )
    .unwrap();
    let mut seeds = Vec::new();
    for (out, args) in [
        ("k.o", &["-g", "-c"][..]),
        ("k.elf", &["-g", "-nostdlib", "-static", "-Wl,-e,OSCtxSw"][..]),
    ] {
        let path = dir.join(out);
        match std::process::Command::new("aarch64-linux-gnu-gcc")
            .args(args)
            .arg("-o")
            .arg(&path)
            .arg(&src)
            .status()
        {
            Ok(s) if s.success() => seeds.push(std::fs::read(&path).unwrap()),
            _ => {
                eprintln!("SKIP: aarch64-linux-gnu-gcc not available");
                std::fs::remove_dir_all(&dir).ok();
                return;
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    assert!(guest_probe::profile::extract_ucos(&seeds[0]).is_ok());
    // Every truncation length of the object, then random mutations.
    for len in (0..seeds[0].len()).step_by(7) {
        fuzzing::elf(&seeds[0][..len]);
    }
    run("elf", &seeds, 6000, fuzzing::elf);
}

#[test]
fn fuzz_control_protocol() {
    let seeds: Vec<Vec<u8>> = [
        "add 1 ffff000040105af0 switch\n",
        "remove 0 17",
        "1\n",
        "1000",
        "vm=0 id=3 addr=0xffff800080012340 kind=plain hits=12 owner=hvtrace\nvm=1 error: busy\nrecords 4\n",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    run("control", &seeds, 20_000, fuzzing::control);
}
