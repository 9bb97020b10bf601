//! Guest introspection for hv-trace: the pure logic the EL2 hypervisor and the
//! host tools share.
//!
//! Design principles:
//! - **`no_std` core, no heap.** Everything the hypervisor links (addresses,
//!   guest memory, register decoding, page walks, A64 probe-site analysis, the
//!   record/hypercall ABI, the OS profile blob) builds for
//!   `aarch64-unknown-none-softfloat` without `alloc`. Host-only parts (ELF and
//!   DWARF readers, symbol resolution, ring-dump parsing, the C header) sit
//!   behind the `std` feature.
//! - **Guest values are allegations.** Addresses coming from a guest are their
//!   own types ([`addr::GuestVirtAddr`], [`addr::IntermPhysAddr`],
//!   [`addr::PhysAddr`]) with checked arithmetic only; registers are decoded and
//!   validated, never assumed.
//! - **Errors, not panics.** Every malformed input (page table, instruction,
//!   ELF, DWARF, ring dump, profile blob) maps to a typed error that says what
//!   was wrong and where; fuzz entry points in [`fuzzing`] hold us to it.
//! - **Simple algorithms over clever ones.** A page walk is a loop over levels
//!   that mirrors the Arm ARM pseudocode; the A64 decoder is a table of masks.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod a64;
pub mod abi;
pub mod addr;
pub mod emulate;
pub mod memory;
pub mod regs;
pub mod s1_cache;
pub mod walk;

#[cfg(feature = "std")]
pub mod debuginfo;
#[cfg(feature = "std")]
pub mod fuzzing;
#[cfg(feature = "std")]
pub mod profile;
#[cfg(feature = "std")]
pub mod symbols;

#[cfg(feature = "std")]
mod elf;
#[cfg(feature = "std")]
pub use elf::{ElfError, RelocationProblem};
