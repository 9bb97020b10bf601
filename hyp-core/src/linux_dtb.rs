//! The Linux VM's device tree, derived from QEMU's: its own cores and
//! memory, the devices it owns, the trace ring as reserved memory and the
//! `hvtrace` node with its doorbell interrupt, and in `/chosen` QEMU's
//! `rng-seed`.

use crate::bootinfo::BootInfo;
use crate::config::{Partition, VmConfig};
use crate::fdt::{Fdt, FdtError, FdtWriter, Token};

/// Phandle of the trace ring's reserved-memory node (QEMU's start at 0x8000).
pub const RING_PHANDLE: u32 = 0x4856_5452;
/// The `compatible` the Linux module binds to.
pub const HVTRACE_COMPATIBLE: &[u8] = b"hv-trace,hvtrace";

/// Top-level nodes of QEMU's tree that Linux does not get (not mapped into
/// its stage-2, or replaced).
const DROPPED: &[&[u8]] = &[
    b"platform-bus",
    b"fw-cfg",
    b"gpio-keys",
    b"pl061",
    b"pcie",
    b"pmu",
    b"flash",
    b"memory",
    b"chosen",
    b"reserved-memory",
];

fn base_name(name: &[u8]) -> &[u8] {
    name.split(|&c| c == b'@').next().unwrap_or(name)
}

/// `cpu@N` → N.
fn cpu_number(name: &[u8]) -> Option<u8> {
    let n = name.strip_prefix(b"cpu@")?;
    let s = core::str::from_utf8(n).ok()?;
    u8::from_str_radix(s, 16).ok()
}

fn keep(path: &[&[u8]], name: &[u8], vm: &VmConfig) -> bool {
    match path {
        // Children of the root.
        [_root] => !DROPPED.contains(&base_name(name)),
        [_, b"cpus"] => match cpu_number(name) {
            Some(n) => vm.cpus.contains(&n),
            None => base_name(name) != b"cpu-map",
        },
        // The GIC's ITS: no LPIs for guests.
        [_, intc] if base_name(intc) == b"intc" => base_name(name) != b"its",
        _ => true,
    }
}

/// The one property of QEMU's `/chosen` that Linux gets too.
///
/// QEMU's `rng-seed` is 32 random bytes. Linux credits them to its entropy
/// pool at boot (`random.trust_bootloader`, on by default), so its crng is
/// ready from the start, as when it boots on QEMU alone. Without them it
/// starts with no entropy: until interrupts have credited 128 bits every
/// `get_random_*` call (six per exec: stack, mmap and brk randomisation,
/// `AT_RANDOM`) extracts a new key from the input pool (BLAKE2s), which cost execl 15 % of its
/// loops, and the state flips one way within a boot when enough
/// interrupts have come (the execl bench was bimodal). `kaslr-seed` stays
/// out: a randomised kernel base would move the addresses the bench and
/// the tools probe.
const RNG_SEED: &[u8] = b"rng-seed";

fn reg(w: &mut FdtWriter, ranges: &[(u64, u64)]) {
    let mut cells = [0u32; 16];
    for (i, &(base, size)) in ranges.iter().enumerate().take(4) {
        cells[i * 4..i * 4 + 4].copy_from_slice(&[(base >> 32) as u32, base as u32, (size >> 32) as u32, size as u32]);
    }
    w.prop_cells(b"reg", &cells[..ranges.len().min(4) * 4]);
}

/// Writes Linux's tree into `out`; returns its size.
pub fn derive(
    qemu: &Fdt,
    vm: &VmConfig,
    partition: &Partition,
    info: &BootInfo,
    initrd_ipa: u64,
    out: &mut [u8],
) -> Result<usize, FdtError> {
    let mut w = FdtWriter::new(out);
    let mut path: [&[u8]; 8] = [b""; 8];
    let mut depth = 0usize;
    let mut skip_from: Option<usize> = None;
    let mut rng_seed: Option<&[u8]> = None;
    for token in qemu.tokens() {
        match token? {
            Token::Begin(name) => {
                if depth >= path.len() {
                    return Err(FdtError::Unbalanced);
                }
                if skip_from.is_none() && depth > 0 && !keep(&path[..depth], name, vm) {
                    skip_from = Some(depth);
                }
                path[depth] = name;
                depth += 1;
                if skip_from.is_none() {
                    w.begin_node(name);
                }
            }
            Token::Prop { name, value } => {
                if skip_from.is_none() {
                    w.prop(name, value);
                } else if depth == 2 && base_name(path[1]) == b"chosen" && name == RNG_SEED {
                    rng_seed = Some(value);
                }
            }
            Token::End => {
                depth = depth.checked_sub(1).ok_or(FdtError::Unbalanced)?;
                if skip_from == Some(depth) {
                    skip_from = None;
                } else if skip_from.is_none() {
                    if depth == 0 {
                        add_nodes(&mut w, vm, partition, info, initrd_ipa, rng_seed);
                    }
                    w.end_node();
                }
            }
        }
    }
    w.finish(u32::from(vm.cpus[0]))
}

fn add_nodes(
    w: &mut FdtWriter,
    vm: &VmConfig,
    partition: &Partition,
    info: &BootInfo,
    initrd_ipa: u64,
    rng_seed: Option<&[u8]>,
) {
    let ring = partition.trace_ring;
    let mut ram = [(0u64, 0u64); 4];
    let mut n = 0;
    for r in vm.memory.iter().take(4) {
        ram[n] = (r.ipa, r.size);
        n += 1;
    }
    ram[..n].sort_unstable();
    let mut name = [0u8; 32];
    let len = node_name(&mut name, b"memory@", ram[0].0);
    w.begin_node(&name[..len]);
    w.prop_str(b"device_type", b"memory");
    reg(w, &ram[..n]);
    w.end_node();

    w.begin_node(b"reserved-memory");
    w.prop_u32(b"#address-cells", 2);
    w.prop_u32(b"#size-cells", 2);
    w.prop(b"ranges", &[]);
    let len = node_name(&mut name, b"hvtrace-ring@", ring.ipa);
    w.begin_node(&name[..len]);
    reg(w, &[(ring.ipa, ring.size)]);
    w.prop(b"no-map", &[]);
    w.prop_u32(b"phandle", RING_PHANDLE);
    w.end_node();
    w.end_node();

    let len = node_name(&mut name, b"hvtrace@", ring.ipa);
    w.begin_node(&name[..len]);
    w.prop_str(b"compatible", HVTRACE_COMPATIBLE);
    w.prop_u32(b"memory-region", RING_PHANDLE);
    // SPI, level-high: INTID = SPI number + 32.
    w.prop_cells(b"interrupts", &[0, partition.hvtrace_intid - 32, 4]);
    w.end_node();

    w.begin_node(b"chosen");
    w.prop_str(b"bootargs", info.bootargs());
    w.prop_str(b"stdout-path", b"/pl011@9000000");
    if info.initrd_size > 0 {
        let end = initrd_ipa + info.initrd_size;
        w.prop_cells(b"linux,initrd-start", &[(initrd_ipa >> 32) as u32, initrd_ipa as u32]);
        w.prop_cells(b"linux,initrd-end", &[(end >> 32) as u32, end as u32]);
    }
    if let Some(seed) = rng_seed {
        w.prop(RNG_SEED, seed);
    }
    w.end_node();
}

/// `prefix` + lower-case hex `addr` into `buf`; returns the length.
fn node_name(buf: &mut [u8; 32], prefix: &[u8], addr: u64) -> usize {
    buf[..prefix.len()].copy_from_slice(prefix);
    let mut n = prefix.len();
    let digits = if addr == 0 {
        1
    } else {
        (64 - addr.leading_zeros()).div_ceil(4)
    };
    for i in (0..digits).rev() {
        let d = ((addr >> (i * 4)) & 0xf) as u8;
        buf[n] = if d < 10 { b'0' + d } else { b'a' + d - 10 };
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bootinfo::{BootInfo, FLAG_LINUX};
    use crate::config::{FOUR_CORE, TWO_CORE};

    const QEMU: &[u8] = include_bytes!("../tests/fixtures/qemu-virt-2cpu.dtb");

    /// The derived tree, as `dtc` prints it (the real tool judges our blob).
    fn derive_dts(partition: &Partition) -> String {
        let vm = partition.vm(0).unwrap();
        let info = BootInfo::new(FLAG_LINUX, 0x1234, 0, "console=ttyAMA0 rdinit=/init");
        let mut out = vec![0u8; 65536];
        let size = derive(&Fdt::parse(QEMU).unwrap(), vm, partition, &info, vm.initrd_pa, &mut out).unwrap();
        let dir = tempfile_dir();
        let path = dir.join(format!("linux-{}.dtb", partition.name));
        std::fs::write(&path, &out[..size]).unwrap();
        let dts = std::process::Command::new("dtc")
            .args(["-I", "dtb", "-O", "dts"])
            .arg(&path)
            .output();
        match dts {
            Ok(o) if o.status.success() => String::from_utf8(o.stdout).unwrap(),
            Ok(o) => panic!("dtc rejected our tree: {}", String::from_utf8_lossy(&o.stderr)),
            Err(e) => panic!("dtc (package device-tree-compiler, installed by scripts/setup.sh) missing: {e}"),
        }
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("hyp-core-dtb-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn linux_sees_its_own_cpu_memory_devices_and_the_hvtrace_node() {
        let dts = derive_dts(&TWO_CORE);
        assert!(dts.contains("cpu@0 {"), "{dts}");
        assert!(!dts.contains("cpu@1 {"), "the RTOS's core must not appear:\n{dts}");
        assert!(!dts.contains("cpu-map"));
        assert!(dts.contains("memory@42000000 {"));
        assert!(
            dts.contains("reg = <0x00 0x42000000 0x00 0x200000 0x00 0x44000000 0x00 0x3c000000>;"),
            "{dts}"
        );
        assert!(dts.contains("hvtrace-ring@42000000 {"));
        assert!(dts.contains("no-map;"));
        assert!(dts.contains("compatible = \"hv-trace,hvtrace\";"));
        assert!(
            dts.contains("interrupts = <0x00 0x50 0x04>;"),
            "SPI 80 = INTID 112:\n{dts}"
        );
        assert!(dts.contains("bootargs = \"console=ttyAMA0 rdinit=/init\";"));
        assert!(dts.contains("linux,initrd-start = <0x00 0x4c000000>;"), "{dts}");
        assert!(dts.contains("linux,initrd-end = <0x00 0x4c001234>;"));
        // QEMU's seed (the fixture's), so Linux's crng is ready at boot.
        assert!(
            dts.contains(
                "rng-seed = <0xac75e1c4 0xa20c5125 0xae0d84da 0x9509cfa4 0x8a2a0257 0xe0f50e49 0xd636a729 0xbab866f6>;"
            ),
            "{dts}"
        );
        assert!(!dts.contains("kaslr-seed"), "{dts}");
        for kept in [
            "pl011@9000000",
            "pl031@9010000",
            "virtio_mmio@a000000",
            "intc@8000000",
            "psci {",
            "timer {",
        ] {
            assert!(dts.contains(kept), "{kept} missing");
        }
        for dropped in [
            "its@8080000",
            "pcie@",
            "fw-cfg@",
            "platform-bus@",
            "flash@",
            "pl061@",
            "memory@40000000",
        ] {
            assert!(!dts.contains(dropped), "{dropped} must be dropped");
        }
    }

    #[test]
    fn four_core_layout_keeps_three_cpus() {
        // The 2-CPU fixture has cpu@0 and cpu@1 only; both belong to Linux here.
        let dts = derive_dts(&FOUR_CORE);
        assert!(dts.contains("cpu@0 {") && dts.contains("cpu@1 {"));
    }

    #[test]
    fn a_small_buffer_is_an_error() {
        let vm = TWO_CORE.vm(0).unwrap();
        let info = BootInfo::new(FLAG_LINUX, 0, 0, "");
        let mut out = vec![0u8; 512];
        let r = derive(&Fdt::parse(QEMU).unwrap(), vm, &TWO_CORE, &info, 0, &mut out);
        assert_eq!(r, Err(FdtError::OutOfSpace));
    }

    #[test]
    fn node_names() {
        let mut b = [0u8; 32];
        let n = node_name(&mut b, b"memory@", 0x4400_0000);
        assert_eq!(&b[..n], b"memory@44000000");
        let n = node_name(&mut b, b"x@", 0);
        assert_eq!(&b[..n], b"x@0");
    }
}
