//! Typed addresses, one newtype per address space.
//!
//! A guest virtual address ([`GuestVirtAddr`]) becomes an intermediate physical
//! address ([`IntermPhysAddr`]) through the guest's stage-1 tables, and that
//! becomes a physical address ([`PhysAddr`]) through the hypervisor's stage-2
//! tables. Mixing them up is a type error. None of them has `+` or `-`: every
//! step is a `checked_*` method so that overflow is handled where it happens.

use core::fmt;

/// Which address space an address belongs to (used in errors).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressSpace {
    /// Guest virtual (stage-1 input).
    GuestVirt,
    /// Intermediate physical (stage-1 output, stage-2 input).
    IntermPhys,
    /// Physical (stage-2 output).
    Phys,
}

macro_rules! address_type {
    ($(#[$doc:meta])* $name:ident, $short:literal, $space:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(transparent)]
        pub struct $name(u64);

        impl $name {
            /// The address space this type lives in.
            pub const SPACE: AddressSpace = $space;

            /// Wraps a raw value (no check: any 64-bit value is an address).
            pub const fn new(raw: u64) -> Self {
                Self(raw)
            }

            /// The raw value.
            pub const fn raw(self) -> u64 {
                self.0
            }

            /// `self + offset`, or `None` on overflow.
            pub const fn checked_add(self, offset: u64) -> Option<Self> {
                match self.0.checked_add(offset) {
                    Some(v) => Some(Self(v)),
                    None => None,
                }
            }

            /// `self - offset`, or `None` on underflow.
            pub const fn checked_sub(self, offset: u64) -> Option<Self> {
                match self.0.checked_sub(offset) {
                    Some(v) => Some(Self(v)),
                    None => None,
                }
            }

            /// `self` moved by a signed byte offset, or `None` on overflow.
            pub const fn checked_offset(self, delta: i64) -> Option<Self> {
                match self.0.checked_add_signed(delta) {
                    Some(v) => Some(Self(v)),
                    None => None,
                }
            }

            /// How far `self` lies above `base`, or `None` if it lies below.
            pub const fn offset_from(self, base: Self) -> Option<u64> {
                self.0.checked_sub(base.0)
            }

            /// Rounds down to a multiple of `align` (a power of two).
            pub const fn align_down(self, align: u64) -> Self {
                debug_assert!(align.is_power_of_two());
                Self(self.0 & !(align.wrapping_sub(1)))
            }

            /// Rounds up to a multiple of `align` (a power of two), or `None`
            /// on overflow.
            pub const fn align_up(self, align: u64) -> Option<Self> {
                debug_assert!(align.is_power_of_two());
                match self.0.checked_add(align.wrapping_sub(1)) {
                    Some(v) => Some(Self(v & !(align.wrapping_sub(1)))),
                    None => None,
                }
            }

            /// Whether the address is a multiple of `align` (a power of two).
            pub const fn is_aligned(self, align: u64) -> bool {
                self.0 & align.wrapping_sub(1) == 0
            }

            /// The offset inside a block of `size` bytes (a power of two).
            pub const fn offset_in(self, size: u64) -> u64 {
                self.0 & size.wrapping_sub(1)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($short, "({:#x})"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($short, " {:#x}"), self.0)
            }
        }

        impl fmt::LowerHex for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::LowerHex::fmt(&self.0, f)
            }
        }
    };
}

address_type!(
    /// A guest virtual address: what guest code and its pointers hold.
    GuestVirtAddr,
    "GVA",
    AddressSpace::GuestVirt
);
address_type!(
    /// An intermediate physical address: what the guest believes is physical.
    IntermPhysAddr,
    "IPA",
    AddressSpace::IntermPhys
);
address_type!(
    /// A host physical address: what the hypervisor can actually touch.
    PhysAddr,
    "PA",
    AddressSpace::Phys
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_arithmetic_reports_overflow() {
        let a = GuestVirtAddr::new(u64::MAX - 1);
        assert_eq!(a.checked_add(1), Some(GuestVirtAddr::new(u64::MAX)));
        assert_eq!(a.checked_add(2), None);
        assert_eq!(PhysAddr::new(3).checked_sub(4), None);
        assert_eq!(PhysAddr::new(8).checked_offset(-8), Some(PhysAddr::new(0)));
        assert_eq!(PhysAddr::new(8).checked_offset(-9), None);
        assert_eq!(
            IntermPhysAddr::new(0x1234).offset_from(IntermPhysAddr::new(0x1000)),
            Some(0x234)
        );
        assert_eq!(
            IntermPhysAddr::new(0x0fff).offset_from(IntermPhysAddr::new(0x1000)),
            None
        );
    }

    #[test]
    fn alignment_helpers() {
        let a = PhysAddr::new(0x1234);
        assert_eq!(a.align_down(0x1000), PhysAddr::new(0x1000));
        assert_eq!(a.align_up(0x1000), Some(PhysAddr::new(0x2000)));
        assert_eq!(PhysAddr::new(0x2000).align_up(0x1000), Some(PhysAddr::new(0x2000)));
        assert_eq!(PhysAddr::new(u64::MAX).align_up(0x1000), None);
        assert!(PhysAddr::new(0x2000).is_aligned(0x1000));
        assert!(!a.is_aligned(8));
        assert_eq!(a.offset_in(0x1000), 0x234);
    }

    #[test]
    fn formatting_names_the_space() {
        assert_eq!(format!("{:?}", GuestVirtAddr::new(0x10)), "GVA(0x10)");
        assert_eq!(format!("{}", IntermPhysAddr::new(0x10)), "IPA 0x10");
        assert_eq!(format!("{:x}", PhysAddr::new(0xab)), "ab");
    }
}
