//! The whole target system: the hypervisor plus the guest images it
//! partitions the machine between, placed where the partition expects them,
//! with the OS profiles the probes need (extracted from the ELF images).

use crate::target::artifacts::{self, Artifacts, Options};
use crate::target::qemu;
use anyhow::{Context, Result};
use hyp_core::bootinfo::{self, BootInfo};
use hyp_core::config::{self, GuestKind};
use std::fs;
use std::path::Path;

/// How to start the system.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub opts: Options,
    /// A script of guests/linux/rootfs/etc/hvtrace to run after boot.
    pub linux_script: Option<String>,
    /// log2 of the trace ring capacity (None = the hypervisor's default).
    pub ring_order: Option<u8>,
    /// Session directory for the control channel and monitor.
    pub session: Option<std::path::PathBuf>,
    /// Cores of the machine: 2 (Linux on CPU0, the RTOS on CPU1) or 4 (Linux
    /// on CPU0-2, the RTOS on CPU3). 0 means 2.
    pub cores: u8,
    /// Boot this RTOS ELF (e.g. a genuine uC/OS-II build, linked for the
    /// RTOS VM's memory) instead of building ours.
    pub rtos_elf: Option<std::path::PathBuf>,
}

/// A user-supplied RTOS ELF as the loadable binary image.
fn rtos_image(elf: &Path) -> Result<std::path::PathBuf> {
    anyhow::ensure!(elf.is_file(), "RTOS image {} does not exist", elf.display());
    let bin = crate::target::paths::cache_dir()
        .join("run")
        .join(format!("rtos-{}.bin", std::process::id()));
    fs::create_dir_all(bin.parent().expect("has a parent"))?;
    let status = std::process::Command::new("aarch64-linux-gnu-objcopy")
        .args(["-O", "binary"])
        .arg(elf)
        .arg(&bin)
        .status()
        .context("running aarch64-linux-gnu-objcopy (package binutils-aarch64-linux-gnu)")?;
    anyhow::ensure!(
        status.success(),
        "{} is not an AArch64 ELF image objcopy can flatten",
        elf.display()
    );
    Ok(bin)
}

/// Build everything and describe the QEMU machine; the artifacts used.
pub fn machine(plan: &Plan) -> Result<(qemu::Machine, Artifacts)> {
    let cores = if plan.cores == 0 { 2 } else { plan.cores };
    let partition = config::for_cores(cores)
        .with_context(|| format!("no partition layout for {cores} cores: use 2 (the paper's) or 4"))?;
    if let Some(elf) = &plan.rtos_elf {
        // Said before anything is built.
        anyhow::ensure!(elf.is_file(), "RTOS image {} does not exist", elf.display());
    }
    let _lock = artifacts::BuildLock::acquire()?;
    let hyp = artifacts::build_hypervisor()?;
    let (rtos_elf, rtos_bin) = match &plan.rtos_elf {
        Some(elf) => (elf.clone(), rtos_image(elf)?),
        None => artifacts::build_rtos(&plan.opts)?,
    };
    let rtos = partition
        .vms
        .iter()
        .find(|v| v.kind == GuestKind::Bare)
        .context("the partition has no RTOS VM")?;
    let linux_vm = partition
        .vms
        .iter()
        .find(|v| v.kind == GuestKind::Linux)
        .context("the partition has no Linux VM")?;
    let mut built = artifacts::build_linux()?;
    let initrd = built["initramfs"].clone();

    let mut cmdline = String::from("console=ttyAMA0 earlycon rdinit=/init");
    if let Some(script) = &plan.linux_script {
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
    let mut flags = bootinfo::FLAG_RTOS | bootinfo::FLAG_LINUX;
    if let Some(order) = plan.ring_order {
        anyhow::ensure!((4..=16).contains(&order), "the ring capacity must be 2^4..2^16 records");
        flags |= u32::from(order) << bootinfo::RING_ORDER_SHIFT;
    }
    // The OS profiles, so that probes name tasks from the first hit.
    let rtos_profile = match guest_probe::profile::extract_ucos(&fs::read(&rtos_elf)?) {
        Ok(p) => {
            flags |= bootinfo::FLAG_RTOS_PROFILE;
            Some(p.profile)
        }
        Err(e) => {
            eprintln!(
                "[hv-trace] warning: no uC/OS-II layout in {} ({e}); RTOS probes will not name tasks",
                rtos_elf.display()
            );
            None
        }
    };
    let linux_profile = guest_probe::profile::extract_linux(&fs::read(&built["vmlinux"])?)
        .with_context(|| format!("reading task_struct from {}", built["vmlinux"].display()))?;
    flags |= bootinfo::FLAG_LINUX_PROFILE;
    let info = BootInfo::new(
        flags,
        fs::metadata(&initrd)?.len(),
        fs::metadata(&rtos_bin)?.len(),
        &cmdline,
    );
    let mut blob = vec![0u8; bootinfo::LINUX_PROFILE_OFFSET as usize + 0x1000];
    blob[..bootinfo::SIZE].copy_from_slice(&info.to_bytes());
    if let Some(p) = rtos_profile {
        let rp = p.to_bytes();
        let at = bootinfo::RTOS_PROFILE_OFFSET as usize;
        blob[at..at + rp.len()].copy_from_slice(&rp);
    }
    let lp = linux_profile.to_bytes();
    let at = bootinfo::LINUX_PROFILE_OFFSET as usize;
    blob[at..at + lp.len()].copy_from_slice(&lp);

    let run_dir = crate::target::paths::cache_dir().join("run");
    fs::create_dir_all(&run_dir)?;
    let info_path = run_dir.join(format!("bootinfo-{}.bin", std::process::id()));
    fs::write(&info_path, blob)?;
    let extra_args = plan
        .session
        .as_deref()
        .map(crate::target::session::qemu_args)
        .unwrap_or_default();
    built.insert("hypervisor".into(), hyp.clone());
    built.insert("rtos".into(), rtos_elf);
    let machine = qemu::Machine {
        cpus: u32::from(cores),
        memory_mib: 1024,
        virtualization: true,
        kernel: hyp,
        blobs: vec![
            (rtos_bin, rtos.image_pa),
            (built["linux-image"].clone(), linux_vm.image_pa),
            (initrd, linux_vm.initrd_pa),
            (info_path, bootinfo::BOOTINFO_PA),
        ],
        extra_args,
    };
    Ok((machine, built))
}

/// Remember which images a session booted (for symbol resolution later).
pub fn save_artifacts(dir: &Path, built: &Artifacts) -> Result<()> {
    fs::write(dir.join("artifacts.json"), serde_json::to_string_pretty(built)?)?;
    Ok(())
}

pub fn load_artifacts(dir: &Path) -> Result<Artifacts> {
    let text = fs::read_to_string(dir.join("artifacts.json")).with_context(|| {
        format!(
            "no running system's images recorded in {}: start one with `hv-trace run`",
            dir.display()
        )
    })?;
    Ok(serde_json::from_str(&text)?)
}
