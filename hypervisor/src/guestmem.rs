//! The hypervisor's access to guest memory by physical address. Callers must
//! first check the address belongs to a VM's memory (`vm::ipa_to_pa`, or a
//! page-table walk through the VM's stage-2): an unchecked address is an
//! allegation, not memory.

/// Copies `buf.len()` bytes from a checked physical address: a VM's RAM or
/// the boot-info range the host loaded next to the hypervisor.
pub fn read_bytes(pa: u64, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        // SAFETY: callers pass only ranges inside a VM's RAM regions (checked
        // against the partition config) or the hypervisor's own boot-info
        // range; all of it is identity-mapped at EL2 as normal memory. Guest
        // memory may change concurrently, hence volatile.
        *b = unsafe { core::ptr::read_volatile((pa + i as u64) as *const u8) };
    }
}

/// The `size`-byte (1..=8) little-endian value at a checked `pa` of a
/// VM's RAM: one load when naturally aligned (the hypervisor is built for
/// strict alignment, so unaligned values are assembled from bytes).
pub fn load_le(pa: u64, size: u8) -> u64 {
    // SAFETY: callers pass only ranges inside a VM's RAM (checked against
    // the partition) or the hypervisor's stage-2 tables, identity-mapped
    // normal memory at EL2; each load is
    // naturally aligned. Guest memory may change concurrently, hence volatile.
    unsafe {
        match size {
            8 if pa % 8 == 0 => core::ptr::read_volatile(pa as *const u64),
            4 if pa % 4 == 0 => u64::from(core::ptr::read_volatile(pa as *const u32)),
            2 if pa % 2 == 0 => u64::from(core::ptr::read_volatile(pa as *const u16)),
            1 => u64::from(core::ptr::read_volatile(pa as *const u8)),
            _ => (0..u64::from(size.min(8))).fold(0, |v, i| {
                v | u64::from(core::ptr::read_volatile((pa + i) as *const u8)) << (8 * i)
            }),
        }
    }
}

/// The 8-byte value at a checked, 8-aligned `pa` of a VM's RAM (a page-table
/// descriptor): one load, no alignment test on the hit path.
#[inline(always)]
pub fn load_u64_aligned(pa: u64) -> u64 {
    debug_assert!(pa % 8 == 0);
    // SAFETY: callers pass only 8-aligned addresses of 8 bytes inside a VM's
    // RAM (checked against the partition when they were recorded),
    // identity-mapped normal memory at EL2. The guest may change it
    // concurrently, hence volatile.
    unsafe { core::ptr::read_volatile(pa as *const u64) }
}

/// Copies guest RAM (or the hypervisor's own stage-2 tables) at a checked
/// `pa` into `buf`. A naturally aligned 2-, 4- or 8-byte range (a
/// descriptor, a pointer, an emulated load) is one load, single-copy atomic
/// as the guest's own would be.
pub fn copy_from_ram(pa: u64, buf: &mut [u8]) {
    let n = buf.len();
    if matches!(n, 2 | 4 | 8) && pa % n as u64 == 0 {
        buf.copy_from_slice(&load_le(pa, n as u8).to_le_bytes()[..n]);
        return;
    }
    // SAFETY: callers pass only ranges inside a VM's RAM (checked against
    // the partition) or the hypervisor's stage-2 tables, identity-mapped
    // normal memory at EL2; `buf` is ours. (A concurrent guest write may
    // tear the copy, as it would for the guest's own unsynchronised readers.)
    unsafe { core::ptr::copy_nonoverlapping(pa as *const u8, buf.as_mut_ptr(), n) }
}

/// Copies `data` into guest RAM at a checked `pa` (emulated stores, probe
/// patches). A naturally aligned 2-, 4- or 8-byte store is one store, so
/// another core sees the old value or the new one, never a mix: an
/// instruction word being patched while another vCPU fetches it, or a lock
/// word. (Byte copies are what a plain copy compiles to under strict
/// alignment.) 16 bytes on an 8-aligned address are two doublewords, as
/// `STP` of X registers is.
pub fn copy_to_ram(pa: u64, data: &[u8]) {
    let le = |i: usize, n: usize| {
        let mut b = [0u8; 8];
        b[..n].copy_from_slice(&data[i..i + n]);
        u64::from_le_bytes(b)
    };
    // SAFETY: as for `copy_from_ram`: a checked range of a VM's RAM; every
    // store below is naturally aligned for its size.
    unsafe {
        match data.len() {
            16 if pa % 8 == 0 => {
                core::ptr::write_volatile(pa as *mut u64, le(0, 8));
                core::ptr::write_volatile((pa + 8) as *mut u64, le(8, 8));
            }
            8 if pa % 8 == 0 => core::ptr::write_volatile(pa as *mut u64, le(0, 8)),
            4 if pa % 4 == 0 => core::ptr::write_volatile(pa as *mut u32, le(0, 4) as u32),
            2 if pa % 2 == 0 => core::ptr::write_volatile(pa as *mut u16, le(0, 2) as u16),
            n => core::ptr::copy_nonoverlapping(data.as_ptr(), pa as *mut u8, n),
        }
    }
}

/// Stores `word` again at a checked, 4-aligned `pa` of a VM's RAM if it
/// still holds `word` (an atomic compare-and-swap with itself; a guest that
/// changed it meanwhile keeps its change). What it is for is the store
/// itself: an instruction word stored again invalidates whatever copy of
/// it a core's instruction fetch still holds (QEMU's translated blocks
/// included) like any other store to code. Returns whether it stored.
pub fn store_again_u32(pa: u64, word: u32) -> bool {
    debug_assert!(pa % 4 == 0);
    // SAFETY: callers pass only 4-aligned addresses of 4 bytes inside a VM's
    // RAM (checked against the partition), identity-mapped normal cacheable
    // memory at EL2, where exclusive accesses work; the guest may access it
    // concurrently, which the atomic makes harmless.
    let cell = unsafe { core::sync::atomic::AtomicU32::from_ptr(pa as *mut u32) };
    cell.compare_exchange(
        word,
        word,
        core::sync::atomic::Ordering::AcqRel,
        core::sync::atomic::Ordering::Relaxed,
    )
    .is_ok()
}

/// A guest RAM range as bytes, for the boot core to fill before the VM runs
/// (its device tree).
///
/// # Safety
/// `pa..pa + len` must lie inside one VM's RAM (checked against the
/// partition), that VM must not be running yet, and no other reference to the
/// range may exist while the slice lives.
pub unsafe fn slice_mut(pa: u64, len: usize) -> &'static mut [u8] {
    // SAFETY: the caller guarantees the range is RAM identity-mapped at EL2
    // and exclusively ours for the slice's lifetime.
    unsafe { core::slice::from_raw_parts_mut(pa as *mut u8, len) }
}

/// QEMU's device tree at the start of RAM (where QEMU puts it when it fits
/// below the hypervisor image), if there is one.
pub fn qemu_dtb() -> Option<&'static [u8]> {
    const QEMU_DTB_PA: u64 = 0x4000_0000;
    const MAX: usize = 0x20_0000; // up to the hypervisor image (link.ld)
                                  // SAFETY: 0x4000_0000..0x4020_0000 is RAM that no VM's stage-2 maps (see
                                  // hyp_core::config) and that nothing writes after QEMU's loader; we only
                                  // read it.
    let head = unsafe { core::slice::from_raw_parts(QEMU_DTB_PA as *const u8, 8) };
    let size = hyp_core::fdt::Fdt::total_size(head).ok()?;
    // SAFETY: as above, and the size is bounded by the reserved range.
    (size <= MAX).then(|| unsafe { core::slice::from_raw_parts(QEMU_DTB_PA as *const u8, size) })
}

/// Physical memory as the page walkers and the probe manager see it: the
/// RAM of one VM (where its tables, code and data are), plus the
/// hypervisor's own stage-2 tables (read-only). Anything else is refused.
pub struct VmPhysMem {
    pub vm: &'static hyp_core::config::VmConfig,
}

impl VmPhysMem {
    fn vm_ram(&self, pa: u64, len: usize) -> bool {
        self.vm
            .memory
            .iter()
            .any(|r| pa >= r.pa && pa.checked_add(len as u64).is_some_and(|e| e <= r.pa + r.size))
    }
}

impl guest_probe::memory::GuestMemory for VmPhysMem {
    fn read(&self, addr: guest_probe::addr::PhysAddr, buf: &mut [u8]) -> Result<(), guest_probe::memory::MemError> {
        let pa = addr.raw();
        if !self.vm_ram(pa, buf.len()) && !crate::vm::is_stage2_table(pa, buf.len()) {
            return Err(guest_probe::memory::MemError::Unmapped(addr));
        }
        copy_from_ram(pa, buf);
        Ok(())
    }

    fn write(&mut self, addr: guest_probe::addr::PhysAddr, data: &[u8]) -> Result<(), guest_probe::memory::MemError> {
        let pa = addr.raw();
        if !self.vm_ram(pa, data.len()) {
            return Err(guest_probe::memory::MemError::ReadOnly(addr));
        }
        copy_to_ram(pa, data);
        Ok(())
    }
}

/// A VM's memory addressed by intermediate physical address, through the
/// partition's linear regions — the same mapping its stage-2 tables encode,
/// without walking them. The probe hit path uses it with a stage-1-only
/// translator: the guest's table addresses and data are IPAs, mapped here.
pub struct VmIpaMem {
    pub vm: &'static hyp_core::config::VmConfig,
}

impl guest_probe::memory::GuestMemory for VmIpaMem {
    fn read(&self, addr: guest_probe::addr::PhysAddr, buf: &mut [u8]) -> Result<(), guest_probe::memory::MemError> {
        let pa = crate::vm::ipa_to_pa(self.vm, addr.raw(), buf.len() as u64)
            .ok_or(guest_probe::memory::MemError::Unmapped(addr))?;
        copy_from_ram(pa, buf);
        Ok(())
    }

    fn write(&mut self, addr: guest_probe::addr::PhysAddr, data: &[u8]) -> Result<(), guest_probe::memory::MemError> {
        let pa = crate::vm::ipa_to_pa(self.vm, addr.raw(), data.len() as u64)
            .ok_or(guest_probe::memory::MemError::ReadOnly(addr))?;
        copy_to_ram(pa, data);
        Ok(())
    }
}
