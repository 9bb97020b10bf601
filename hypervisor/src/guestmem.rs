//! The hypervisor's access to guest memory by physical address. Callers must
//! first check the address belongs to a VM's memory (`vm::ipa_to_pa`, or a
//! page-table walk through the VM's stage-2): an unchecked address is an
//! allegation, not memory.

/// Reads a byte of guest RAM at a checked physical address.
pub fn read_u8(pa: u64) -> u8 {
    // SAFETY: callers pass only addresses inside a VM's RAM regions (checked
    // against the partition config); all RAM is identity-mapped at EL2 as
    // normal memory, so the read is valid. Guest memory may change
    // concurrently, hence volatile.
    unsafe { core::ptr::read_volatile(pa as *const u8) }
}

/// Writes a byte of guest RAM at a checked physical address.
pub fn write_u8(pa: u64, v: u8) {
    // SAFETY: as for `read_u8`.
    unsafe { core::ptr::write_volatile(pa as *mut u8, v) }
}
