//! A64 probe-site analysis: decode the instruction a probe would displace,
//! decide how the hypervisor may execute it, and simulate the PC-relative
//! ones.
//!
//! A probe replaces one instruction with `HVC #imm`. After the trap the
//! displaced instruction must still take effect. [`classify`] says how:
//!
//! - [`Class::RunOutOfLine`]: the instruction does not depend on its own
//!   address and can run from another place (an out-of-line slot, or
//!   single-stepped after restoring it).
//! - [`Class::Simulate`]: it reads or writes the PC (branches, ADR/ADRP,
//!   literal loads) and is executed by [`simulate`] on the saved registers.
//! - [`Class::Refused`]: no probe may go there (see [`Refusal`]).
//!
//! The decoder follows the top-level A64 encoding tables of the Arm ARM. It
//! is deliberately conservative: an encoding it does not recognise as
//! allocated is [`Refusal::Unallocated`], and classes it does not analyse
//! (SVE, SME, SIMD&FP data processing, memory copy/set, 128-bit system
//! registers) are [`Refusal::Unsupported`]. SIMD&FP literal loads
//! (`LDR St/Dt/Qt, label`) are refused because [`Regs`] holds no vector
//! registers; `PRFM (literal)` is simulated as a no-op.

use crate::addr::GuestVirtAddr;
use crate::memory::GuestMemory;
use crate::walk::{Access, AccessError, Translator};

/// How a displaced instruction can be executed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Position-independent: run it elsewhere (out of line or stepped).
    RunOutOfLine,
    /// PC-relative: simulate it with [`simulate`].
    Simulate(Sim),
    /// No probe may go here.
    Refused(Refusal),
}

/// Why a site cannot take a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A load/store exclusive: the trap would clear the exclusive monitor.
    #[error("exclusive load/store (the probe trap would break the exclusive monitor)")]
    Exclusive,
    /// Between a load-exclusive and its store-exclusive.
    #[error("inside a load-exclusive/store-exclusive sequence")]
    InExclusiveSequence,
    /// SVC, HVC, SMC, BRK, HLT, DCPSn, TCANCEL.
    #[error("exception-generating instruction")]
    ExceptionGenerating,
    /// ERET, ERETAA/AB, DRPS.
    #[error("exception return")]
    ExceptionReturn,
    /// MSR (register): a system-register write.
    #[error("system-register write (MSR)")]
    SystemRegisterWrite,
    /// MSR (immediate): a PSTATE field write (DAIF, SPSel, PAN, ...).
    #[error("PSTATE write (MSR immediate)")]
    PstateWrite,
    /// A pointer-authenticated branch (BRAA, BLRAA, RETAA, ...): its target
    /// check needs the guest's keys.
    #[error("pointer-authenticated branch")]
    PointerAuthBranch,
    /// LDR (literal) to a SIMD&FP register: not simulated (no vector state).
    #[error("SIMD&FP literal load")]
    SimdFpLiteral,
    /// An instruction class this decoder does not analyse.
    #[error("instruction class not analysed (SVE/SME/SIMD&FP data processing/...)")]
    Unsupported,
    /// Unallocated or reserved encoding (includes UDF).
    #[error("unallocated encoding")]
    Unallocated,
    /// A CONSTRAINED UNPREDICTABLE encoding (for example a load pair whose
    /// two destinations are the same register).
    #[error("constrained unpredictable encoding")]
    Unpredictable,
}

/// The operand size of a literal load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiteralSize {
    /// `LDR Wt`: 32 bits, zero-extended.
    W,
    /// `LDR Xt`: 64 bits.
    X,
    /// `LDRSW Xt`: 32 bits, sign-extended.
    Sw,
}

/// A condition code (B.cond, and the 4-bit field of other instructions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Cond {
    /// Equal (Z).
    Eq = 0,
    /// Not equal.
    Ne,
    /// Carry set / unsigned higher or same.
    Cs,
    /// Carry clear / unsigned lower.
    Cc,
    /// Negative.
    Mi,
    /// Positive or zero.
    Pl,
    /// Overflow.
    Vs,
    /// No overflow.
    Vc,
    /// Unsigned higher.
    Hi,
    /// Unsigned lower or same.
    Ls,
    /// Signed greater or equal.
    Ge,
    /// Signed less than.
    Lt,
    /// Signed greater than.
    Gt,
    /// Signed less or equal.
    Le,
    /// Always.
    Al,
    /// Always (encoded as "never", behaves as always in A64).
    Nv,
}

impl Cond {
    /// The condition for a 4-bit field.
    pub const fn from_bits(b: u32) -> Cond {
        const ALL: [Cond; 16] = [
            Cond::Eq,
            Cond::Ne,
            Cond::Cs,
            Cond::Cc,
            Cond::Mi,
            Cond::Pl,
            Cond::Vs,
            Cond::Vc,
            Cond::Hi,
            Cond::Ls,
            Cond::Ge,
            Cond::Lt,
            Cond::Gt,
            Cond::Le,
            Cond::Al,
            Cond::Nv,
        ];
        ALL[(b & 0xf) as usize]
    }

    /// Whether the condition holds for NZCV in bits 31:28 of `nzcv`.
    pub const fn holds(self, nzcv: u32) -> bool {
        let n = nzcv >> 31 & 1 == 1;
        let z = nzcv >> 30 & 1 == 1;
        let c = nzcv >> 29 & 1 == 1;
        let v = nzcv >> 28 & 1 == 1;
        let base = match (self as u8) >> 1 {
            0 => z,
            1 => c,
            2 => n,
            3 => v,
            4 => c && !z,
            5 => n == v,
            6 => n == v && !z,
            _ => true,
        };
        // Odd conditions invert, except NV (1111), which is "always" too.
        if (self as u8) & 1 == 1 && (self as u8) != 15 {
            !base
        } else {
            base
        }
    }
}

/// A decoded PC-relative instruction, ready to simulate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sim {
    /// `B label`.
    B {
        /// Byte offset from the instruction.
        offset: i64,
    },
    /// `BL label`.
    Bl {
        /// Byte offset from the instruction.
        offset: i64,
    },
    /// `B.cond label` (and `BC.cond`, which behaves the same).
    BCond {
        /// The condition.
        cond: Cond,
        /// Byte offset from the instruction.
        offset: i64,
    },
    /// `CBZ`/`CBNZ`.
    Cbz {
        /// 64-bit register (else the low 32 bits are tested).
        sf: bool,
        /// CBNZ (branch if non-zero).
        nonzero: bool,
        /// The register tested (31 = zero register).
        rt: u8,
        /// Byte offset from the instruction.
        offset: i64,
    },
    /// `TBZ`/`TBNZ`.
    Tbz {
        /// The bit tested (0..=63).
        bit: u8,
        /// TBNZ (branch if the bit is set).
        nonzero: bool,
        /// The register tested.
        rt: u8,
        /// Byte offset from the instruction.
        offset: i64,
    },
    /// `ADR Xd, label`.
    Adr {
        /// Destination (31 = discarded).
        rd: u8,
        /// Byte offset from the instruction.
        offset: i64,
    },
    /// `ADRP Xd, label`.
    Adrp {
        /// Destination (31 = discarded).
        rd: u8,
        /// Offset from the instruction's 4 KiB page (a multiple of 4096).
        offset: i64,
    },
    /// `LDR Wt/Xt, label` and `LDRSW Xt, label`.
    LdrLiteral {
        /// Operand size.
        size: LiteralSize,
        /// Destination (31 = discarded).
        rt: u8,
        /// Byte offset from the instruction.
        offset: i64,
    },
    /// `PRFM (literal)`: a hint, simulated as a no-op.
    PrfmLiteral,
    /// `BR Xn`.
    Br {
        /// Target register.
        rn: u8,
    },
    /// `BLR Xn`.
    Blr {
        /// Target register.
        rn: u8,
    },
    /// `RET Xn`.
    Ret {
        /// Target register.
        rn: u8,
    },
}

const fn field(w: u32, hi: u32, lo: u32) -> u32 {
    (w >> lo) & ((1 << (hi - lo + 1)) - 1)
}

const fn sext(v: u32, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((v as i64) << shift) >> shift
}

/// Classifies one instruction word.
pub const fn classify(w: u32) -> Class {
    use Class::*;
    use Refusal::*;
    match field(w, 28, 25) {
        0b0000 => {
            if field(w, 31, 29) == 0 && field(w, 24, 16) == 0 {
                Refused(Unallocated) // UDF
            } else {
                Refused(Unsupported) // SME
            }
        }
        0b0010 => Refused(Unsupported), // SVE
        0b0001 | 0b0011 => Refused(Unallocated),
        0b1000 | 0b1001 => dp_immediate(w),
        0b1010 | 0b1011 => branch_system(w),
        0b0101 | 0b1101 => dp_register(w),
        0b0111 | 0b1111 => Refused(Unsupported), // SIMD&FP data processing
        _ => load_store(w),
    }
}

const fn allocated_if(ok: bool) -> Class {
    if ok {
        Class::RunOutOfLine
    } else {
        Class::Refused(Refusal::Unallocated)
    }
}

const fn dp_immediate(w: u32) -> Class {
    let sf = field(w, 31, 31);
    match field(w, 25, 23) {
        0b000 | 0b001 => {
            let imm = (field(w, 23, 5) << 2) | field(w, 30, 29);
            let rd = field(w, 4, 0) as u8;
            if field(w, 31, 31) == 0 {
                Class::Simulate(Sim::Adr {
                    rd,
                    offset: sext(imm, 21),
                })
            } else {
                Class::Simulate(Sim::Adrp {
                    rd,
                    offset: sext(imm, 21) << 12,
                })
            }
        }
        0b010 => Class::RunOutOfLine, // ADD/SUB (immediate)
        // ADDG/SUBG (immediate, with tags): sf=1, S=0, bit 22 clear, op3=00.
        0b011 => allocated_if(sf == 1 && field(w, 29, 29) == 0 && field(w, 22, 22) == 0 && field(w, 15, 14) == 0),
        // Logical (immediate): N=1 needs sf=1; the mask must be encodable.
        0b100 => allocated_if(!(sf == 0 && field(w, 22, 22) == 1) && bitmask_ok(field(w, 22, 22), field(w, 15, 10))),
        // Move wide: opc=01 unallocated; hw>=2 needs sf=1.
        0b101 => allocated_if(field(w, 30, 29) != 0b01 && !(sf == 0 && field(w, 22, 21) >= 2)),
        // Bitfield: opc=11 unallocated; N must equal sf; 32-bit immr/imms < 32.
        0b110 => allocated_if(
            field(w, 30, 29) != 0b11
                && field(w, 22, 22) == sf
                && !(sf == 0 && (field(w, 21, 21) == 1 || field(w, 15, 15) == 1)),
        ),
        // Extract: op21=00, o0=0, N=sf, 32-bit imms < 32.
        _ => allocated_if(
            field(w, 30, 29) == 0
                && field(w, 21, 21) == 0
                && field(w, 22, 22) == sf
                && !(sf == 0 && field(w, 15, 15) == 1),
        ),
    }
}

/// Whether N:imms encode a valid logical-immediate element
/// (DecodeBitMasks: an element size exists and the element is not all ones).
const fn bitmask_ok(n: u32, imms: u32) -> bool {
    let combined = (n << 6) | (!imms & 0x3f);
    if combined == 0 {
        return false;
    }
    let len = 31 - combined.leading_zeros();
    if len < 1 {
        return false;
    }
    let levels = (1 << len) - 1;
    imms & levels != levels
}

const fn branch_system(w: u32) -> Class {
    use Class::*;
    use Refusal::*;
    let imm26 = sext(field(w, 25, 0), 26) * 4;
    let imm19 = sext(field(w, 23, 5), 19) * 4;
    let rt = field(w, 4, 0) as u8;
    if w & 0x7C00_0000 == 0x1400_0000 {
        return if w >> 31 == 0 {
            Simulate(Sim::B { offset: imm26 })
        } else {
            Simulate(Sim::Bl { offset: imm26 })
        };
    }
    if w & 0x7E00_0000 == 0x3400_0000 {
        return Simulate(Sim::Cbz {
            sf: w >> 31 == 1,
            nonzero: field(w, 24, 24) == 1,
            rt,
            offset: imm19,
        });
    }
    if w & 0x7E00_0000 == 0x3600_0000 {
        let bit = ((field(w, 31, 31) << 5) | field(w, 23, 19)) as u8;
        let offset = sext(field(w, 18, 5), 14) * 4;
        return Simulate(Sim::Tbz {
            bit,
            nonzero: field(w, 24, 24) == 1,
            rt,
            offset,
        });
    }
    if w & 0xFF00_0000 == 0x5400_0000 {
        // B.cond (o0=0) and BC.cond (o0=1, FEAT_HBC) branch identically.
        return Simulate(Sim::BCond {
            cond: Cond::from_bits(field(w, 3, 0)),
            offset: imm19,
        });
    }
    if w & 0xFF00_0000 == 0xD400_0000 {
        let allocated = matches!(
            (field(w, 23, 21), field(w, 4, 2), field(w, 1, 0)),
            (0b000, 0, 1..=3) | (0b001, 0, 0) | (0b010, 0, 0) | (0b011, 0, 0) | (0b101, 0, 1..=3)
        );
        return Refused(if allocated { ExceptionGenerating } else { Unallocated });
    }
    if w & 0xFFC0_0000 == 0xD500_0000 {
        return system(w);
    }
    if w & 0xFFC0_0000 == 0xD540_0000 {
        return Refused(Unsupported); // SYSP/MSRR/MRRS (128-bit system registers)
    }
    if w & 0xFE00_0000 == 0xD600_0000 {
        return branch_register(w);
    }
    Refused(Unallocated)
}

const fn system(w: u32) -> Class {
    use Class::*;
    use Refusal::*;
    let l = field(w, 21, 21);
    let op0 = field(w, 20, 19);
    let crn = field(w, 15, 12);
    let rt = field(w, 4, 0);
    match (op0, l) {
        (0b00, 0) => match crn {
            0b0010 if rt == 31 => RunOutOfLine, // hints (NOP, YIELD, WFI, BTI, PACIASP, ...)
            // Barriers: CLREX, DSB, DMB, ISB, SB, (DSB nXS: op2=001).
            0b0011 if rt == 31 => allocated_if(field(w, 7, 5) != 0b000 && field(w, 7, 5) != 0b011),
            0b0100 if rt == 31 => Refused(PstateWrite),
            _ => Refused(Unallocated),
        },
        (0b01, _) => RunOutOfLine, // SYS/SYSL: DC, IC, AT, TLBI, ...
        (_, 0) if op0 >= 2 => Refused(SystemRegisterWrite),
        (_, 1) if op0 >= 2 => RunOutOfLine, // MRS
        _ => Refused(Unallocated),
    }
}

const fn branch_register(w: u32) -> Class {
    use Class::*;
    use Refusal::*;
    let opc = field(w, 24, 21);
    let op2 = field(w, 20, 16);
    let op3 = field(w, 15, 10);
    let rn = field(w, 9, 5) as u8;
    let op4 = field(w, 4, 0);
    if op2 != 0b11111 {
        return Refused(Unallocated);
    }
    match (opc, op3, op4) {
        (0b0000, 0, 0) => Simulate(Sim::Br { rn }),
        (0b0001, 0, 0) => Simulate(Sim::Blr { rn }),
        (0b0010, 0, 0) => Simulate(Sim::Ret { rn }),
        // BRAAZ/BRABZ, BLRAAZ/BLRABZ (op4 = 11111), RETAA/RETAB.
        (0b0000 | 0b0001, 0b000010 | 0b000011, 0b11111) => Refused(PointerAuthBranch),
        (0b0010, 0b000010 | 0b000011, 0b11111) if rn == 31 => Refused(PointerAuthBranch),
        // BRAA/BRAB, BLRAA/BLRAB (register modifier).
        (0b1000 | 0b1001, 0b000010 | 0b000011, _) => Refused(PointerAuthBranch),
        // ERET, ERETAA/ERETAB, DRPS.
        (0b0100, 0 | 0b000010 | 0b000011, 0) if rn == 31 => Refused(ExceptionReturn),
        (0b0100, 0b000010 | 0b000011, 0b11111) if rn == 31 => Refused(ExceptionReturn),
        (0b0101, 0, 0) if rn == 31 => Refused(ExceptionReturn),
        _ => Refused(Unallocated),
    }
}

const fn load_store(w: u32) -> Class {
    use Class::*;
    use Refusal::*;
    let size = field(w, 31, 30);
    let v = field(w, 26, 26);
    let op2 = field(w, 24, 23);
    let opc = field(w, 23, 22);
    match field(w, 29, 28) {
        0b00 => {
            if v == 1 {
                return simd_structures(w);
            }
            let rs = field(w, 20, 16);
            let rt2 = field(w, 14, 10);
            let rt = field(w, 4, 0);
            match op2 {
                // Exclusive register (o1=0) / pair (o1=1, size 1x); CASP (o1=1, size 0x).
                0b00 => {
                    if field(w, 21, 21) == 1 && size < 2 {
                        // CASP: Rt2 = 11111, even register pairs.
                        allocated_if(rt2 == 31 && rs & 1 == 0 && rt & 1 == 0)
                    } else {
                        Refused(Exclusive)
                    }
                }
                // Ordered (LDAR, STLR, LDLAR, STLLR): Rs = Rt2 = 11111.
                0b01 if field(w, 21, 21) == 0 => allocated_if(rs == 31 && rt2 == 31),
                // CAS: Rt2 = 11111.
                0b01 => allocated_if(rt2 == 31),
                // Memory tags (LDG, STG, ...).
                _ => allocated_if(field(w, 31, 24) == 0b1101_1001 && field(w, 21, 21) == 1),
            }
        }
        0b01 => {
            if field(w, 24, 24) == 0 {
                // Load register (literal).
                let rt = field(w, 4, 0) as u8;
                let offset = sext(field(w, 23, 5), 19) * 4;
                match (field(w, 31, 30), v) {
                    (0b00, 0) => Simulate(Sim::LdrLiteral {
                        size: LiteralSize::W,
                        rt,
                        offset,
                    }),
                    (0b01, 0) => Simulate(Sim::LdrLiteral {
                        size: LiteralSize::X,
                        rt,
                        offset,
                    }),
                    (0b10, 0) => Simulate(Sim::LdrLiteral {
                        size: LiteralSize::Sw,
                        rt,
                        offset,
                    }),
                    (0b11, 0) => Simulate(Sim::PrfmLiteral),
                    (0b11, 1) => Refused(Unallocated),
                    _ => Refused(SimdFpLiteral),
                }
            } else if field(w, 21, 21) == 0 && field(w, 11, 10) == 0 && v == 0 {
                // LDAPUR/STLUR (RCpc, unscaled).
                allocated_if(!((opc == 0b10 && size == 0b11) || (opc == 0b11 && size >= 2)))
            } else {
                Refused(Unsupported) // memory copy/set (CPY*, SET*) and others
            }
        }
        0b10 => {
            // Load/store pair (no-allocate, post-index, offset, pre-index).
            let l = field(w, 22, 22);
            let ok = match (size, v) {
                (0b11, _) => false,
                (0b01, 0) => op2 != 0b00, // LDPSW (L=1), STGP (L=0): no no-allocate form
                _ => true,
            };
            if !ok {
                return Refused(Unallocated);
            }
            let (rt, rn, rt2) = (field(w, 4, 0), field(w, 9, 5), field(w, 14, 10));
            let writeback = op2 == 0b01 || op2 == 0b11;
            let overlap = writeback && rn != 31 && (rn == rt || rn == rt2);
            if (l == 1 && rt == rt2) || (v == 0 && overlap) {
                return Refused(Unpredictable);
            }
            RunOutOfLine
        }
        _ => {
            // Load/store register: unscaled, post/pre-index, unprivileged,
            // atomics, register offset, PAC, unsigned offset.
            let valid_size_opc = if v == 0 {
                !(opc == 0b11 && size >= 2)
                    && !(opc == 0b10
                        && size == 0b11
                        && field(w, 24, 24) == 0
                        && field(w, 21, 21) == 0
                        && field(w, 11, 10) != 0)
            } else {
                opc < 2 || size == 0
            };
            if field(w, 24, 24) == 1 {
                return allocated_if(valid_size_opc);
            }
            if field(w, 21, 21) == 0 {
                // Unscaled, post-index, unprivileged (no SIMD&FP form), pre-index.
                return allocated_if(valid_size_opc && !(v == 1 && field(w, 11, 10) == 0b10));
            }
            match field(w, 11, 10) {
                // Atomic memory operations: LD<op> (o3=0), SWP, LDAPR.
                0b00 => allocated_if(
                    v == 0
                        && (field(w, 15, 15) == 0
                            || field(w, 14, 12) == 0
                            || (field(w, 14, 12) == 0b100 && field(w, 23, 22) == 0b10 && field(w, 20, 16) == 31)),
                ),
                0b10 => allocated_if(valid_size_opc && field(w, 14, 14) == 1), // register offset
                _ => allocated_if(v == 0 && size == 0b11),                     // LDRAA/LDRAB
            }
        }
    }
}

const fn simd_structures(w: u32) -> Class {
    if field(w, 31, 31) != 0 {
        return Class::Refused(Refusal::Unallocated);
    }
    match field(w, 24, 23) {
        0b00 | 0b01 => {
            if (field(w, 24, 23) == 0 && field(w, 21, 16) != 0) || field(w, 21, 21) != 0 {
                return Class::Refused(Refusal::Unallocated);
            }
            let opcode = field(w, 15, 12);
            // LD4/LD3/LD2 (and stores) have no .1D arrangement.
            let one_d = field(w, 11, 10) == 0b11 && field(w, 30, 30) == 0;
            allocated_if(
                matches!(opcode, 0b0000 | 0b0010 | 0b0100 | 0b0110 | 0b0111 | 0b1000 | 0b1010)
                    && !(one_d && matches!(opcode, 0b0000 | 0b0100 | 0b1000)),
            )
        }
        _ => {
            if field(w, 24, 23) == 0b10 && field(w, 20, 16) != 0 {
                return Class::Refused(Refusal::Unallocated);
            }
            // Single structure: the element size comes from opcode<2:1>.
            let (s, size) = (field(w, 12, 12), field(w, 11, 10));
            let ok = match field(w, 15, 14) {
                0b00 => true,
                0b01 => size & 1 == 0,
                0b10 => size == 0 || (size == 1 && s == 0),
                _ => field(w, 22, 22) == 1 && s == 0, // LDnR: loads only
            };
            allocated_if(ok)
        }
    }
}

const fn dp_register(w: u32) -> Class {
    let sf = field(w, 31, 31);
    let op2 = field(w, 24, 21);
    let op3 = field(w, 15, 10);
    if field(w, 28, 28) == 0 {
        return if op2 & 0b1000 == 0 {
            allocated_if(!(sf == 0 && field(w, 15, 15) == 1)) // logical (shifted register)
        } else if op2 & 1 == 0 {
            allocated_if(field(w, 23, 22) != 0b11 && !(sf == 0 && field(w, 15, 15) == 1))
        // add/sub (shifted)
        } else {
            allocated_if(field(w, 23, 22) == 0 && field(w, 12, 10) <= 4) // add/sub (extended)
        };
    }
    if op2 & 0b1000 != 0 {
        // Data processing (3 source).
        let op31 = field(w, 23, 21);
        let o0 = field(w, 15, 15);
        let ok = field(w, 30, 29) == 0
            && match op31 {
                0b000 => true,
                0b001 | 0b101 => sf == 1,
                0b010 | 0b110 => sf == 1 && o0 == 0,
                _ => false,
            };
        return allocated_if(ok);
    }
    match op2 {
        0b0000 => {
            // ADC/SBC(S); RMIF; SETF8/SETF16.
            let rmif = sf == 1 && field(w, 30, 29) == 0b01 && field(w, 14, 10) == 1 && field(w, 4, 4) == 0;
            let setf = sf == 0
                && field(w, 30, 29) == 0b01
                && field(w, 20, 15) == 0
                && field(w, 13, 10) == 0b0010
                && field(w, 4, 0) == 0b01101;
            allocated_if(op3 == 0 || rmif || setf)
        }
        // Conditional compare: S=1, o2=0, o3=0.
        0b0010 => allocated_if(field(w, 29, 29) == 1 && field(w, 10, 10) == 0 && field(w, 4, 4) == 0),
        // Conditional select: S=0, op2 in {00, 01}.
        0b0100 => allocated_if(field(w, 29, 29) == 0 && field(w, 11, 11) == 0),
        0b0110 => {
            if field(w, 30, 30) == 0 {
                // Data processing (2 source): UDIV, SDIV, LSLV..RORV, CRC32*.
                let crc_ok = (op3 & 0b11 == 0b11) == (sf == 1);
                allocated_if(
                    field(w, 29, 29) == 0
                        && match op3 {
                            0b000010 | 0b000011 | 0b001000..=0b001011 => true,
                            0b010000..=0b010111 => crc_ok,
                            _ => false,
                        },
                )
            } else {
                // Data processing (1 source): RBIT, REV16, REV32/REV, CLZ, CLS; PAC*/AUT*/XPAC*.
                let opcode2 = field(w, 20, 16);
                let ok = field(w, 29, 29) == 0
                    && match opcode2 {
                        0 => op3 <= 0b000101 && !(op3 == 0b000011 && sf == 0),
                        // PAC*/AUT* (the Z forms and XPAC* need Rn = 11111).
                        1 => sf == 1 && op3 <= 0b010001 && (op3 < 0b001000 || field(w, 9, 5) == 31),
                        _ => false,
                    };
                allocated_if(ok)
            }
        }
        _ => Class::Refused(Refusal::Unallocated),
    }
}

/// Whether the hypervisor may run `w` itself, at EL2, on the guest's
/// general registers and NZCV (out of line, so the `HVC` stays in place and
/// no other core of the VM runs past the site unseen). That holds where the
/// instruction's effect does not depend on the exception level:
/// - the data-processing instructions of the base ARMv8.0-A ISA: they touch
///   only X0..X30 (31 as the zero register) and the flags;
/// - the barriers DMB and DSB (they order this core's accesses, the guest's
///   among them, at any level);
/// - `MRS` of the EL1/EL0 registers in [`EL2_READABLE`]: live in the
///   hardware while the guest is trapped, neither trapped nor virtualised by
///   the hypervisor, so EL2 reads the guest's own value.
///
/// Excluded: forms where register 31 is SP (SP at EL2 is the hypervisor's),
/// anything PC-relative, memory, other system instructions and registers
/// (`CurrentEL`, `MPIDR_EL1` and the GIC's `ICC_*` read differently at
/// EL2, and reading `ICC_IAR1_EL1` would acknowledge an interrupt),
/// SIMD&FP, and optional extensions (CRC32, FlagM, MTE, pointer
/// authentication) that a CPU may not implement — an undefined instruction
/// at EL2 would stop the hypervisor, not the guest.
pub const fn runs_at_el2(w: u32) -> bool {
    if !matches!(classify(w), Class::RunOutOfLine) {
        return false;
    }
    if is_barrier(w) {
        return true;
    }
    if w & 0xfff0_0000 == 0xd530_0000 {
        // MRS (op0 = 2 or 3): by its system-register encoding.
        let key = ((w >> 5) & 0xffff) as u16;
        let mut i = 0;
        while i < EL2_READABLE.len() {
            if EL2_READABLE[i].1 == key {
                return true;
            }
            i += 1;
        }
        return false;
    }
    let (rd, rn) = (field(w, 4, 0), field(w, 9, 5));
    let s = field(w, 29, 29);
    if field(w, 28, 26) == 0b100 {
        // Data processing (immediate).
        return match field(w, 25, 23) {
            0b010 => rn != 31 && s == 1, // ADDS/SUBS/CMP/CMN (imm); S = 0 is emulated
            0b100 => !(rd == 31 && field(w, 30, 29) != 0b11), // logical (imm): Rd is SP unless ANDS
            0b101..=0b111 => true,       // move wide, bitfield, extract
            _ => false,                  // PC-relative, tags (MTE)
        };
    }
    if field(w, 27, 25) != 0b101 {
        return false;
    }
    // Data processing (register).
    let op2 = field(w, 24, 21);
    if field(w, 28, 28) == 0 {
        // Logical and add/sub (shifted): all ZR. Add/sub (extended): Rn is
        // SP, and Rd too unless flags are set.
        return op2 & 0b1001 != 0b1001 || (rn != 31 && !(rd == 31 && s == 0));
    }
    if op2 & 0b1000 != 0 {
        return true; // 3 source: MADD, MSUB, SMULL, UMULH, ...
    }
    let op3 = field(w, 15, 10);
    match op2 {
        0b0000 => op3 == 0,      // ADC/SBC(S) (not RMIF/SETF: FlagM)
        0b0010 | 0b0100 => true, // conditional compare, conditional select
        0b0110 if field(w, 30, 30) == 0 => matches!(op3, 0b000010 | 0b000011 | 0b001000..=0b001011), // UDIV..RORV (not CRC32)
        0b0110 => field(w, 20, 16) == 0, // RBIT, REV16, REV32, REV, CLZ, CLS (not PAC*)
        _ => false,
    }
}

/// `DMB` or `DSB` (any option; not the FEAT_XS `DSB nXS` forms).
pub const fn is_barrier(w: u32) -> bool {
    w & 0xffff_f0ff == 0xd503_309f || w & 0xffff_f0ff == 0xd503_30bf
}

/// `ISB`: an exception entry and return synchronize context too, so a hit
/// that traps and returns has done what it would.
pub const fn is_isb(w: u32) -> bool {
    w & 0xffff_f0ff == 0xd503_30df
}

const fn sysreg(op0: u16, op1: u16, crn: u16, crm: u16, op2: u16) -> u16 {
    op0 << 14 | op1 << 11 | crn << 7 | crm << 3 | op2
}

/// System registers whose `MRS` reads at EL2 what the guest reads at EL1:
/// (name, bits 20:5 of the `MRS`). The hypervisor traps none of them.
pub const EL2_READABLE: [(&str, u16); 20] = [
    ("SCTLR_EL1", sysreg(3, 0, 1, 0, 0)),
    ("CPACR_EL1", sysreg(3, 0, 1, 0, 2)),
    ("TTBR0_EL1", sysreg(3, 0, 2, 0, 0)),
    ("TTBR1_EL1", sysreg(3, 0, 2, 0, 1)),
    ("TCR_EL1", sysreg(3, 0, 2, 0, 2)),
    ("SPSR_EL1", sysreg(3, 0, 4, 0, 0)),
    ("ELR_EL1", sysreg(3, 0, 4, 0, 1)),
    ("SP_EL0", sysreg(3, 0, 4, 1, 0)),
    ("NZCV", sysreg(3, 3, 4, 2, 0)),
    ("ESR_EL1", sysreg(3, 0, 5, 2, 0)),
    ("FAR_EL1", sysreg(3, 0, 6, 0, 0)),
    ("PAR_EL1", sysreg(3, 0, 7, 4, 0)),
    ("MAIR_EL1", sysreg(3, 0, 10, 2, 0)),
    ("VBAR_EL1", sysreg(3, 0, 12, 0, 0)),
    ("CONTEXTIDR_EL1", sysreg(3, 0, 13, 0, 1)),
    ("TPIDR_EL1", sysreg(3, 0, 13, 0, 4)),
    ("TPIDR_EL0", sysreg(3, 3, 13, 0, 2)),
    ("TPIDRRO_EL0", sysreg(3, 3, 13, 0, 3)),
    ("CNTFRQ_EL0", sysreg(3, 3, 14, 0, 0)),
    ("CNTKCTL_EL1", sysreg(3, 0, 14, 1, 0)),
];

/// `RET Xn`: a function's return.
pub const fn is_return(w: u32) -> bool {
    w & 0xffff_fc1f == 0xd65f_0000
}

/// The target of `B imm26` at `pc`, if `w` is one (a tail call when it
/// leaves the function).
pub const fn branch_target(w: u32, pc: u64) -> Option<u64> {
    if w & 0xfc00_0000 != 0x1400_0000 {
        return None;
    }
    let imm = ((w << 6) as i32 >> 6) as i64 * 4;
    Some(pc.wrapping_add(imm as u64))
}

/// Whether `w` is a load-exclusive (LDXR, LDAXR, LDXP, LDAXP, all sizes).
pub const fn is_load_exclusive(w: u32) -> bool {
    matches!(classify(w), Class::Refused(Refusal::Exclusive)) && field(w, 22, 22) == 1
}

/// Whether `w` is a store-exclusive (STXR, STLXR, STXP, STLXP, all sizes).
pub const fn is_store_exclusive(w: u32) -> bool {
    matches!(classify(w), Class::Refused(Refusal::Exclusive)) && field(w, 22, 22) == 0
}

/// `CLREX` (any immediate).
const fn is_clrex(w: u32) -> bool {
    w & 0xFFFF_F0FF == 0xD503_305F
}

/// Classifies `window[site]` in context: besides [`classify`], a site is
/// refused when it lies inside an exclusive sequence — after a load-exclusive
/// with no store-exclusive or CLREX in between, or before a store-exclusive
/// with no load-exclusive in between — as far as the window shows.
/// An out-of-range `site` is [`Refusal::Unallocated`].
pub fn classify_site(window: &[u32], site: usize) -> Class {
    let Some(&w) = window.get(site) else {
        return Class::Refused(Refusal::Unallocated);
    };
    let class = classify(w);
    if matches!(class, Class::Refused(_)) {
        return class;
    }
    for &prev in window[..site].iter().rev() {
        if is_store_exclusive(prev) || is_clrex(prev) {
            break;
        }
        if is_load_exclusive(prev) {
            return Class::Refused(Refusal::InExclusiveSequence);
        }
    }
    for &next in &window[site + 1..] {
        if is_load_exclusive(next) {
            break;
        }
        if is_store_exclusive(next) {
            return Class::Refused(Refusal::InExclusiveSequence);
        }
    }
    class
}

/// The register state a simulation reads and writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Regs {
    /// X0..X30.
    pub x: [u64; 31],
    /// The stack pointer in use.
    pub sp: u64,
    /// The address of the displaced instruction on entry, the next PC on exit.
    pub pc: u64,
    /// NZCV in bits 31:28 (as in SPSR_EL2 and the NZCV register).
    pub nzcv: u32,
}

/// The registers an emulation or simulation reads and writes. [`Regs`] is
/// one; a hypervisor can implement it over its trap frame, so a probe hit
/// does not copy the whole register file in and out.
pub trait RegisterFile {
    /// X0..X30 (`n` < 31).
    fn x(&self, n: u8) -> u64;
    /// Writes X0..X30 (`n` < 31).
    fn set_x(&mut self, n: u8, v: u64);
    /// The stack pointer in use.
    fn sp(&self) -> u64;
    /// Writes the stack pointer in use.
    fn set_sp(&mut self, v: u64);
    /// The address of the displaced instruction.
    fn pc(&self) -> u64;
    /// Sets the next PC.
    fn set_pc(&mut self, v: u64);
    /// NZCV in bits 31:28 (as in SPSR_EL2 and the NZCV register).
    fn nzcv(&self) -> u32;

    /// Reads Xn, with 31 as the zero register.
    fn xzr(&self, n: u8) -> u64 {
        if n >= 31 {
            0
        } else {
            self.x(n)
        }
    }

    /// Writes Xn, discarding writes to the zero register.
    fn set_xzr(&mut self, n: u8, v: u64) {
        if n < 31 {
            self.set_x(n, v);
        }
    }
}

impl RegisterFile for Regs {
    fn x(&self, n: u8) -> u64 {
        self.x[usize::from(n)]
    }
    fn set_x(&mut self, n: u8, v: u64) {
        self.x[usize::from(n)] = v;
    }
    fn sp(&self) -> u64 {
        self.sp
    }
    fn set_sp(&mut self, v: u64) {
        self.sp = v;
    }
    fn pc(&self) -> u64 {
        self.pc
    }
    fn set_pc(&mut self, v: u64) {
        self.pc = v;
    }
    fn nzcv(&self) -> u32 {
        self.nzcv
    }
}

/// Reads guest virtual memory for [`simulate`] (literal loads).
pub trait VirtRead {
    /// Fills `buf` from the guest virtual address `va`.
    fn read_virt(&self, va: GuestVirtAddr, buf: &mut [u8]) -> Result<(), AccessError>;
}

/// A guest's memory seen through its translation regime.
#[derive(Clone, Copy, Debug)]
pub struct GuestView<'a, M: ?Sized> {
    /// The vCPU's translation regime.
    pub translator: &'a Translator,
    /// Physical memory.
    pub mem: &'a M,
}

impl<M: GuestMemory + ?Sized> VirtRead for GuestView<'_, M> {
    fn read_virt(&self, va: GuestVirtAddr, buf: &mut [u8]) -> Result<(), AccessError> {
        self.translator.read_virt(self.mem, va, buf, Access::Read)
    }
}

/// Why a simulation did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// The instruction is not one [`simulate`] handles.
    #[error("instruction is not simulated: {0:?}")]
    NotSimulated(Class),
    /// The literal could not be read; registers are unchanged.
    #[error("literal load failed: {0}")]
    Memory(AccessError),
}

/// Executes a decoded PC-relative instruction on `regs` (whose `pc` is the
/// instruction's address). On success `regs.pc` is the next PC; on error
/// `regs` is unchanged. Through [`RegisterFile`]: a probe hit reads and
/// writes only the registers the instruction names.
pub fn simulate<F, R>(sim: Sim, regs: &mut F, mem: &R) -> Result<(), SimError>
where
    F: RegisterFile + ?Sized,
    R: VirtRead + ?Sized,
{
    let pc = regs.pc();
    let next = pc.wrapping_add(4);
    let rel = |offset: i64| pc.wrapping_add_signed(offset);
    let target = match sim {
        Sim::B { offset } => rel(offset),
        Sim::Bl { offset } => {
            regs.set_x(30, next);
            rel(offset)
        }
        Sim::BCond { cond, offset } => {
            if cond.holds(regs.nzcv()) {
                rel(offset)
            } else {
                next
            }
        }
        Sim::Cbz {
            sf,
            nonzero,
            rt,
            offset,
        } => {
            let v = regs.xzr(rt);
            let v = if sf { v } else { v & 0xFFFF_FFFF };
            if (v != 0) == nonzero {
                rel(offset)
            } else {
                next
            }
        }
        Sim::Tbz {
            bit,
            nonzero,
            rt,
            offset,
        } => {
            if ((regs.xzr(rt) >> bit) & 1 == 1) == nonzero {
                rel(offset)
            } else {
                next
            }
        }
        Sim::Adr { rd, offset } => {
            regs.set_xzr(rd, rel(offset));
            next
        }
        Sim::Adrp { rd, offset } => {
            regs.set_xzr(rd, (pc & !0xFFF).wrapping_add_signed(offset));
            next
        }
        Sim::LdrLiteral { size, rt, offset } => {
            let va = GuestVirtAddr::new(rel(offset));
            let value = match size {
                LiteralSize::X => {
                    let mut b = [0u8; 8];
                    mem.read_virt(va, &mut b).map_err(SimError::Memory)?;
                    u64::from_le_bytes(b)
                }
                LiteralSize::W | LiteralSize::Sw => {
                    let mut b = [0u8; 4];
                    mem.read_virt(va, &mut b).map_err(SimError::Memory)?;
                    let v = u32::from_le_bytes(b);
                    if size == LiteralSize::Sw {
                        v as i32 as i64 as u64
                    } else {
                        u64::from(v)
                    }
                }
            };
            regs.set_xzr(rt, value);
            next
        }
        Sim::PrfmLiteral => next,
        Sim::Br { rn } | Sim::Ret { rn } => regs.xzr(rn),
        Sim::Blr { rn } => {
            let target = regs.xzr(rn);
            regs.set_x(30, next);
            target
        }
    };
    regs.set_pc(target);
    Ok(())
}

/// Classifies `insn` and simulates it if it is PC-relative.
pub fn simulate_insn<R: VirtRead + ?Sized>(insn: u32, regs: &mut Regs, mem: &R) -> Result<(), SimError> {
    match classify(insn) {
        Class::Simulate(sim) => simulate(sim, regs, mem),
        other => Err(SimError::NotSimulated(other)),
    }
}
