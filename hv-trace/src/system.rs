//! The whole target system: the hypervisor plus the guest images it
//! partitions the machine between, placed where the partition expects them.

use crate::artifacts::{self, Options};
use crate::{paths, qemu};
use anyhow::{Context, Result};
use hyp_core::bootinfo::{self, BootInfo};
use hyp_core::config::{self, GuestKind};
use std::fs;

/// QEMU with the hypervisor, the RTOS image and the boot-info blob.
pub fn machine(opts: &Options, linux_script: Option<&str>) -> Result<qemu::Machine> {
    let partition = &config::TWO_CORE;
    let hyp = artifacts::build_hypervisor()?;
    let (_, rtos_bin) = artifacts::build_rtos(opts)?;
    let rtos = partition
        .vms
        .iter()
        .find(|v| v.kind == GuestKind::Bare)
        .context("the partition has no RTOS VM")?;
    let rtos_size = fs::metadata(&rtos_bin)?.len();
    let linux_vm = partition
        .vms
        .iter()
        .find(|v| v.kind == GuestKind::Linux)
        .context("the partition has no Linux VM")?;
    let linux = artifacts::build_linux()?;
    let initrd = linux["initramfs"].clone();
    let initrd_size = fs::metadata(&initrd)?.len();
    let mut cmdline = String::from("console=ttyAMA0 earlycon rdinit=/init");
    if let Some(script) = linux_script {
        anyhow::ensure!(
            !script.is_empty()
                && script
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "--linux-script takes the name of a script in guests/linux/rootfs/etc/hvtrace, not {script:?}"
        );
        cmdline.push_str(" hvtrace.run=");
        cmdline.push_str(script);
    }
    let info = BootInfo::new(
        bootinfo::FLAG_RTOS | bootinfo::FLAG_LINUX,
        initrd_size,
        rtos_size,
        &cmdline,
    );
    let run_dir = paths::cache_dir().join("run");
    fs::create_dir_all(&run_dir)?;
    let info_path = run_dir.join(format!("bootinfo-{}.bin", std::process::id()));
    fs::write(&info_path, info.to_bytes())?;
    Ok(qemu::Machine {
        cpus: 2,
        memory_mib: 1024,
        virtualization: true,
        kernel: hyp,
        blobs: vec![
            (rtos_bin, rtos.image_pa),
            (linux["linux-image"].clone(), linux_vm.image_pa),
            (initrd, linux_vm.initrd_pa),
            (info_path, bootinfo::BOOTINFO_PA),
        ],
        extra_args: vec![],
    })
}
