//! Decoding of stage-2 data aborts into device accesses the hypervisor can
//! emulate (ESR_EL2 data-abort ISS, HPFAR_EL2, FAR_EL2).

use crate::regs::{Esr, ExceptionClass};

/// A trapped load or store, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioAccess {
    /// The intermediate physical address accessed.
    pub ipa: u64,
    /// Access size in bytes (1, 2, 4, 8).
    pub size: u8,
    pub write: bool,
    /// General-purpose register transferred (31 = XZR for stores).
    pub reg: u8,
    /// Loads: sign-extend the value.
    pub sign_extend: bool,
    /// Loads: the destination is a 64-bit register.
    pub sixty_four: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmioError {
    /// The instruction gave no syndrome (ISV = 0: load/store pair, writeback…):
    /// the hypervisor cannot emulate it.
    NoSyndrome,
    /// Not a data abort from a lower exception level.
    NotDataAbort { ec: u8 },
}

/// Decodes a data abort taken to EL2 from ESR_EL2, HPFAR_EL2 and FAR_EL2.
pub fn decode(esr: u64, hpfar: u64, far: u64) -> Result<MmioAccess, MmioError> {
    let esr = Esr(esr);
    if esr.class() != ExceptionClass::DataAbortLower {
        return Err(MmioError::NotDataAbort { ec: esr.class().raw() });
    }
    let iss = u64::from(esr.iss());
    if iss & (1 << 24) == 0 {
        return Err(MmioError::NoSyndrome);
    }
    Ok(MmioAccess {
        ipa: fault_ipa(hpfar, far),
        size: 1 << ((iss >> 22) & 3),
        write: iss & (1 << 6) != 0,
        reg: ((iss >> 16) & 0x1f) as u8,
        sign_extend: iss & (1 << 21) != 0,
        sixty_four: iss & (1 << 15) != 0,
    })
}

/// The faulting IPA: page from HPFAR_EL2.FIPA, offset from FAR_EL2.
pub fn fault_ipa(hpfar: u64, far: u64) -> u64 {
    (((hpfar >> 4) & 0xff_ffff_ffff) << 12) | (far & 0xfff)
}

impl MmioAccess {
    /// The value a load returns in its register, from the device's value.
    pub fn load_result(&self, device_value: u64) -> u64 {
        let bits = u32::from(self.size) * 8;
        let v = if bits == 64 {
            device_value
        } else {
            device_value & ((1u64 << bits) - 1)
        };
        let v = if self.sign_extend && bits < 64 {
            let shift = 64 - bits;
            (((v << shift) as i64) >> shift) as u64
        } else {
            v
        };
        if self.sixty_four {
            v
        } else {
            v & 0xffff_ffff
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esr(iss: u64) -> u64 {
        (u64::from(ExceptionClass::DataAbortLower.raw()) << 26) | (1 << 25) | iss
    }

    #[test]
    fn decodes_a_32bit_store_of_w3() {
        // ISV, SAS=2 (word), SRT=3, WnR.
        let a = decode(
            esr((1 << 24) | (2 << 22) | (3 << 16) | (1 << 6)),
            0x0900_0000 >> 8,
            0xffff_0000_0900_0018,
        )
        .unwrap();
        assert_eq!(
            a,
            MmioAccess {
                ipa: 0x0900_0018,
                size: 4,
                write: true,
                reg: 3,
                sign_extend: false,
                sixty_four: false
            }
        );
    }

    #[test]
    fn sign_extends_a_byte_load_into_x_register() {
        let a = decode(esr((1 << 24) | (1 << 21) | (7 << 16) | (1 << 15)), 0x800 << 4, 0x1).unwrap();
        assert_eq!(a.ipa, 0x80_0001);
        assert_eq!(a.size, 1);
        assert_eq!(a.load_result(0x80), 0xffff_ffff_ffff_ff80);
        let w = MmioAccess { sixty_four: false, ..a };
        assert_eq!(w.load_result(0x80), 0xffff_ff80);
    }

    #[test]
    fn refuses_accesses_without_syndrome_and_other_exceptions() {
        assert_eq!(decode(esr(2 << 22), 0, 0), Err(MmioError::NoSyndrome));
        assert_eq!(decode(0x16 << 26, 0, 0), Err(MmioError::NotDataAbort { ec: 0x16 }));
    }
}
