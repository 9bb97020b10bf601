//! The hypervisor's pure logic, kept out of the EL2 image so it can be unit
//! tested on the host: the partition config, stage-2 table construction, the
//! decoding of trapped accesses, and the policies (which GIC registers and
//! PSCI calls a VM may use). No `unsafe`, no allocation, no hardware access.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod bootinfo;
pub mod config;
pub mod doorbell;
pub mod entry_times;
pub mod fdt;
pub mod gicv3;
pub mod hit_cost;
pub mod linux_dtb;
pub mod mmio;
pub mod psci;
pub mod regs;
pub mod stage2;
pub mod vgic;
