//! The static partition: which cores, memory, devices and interrupts each VM
//! owns. Declarative data, compiled into the hypervisor (serde-serializable
//! with the `serde` feature so host tools can show and check it).

#[cfg(feature = "serde")]
use serde::Serialize;

/// What a VM runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub enum GuestKind {
    /// A Linux arm64 `Image` booted with a device tree (x0 = DTB IPA).
    Linux,
    /// A bare image entered at its entry point (the RTOS).
    Bare,
}

/// A range of guest memory backed by host physical memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct MemRegion {
    pub ipa: u64,
    pub pa: u64,
    pub size: u64,
    /// Shared with another VM or the hypervisor (the trace ring): mapped
    /// non-executable.
    pub shared: bool,
}

/// How a device appears to a VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub enum DeviceAccess {
    /// Mapped straight through stage-2 (IPA = PA).
    Passthrough,
    /// Not mapped: accesses trap and the hypervisor emulates the device.
    Emulated(EmulatedDevice),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub enum EmulatedDevice {
    /// PL011 data/flag registers only; output lines prefixed with the VM name.
    ConsoleUart,
    /// GICv3 distributor, filtered to the VM's interrupts.
    GicDistributor,
    /// GICv3 redistributors, filtered to the VM's cores.
    GicRedistributors,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct Device {
    pub name: &'static str,
    pub base: u64,
    pub size: u64,
    pub access: DeviceAccess,
}

/// A set of INTIDs below 1024, one bit each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpiMap([u32; 32]);

impl SpiMap {
    /// The set of `intids` (those ≥ 1024 are not interrupts and are left out).
    pub const fn from_list(intids: &[u32]) -> Self {
        let mut words = [0u32; 32];
        let mut i = 0;
        while i < intids.len() {
            let id = intids[i];
            if id < 1024 {
                words[(id / 32) as usize] |= 1 << (id % 32);
            }
            i += 1;
        }
        SpiMap(words)
    }

    pub fn contains(&self, intid: u32) -> bool {
        self.0
            .get((intid / 32) as usize)
            .is_some_and(|w| w >> (intid % 32) & 1 == 1)
    }

    /// The 32 INTIDs `32 * word ..` as a bit mask.
    pub fn word(&self, word: u32) -> u32 {
        self.0.get(word as usize).copied().unwrap_or(0)
    }

    /// The INTIDs in the set, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        (0..1024).filter(|&i| self.contains(i))
    }
}

/// Serialized as the list of INTIDs.
#[cfg(feature = "serde")]
impl Serialize for SpiMap {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// One virtual machine.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct VmConfig {
    pub id: u8,
    pub name: &'static str,
    pub kind: GuestKind,
    /// Physical cores (MPIDR Aff0) the VM runs on; the first boots it.
    pub cpus: &'static [u8],
    pub memory: &'static [MemRegion],
    pub devices: &'static [Device],
    /// Shared peripheral interrupts (physical INTIDs ≥ 32) the VM owns, as
    /// a bitmap (trapped GIC accesses test 32 INTIDs at a time).
    pub spis: SpiMap,
    /// Where the host loader puts the image (physical) and where it starts (IPA).
    pub image_pa: u64,
    pub entry_ipa: u64,
    /// Linux only: the initramfs (physical) and the device tree the hypervisor writes (IPA).
    pub initrd_pa: u64,
    pub dtb_ipa: u64,
}

/// The whole machine's partition.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct Partition {
    pub name: &'static str,
    pub vms: &'static [VmConfig],
    /// The trace ring region shared between the hypervisor and Linux.
    pub trace_ring: MemRegion,
    /// Virtual INTID of the hvtrace doorbell in Linux.
    pub hvtrace_intid: u32,
}

impl Partition {
    pub fn vm_of_cpu(&self, cpu: u8) -> Option<&VmConfig> {
        self.vms.iter().find(|vm| vm.cpus.contains(&cpu))
    }

    pub fn vm(&self, id: u8) -> Option<&VmConfig> {
        self.vms.iter().find(|vm| vm.id == id)
    }

    /// Checks the invariants the hypervisor relies on: no two VMs share a
    /// core or host memory, every region is page aligned, every core exists.
    pub fn validate(&self, cores: u8) -> Result<(), ConfigError> {
        for (i, a) in self.vms.iter().enumerate() {
            for &c in a.cpus {
                if c >= cores {
                    return Err(ConfigError::NoSuchCore { vm: a.id, cpu: c });
                }
            }
            for r in a.memory {
                if (r.ipa | r.pa | r.size) & 0xfff != 0 || r.size == 0 {
                    return Err(ConfigError::Unaligned { vm: a.id, ipa: r.ipa });
                }
            }
            for b in &self.vms[i + 1..] {
                if a.cpus.iter().any(|c| b.cpus.contains(c)) {
                    return Err(ConfigError::SharedCore { a: a.id, b: b.id });
                }
                for ra in a.memory.iter().filter(|r| !r.shared) {
                    for rb in b.memory.iter().filter(|r| !r.shared) {
                        if ra.pa < rb.pa + rb.size && rb.pa < ra.pa + ra.size {
                            return Err(ConfigError::SharedMemory {
                                a: a.id,
                                b: b.id,
                                pa: ra.pa.max(rb.pa),
                            });
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    NoSuchCore { vm: u8, cpu: u8 },
    Unaligned { vm: u8, ipa: u64 },
    SharedCore { a: u8, b: u8 },
    SharedMemory { a: u8, b: u8, pa: u64 },
}

const MIB: u64 = 1 << 20;
const GICD: u64 = 0x0800_0000;
const GICR: u64 = 0x080A_0000;
const UART0: u64 = 0x0900_0000;

/// Physical memory map under QEMU virt with 1 GiB of RAM (0x4000_0000..0x8000_0000):
/// QEMU's DTB at 0x4000_0000, the hypervisor at 0x4020_0000, the RTOS's 16 MiB at
/// 0x4100_0000 (seen by the RTOS at IPA 0x4000_0000, so stage-2 really
/// translates), the trace ring at 0x4200_0000, Linux from 0x4400_0000 (IPA = PA,
/// so pass-through DMA devices see the addresses Linux programs).
pub const TRACE_RING: MemRegion = MemRegion {
    ipa: 0x4200_0000,
    pa: 0x4200_0000,
    size: 2 * MIB,
    shared: true,
};

const RTOS_MEMORY: &[MemRegion] = &[MemRegion {
    ipa: 0x4000_0000,
    pa: 0x4100_0000,
    size: 16 * MIB,
    shared: false,
}];
const LINUX_MEMORY: &[MemRegion] = &[
    MemRegion {
        ipa: 0x4400_0000,
        pa: 0x4400_0000,
        size: 960 * MIB,
        shared: false,
    },
    TRACE_RING,
];

const GIC_EMULATED: [Device; 2] = [
    Device {
        name: "gicd",
        base: GICD,
        size: 0x1_0000,
        access: DeviceAccess::Emulated(EmulatedDevice::GicDistributor),
    },
    Device {
        name: "gicr",
        base: GICR,
        size: 0xF6_0000,
        access: DeviceAccess::Emulated(EmulatedDevice::GicRedistributors),
    },
];

const RTOS_DEVICES: &[Device] = &[
    GIC_EMULATED[0],
    GIC_EMULATED[1],
    Device {
        name: "uart-console",
        base: UART0,
        size: 0x1000,
        access: DeviceAccess::Emulated(EmulatedDevice::ConsoleUart),
    },
];

const LINUX_DEVICES: &[Device] = &[
    GIC_EMULATED[0],
    GIC_EMULATED[1],
    Device {
        name: "pl011",
        base: UART0,
        size: 0x1000,
        access: DeviceAccess::Passthrough,
    },
    Device {
        name: "pl031",
        base: 0x0901_0000,
        size: 0x1000,
        access: DeviceAccess::Passthrough,
    },
    Device {
        name: "virtio-mmio",
        base: 0x0a00_0000,
        size: 0x4000,
        access: DeviceAccess::Passthrough,
    },
];

/// UART0 (33), RTC (34), the 32 virtio-mmio transports (48..80).
const LINUX_SPIS: &[u32] = &[
    33, 34, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74,
    75, 76, 77, 78, 79,
];

const fn linux_vm(cpus: &'static [u8]) -> VmConfig {
    VmConfig {
        id: 0,
        name: "linux",
        kind: GuestKind::Linux,
        cpus,
        memory: LINUX_MEMORY,
        devices: LINUX_DEVICES,
        spis: SpiMap::from_list(LINUX_SPIS),
        image_pa: 0x4440_0000,
        entry_ipa: 0x4440_0000,
        initrd_pa: 0x4c00_0000,
        dtb_ipa: 0x4400_0000,
    }
}

const fn rtos_vm(cpus: &'static [u8]) -> VmConfig {
    VmConfig {
        id: 1,
        name: "rtos",
        kind: GuestKind::Bare,
        cpus,
        memory: RTOS_MEMORY,
        devices: RTOS_DEVICES,
        spis: SpiMap::from_list(&[]),
        image_pa: 0x4110_0000,
        entry_ipa: 0x4010_0000,
        initrd_pa: 0,
        dtb_ipa: 0,
    }
}

/// The paper's layout: Linux on CPU0, the RTOS on CPU1.
pub const TWO_CORE: Partition = Partition {
    name: "2-core",
    vms: &[linux_vm(&[0]), rtos_vm(&[1])],
    trace_ring: TRACE_RING,
    hvtrace_intid: 112,
};

/// Linux on CPU0-2, the RTOS on CPU3.
pub const FOUR_CORE: Partition = Partition {
    name: "4-core",
    vms: &[linux_vm(&[0, 1, 2]), rtos_vm(&[3])],
    trace_ring: TRACE_RING,
    hvtrace_intid: 112,
};

/// The layout for a machine with `cores` cores.
pub fn for_cores(cores: u8) -> Option<&'static Partition> {
    match cores {
        2 => Some(&TWO_CORE),
        4 => Some(&FOUR_CORE),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spi_maps_hold_exactly_the_listed_spis() {
        for vm in TWO_CORE.vms.iter().chain(FOUR_CORE.vms.iter()) {
            let listed: &[u32] = if vm.kind == GuestKind::Linux { LINUX_SPIS } else { &[] };
            for intid in 0..1100 {
                assert_eq!(vm.spis.contains(intid), listed.contains(&intid), "{} {intid}", vm.name);
            }
            assert!(vm.spis.iter().eq(listed.iter().copied()), "{}", vm.name);
        }
        assert_eq!(SpiMap::from_list(&[33, 34, 63]).word(1), 0x8000_0006);
    }

    #[test]
    fn built_in_layouts_are_valid() {
        TWO_CORE.validate(2).unwrap();
        FOUR_CORE.validate(4).unwrap();
        assert_eq!(TWO_CORE.vm_of_cpu(1).unwrap().name, "rtos");
        assert_eq!(FOUR_CORE.vm_of_cpu(2).unwrap().name, "linux");
        assert!(for_cores(3).is_none());
    }

    #[test]
    fn the_rtos_really_needs_stage2_translation() {
        let rtos = TWO_CORE.vm(1).unwrap();
        assert!(rtos.memory.iter().any(|r| r.ipa != r.pa));
        // Its image lands inside its own memory.
        let r = rtos.memory[0];
        assert_eq!(rtos.image_pa - r.pa, rtos.entry_ipa - r.ipa);
    }

    #[test]
    fn validation_catches_overlaps_and_missing_cores() {
        static A: &[MemRegion] = &[MemRegion {
            ipa: 0,
            pa: 0x1000_0000,
            size: 0x2000,
            shared: false,
        }];
        static B: &[MemRegion] = &[MemRegion {
            ipa: 0,
            pa: 0x1000_1000,
            size: 0x2000,
            shared: false,
        }];
        let mut a = rtos_vm(&[0]);
        a.memory = A;
        let mut b = rtos_vm(&[1]);
        b.memory = B;
        b.id = 2;
        let vms: &'static [VmConfig] = Box::leak(Box::new([a, b]));
        let p = Partition {
            name: "t",
            vms,
            trace_ring: TRACE_RING,
            hvtrace_intid: 112,
        };
        assert_eq!(
            p.validate(2),
            Err(ConfigError::SharedMemory {
                a: 1,
                b: 2,
                pa: 0x1000_1000
            })
        );
        assert_eq!(TWO_CORE.validate(1), Err(ConfigError::NoSuchCore { vm: 1, cpu: 1 }));
    }
}
