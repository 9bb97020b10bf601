//! Emulation of the common non-PC-relative instructions found at probe
//! sites (function prologues: `sub sp, sp, #n`, `stp x29, x30, [sp, #-16]!`,
//! `mov x29, sp`, `str x19, [sp, #16]`, ...), so a probe hit can execute the
//! displaced instruction without restoring it and single-stepping — far
//! cheaper. Anything else is left to the caller (single step).
//!
//! Contract: on `Ok(true)` the instruction's effect is applied to `regs`
//! (`pc` advanced by 4) and memory; on `Ok(false)` or an error, `regs` is
//! unchanged (memory is accessed before any register is written) (a store may have been partly written: re-executing it writes
//! the same bytes again).

pub use crate::a64::RegisterFile;
use crate::a64::{Class, Sim, VirtRead};
use crate::addr::GuestVirtAddr;
use crate::memory::GuestMemory;
use crate::walk::{Access, AccessError, Translator};

/// Guest virtual memory that can also be written (stores).
pub trait VirtMem: VirtRead {
    /// Writes `data` at `va` with the guest's own permissions.
    fn write_virt(&mut self, va: GuestVirtAddr, data: &[u8]) -> Result<(), AccessError>;
}

/// A guest's memory seen through its translation regime, writable.
pub struct GuestViewMut<'a, M: ?Sized> {
    /// The vCPU's translation regime.
    pub translator: &'a Translator,
    /// Physical memory.
    pub mem: &'a mut M,
}

impl<M: GuestMemory + ?Sized> VirtRead for GuestViewMut<'_, M> {
    fn read_virt(&self, va: GuestVirtAddr, buf: &mut [u8]) -> Result<(), AccessError> {
        self.translator.read_virt(&*self.mem, va, buf, Access::Read)
    }
}

impl<M: GuestMemory + ?Sized> VirtMem for GuestViewMut<'_, M> {
    fn write_virt(&mut self, va: GuestVirtAddr, data: &[u8]) -> Result<(), AccessError> {
        self.translator.write_virt(&mut *self.mem, va, data, Access::Write)
    }
}

/// A decoded instruction this module emulates. Fields follow the Arm ARM's
/// encoding names: `sf` 64-bit, `rd`/`rn`/`rm`/`rt`/`rt2` register numbers,
/// `size` access bytes, `offset` the byte offset (already scaled).
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emul {
    /// NOP and other hints with no architectural effect here.
    Nop,
    /// ADD/SUB (immediate) without flags; register 31 is SP.
    AddSubImm {
        sf: bool,
        sub: bool,
        rd: u8,
        rn: u8,
        imm: u64,
    },
    /// MOV (register) = ORR Rd, ZR, Rm.
    MovReg { sf: bool, rd: u8, rm: u8 },
    /// STR/LDR of a general register, any size (B, H, W, X), zero- or
    /// sign-extending, with an immediate or a register offset.
    LoadStore {
        load: bool,
        size: u8,
        /// How a load widens its value.
        extend: Widen,
        rt: u8,
        rn: u8,
        offset: i64,
        mode: Mode,
    },
    /// STP/LDP of W or X registers.
    Pair {
        load: bool,
        size: u8,
        rt: u8,
        rt2: u8,
        rn: u8,
        offset: i64,
        mode: Mode,
    },
}

/// Addressing mode of a load/store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `[rn, #off]`
    Offset,
    /// `[rn, #off]!`
    PreIndex,
    /// `[rn], #off`
    PostIndex,
    /// `[rn, rm{, extend {#shift}}]`: `option` as encoded (UXTW 010, LSL 011,
    /// SXTW 110, SXTX 111), `shift` 0 or the access size's log2.
    Register {
        /// The index register.
        rm: u8,
        /// Its extend.
        option: u8,
        /// Its left shift.
        shift: u8,
    },
}

/// How a load puts a narrower value into its register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Widen {
    /// LDR, LDRB, LDRH: zero-extended.
    Zero,
    /// LDRSB, LDRSH, LDRSW to an X register.
    SignTo64,
    /// LDRSB, LDRSH to a W register (the upper 32 bits are zero).
    SignTo32,
}

/// What the CPU implements beyond the base ARMv8.0-A, as far as the
/// execution of a displaced instruction depends on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cpu {
    /// FEAT_PAuth: `PACIASP` and its kin sign and check; without it they are
    /// NOPs (the hint space), so a probe hit may skip them.
    pub pointer_auth: bool,
}

impl Cpu {
    /// From ID_AA64ISAR1_EL1 and ID_AA64ISAR2_EL1: any of APA, API (ISAR1
    /// bits 7:4, 11:4) or APA3 (ISAR2 bits 15:12) non-zero.
    pub const fn from_id_regs(isar1: u64, isar2: u64) -> Cpu {
        Cpu {
            pointer_auth: (isar1 >> 4) & 0xff != 0 || (isar2 >> 12) & 0xf != 0,
        }
    }
}

const fn bits(insn: u32, hi: u32, lo: u32) -> u32 {
    (insn >> lo) & ((1 << (hi - lo + 1)) - 1)
}

fn sign_extend(v: u32, width: u32) -> i64 {
    let shift = 64 - width;
    ((u64::from(v) << shift) as i64) >> shift
}

/// `HINT #imm` (NOP, YIELD, BTI, PACIASP, ...): its immediate.
const fn hint_number(insn: u32) -> Option<u32> {
    if insn & 0xffff_f01f == 0xd503_201f {
        Some(bits(insn, 11, 5))
    } else {
        None
    }
}

/// Hints that do nothing a probe hit must reproduce on any CPU: NOP, YIELD,
/// and BTI in all its forms (a landing-pad marker: its only effect is to be
/// the target of an indirect branch, and the `HVC` that replaced it is
/// reached the same way).
const fn is_inert_hint(n: u32) -> bool {
    matches!(n, 0 | 1 | 32 | 34 | 36 | 38)
}

/// The pointer-authentication hints (`PACIASP`, `AUTIBSP`, `XPACLRI`,
/// `PACIA1716`, ...): NOPs on a CPU without FEAT_PAuth.
const fn is_pointer_auth_hint(n: u32) -> bool {
    matches!(n, 7 | 8 | 10 | 12 | 14 | 24..=31)
}

/// Decodes an instruction this module can emulate on any CPU.
pub fn decode(insn: u32) -> Option<Emul> {
    if let Some(n) = hint_number(insn) {
        return if is_inert_hint(n) { Some(Emul::Nop) } else { None };
    }
    if crate::a64::is_isb(insn) {
        return Some(Emul::Nop);
    }
    // ADD/SUB (immediate), S = 0.
    if bits(insn, 28, 23) == 0b100010 && bits(insn, 29, 29) == 0 {
        let imm = u64::from(bits(insn, 21, 10)) << if bits(insn, 22, 22) == 1 { 12 } else { 0 };
        return Some(Emul::AddSubImm {
            sf: bits(insn, 31, 31) == 1,
            sub: bits(insn, 30, 30) == 1,
            rd: bits(insn, 4, 0) as u8,
            rn: bits(insn, 9, 5) as u8,
            imm,
        });
    }
    // ORR (shifted register) with Rn = ZR, no shift: MOV (register).
    if insn & 0x7fe0_ffe0 == 0x2a00_03e0 {
        return Some(Emul::MovReg {
            sf: bits(insn, 31, 31) == 1,
            rd: bits(insn, 4, 0) as u8,
            rm: bits(insn, 20, 16) as u8,
        });
    }
    // LDR/STR/LDRS/PRFM, general registers (V = 0), immediate or register offset.
    if bits(insn, 29, 27) == 0b111 && bits(insn, 26, 26) == 0 {
        return decode_load_store(insn);
    }
    // LDP/STP (W: opc 00, X: opc 10), general registers. Bit 25 set is
    // data processing (register): ADDS/SUBS/CMP with bits 29:27 = 101.
    if bits(insn, 29, 27) == 0b101 && bits(insn, 26, 25) == 0 {
        let opc = bits(insn, 31, 30);
        let bytes: u8 = match opc {
            0b00 => 4,
            0b10 => 8,
            _ => return None,
        };
        let mode = match bits(insn, 24, 23) {
            0b01 => Mode::PostIndex,
            0b10 | 0b00 => Mode::Offset,
            _ => Mode::PreIndex,
        };
        let load = bits(insn, 22, 22) == 1;
        let (rt, rt2, rn) = (bits(insn, 4, 0) as u8, bits(insn, 14, 10) as u8, bits(insn, 9, 5) as u8);
        let offset = sign_extend(bits(insn, 21, 15), 7) * i64::from(bytes);
        if load && rt == rt2 {
            return None;
        }
        if mode != Mode::Offset && rn != 31 && (rn == rt || rn == rt2) {
            return None;
        }
        return Some(Emul::Pair {
            load,
            size: bytes,
            rt,
            rt2,
            rn,
            offset,
            mode,
        });
    }
    None
}

/// Load/store register (immediate, unscaled, or register offset) of a
/// general register: bits 29:27 = 111, V = 0.
fn decode_load_store(insn: u32) -> Option<Emul> {
    let size = bits(insn, 31, 30);
    let opc = bits(insn, 23, 22);
    let (rt, rn) = (bits(insn, 4, 0) as u8, bits(insn, 9, 5) as u8);
    let bytes = 1u8 << size;
    let (offset, mode) = match bits(insn, 25, 24) {
        0b01 => (i64::from(bits(insn, 21, 10)) * i64::from(bytes), Mode::Offset),
        0b00 if bits(insn, 21, 21) == 0 => {
            let imm9 = sign_extend(bits(insn, 20, 12), 9);
            match bits(insn, 11, 10) {
                0b01 => (imm9, Mode::PostIndex),
                0b11 => (imm9, Mode::PreIndex),
                0b00 => (imm9, Mode::Offset), // LDUR/STUR
                _ => return None,             // unprivileged forms
            }
        }
        0b00 if bits(insn, 11, 10) == 0b10 => {
            let option = bits(insn, 15, 13) as u8;
            if option & 0b010 == 0 {
                return None; // unallocated extends
            }
            let shift = if bits(insn, 12, 12) == 1 { size as u8 } else { 0 };
            let rm = bits(insn, 20, 16) as u8;
            (0, Mode::Register { rm, option, shift })
        }
        _ => return None, // atomics, LDRAA/LDRAB, ...
    };
    // PRFM: a hint with no architectural effect (PRFUM too; not the
    // pre/post-index encodings, which are unallocated).
    if size == 3 && opc == 2 {
        return if matches!(mode, Mode::PreIndex | Mode::PostIndex) {
            None
        } else {
            Some(Emul::Nop)
        };
    }
    let (load, extend) = match (opc, size) {
        (0, _) => (false, Widen::Zero),
        (1, _) => (true, Widen::Zero),
        (2, 0..=2) => (true, Widen::SignTo64),
        (3, 0..=1) => (true, Widen::SignTo32),
        _ => return None,
    };
    // Writeback into the transferred register: constrained unpredictable.
    if matches!(mode, Mode::PreIndex | Mode::PostIndex) && rn == rt && rn != 31 {
        return None;
    }
    Some(Emul::LoadStore {
        load,
        size: bytes,
        extend,
        rt,
        rn,
        offset,
        mode,
    })
}

/// How a probe hit executes the instruction its `HVC` displaced, decided
/// once when the probe goes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Execution {
    /// `MRS Xt, DAIF`: the guest's own mask bits are written (a stepped copy
    /// would see the step's masked interrupts).
    ReadDaif {
        /// Destination register (31 discards).
        rt: u8,
    },
    /// `MRS Xt, CNTVCT_EL0/CNTPCT_EL0`: the hit's own counter value is
    /// written, so guest and trace agree on the instant.
    ReadCounter {
        /// Destination register (31 discards).
        rt: u8,
    },
    /// PC-relative: simulated.
    Simulate(Sim),
    /// A common prologue form, a load or store, or a hint: emulated.
    Emulate(Emul),
    /// A base-ISA data-processing instruction that touches neither memory
    /// nor SP, a barrier, or a read of an EL1 register the hypervisor leaves
    /// alone: run by the hypervisor itself on the guest's registers and
    /// flags (see [`crate::a64::runs_at_el2`]).
    OutOfLine,
    /// Anything else: put the original back and single-step it.
    Step,
}

/// Chooses how to execute `original`, whose site classified as `class`, on
/// a CPU with features `cpu`.
pub fn plan(original: u32, class: Class, cpu: Cpu) -> Execution {
    let rt = (original & 0x1f) as u8;
    match original & !0x1f {
        0xd53b_4220 => return Execution::ReadDaif { rt },
        0xd53b_e040 | 0xd53b_e020 => return Execution::ReadCounter { rt },
        _ => {}
    }
    match class {
        Class::Simulate(sim) => Execution::Simulate(sim),
        Class::Refused(_) => Execution::Step,
        Class::RunOutOfLine => {
            if let Some(e) = decode(original) {
                Execution::Emulate(e)
            } else if hint_number(original).is_some_and(is_pointer_auth_hint) && !cpu.pointer_auth {
                Execution::Emulate(Emul::Nop)
            } else if crate::a64::runs_at_el2(original) {
                Execution::OutOfLine
            } else {
                Execution::Step
            }
        }
    }
}

/// Register n where 31 means SP.
fn reg_sp<R: RegisterFile + ?Sized>(regs: &R, n: u8) -> u64 {
    if n == 31 {
        regs.sp()
    } else {
        regs.x(n)
    }
}

fn set_reg_sp<R: RegisterFile + ?Sized>(regs: &mut R, n: u8, v: u64) {
    if n == 31 {
        regs.set_sp(v);
    } else {
        regs.set_x(n, v);
    }
}

/// The address a load/store accesses, and the base register's new value
/// when the mode writes back.
fn address<R: RegisterFile + ?Sized>(regs: &R, rn: u8, offset: i64, mode: Mode) -> (u64, Option<u64>) {
    let base = reg_sp(regs, rn);
    let moved = base.wrapping_add(offset as u64);
    match mode {
        Mode::Offset => (moved, None),
        Mode::PreIndex => (moved, Some(moved)),
        Mode::PostIndex => (base, Some(moved)),
        Mode::Register { rm, option, shift } => {
            let m = regs.xzr(rm);
            let index = match option {
                0b010 => m & 0xffff_ffff,        // UXTW
                0b110 => m as i32 as i64 as u64, // SXTW
                _ => m,                          // LSL (UXTX), SXTX
            };
            (base.wrapping_add(index << shift), None)
        }
    }
}

fn sign_extend_u64(v: u64, bits: u32) -> u64 {
    let shift = 64 - bits;
    (((v << shift) as i64) >> shift) as u64
}

fn truncate(v: u64, bytes: u8) -> u64 {
    if bytes >= 8 {
        v
    } else {
        v & ((1u64 << (u32::from(bytes) * 8)) - 1)
    }
}

/// Executes `insn` (at `regs.pc`) if it is one of the emulated forms.
pub fn emulate<R, V>(insn: u32, regs: &mut R, mem: &mut V) -> Result<bool, AccessError>
where
    R: RegisterFile + ?Sized,
    V: VirtMem + ?Sized,
{
    match decode(insn) {
        Some(e) => emulate_decoded(&e, regs, mem).map(|()| true),
        None => Ok(false),
    }
}

/// Executes an instruction [`decode`] accepted (decode once when the probe
/// goes in, execute on every hit). Memory is accessed before any register
/// changes, so on error `regs` is untouched.
pub fn emulate_decoded<R, V>(e: &Emul, regs: &mut R, mem: &mut V) -> Result<(), AccessError>
where
    R: RegisterFile + ?Sized,
    V: VirtMem + ?Sized,
{
    // By reference: a hit reads only the fields of its own form.
    match *e {
        Emul::Nop => {}
        Emul::AddSubImm { sf, sub, rd, rn, imm } => {
            let a = reg_sp(regs, rn);
            let r = if sub { a.wrapping_sub(imm) } else { a.wrapping_add(imm) };
            set_reg_sp(regs, rd, if sf { r } else { r & 0xffff_ffff });
        }
        Emul::MovReg { sf, rd, rm } => {
            let v = regs.xzr(rm);
            regs.set_xzr(rd, if sf { v } else { v & 0xffff_ffff });
        }
        Emul::LoadStore {
            load,
            size,
            extend,
            rt,
            rn,
            offset,
            mode,
        } => {
            let (addr, writeback) = address(regs, rn, offset, mode);
            let va = GuestVirtAddr::new(addr);
            let n = usize::from(size);
            if load {
                let mut b = [0u8; 8];
                mem.read_virt(va, &mut b[..n])?;
                let v = u64::from_le_bytes(b);
                let bits = u32::from(size) * 8;
                let v = match extend {
                    Widen::Zero => v,
                    Widen::SignTo64 => sign_extend_u64(v, bits),
                    Widen::SignTo32 => sign_extend_u64(v, bits) & 0xffff_ffff,
                };
                regs.set_xzr(rt, v);
            } else {
                let v = truncate(regs.xzr(rt), size).to_le_bytes();
                mem.write_virt(va, &v[..n])?;
            }
            if let Some(base) = writeback {
                set_reg_sp(regs, rn, base);
            }
        }
        Emul::Pair {
            load,
            size,
            rt,
            rt2,
            rn,
            offset,
            mode,
        } => {
            let (addr, writeback) = address(regs, rn, offset, mode);
            let va = GuestVirtAddr::new(addr);
            if size == 8 {
                // The common case (stp x29, x30, ...): two whole words.
                if load {
                    let mut b = [0u8; 16];
                    mem.read_virt(va, &mut b)?;
                    let (lo, hi) = b.split_at(8);
                    regs.set_xzr(rt, u64::from_le_bytes(lo.try_into().unwrap_or_default()));
                    regs.set_xzr(rt2, u64::from_le_bytes(hi.try_into().unwrap_or_default()));
                } else {
                    let v = (u128::from(regs.xzr(rt2)) << 64 | u128::from(regs.xzr(rt))).to_le_bytes();
                    mem.write_virt(va, &v)?;
                }
            } else {
                // W registers: two 32-bit halves of one doubleword.
                if load {
                    let mut b = [0u8; 8];
                    mem.read_virt(va, &mut b)?;
                    let v = u64::from_le_bytes(b);
                    regs.set_xzr(rt, v & 0xffff_ffff);
                    regs.set_xzr(rt2, v >> 32);
                } else {
                    let v = truncate(regs.xzr(rt2), 4) << 32 | truncate(regs.xzr(rt), 4);
                    mem.write_virt(va, &v.to_le_bytes())?;
                }
            }
            if let Some(base) = writeback {
                set_reg_sp(regs, rn, base);
            }
        }
    }
    regs.set_pc(regs.pc().wrapping_add(4));
    Ok(())
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::a64::Regs;
    use std::collections::BTreeMap;

    /// Flat guest memory: VA = PA, byte map.
    #[derive(Default)]
    struct Flat(BTreeMap<u64, u8>);

    impl VirtRead for Flat {
        fn read_virt(&self, va: GuestVirtAddr, buf: &mut [u8]) -> Result<(), AccessError> {
            for (i, b) in buf.iter_mut().enumerate() {
                *b = *self.0.get(&(va.raw() + i as u64)).unwrap_or(&0);
            }
            Ok(())
        }
    }
    impl VirtMem for Flat {
        fn write_virt(&mut self, va: GuestVirtAddr, data: &[u8]) -> Result<(), AccessError> {
            for (i, b) in data.iter().enumerate() {
                self.0.insert(va.raw() + i as u64, *b);
            }
            Ok(())
        }
    }

    fn regs() -> Regs {
        let mut r = Regs {
            sp: 0x8000,
            pc: 0x1000,
            ..Regs::default()
        };
        for i in 0..31 {
            r.x[i] = 0x1111_0000_0000_0000 + i as u64;
        }
        r
    }

    fn run(insn: u32, r: &mut Regs, m: &mut Flat) {
        assert!(emulate(insn, r, m).unwrap(), "{insn:#010x} not emulated");
    }

    // Encodings from GNU as (aarch64-linux-gnu-as), as in the RTOS and Linux prologues.
    #[test]
    fn prologue_instructions() {
        let (mut r, mut m) = (regs(), Flat::default());
        run(0xd10443ff, &mut r, &mut m); // sub sp, sp, #0x110
        assert_eq!((r.sp, r.pc), (0x8000 - 0x110, 0x1004));
        let mut r = regs();
        run(0xa9bf7bfd, &mut r, &mut m); // stp x29, x30, [sp, #-16]!
        assert_eq!(r.sp, 0x8000 - 16);
        let mut b = [0u8; 16];
        m.read_virt(GuestVirtAddr::new(0x8000 - 16), &mut b).unwrap();
        assert_eq!(u64::from_le_bytes(b[..8].try_into().unwrap()), r.x[29]);
        assert_eq!(u64::from_le_bytes(b[8..].try_into().unwrap()), r.x[30]);
        run(0x910003fd, &mut r, &mut m); // mov x29, sp  (add x29, sp, #0)
        assert_eq!(r.x[29], r.sp);
        run(0xaa0003f3, &mut r, &mut m); // mov x19, x0
        assert_eq!(r.x[19], r.x[0]);
        run(0xf9000bf3, &mut r, &mut m); // str x19, [sp, #16]
        let mut b = [0u8; 8];
        m.read_virt(GuestVirtAddr::new(r.sp + 16), &mut b).unwrap();
        assert_eq!(u64::from_le_bytes(b), r.x[19]);
        let sp = r.sp;
        run(0xa8c17bfd, &mut r, &mut m); // ldp x29, x30, [sp], #16
        assert_eq!(r.sp, sp + 16);
        assert_eq!(r.x[30], regs().x[30]);
        run(0xf81f0ffe, &mut r, &mut m); // str x30, [sp, #-16]!
        assert_eq!(r.sp, sp);
        run(0xb9400fe1, &mut r, &mut m); // ldr w1, [sp, #12]
        assert_eq!(r.x[1], regs().x[30] >> 32, "the upper half of the x30 stored at sp + 8");
        run(0xd503201f, &mut r, &mut m); // nop
        run(0x11000421, &mut r, &mut m); // add w1, w1, #1
        assert_eq!(r.x[1] >> 32, 0, "32-bit results are zero-extended");
    }

    #[test]
    fn w_register_pairs_and_loads() {
        let (mut r, mut m) = (regs(), Flat::default());
        r.x[1] = 0xaaaa_bbbb_1234_5678;
        r.x[2] = 0xcccc_dddd_9abc_def0;
        run(0x29bf0be1, &mut r, &mut m); // stp w1, w2, [sp, #-8]!
        assert_eq!(r.sp, 0x8000 - 8);
        let mut b = [0u8; 8];
        m.read_virt(GuestVirtAddr::new(r.sp), &mut b).unwrap();
        assert_eq!(u64::from_le_bytes(b), 0x9abc_def0_1234_5678);
        run(0x294013e3, &mut r, &mut m); // ldp w3, w4, [sp]
        assert_eq!((r.x[3], r.x[4]), (0x1234_5678, 0x9abc_def0));
    }

    /// Memory that refuses every access.
    struct Unmapped;
    impl VirtRead for Unmapped {
        fn read_virt(&self, va: GuestVirtAddr, _: &mut [u8]) -> Result<(), AccessError> {
            Err(AccessError::Memory {
                va,
                completed: 0,
                error: crate::memory::MemError::Unmapped(crate::addr::PhysAddr::new(va.raw())),
            })
        }
    }
    impl VirtMem for Unmapped {
        fn write_virt(&mut self, va: GuestVirtAddr, _: &[u8]) -> Result<(), AccessError> {
            self.read_virt(va, &mut [])
        }
    }

    #[test]
    fn a_faulting_access_leaves_the_registers_alone() {
        for insn in [0xa9bf7bfdu32, 0xa8c17bfd, 0xf81f0ffe, 0xb9400fe1] {
            let mut r = regs();
            let before = r;
            assert!(emulate(insn, &mut r, &mut Unmapped).is_err(), "{insn:#010x}");
            assert_eq!(r, before, "{insn:#010x}");
        }
    }

    #[test]
    fn narrow_signed_and_register_offset_loads_and_stores() {
        let (mut r, mut m) = (regs(), Flat::default());
        m.write_virt(
            GuestVirtAddr::new(0x5000),
            &[0x81, 0xff, 0x34, 0x12, 0xf0, 0xde, 0xbc, 0x9a],
        )
        .unwrap();
        r.x[1] = 0x5000;
        run(0x39400c20, &mut r, &mut m); // ldrb w0, [x1, #3]
        assert_eq!(r.x[0], 0x12);
        r.x[1] = 0x5002;
        run(0x789fec20, &mut r, &mut m); // ldrsh x0, [x1, #-2]!
        assert_eq!((r.x[0], r.x[1]), (0xffff_ffff_ffff_ff81, 0x5000));
        run(0x38c01420, &mut r, &mut m); // ldrsb w0, [x1], #1
        assert_eq!((r.x[0], r.x[1]), (0xffff_ff81, 0x5001));
        r.x[1] = 0x4ff8;
        r.x[2] = 1;
        run(0xf8627820, &mut r, &mut m); // ldr x0, [x1, x2, lsl #3]
        assert_eq!(r.x[0], 0x9abc_def0_1234_ff81);
        r.x[1] = 0x5004;
        r.x[2] = 0xffff_fffc; // -4 as a W register
        run(0xb862c820, &mut r, &mut m); // ldr w0, [x1, w2, sxtw]
        assert_eq!(r.x[0], 0x1234_ff81);
        r.x[3] = 0x1_2345_6777;
        r.x[4] = 0x5000;
        r.x[5] = 7;
        run(0x38256883, &mut r, &mut m); // strb w3, [x4, x5]
        let mut b = [0u8; 8];
        m.read_virt(GuestVirtAddr::new(0x5000), &mut b).unwrap();
        assert_eq!(u64::from_le_bytes(b), 0x77bc_def0_1234_ff81);
        r.sp = 0x5000;
        run(0xb9800be1, &mut r, &mut m); // ldrsw x1, [sp, #8] (reads zeros past the bytes written)
        assert_eq!(r.x[1], 0);
        let before = r;
        run(0xf9802000, &mut r, &mut m); // prfm pldl1keep, [x0, #64]
        assert_eq!((r.x, r.sp), (before.x, before.sp));
    }

    /// Over a sweep of encodings: whatever `decode` accepts is an allocated,
    /// position-independent instruction of the class its variant names, and
    /// whatever runs at EL2 is data processing or a system instruction.
    #[test]
    fn decoded_forms_agree_with_the_classifier() {
        let mut w: u32 = 0x2545_f491;
        for _ in 0..4_000_000 {
            // xorshift32
            w ^= w << 13;
            w ^= w >> 17;
            w ^= w << 5;
            let class = crate::a64::classify(w);
            let memory = w & (1 << 27) != 0 && w & (1 << 25) == 0;
            match decode(w) {
                Some(Emul::LoadStore { .. } | Emul::Pair { .. }) => {
                    assert!(memory && class == Class::RunOutOfLine, "{w:#010x} {class:?}")
                }
                Some(_) => assert_eq!(class, Class::RunOutOfLine, "{w:#010x}"),
                None => {}
            }
            if crate::a64::runs_at_el2(w) {
                let system = w & 0xffc0_0000 == 0xd500_0000;
                assert!(
                    w & 0x0e00_0000 == 0x0a00_0000 || w & 0x1c00_0000 == 0x1000_0000 || system,
                    "{w:#010x}"
                );
            }
        }
    }

    #[test]
    fn hints_are_skipped_where_they_do_nothing() {
        let plain = Cpu::default();
        let pac = Cpu { pointer_auth: true };
        let plan_on = |insn: u32, cpu| plan(insn, crate::a64::classify(insn), cpu);
        for insn in [0xd503201fu32, 0xd503203f, 0xd503245f, 0xd503241f, 0xd5033fdf] {
            // nop, yield, bti c, bti, isb
            assert_eq!(plan_on(insn, pac), Execution::Emulate(Emul::Nop), "{insn:#010x}");
        }
        for insn in [0xd503233fu32, 0xd50323bf] {
            // paciasp, autiasp: NOPs only without pointer authentication
            assert_eq!(plan_on(insn, plain), Execution::Emulate(Emul::Nop), "{insn:#010x}");
            assert_eq!(plan_on(insn, pac), Execution::Step, "{insn:#010x}");
        }
        assert_eq!(Cpu::from_id_regs(0, 0), plain);
        assert_eq!(Cpu::from_id_regs(0x10, 0), pac, "APA");
        assert_eq!(Cpu::from_id_regs(0x100, 0), pac, "API");
        assert_eq!(Cpu::from_id_regs(0, 0x1000), pac, "APA3");
        assert_eq!(Cpu::from_id_regs(0x1_0000_0000, 0), plain, "other fields");
    }

    #[test]
    fn data_processing_without_sp_runs_out_of_line() {
        let plan_of = |insn: u32| plan(insn, crate::a64::classify(insn), Cpu::default());
        for insn in [
            0xf100141fu32, // cmp x0, #5
            0xb1000441,    // adds x1, x2, #1
            0x92401c20,    // and x0, x1, #0xff
            0xf2401c3f,    // tst x1, #0xff
            0xd2824680,    // mov x0, #0x1234
            0xf2a00020,    // movk x0, #0x1, lsl #16
            0xd3442c41,    // ubfx x1, x2, #4, #8
            0x93c20c20,    // extr x0, x1, x2, #3
            0x8b020020,    // add x0, x1, x2
            0x8b224020,    // add x0, x1, w2, uxtw
            0xab22c03f,    // cmn x1, w2, sxtw
            0x9b020c20,    // madd x0, x1, x2, x3
            0x9a020020,    // adc x0, x1, x2
            0xfa411004,    // ccmp x0, x1, #4, ne
            0x9a820020,    // csel x0, x1, x2, eq
            0x9ac20820,    // udiv x0, x1, x2
            0xdac00c20,    // rev x0, x1
            0x5ac01020,    // clz w0, w1
            0xd50339bf,    // dmb ishld
            0xd5033f9f,    // dsb sy
            0xd5384100,    // mrs x0, sp_el0
            0xd538d082,    // mrs x2, tpidr_el1
            0xd53be000,    // mrs x0, cntfrq_el0
            0xd5385201,    // mrs x1, esr_el1
            0xd53bd040,    // mrs x0, tpidr_el0
        ] {
            assert_eq!(plan_of(insn), Execution::OutOfLine, "{insn:#010x}");
        }
        for insn in [
            0xf10043ffu32, // cmp sp, #16: SP
            0x92401c3f,    // and sp, x1, #0xff: writes SP
            0x8b2243e0,    // add x0, sp, w2, uxtw: SP
            0x1ac24820,    // crc32w w0, w1, w2: optional (CRC32)
            0xdac10020,    // pacia x0, x1: pointer authentication
            0xd53800a0,    // mrs x0, mpidr_el1: virtualised (VMPIDR_EL2)
            0xd5384240,    // mrs x0, currentel: reads 2 at EL2
            0xd538cc00,    // mrs x0, icc_iar1_el1: would acknowledge an interrupt
            0xc8dffc02,    // ldar x2, [x0]: memory
        ] {
            assert_eq!(plan_of(insn), Execution::Step, "{insn:#010x}");
        }
    }

    #[test]
    fn plans_follow_the_instruction() {
        use crate::a64::classify_site;
        let plan_of = |insn: u32| plan(insn, classify_site(&[insn], 0), Cpu::default());
        assert_eq!(plan_of(0xd53b4220), Execution::ReadDaif { rt: 0 }); // mrs x0, daif
        assert_eq!(plan_of(0xd53be041), Execution::ReadCounter { rt: 1 }); // mrs x1, cntvct_el0
        assert_eq!(plan_of(0xd53be022), Execution::ReadCounter { rt: 2 }); // mrs x2, cntpct_el0
        assert!(matches!(plan_of(0x94000010), Execution::Simulate(_))); // bl .+64
        assert!(matches!(plan_of(0xa9bf7bfd), Execution::Emulate(Emul::Pair { .. }))); // stp x29, x30, [sp, #-16]!
        assert_eq!(plan_of(0x8b020020), Execution::OutOfLine); // add x0, x1, x2
    }

    #[test]
    fn leaves_other_instructions_alone() {
        let (mut r, mut m) = (regs(), Flat::default());
        let before = r;
        for insn in [
            0xb1000421u32, // adds x1, x1, #1 (flags)
            0x94000000,    // bl (PC-relative: simulated elsewhere)
            0xd63f0020,    // blr x1
            0xc85f7c20,    // ldxr x0, [x1]
            0xa9c10420,    // ldp x0, x1, [x1, #16]! (writeback into a loaded register)
            0x8b020020,    // add x0, x1, x2 (register form)
            0xeb02003f,    // cmp x1, x2: bits 29:27 = 101 like STP, but data processing
            0xab22c03f,    // cmn x1, w2, sxtw: the same
        ] {
            assert!(!emulate(insn, &mut r, &mut m).unwrap(), "{insn:#010x}");
            assert_eq!(r, before);
        }
    }
}
