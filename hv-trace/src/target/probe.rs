//! Probe sites: which VM a probe goes into, what it records, and a site
//! named by the user (symbol, symbol+offset or address) resolved against the
//! VM's image on the host, with the instruction there checked before the
//! hypervisor is asked to patch it.

use crate::target::artifacts::Artifacts;
use anyhow::{bail, Context, Result};
use guest_probe::a64::{self, Class};
use guest_probe::abi::control::ProbeCmd;
use guest_probe::abi::fetch::FetchPlan;
use guest_probe::symbols::SymbolTable;
use std::fs;

/// Which VM a probe goes into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Vm {
    Rtos,
    Linux,
}

impl Vm {
    /// The hypervisor's id of the VM.
    pub fn id(self) -> u8 {
        match self {
            Vm::Linux => 0,
            Vm::Rtos => 1,
        }
    }

    /// The artifact whose symbols name the VM's code.
    fn image(self) -> &'static str {
        match self {
            Vm::Rtos => "rtos",
            Vm::Linux => "vmlinux",
        }
    }
}

/// What a probe records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProbeKind {
    /// A context switch: current task → highest-ready task.
    Switch,
    /// A plain hit with the current task.
    Plain,
}

/// The RTOS's context-switch functions: probes there record switches unless
/// told otherwise.
pub const RTOS_SWITCHES: [&str; 2] = ["OSCtxSw", "OSIntCtxSw"];
/// Linux's context-switch function (the bench's and profilers' Linux site).
pub const LINUX_SWITCH: &str = "__switch_to";

/// A probe site resolved against its VM's image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    pub vm: Vm,
    /// Guest virtual address of the instruction.
    pub addr: u64,
    /// How the user would name it: `symbol`, `symbol+0xoff` or the address.
    pub label: String,
    pub kind: ProbeKind,
    /// What each hit fetches besides the task; its label names the event.
    pub plan: FetchPlan,
}

impl Site {
    /// Resolves `target` in the VM's image among `images` (the artifacts a
    /// system booted with). Refuses an instruction no displaced-instruction
    /// strategy can run. `kind` defaults to a switch at the RTOS's switch
    /// functions and to plain elsewhere.
    pub fn resolve(images: &Artifacts, target: &str, vm: Vm, kind: Option<ProbeKind>) -> Result<Site> {
        let image = images
            .get(vm.image())
            .with_context(|| format!("the running system's {} image is unknown", vm.image()))?;
        let bytes = fs::read(image).with_context(|| format!("reading {}", image.display()))?;
        let table = SymbolTable::from_elf(&bytes).with_context(|| format!("reading symbols of {}", image.display()))?;
        let r = table
            .resolve(target)
            .with_context(|| format!("probe target {target:?} in {}", image.display()))?;
        if let Some(insn) = r.insn {
            if let Class::Refused(why) = a64::classify(insn) {
                bail!(
                    "probe target {target:?} ({:#x}) is unsafe: {why} (instruction {insn:#010x}); pick another site",
                    r.addr
                );
            }
        }
        let label = match &r.symbol {
            Some((name, 0)) => name.clone(),
            Some((name, off)) => format!("{name}+{off:#x}"),
            None => format!("{:#x}", r.addr),
        };
        let kind = kind.unwrap_or(if vm == Vm::Rtos && RTOS_SWITCHES.contains(&label.as_str()) {
            ProbeKind::Switch
        } else {
            ProbeKind::Plain
        });
        Ok(Site {
            vm,
            addr: r.addr,
            plan: FetchPlan::with_label(&label),
            label,
            kind,
        })
    }

    /// The control command that inserts a probe here.
    pub fn add_command(&self) -> ProbeCmd {
        ProbeCmd::Add {
            vm: self.vm.id(),
            addr: self.addr,
            switch: self.kind == ProbeKind::Switch,
            plan: self.plan,
        }
    }
}
