//! The boot-info blob the host loader places next to the images: which VMs
//! have an image and what the hypervisor cannot learn from the images
//! themselves (initramfs size, Linux command line).

/// Physical address where `hv-trace run` loads the blob (below the
/// hypervisor's limit in `hypervisor/link.ld`).
pub const BOOTINFO_PA: u64 = 0x40F0_0000;
pub const MAGIC: [u8; 8] = *b"HVTBOOT\0";
pub const VERSION: u32 = 1;
pub const SIZE: usize = 32 + BOOTARGS_LEN;
pub const BOOTARGS_LEN: usize = 256;

pub const FLAG_LINUX: u32 = 1 << 0;
pub const FLAG_RTOS: u32 = 1 << 1;
/// An OS profile blob (guest-probe's `OsProfile`) for the RTOS VM lies at
/// `BOOTINFO_PA + RTOS_PROFILE_OFFSET`.
pub const FLAG_RTOS_PROFILE: u32 = 1 << 2;
/// Likewise for the Linux VM at `BOOTINFO_PA + LINUX_PROFILE_OFFSET`.
pub const FLAG_LINUX_PROFILE: u32 = 1 << 3;
pub const RTOS_PROFILE_OFFSET: u64 = 0x1000;
pub const LINUX_PROFILE_OFFSET: u64 = 0x2000;
/// Bits 15:8 of the flags: log2 of the trace ring capacity (0 = default).
pub const RING_ORDER_SHIFT: u32 = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootInfo {
    pub flags: u32,
    pub initrd_size: u64,
    pub rtos_size: u64,
    pub bootargs: [u8; BOOTARGS_LEN],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootInfoError {
    /// No blob (nothing loaded there): run without VMs.
    Missing,
    UnsupportedVersion(u32),
    /// The command line is not NUL-terminated within its field.
    UnterminatedBootargs,
}

impl BootInfo {
    pub fn parse(bytes: &[u8; SIZE]) -> Result<Self, BootInfoError> {
        if bytes[..8] != MAGIC {
            return Err(BootInfoError::Missing);
        }
        let u32_at = |o: usize| u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
        let u64_at = |o: usize| u64::from(u32_at(o)) | (u64::from(u32_at(o + 4)) << 32);
        let version = u32_at(8);
        if version != VERSION {
            return Err(BootInfoError::UnsupportedVersion(version));
        }
        let mut bootargs = [0u8; BOOTARGS_LEN];
        bootargs.copy_from_slice(&bytes[32..]);
        if !bootargs.contains(&0) {
            return Err(BootInfoError::UnterminatedBootargs);
        }
        Ok(BootInfo {
            flags: u32_at(12),
            initrd_size: u64_at(16),
            rtos_size: u64_at(24),
            bootargs,
        })
    }

    pub fn to_bytes(&self) -> [u8; SIZE] {
        let mut b = [0u8; SIZE];
        b[..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&self.flags.to_le_bytes());
        b[16..24].copy_from_slice(&self.initrd_size.to_le_bytes());
        b[24..32].copy_from_slice(&self.rtos_size.to_le_bytes());
        b[32..].copy_from_slice(&self.bootargs);
        b
    }

    /// The command line up to its NUL.
    pub fn bootargs(&self) -> &[u8] {
        let end = self.bootargs.iter().position(|&c| c == 0).unwrap_or(BOOTARGS_LEN);
        &self.bootargs[..end]
    }

    /// A blob for `flags` with `cmdline` (truncated to fit, always terminated).
    pub fn new(flags: u32, initrd_size: u64, rtos_size: u64, cmdline: &str) -> Self {
        let mut bootargs = [0u8; BOOTARGS_LEN];
        let n = cmdline.len().min(BOOTARGS_LEN - 1);
        bootargs[..n].copy_from_slice(&cmdline.as_bytes()[..n]);
        BootInfo {
            flags,
            initrd_size,
            rtos_size,
            bootargs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let b = BootInfo::new(FLAG_LINUX | FLAG_RTOS, 12345, 678, "console=ttyAMA0 rdinit=/init");
        let parsed = BootInfo::parse(&b.to_bytes()).unwrap();
        assert_eq!(parsed, b);
        assert_eq!(parsed.bootargs(), b"console=ttyAMA0 rdinit=/init");
    }

    #[test]
    fn refuses_garbage() {
        assert_eq!(BootInfo::parse(&[0; SIZE]), Err(BootInfoError::Missing));
        let mut bytes = BootInfo::new(0, 0, 0, "").to_bytes();
        bytes[8] = 9;
        assert_eq!(BootInfo::parse(&bytes), Err(BootInfoError::UnsupportedVersion(9)));
        let mut bytes = BootInfo::new(0, 0, 0, "").to_bytes();
        bytes[32..].fill(b'a');
        assert_eq!(BootInfo::parse(&bytes), Err(BootInfoError::UnterminatedBootargs));
    }
}
