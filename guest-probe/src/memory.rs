//! Byte access to guest memory by physical address.
//!
//! [`GuestMemory`] is the one thing the walkers and the A64 simulator need from
//! their environment: read (and for probe patching, write) bytes at a
//! [`PhysAddr`]. The hypervisor implements it over its own mapping of RAM,
//! refusing addresses outside the VM's memory; tests use [`SparseMemory`] (a
//! sparse map of pages, `std`) or [`SliceMemory`]/[`SliceMemoryMut`] (one flat
//! region, `no_std`).
//!
//! Virtual reads — translate then read, page by page — live in
//! [`crate::walk::Translator`], because each page may map elsewhere.

use crate::addr::PhysAddr;

/// Why a guest memory access failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MemError {
    /// Nothing is mapped at this address (the first byte of the access).
    #[error("no memory at {0}")]
    Unmapped(PhysAddr),
    /// The access started in mapped memory but ran off its end.
    #[error("partial access: {completed} of {expected} bytes done")]
    PartialBuffer {
        /// Bytes asked for.
        expected: usize,
        /// Bytes transferred before the unmapped part.
        completed: usize,
    },
    /// The memory at this address cannot be written.
    #[error("memory at {0} is read-only")]
    ReadOnly(PhysAddr),
}

/// Byte access to memory by physical address.
pub trait GuestMemory {
    /// Fills `buf` from the bytes at `addr`.
    fn read(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), MemError>;

    /// Writes `data` at `addr`. The default refuses: read-only memory.
    fn write(&mut self, addr: PhysAddr, data: &[u8]) -> Result<(), MemError> {
        let _ = data;
        Err(MemError::ReadOnly(addr))
    }

    /// Reads a little-endian `u64`.
    fn read_u64_le(&self, addr: PhysAddr) -> Result<u64, MemError> {
        let mut b = [0u8; 8];
        self.read(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Reads a little-endian `u32`.
    fn read_u32_le(&self, addr: PhysAddr) -> Result<u32, MemError> {
        let mut b = [0u8; 4];
        self.read(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }
}

impl<M: GuestMemory + ?Sized> GuestMemory for &M {
    fn read(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        (**self).read(addr, buf)
    }
}

impl<M: GuestMemory + ?Sized> GuestMemory for &mut M {
    fn read(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        (**self).read(addr, buf)
    }
    fn write(&mut self, addr: PhysAddr, data: &[u8]) -> Result<(), MemError> {
        (**self).write(addr, data)
    }
}

/// Where `len` bytes at `addr` fall inside a region `[base, base + size)`:
/// the start index and how many bytes fit.
fn clip(base: PhysAddr, size: usize, addr: PhysAddr, len: usize) -> Result<(usize, usize), MemError> {
    let start = addr
        .offset_from(base)
        .filter(|&o| o < size as u64)
        .ok_or(MemError::Unmapped(addr))? as usize;
    let fit = len.min(size - start);
    Ok((start, fit))
}

/// One flat read-only region of memory starting at `base`.
#[derive(Clone, Copy, Debug)]
pub struct SliceMemory<'a> {
    base: PhysAddr,
    bytes: &'a [u8],
}

impl<'a> SliceMemory<'a> {
    /// Memory whose first byte is at `base`.
    pub fn new(base: PhysAddr, bytes: &'a [u8]) -> Self {
        Self { base, bytes }
    }
}

impl GuestMemory for SliceMemory<'_> {
    fn read(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        if buf.is_empty() {
            return Ok(());
        }
        let (start, fit) = clip(self.base, self.bytes.len(), addr, buf.len())?;
        buf[..fit].copy_from_slice(&self.bytes[start..start + fit]);
        if fit < buf.len() {
            return Err(MemError::PartialBuffer {
                expected: buf.len(),
                completed: fit,
            });
        }
        Ok(())
    }
}

/// One flat writable region of memory starting at `base`.
#[derive(Debug)]
pub struct SliceMemoryMut<'a> {
    base: PhysAddr,
    bytes: &'a mut [u8],
}

impl<'a> SliceMemoryMut<'a> {
    /// Memory whose first byte is at `base`.
    pub fn new(base: PhysAddr, bytes: &'a mut [u8]) -> Self {
        Self { base, bytes }
    }
}

impl GuestMemory for SliceMemoryMut<'_> {
    fn read(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        SliceMemory::new(self.base, self.bytes).read(addr, buf)
    }

    fn write(&mut self, addr: PhysAddr, data: &[u8]) -> Result<(), MemError> {
        if data.is_empty() {
            return Ok(());
        }
        let (start, fit) = clip(self.base, self.bytes.len(), addr, data.len())?;
        self.bytes[start..start + fit].copy_from_slice(&data[..fit]);
        if fit < data.len() {
            return Err(MemError::PartialBuffer {
                expected: data.len(),
                completed: fit,
            });
        }
        Ok(())
    }
}

#[cfg(feature = "std")]
pub use sparse::SparseMemory;

#[cfg(feature = "std")]
mod sparse {
    use super::{GuestMemory, MemError};
    use crate::addr::PhysAddr;
    use std::collections::BTreeMap;

    const PAGE: u64 = 4096;

    /// A sparse physical memory of 4 KiB pages (host tests, benches, fuzzing).
    ///
    /// Only pages created by [`SparseMemory::map`] (or implicitly by the
    /// `poke_*` helpers) exist; everything else reads as
    /// [`MemError::Unmapped`].
    #[derive(Clone, Debug, Default)]
    pub struct SparseMemory {
        pages: BTreeMap<u64, Box<[u8; PAGE as usize]>>,
    }

    impl SparseMemory {
        /// An empty memory: nothing mapped.
        pub fn new() -> Self {
            Self::default()
        }

        /// Maps zeroed pages covering `[addr, addr + len)`.
        pub fn map(&mut self, addr: u64, len: u64) {
            if len == 0 {
                return;
            }
            let first = addr / PAGE;
            let last = addr.saturating_add(len - 1) / PAGE;
            for p in first..=last {
                self.pages.entry(p).or_insert_with(|| Box::new([0; PAGE as usize]));
            }
        }

        /// Removes the page holding `addr`.
        pub fn unmap_page(&mut self, addr: u64) {
            self.pages.remove(&(addr / PAGE));
        }

        /// Number of mapped pages.
        pub fn page_count(&self) -> usize {
            self.pages.len()
        }

        /// Writes bytes, mapping pages as needed.
        pub fn poke(&mut self, addr: u64, data: &[u8]) {
            self.map(addr, data.len() as u64);
            self.write(PhysAddr::new(addr), data).expect("pages were just mapped");
        }

        /// Writes a little-endian `u64`, mapping the page as needed.
        pub fn poke_u64(&mut self, addr: u64, value: u64) {
            self.poke(addr, &value.to_le_bytes());
        }

        /// Writes a little-endian `u32`, mapping the page as needed.
        pub fn poke_u32(&mut self, addr: u64, value: u32) {
            self.poke(addr, &value.to_le_bytes());
        }

        /// Runs `f` over each page-sized piece of `[addr, addr + len)`,
        /// giving the page, the offset in it, and the range in the buffer.
        fn chunks(
            addr: PhysAddr,
            len: usize,
            mut f: impl FnMut(u64, usize, core::ops::Range<usize>) -> bool,
        ) -> Result<(), MemError> {
            let mut done = 0usize;
            while done < len {
                let Some(a) = addr.checked_add(done as u64) else {
                    return Err(partial_or_unmapped(addr, len, done));
                };
                let page = a.raw() / PAGE;
                let off = (a.raw() % PAGE) as usize;
                let n = (PAGE as usize - off).min(len - done);
                if !f(page, off, done..done + n) {
                    return Err(partial_or_unmapped(a, len, done));
                }
                done += n;
            }
            Ok(())
        }
    }

    fn partial_or_unmapped(at: PhysAddr, expected: usize, completed: usize) -> MemError {
        if completed == 0 {
            MemError::Unmapped(at)
        } else {
            MemError::PartialBuffer { expected, completed }
        }
    }

    impl GuestMemory for SparseMemory {
        fn read(&self, addr: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
            let len = buf.len();
            Self::chunks(addr, len, |page, off, r| match self.pages.get(&page) {
                Some(p) => {
                    let n = r.len();
                    buf[r].copy_from_slice(&p[off..off + n]);
                    true
                }
                None => false,
            })
        }

        fn write(&mut self, addr: PhysAddr, data: &[u8]) -> Result<(), MemError> {
            let pages = &mut self.pages;
            Self::chunks(addr, data.len(), |page, off, r| match pages.get_mut(&page) {
                Some(p) => {
                    let n = r.len();
                    p[off..off + n].copy_from_slice(&data[r]);
                    true
                }
                None => false,
            })
        }
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    #[test]
    fn sparse_reads_across_page_boundaries() {
        let mut m = SparseMemory::new();
        m.map(0x1000, 0x2000);
        let data: Vec<u8> = (0..64).collect();
        m.write(PhysAddr::new(0x1fe0), &data).unwrap();
        let mut back = [0u8; 64];
        m.read(PhysAddr::new(0x1fe0), &mut back).unwrap();
        assert_eq!(&back[..], &data[..]);
        assert_eq!(
            m.read_u64_le(PhysAddr::new(0x1ffc)).unwrap(),
            u64::from_le_bytes([28, 29, 30, 31, 32, 33, 34, 35])
        );
    }

    #[test]
    fn sparse_partial_and_unmapped() {
        let mut m = SparseMemory::new();
        m.map(0x1000, 0x1000);
        let mut buf = [0u8; 16];
        assert_eq!(
            m.read(PhysAddr::new(0x1ff8), &mut buf),
            Err(MemError::PartialBuffer {
                expected: 16,
                completed: 8
            })
        );
        assert_eq!(
            m.read(PhysAddr::new(0x2000), &mut buf),
            Err(MemError::Unmapped(PhysAddr::new(0x2000)))
        );
        assert_eq!(
            m.read(PhysAddr::new(0xff8), &mut buf),
            Err(MemError::Unmapped(PhysAddr::new(0xff8)))
        );
        assert_eq!(
            m.write(PhysAddr::new(0x1ffc), &buf),
            Err(MemError::PartialBuffer {
                expected: 16,
                completed: 4
            })
        );
        // A hole between two mapped pages.
        m.map(0x3000, 0x1000);
        let mut big = [0u8; 0x1800];
        assert_eq!(
            m.read(PhysAddr::new(0x1800), &mut big),
            Err(MemError::PartialBuffer {
                expected: 0x1800,
                completed: 0x800
            })
        );
        // Wrapping past the top of the address space is unmapped, not a panic.
        m.map(u64::MAX - 0xfff, 0x1000);
        assert_eq!(
            m.read(PhysAddr::new(u64::MAX - 3), &mut buf),
            Err(MemError::PartialBuffer {
                expected: 16,
                completed: 4
            })
        );
        assert_eq!(m.page_count(), 3);
    }

    #[test]
    fn slice_memory_bounds() {
        let mut bytes = [0u8; 32];
        let mut m = SliceMemoryMut::new(PhysAddr::new(0x100), &mut bytes);
        m.write(PhysAddr::new(0x118), &[1; 8]).unwrap();
        assert_eq!(
            m.write(PhysAddr::new(0x11c), &[2; 8]),
            Err(MemError::PartialBuffer {
                expected: 8,
                completed: 4
            })
        );
        assert_eq!(
            m.read_u32_le(PhysAddr::new(0x0fc)),
            Err(MemError::Unmapped(PhysAddr::new(0xfc)))
        );
        assert_eq!(m.read_u32_le(PhysAddr::new(0x118)).unwrap(), 0x0101_0101);
        let ro = SliceMemory::new(PhysAddr::new(0), &[0; 4]);
        let mut ro2 = ro;
        assert_eq!(
            ro2.write(PhysAddr::new(0), &[1]),
            Err(MemError::ReadOnly(PhysAddr::new(0)))
        );
    }
}
