//! A64 probe-site classification and simulation, table-driven. The
//! encodings were produced by GNU as (and are checked against objdump in
//! `objdump_agrees_on_undefined_words` when the cross binutils are present).

use guest_probe::a64::{
    classify, classify_site, simulate, simulate_insn, Class, Cond, GuestView, LiteralSize, Refusal, Regs, Sim, SimError,
};
use guest_probe::addr::{GuestVirtAddr, PhysAddr};
use guest_probe::memory::{MemError, SparseMemory};
use guest_probe::walk::{AccessError, Translator};

use Class::{Refused, RunOutOfLine, Simulate};
use Refusal::*;

#[test]
fn classification_table() {
    let table: &[(u32, &str, Class)] = &[
        (0x14000400, "b .+0x1000", Simulate(Sim::B { offset: 0x1000 })),
        (0x17fffffe, "b .-8", Simulate(Sim::B { offset: -8 })),
        (0x95ffffff, "bl .+0x7fffffc", Simulate(Sim::Bl { offset: 0x7fffffc })),
        (0x96000000, "bl .-0x8000000", Simulate(Sim::Bl { offset: -0x8000000 })),
        (
            0x54000040,
            "b.eq .+8",
            Simulate(Sim::BCond {
                cond: Cond::Eq,
                offset: 8,
            }),
        ),
        (
            0x54ffffef,
            "b.nv .-4",
            Simulate(Sim::BCond {
                cond: Cond::Nv,
                offset: -4,
            }),
        ),
        (
            0x34000803,
            "cbz w3, .+0x100",
            Simulate(Sim::Cbz {
                sf: false,
                nonzero: false,
                rt: 3,
                offset: 0x100,
            }),
        ),
        (
            0xb5fff81e,
            "cbnz x30, .-0x100",
            Simulate(Sim::Cbz {
                sf: true,
                nonzero: true,
                rt: 30,
                offset: -0x100,
            }),
        ),
        (
            0x36180105,
            "tbz w5, #3, .+0x20",
            Simulate(Sim::Tbz {
                bit: 3,
                nonzero: false,
                rt: 5,
                offset: 0x20,
            }),
        ),
        (
            0xb7fc0007,
            "tbnz x7, #63, .-0x8000",
            Simulate(Sim::Tbz {
                bit: 63,
                nonzero: true,
                rt: 7,
                offset: -0x8000,
            }),
        ),
        (
            0x707fffe0,
            "adr x0, .+0xfffff",
            Simulate(Sim::Adr { rd: 0, offset: 0xfffff }),
        ),
        (
            0x10800001,
            "adr x1, .-0x100000",
            Simulate(Sim::Adr {
                rd: 1,
                offset: -0x100000,
            }),
        ),
        (
            0xb0000002,
            "adrp x2, .+0x1000",
            Simulate(Sim::Adrp { rd: 2, offset: 0x1000 }),
        ),
        (
            0x90800003,
            "adrp x3, .-0x100000000",
            Simulate(Sim::Adrp {
                rd: 3,
                offset: -0x1_0000_0000,
            }),
        ),
        (
            0x18000204,
            "ldr w4, .+0x40",
            Simulate(Sim::LdrLiteral {
                size: LiteralSize::W,
                rt: 4,
                offset: 0x40,
            }),
        ),
        (
            0x58fffe05,
            "ldr x5, .-0x40",
            Simulate(Sim::LdrLiteral {
                size: LiteralSize::X,
                rt: 5,
                offset: -0x40,
            }),
        ),
        (
            0x981fffe6,
            "ldrsw x6, .+0x3fffc",
            Simulate(Sim::LdrLiteral {
                size: LiteralSize::Sw,
                rt: 6,
                offset: 0x3fffc,
            }),
        ),
        (0xd8000080, "prfm pldl1keep, .+0x10", Simulate(Sim::PrfmLiteral)),
        (0x1c000040, "ldr s0, .+8", Refused(SimdFpLiteral)),
        (0x5c000041, "ldr d1, .+8", Refused(SimdFpLiteral)),
        (0x9c000042, "ldr q2, .+8", Refused(SimdFpLiteral)),
        (0xdc000042, "(ldr literal V=1 opc=11)", Refused(Unallocated)),
        (0xd61f0200, "br x16", Simulate(Sim::Br { rn: 16 })),
        (0xd63f0100, "blr x8", Simulate(Sim::Blr { rn: 8 })),
        (0xd65f03c0, "ret", Simulate(Sim::Ret { rn: 30 })),
        (0xd65f0020, "ret x1", Simulate(Sim::Ret { rn: 1 })),
        (0xd61f083f, "braaz x1", Refused(PointerAuthBranch)),
        (0xd65f0bff, "retaa", Refused(PointerAuthBranch)),
        (0xd73f0822, "blraa x1, x2", Refused(PointerAuthBranch)),
        (0xd69f03e0, "eret", Refused(ExceptionReturn)),
        (0xd6bf03e0, "drps", Refused(ExceptionReturn)),
        (0x885f7c20, "ldxr w0, [x1]", Refused(Exclusive)),
        (0xc85ffc20, "ldaxr x0, [x1]", Refused(Exclusive)),
        (0xc8027c20, "stxr w2, x0, [x1]", Refused(Exclusive)),
        (0x8802fc20, "stlxr w2, w0, [x1]", Refused(Exclusive)),
        (0xc87f0440, "ldxp x0, x1, [x2]", Refused(Exclusive)),
        (0xc8238440, "stlxp w3, x0, x1, [x2]", Refused(Exclusive)),
        (0x085f7c20, "ldxrb w0, [x1]", Refused(Exclusive)),
        (0x48027c20, "stxrh w2, w0, [x1]", Refused(Exclusive)),
        (0xc8dffc20, "ldar x0, [x1]", RunOutOfLine),
        (0x889ffc20, "stlr w0, [x1]", RunOutOfLine),
        (0xc8e0fc41, "casal x0, x1, [x2]", RunOutOfLine),
        (0x48207c82, "casp x0, x1, x2, x3, [x4]", RunOutOfLine),
        (0xd4000001, "svc #0", Refused(ExceptionGenerating)),
        (0xd4100022, "hvc #0x8001", Refused(ExceptionGenerating)),
        (0xd4000003, "smc #0", Refused(ExceptionGenerating)),
        (0xd4200020, "brk #1", Refused(ExceptionGenerating)),
        (0xd4400000, "hlt #0", Refused(ExceptionGenerating)),
        (0xd4a00001, "dcps1", Refused(ExceptionGenerating)),
        (0xd4000000, "(exception opc=000 LL=00)", Refused(Unallocated)),
        (0xd50342df, "msr daifset, #2", Refused(PstateWrite)),
        (0xd50041bf, "msr spsel, #1", Refused(PstateWrite)),
        (0xd5181000, "msr sctlr_el1, x0", Refused(SystemRegisterWrite)),
        (0xd51bd041, "msr tpidr_el0, x1", Refused(SystemRegisterWrite)),
        (0xd538d080, "mrs x0, tpidr_el1", RunOutOfLine),
        (0xd53be041, "mrs x1, cntvct_el0", RunOutOfLine),
        (0xd503201f, "nop", RunOutOfLine),
        (0xd503207f, "wfi", RunOutOfLine),
        (0xd503233f, "paciasp", RunOutOfLine),
        (0xd50323bf, "autiasp", RunOutOfLine),
        (0xd503245f, "bti c", RunOutOfLine),
        (0xd5033bbf, "dmb ish", RunOutOfLine),
        (0xd5033f9f, "dsb sy", RunOutOfLine),
        (0xd5033fdf, "isb", RunOutOfLine),
        (0xd5033f5f, "clrex", RunOutOfLine),
        (0xd50b7e20, "dc civac, x0", RunOutOfLine),
        (0xd508751f, "ic iallu", RunOutOfLine),
        (0xd508871f, "tlbi vmalle1", RunOutOfLine),
        (0xd5087800, "at s1e1r, x0", RunOutOfLine),
        (0x00000000, "udf #0", Refused(Unallocated)),
        (0xa9bf7bfd, "stp x29, x30, [sp, #-16]!", RunOutOfLine),
        (0xa8c17bfd, "ldp x29, x30, [sp], #16", RunOutOfLine),
        (0xadbf07e0, "stp q0, q1, [sp, #-32]!", RunOutOfLine),
        (0x69400440, "ldpsw x0, x1, [x2]", RunOutOfLine),
        (0xe9400440, "(ldp opc=11)", Refused(Unallocated)),
        (0xf9000420, "str x0, [x1, #8]", RunOutOfLine),
        (0x38626820, "ldrb w0, [x1, x2]", RunOutOfLine),
        (0xf862d820, "ldr x0, [x1, w2, sxtw #3]", RunOutOfLine),
        (0xb85ff020, "ldur w0, [x1, #-1]", RunOutOfLine),
        (0xf8400820, "ldtr x0, [x1]", RunOutOfLine),
        (0xf9800000, "prfm pldl1keep, [x0]", RunOutOfLine),
        (0xb8200041, "ldadd w0, w1, [x2]", RunOutOfLine),
        (0xf8e08041, "swpal x0, x1, [x2]", RunOutOfLine),
        (0x4c407000, "ld1 {v0.16b}, [x0]", RunOutOfLine),
        (0x0d409000, "ld1 {v0.s}[1], [x0]", RunOutOfLine),
        (0xaa0103e0, "mov x0, x1", RunOutOfLine),
        (0x91001020, "add x0, x1, #4", RunOutOfLine),
        (0xd10103ff, "sub sp, sp, #0x40", RunOutOfLine),
        (0xd2a24680, "movz x0, #0x1234, lsl #16", RunOutOfLine),
        (0x72800020, "movk w0, #1", RunOutOfLine),
        (0x92401c20, "and x0, x1, #0xff", RunOutOfLine),
        (0x12401c20, "(and w, N=1)", Refused(Unallocated)),
        (0xd3442c20, "ubfx x0, x1, #4, #8", RunOutOfLine),
        (0x93c20c20, "extr x0, x1, x2, #3", RunOutOfLine),
        (0x8b020c20, "add x0, x1, x2, lsl #3", RunOutOfLine),
        (0x8b214be0, "add x0, sp, w1, uxtw #2", RunOutOfLine),
        (0x9a020020, "adc x0, x1, x2", RunOutOfLine),
        (0xfa431804, "ccmp x0, #3, #4, ne", RunOutOfLine),
        (0x9a820020, "csel x0, x1, x2, eq", RunOutOfLine),
        (0x9ac20820, "udiv x0, x1, x2", RunOutOfLine),
        (0x9ac22020, "lsl x0, x1, x2", RunOutOfLine),
        (0x9ac25c20, "crc32cx w0, w1, x2", RunOutOfLine),
        (0xdac00020, "rbit x0, x1", RunOutOfLine),
        (0xdac00c20, "rev x0, x1", RunOutOfLine),
        (0x5ac01020, "clz w0, w1", RunOutOfLine),
        (0x9b020c20, "madd x0, x1, x2, x3", RunOutOfLine),
        (0x9bc27c20, "umulh x0, x1, x2", RunOutOfLine),
        (0x9b220c20, "smaddl x0, w1, w2, x3", RunOutOfLine),
        (0x1e622820, "fadd d0, d1, d2", Refused(Unsupported)),
        (0x4ea28420, "add v0.4s, v1.4s, v2.4s", Refused(Unsupported)),
        (0x04a00000, "(SVE)", Refused(Unsupported)),
        (0x02000000, "(unallocated op0=0001)", Refused(Unallocated)),
    ];
    for &(word, text, want) in table {
        assert_eq!(classify(word), want, "{word:#010x} {text}");
    }
}

#[test]
fn exclusive_sequences_refuse_the_sites_between() {
    // retry: ldaxr x0, [x1]; add x0, x0, #1; stlxr w2, x0, [x1]; cbnz w2, retry; ret
    let seq = [0xc85ffc20, 0x91000400, 0xc802fc20, 0x35ffffa2, 0xd65f03c0];
    assert_eq!(classify_site(&seq, 0), Refused(Exclusive));
    assert_eq!(classify_site(&seq, 1), Refused(InExclusiveSequence));
    assert_eq!(classify_site(&seq, 2), Refused(Exclusive));
    assert!(matches!(classify_site(&seq, 3), Simulate(Sim::Cbz { .. })));
    assert_eq!(classify_site(&seq, 4), Simulate(Sim::Ret { rn: 30 }));
    assert_eq!(classify_site(&seq, 5), Refused(Unallocated));
    // Only the store is in the window: the site before it is refused.
    assert_eq!(classify_site(&seq[1..], 0), Refused(InExclusiveSequence));
    // A CLREX closes the sequence.
    let cleared = [0xc85ffc20, 0xd5033f5f, 0xd503201f];
    assert_eq!(classify_site(&cleared, 2), RunOutOfLine);
    // A plain site far from any exclusive is fine.
    assert_eq!(classify_site(&[0xd503201f, 0xaa0103e0], 1), RunOutOfLine);
}

fn regs_at(pc: u64) -> Regs {
    let mut r = Regs {
        pc,
        sp: 0x8000,
        ..Regs::default()
    };
    for (i, x) in r.x.iter_mut().enumerate() {
        *x = 0x1000 + i as u64;
    }
    r
}

struct NoMemory;
impl guest_probe::a64::VirtRead for NoMemory {
    fn read_virt(&self, va: GuestVirtAddr, _: &mut [u8]) -> Result<(), AccessError> {
        Err(AccessError::Wrap(va))
    }
}

#[test]
fn branches_and_links() {
    let pc = 0xFFFF_0000_4010_0100;
    // (insn, expected next pc, expected x30 change)
    let cases: &[(u32, u64, Option<u64>)] = &[
        (0x14000400, pc + 0x1000, None),
        (0x17fffffe, pc - 8, None),
        (0x95ffffff, pc + 0x7fffffc, Some(pc + 4)),
        (0x96000000, pc - 0x8000000, Some(pc + 4)),
        (0xd61f0200, 0x1010, None),         // br x16
        (0xd63f0100, 0x1008, Some(pc + 4)), // blr x8
        (0xd65f03c0, 0x101e, None),         // ret (x30)
        (0xd65f0020, 0x1001, None),         // ret x1
        (0xd63f03c0, 0x101e, Some(pc + 4)), // blr x30: target read before the link
        (0xd61f03e0, 0, None),              // br xzr
    ];
    for &(insn, next, link) in cases {
        let mut r = regs_at(pc);
        simulate_insn(insn, &mut r, &NoMemory).unwrap();
        assert_eq!(r.pc, next, "{insn:#x}");
        assert_eq!(r.x[30], link.unwrap_or(0x101e), "{insn:#x}");
        assert_eq!(r.sp, 0x8000);
    }
}

#[test]
fn all_sixteen_conditions() {
    const N: u32 = 1 << 31;
    const Z: u32 = 1 << 30;
    const C: u32 = 1 << 29;
    const V: u32 = 1 << 28;
    // For each condition, an NZCV where it holds and one where it fails
    // (AL and NV always hold).
    let table: [(Cond, u32, Option<u32>); 16] = [
        (Cond::Eq, Z, Some(0)),
        (Cond::Ne, 0, Some(Z)),
        (Cond::Cs, C, Some(0)),
        (Cond::Cc, 0, Some(C)),
        (Cond::Mi, N, Some(0)),
        (Cond::Pl, 0, Some(N)),
        (Cond::Vs, V, Some(0)),
        (Cond::Vc, 0, Some(V)),
        (Cond::Hi, C, Some(C | Z)),
        (Cond::Ls, C | Z, Some(C)),
        (Cond::Ge, N | V, Some(N)),
        (Cond::Lt, N, Some(N | V)),
        (Cond::Gt, 0, Some(Z)),
        (Cond::Le, Z, Some(N | V)),
        (Cond::Al, 0, None),
        (Cond::Nv, N | Z | C | V, None),
    ];
    let pc = 0x4000_0000;
    for (code, (cond, yes, no)) in table.into_iter().enumerate() {
        assert_eq!(Cond::from_bits(code as u32), cond);
        // b.<cond> .-0x100000 (the most negative offset)
        let insn = 0x5400_0000 | (0x40000 << 5) | code as u32;
        assert_eq!(
            classify(insn),
            Simulate(Sim::BCond {
                cond,
                offset: -0x100000
            })
        );
        let mut r = regs_at(pc);
        r.nzcv = yes;
        simulate_insn(insn, &mut r, &NoMemory).unwrap();
        assert_eq!(r.pc, pc - 0x100000, "{cond:?} should hold for {yes:#x}");
        if let Some(no) = no {
            let mut r = regs_at(pc);
            r.nzcv = no;
            simulate_insn(insn, &mut r, &NoMemory).unwrap();
            assert_eq!(r.pc, pc + 4, "{cond:?} should fail for {no:#x}");
        }
        // Exhaustively: the odd condition is the inverse of the even one.
        if code % 2 == 1 && code != 15 {
            for nzcv in 0..16u32 {
                assert_ne!(
                    cond.holds(nzcv << 28),
                    Cond::from_bits(code as u32 - 1).holds(nzcv << 28)
                );
            }
        }
    }
}

#[test]
fn compare_and_test_branches_in_both_widths() {
    let pc = 0x10_0000;
    let cbz = |sf: u32, op: u32, rt: u32, imm19: i32| {
        0x3400_0000 | (sf << 31) | (op << 24) | (((imm19 as u32) & 0x7ffff) << 5) | rt
    };
    let tbz = |bit: u32, op: u32, rt: u32, imm14: i32| {
        0x3600_0000 | ((bit >> 5) << 31) | (op << 24) | ((bit & 31) << 19) | (((imm14 as u32) & 0x3fff) << 5) | rt
    };
    // (insn, x3 value, taken)
    let cases: &[(u32, u64, bool, i64)] = &[
        (cbz(0, 0, 3, 4), 0xFFFF_FFFF_0000_0000, true, 16), // cbz w3: high half ignored
        (cbz(1, 0, 3, 4), 0xFFFF_FFFF_0000_0000, false, 16),
        (cbz(0, 1, 3, -4), 0x1_0000_0000, false, -16), // cbnz w3
        (cbz(1, 1, 3, -4), 0x1_0000_0000, true, -16),
        (cbz(1, 0, 3, -0x40000), 0, true, -0x100000),
        (tbz(0, 0, 3, 2), 0, true, 8),
        (tbz(0, 1, 3, 2), 1, true, 8),
        (tbz(31, 1, 3, -2), 1 << 31, true, -8),
        (tbz(32, 1, 3, -2), 1 << 31, false, -8),
        (tbz(63, 1, 3, -0x2000), 1 << 63, true, -0x8000),
        (tbz(63, 0, 3, 0x1fff), 1 << 63, false, 0x7ffc),
    ];
    for &(insn, value, taken, offset) in cases {
        let mut r = regs_at(pc);
        r.x[3] = value;
        simulate_insn(insn, &mut r, &NoMemory).unwrap();
        let want = if taken { pc.wrapping_add_signed(offset) } else { pc + 4 };
        assert_eq!(r.pc, want, "{insn:#010x} x3={value:#x}");
        assert_eq!(r.x[3], value);
    }
    // The zero register: cbz xzr always branches, cbnz wzr never.
    let mut r = regs_at(pc);
    simulate_insn(cbz(1, 0, 31, 2), &mut r, &NoMemory).unwrap();
    assert_eq!(r.pc, pc + 8);
    let mut r = regs_at(pc);
    simulate_insn(cbz(0, 1, 31, 2), &mut r, &NoMemory).unwrap();
    assert_eq!(r.pc, pc + 4);
}

#[test]
fn adr_and_adrp() {
    let pc = 0xFFFF_0000_4010_0ABC;
    let cases: &[(u32, u8, u64)] = &[
        (0x707fffe0, 0, pc + 0xfffff),
        (0x10800001, 1, pc - 0x100000),
        (0xb0000002, 2, (pc & !0xfff) + 0x1000),
        (0x90800003, 3, (pc & !0xfff).wrapping_sub(0x1_0000_0000)),
    ];
    for &(insn, rd, want) in cases {
        let mut r = regs_at(pc);
        simulate_insn(insn, &mut r, &NoMemory).unwrap();
        assert_eq!(r.x[rd as usize], want, "{insn:#x}");
        assert_eq!(r.pc, pc + 4);
    }
    // adr xzr discards.
    let mut r = regs_at(pc);
    let before = r.x;
    simulate_insn(0x1000001f, &mut r, &NoMemory).unwrap();
    assert_eq!(r.x, before);
}

#[test]
fn literal_loads_read_guest_memory_through_the_translator() {
    let mut mem = SparseMemory::new();
    let pc = 0x4010_0100u64;
    mem.poke_u64(pc + 0x40, 0x8877_6655_4433_2211);
    mem.poke_u32(pc - 0x40, 0x8000_0001);
    mem.poke_u64(pc - 0x3c, 0xdead_beef_0000_0002);
    let tr = Translator::default();
    let view = GuestView {
        translator: &tr,
        mem: &mem,
    };
    let ldr = |opc: u32, rt: u32, imm19: i32| 0x1800_0000 | (opc << 30) | (((imm19 as u32) & 0x7ffff) << 5) | rt;
    let cases: &[(u32, u8, u64)] = &[
        (ldr(0, 4, 0x10), 4, 0x4433_2211),            // ldr w4, .+0x40: zero-extended
        (ldr(1, 5, 0x10), 5, 0x8877_6655_4433_2211),  // ldr x5, .+0x40
        (ldr(2, 6, 0x10), 6, 0x4433_2211),            // ldrsw, positive
        (ldr(2, 7, -0x10), 7, 0xFFFF_FFFF_8000_0001), // ldrsw, negative value and offset
        (ldr(0, 8, -0x10), 8, 0x8000_0001),           // ldr w8, .-0x40
        (ldr(1, 9, -0x10), 9, 0x0000_0002_8000_0001), // ldr x9, .-0x40 (unaligned to 8)
    ];
    for &(insn, rt, want) in cases {
        let mut r = regs_at(pc);
        r.x[rt as usize] = u64::MAX;
        simulate_insn(insn, &mut r, &view).unwrap();
        assert_eq!(r.x[rt as usize], want, "{insn:#x}");
        assert_eq!(r.pc, pc + 4);
    }
    // Into the zero register: read, then discarded.
    let mut r = regs_at(pc);
    let before = r.x;
    simulate_insn(ldr(1, 31, 0x10), &mut r, &view).unwrap();
    assert_eq!((r.x, r.pc), (before, pc + 4));
    // PRFM (literal) is a no-op even when the target is unmapped.
    let mut r = regs_at(pc);
    simulate_insn(0xd8000080, &mut r, &NoMemory).unwrap();
    assert_eq!(r.pc, pc + 4);
    // An unmapped literal is an error and leaves the registers alone.
    let mut r = regs_at(pc);
    let before = r;
    let err = simulate_insn(ldr(1, 5, 0x4000), &mut r, &view).unwrap_err();
    assert_eq!(
        err,
        SimError::Memory(AccessError::Memory {
            va: GuestVirtAddr::new(pc + 0x10000),
            completed: 0,
            error: MemError::Unmapped(PhysAddr::new(pc + 0x10000)),
        })
    );
    assert_eq!(r, before);
}

#[test]
fn non_simulated_classes_are_reported() {
    let mut r = regs_at(0);
    assert_eq!(
        simulate_insn(0xd503201f, &mut r, &NoMemory),
        Err(SimError::NotSimulated(RunOutOfLine))
    );
    assert_eq!(
        simulate_insn(0xd4000001, &mut r, &NoMemory),
        Err(SimError::NotSimulated(Refused(ExceptionGenerating)))
    );
    assert_eq!(r, regs_at(0));
    // simulate() on a hand-built Sim works too.
    simulate(Sim::B { offset: 8 }, &mut r, &NoMemory).unwrap();
    assert_eq!(r.pc, 8);
}

/// A deterministic xorshift generator for test inputs.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// The safety property of the decoder: whatever objdump (GNU binutils, all
/// extensions enabled) calls undefined, we never run out of line or
/// simulate. Random words plus words around every table entry.
#[test]
fn objdump_agrees_on_undefined_words() {
    let objdump = "aarch64-linux-gnu-objdump";
    if std::process::Command::new(objdump).arg("--version").output().is_err() {
        eprintln!("SKIP: {objdump} not installed (scripts/setup.sh installs binutils-aarch64-linux-gnu)");
        return;
    }
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let words: Vec<u32> = (0..100_000).map(|_| xorshift(&mut s) as u32).collect();
    let dir = std::env::temp_dir().join(format!("gp-a64-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join("words.bin");
    std::fs::write(&bin, words.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    let out = std::process::Command::new(objdump)
        .args(["-D", "-b", "binary", "-m", "aarch64"])
        .arg(&bin)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut bad = Vec::new();
    let mut undefined = 0;
    for line in text.lines() {
        let mut parts = line.splitn(3, '\t');
        let (Some(addr), Some(hex), Some(asm)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let Ok(addr) = u64::from_str_radix(addr.trim().trim_end_matches(':'), 16) else {
            continue;
        };
        let Ok(word) = u32::from_str_radix(hex.trim(), 16) else {
            continue;
        };
        assert_eq!(word, words[(addr / 4) as usize]);
        if asm.starts_with(".inst") || asm.starts_with("udf") || asm.contains("undefined") {
            undefined += 1;
            if matches!(classify(word), RunOutOfLine | Simulate(_)) {
                bad.push(format!("{word:#010x} {asm} -> {:?}", classify(word)));
            }
        }
    }
    assert!(
        undefined > 1000,
        "objdump output not understood:\n{}",
        &text[..text.len().min(2000)]
    );
    assert!(
        bad.is_empty(),
        "{} words objdump calls undefined but we would execute:\n{}",
        bad.len(),
        bad[..bad.len().min(40)].join("\n")
    );
}

/// Every instruction GCC emits for ordinary C (at -O0 and -O2, with atomics,
/// division, switch tables, floating point) is classified: none is
/// unallocated or unpredictable.
#[test]
fn compiler_output_is_never_unallocated() {
    let gcc = "aarch64-linux-gnu-gcc";
    if std::process::Command::new(gcc).arg("--version").output().is_err() {
        eprintln!("SKIP: {gcc} not installed (scripts/setup.sh installs gcc-aarch64-linux-gnu)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("gp-a64-cc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("sample.c");
    std::fs::write(
        &src,
        r#"
        #include <stdatomic.h>
        struct tcb { unsigned char prio; unsigned short stat; char name[16]; struct tcb *next; long long ctr; };
        extern struct tcb *cur, *high;
        _Atomic long counter;
        static const char *names[] = {"idle", "a", "b", "c", "d", "e"};
        const char *pick(unsigned i) { switch (i) { case 0: return names[0]; case 1: return names[1];
            case 2: return names[2]; case 3: return names[3]; case 4: return names[4]; default: return names[5]; } }
        void sw(void) { cur->ctr++; atomic_fetch_add(&counter, 1); cur = high; }
        long div(long a, long b) { return b ? a / b + a % b : -1; }
        double mix(double a, float b) { return a * b + (double)(long)a; }
        unsigned long hash(const char *s) { unsigned long h = 5381; while (*s) h = h * 33 ^ (unsigned char)*s++; return h; }
        int find(struct tcb *t, int prio) { while (t) { if (t->prio == prio) return t->stat; t = t->next; } return -1; }
        "#,
    )
    .unwrap();
    for opt in ["-O0", "-O2", "-Os"] {
        let obj = dir.join(format!("sample{opt}.o"));
        let st = std::process::Command::new(gcc)
            .args([opt, "-c", "-o"])
            .arg(&obj)
            .arg(&src)
            .status()
            .unwrap();
        assert!(st.success());
        let out = std::process::Command::new("aarch64-linux-gnu-objdump")
            .arg("-d")
            .arg(&obj)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let mut n = 0;
        for line in text.lines() {
            let mut parts = line.splitn(3, '\t');
            let (Some(_), Some(hex), Some(asm)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            let Ok(word) = u32::from_str_radix(hex.trim(), 16) else {
                continue;
            };
            n += 1;
            let c = classify(word);
            assert!(
                !matches!(c, Refused(Unallocated | Unpredictable)),
                "{opt}: {word:#010x} {asm} classified {c:?}"
            );
        }
        assert!(n > 50, "{opt}: only {n} instructions found");
    }
    std::fs::remove_dir_all(&dir).ok();
}
