//! Probe sites: which VM a probe goes into, what it records, and a site
//! named by the user (symbol, symbol+offset, address, or `FUNCTION%return`)
//! resolved against the VM's image on the host, with the instruction there
//! checked before the hypervisor is asked to patch it, and its fetch
//! arguments compiled from the image's DWARF into the hypervisor's plan.

use crate::target::artifacts::Artifacts;
use anyhow::{bail, Context, Result};
use guest_probe::a64::{self, Class};
use guest_probe::abi::control::{AddKind, ProbeCmd};
use guest_probe::abi::fetch::{FetchPlan, MAX_ARGS};
use guest_probe::debuginfo::DebugInfo;
use guest_probe::emulate::{self, Execution};
use guest_probe::symbols::SymbolTable;
use std::fs;
use std::path::PathBuf;

/// What the CPU the system runs on (QEMU's cortex-a72) implements, as far
/// as running a displaced instruction depends on it: no pointer
/// authentication. The hypervisor reads the real one from ID registers.
pub const QEMU_CPU: emulate::Cpu = emulate::Cpu { pointer_auth: false };

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
    pub fn image(self) -> &'static str {
        match self {
            Vm::Rtos => "rtos",
            Vm::Linux => "vmlinux",
        }
    }

    /// Whether the VM may run on more than one core (Linux does in the
    /// 4-core layout; the RTOS has one core).
    pub fn cores_may_be_many(self) -> bool {
        self == Vm::Linux
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
/// The RTOS probes the timing analysis reads besides the switches
/// (`trace_convert::timing`): each tick's `OSTime`, each delay's length, each
/// task a post readies.
pub const TIMING_PROBES: [&str; 3] = [
    trace_convert::timing::TICK_PROBE,
    trace_convert::timing::DELAY_PROBE,
    trace_convert::timing::READY_PROBE,
];
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
        let image = Image::load(images, vm)?;
        Site::resolve_in(&image, target, vm, kind)
    }

    /// [`Site::resolve`] in an image already read.
    pub fn resolve_in(image: &Image, target: &str, vm: Vm, kind: Option<ProbeKind>) -> Result<Site> {
        let r = image
            .symbols
            .resolve(target)
            .with_context(|| format!("probe target {target:?} in {}", image.path.display()))?;
        if let Some(insn) = r.insn {
            let class = a64::classify(insn);
            if let Class::Refused(why) = class {
                bail!(
                    "probe target {target:?} ({:#x}) is unsafe: {why} (instruction {insn:#010x}); pick another site",
                    r.addr
                );
            }
            if vm.cores_may_be_many() && emulate::plan(insn, class, QEMU_CPU) == Execution::Step {
                bail!(
                    "probe target {target:?} ({:#x}): its instruction {insn:#010x} can only be single-stepped in \
                     place, with the original word back meanwhile, and {} runs on several cores: a hit on another \
                     core would be missed. Probe the next instruction ({:#x}) instead",
                    r.addr,
                    vm.image(),
                    r.addr + 4
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
        self.add_command_as(if self.kind == ProbeKind::Switch {
            AddKind::Switch
        } else {
            AddKind::Plain
        })
    }

    /// The command that inserts a probe of `kind` here (a function's entry
    /// or return site, for `%return`).
    pub fn add_command_as(&self, kind: AddKind) -> ProbeCmd {
        ProbeCmd::Add {
            vm: self.vm.id(),
            addr: self.addr,
            kind,
            plan: self.plan,
        }
    }
}

pub use guest_probe::abi::fetch::RETURN_SUFFIX;

/// A probe as the user asked for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// One site.
    One(Site),
    /// A function's return: a probe at its entry that notes the time (no
    /// record), and one at each `RET` that records the values and the
    /// duration since the same task's entry.
    Return {
        /// The entry.
        entry: Site,
        /// The return sites (all with the same plan).
        returns: Vec<Site>,
        /// Tail calls (`B` out of the function): exits that are not seen.
        tail_calls: Vec<u64>,
    },
}

/// A variable of a VM's image that `hv-trace set` may write: its address
/// and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variable {
    pub addr: u64,
    pub size: u8,
}

impl Variable {
    /// `name` in the image: one symbol in a writable, non-executable section
    /// (`.data`, `.bss`) of 1, 2, 4 or 8 bytes.
    pub fn resolve(image: &Image, name: &str) -> Result<Variable> {
        let found = image.symbols.lookup(name);
        let sym = match found.as_slice() {
            [] => bail!("no symbol {name:?} in {}", image.path.display()),
            [one] => *one,
            more => bail!("{name:?} names {} symbols in {}", more.len(), image.path.display()),
        };
        if !sym.writable {
            bail!(
                "{name} at {:#x} is not a variable (not in a writable data section): only .data and .bss are set",
                sym.addr
            );
        }
        let size = match sym.size {
            1 | 2 | 4 | 8 => sym.size as u8,
            n => bail!("{name} is {n} bytes: only variables of 1, 2, 4 or 8 bytes are set"),
        };
        if sym.addr % u64::from(size) != 0 {
            bail!("{name} at {:#x} is not aligned to its size {size}", sym.addr);
        }
        Ok(Variable { addr: sym.addr, size })
    }

    /// `value` (decimal, `0x` hex, or negative for a signed variable) as the
    /// variable's bytes, refused when it does not fit.
    pub fn encode(&self, value: &str) -> Result<u64> {
        let bits = u32::from(self.size) * 8;
        let v = value.trim();
        let parsed = if let Some(h) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
            u64::from_str_radix(h, 16).ok()
        } else if let Some(neg) = v.strip_prefix('-') {
            neg.parse::<u64>()
                .ok()
                .filter(|&m| bits == 64 || m <= 1 << (bits - 1))
                .map(|m| m.wrapping_neg())
        } else {
            v.parse::<u64>().ok()
        };
        let raw = parsed.with_context(|| format!("{value:?} is not a number (decimal, 0x hex, or negative)"))?;
        let mask = if bits == 64 { u64::MAX } else { (1 << bits) - 1 };
        let fits = v.starts_with('-') || raw <= mask;
        anyhow::ensure!(fits, "{value} does not fit in {} bytes", self.size);
        Ok(raw & mask)
    }
}

/// A VM's image, read once: its path, bytes and symbols.
pub struct Image {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    pub symbols: SymbolTable,
}

impl Image {
    /// The image of `vm` among `images` (the artifacts a system booted with).
    pub fn load(images: &Artifacts, vm: Vm) -> Result<Image> {
        let path = images
            .get(vm.image())
            .with_context(|| format!("the running system's {} image is unknown", vm.image()))?
            .clone();
        let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let symbols =
            SymbolTable::from_elf(&bytes).with_context(|| format!("reading symbols of {}", path.display()))?;
        Ok(Image { path, bytes, symbols })
    }

    /// Its debug info.
    pub fn debug_info(&self) -> Result<DebugInfo> {
        DebugInfo::load(&self.bytes).with_context(|| format!("reading the debug info of {}", self.path.display()))
    }
}

/// Where the DWARF describes a site: past the NOPs a Linux function starts
/// with (ftrace's patchable entry, which its DWARF scope leaves out); NOPs
/// change no register, so what holds there holds at the site.
pub fn dwarf_address(table: &SymbolTable, addr: u64) -> u64 {
    const NOP: u32 = 0xd503_201f;
    let mut at = addr;
    while at < addr + 16 && table.insn_at(at) == Some(NOP) {
        at += 4;
    }
    at
}

/// Resolves `target` (with `args`, fetch arguments in kprobe or `perf probe`
/// syntax, compiled against the image's DWARF at each site) in the VM's
/// image.
pub fn resolve(
    images: &Artifacts,
    target: &str,
    args: &[String],
    vm: Vm,
    kind: Option<ProbeKind>,
) -> Result<Placement> {
    if args.len() > MAX_ARGS {
        bail!("{} fetch arguments given; a probe takes at most {MAX_ARGS}", args.len());
    }
    let image = Image::load(images, vm)?;
    let compile = |site: &mut Site, debug: &DebugInfo| -> Result<()> {
        for (i, spec) in args.iter().enumerate() {
            let arg = debug
                .compile(dwarf_address(&image.symbols, site.addr), spec, i)
                .with_context(|| format!("fetch argument {spec:?} at {}", site.label))?;
            site.plan
                .push(arg)
                .map_err(|e| anyhow::anyhow!("fetch argument {spec:?}: {e}"))?;
        }
        Ok(())
    };
    let Some(function) = target.strip_suffix(RETURN_SUFFIX) else {
        let mut site = Site::resolve_in(&image, target, vm, kind)?;
        if !args.is_empty() {
            if site.kind == ProbeKind::Switch {
                bail!("a context-switch probe records the two tasks; add --kind plain to fetch arguments at {target}");
            }
            compile(&mut site, &image.debug_info()?)?;
        }
        return Ok(Placement::One(site));
    };
    if kind == Some(ProbeKind::Switch) {
        bail!("{target}: a return probe cannot record a context switch");
    }
    let sites = image
        .symbols
        .return_sites(function)
        .with_context(|| format!("the returns of {function:?}"))?;
    if sites.rets.is_empty() {
        bail!(
            "{function} has no RET instruction ({} tail calls): it never returns by itself; probe its callees' returns instead",
            sites.tail_calls.len()
        );
    }
    let entry = Site {
        vm,
        addr: sites.entry,
        label: function.to_string(),
        kind: ProbeKind::Plain,
        plan: FetchPlan::EMPTY,
    };
    // The record says it is a return; the label is the function's.
    let label = function.to_string();
    let debug = if args.is_empty() {
        None
    } else {
        Some(image.debug_info()?)
    };
    let mut returns = Vec::new();
    for addr in sites.rets {
        let mut site = Site {
            vm,
            addr,
            label: format!("{function}+{:#x}", addr - sites.entry),
            kind: ProbeKind::Plain,
            plan: FetchPlan::with_label(&label),
        };
        if let Some(d) = &debug {
            compile(&mut site, d)?;
        }
        returns.push(site);
    }
    Ok(Placement::Return {
        entry,
        returns,
        tail_calls: sites.tail_calls,
    })
}

#[cfg(test)]
mod tests {
    use super::Variable;

    #[test]
    fn a_value_is_encoded_in_the_variables_size_or_refused() {
        let u32v = Variable { addr: 0x1000, size: 4 };
        assert_eq!(u32v.encode("10").unwrap(), 10);
        assert_eq!(u32v.encode("0xffffffff").unwrap(), 0xffff_ffff);
        assert_eq!(u32v.encode("-1").unwrap(), 0xffff_ffff);
        assert!(u32v
            .encode("0x100000000")
            .unwrap_err()
            .to_string()
            .contains("does not fit in 4 bytes"));
        assert!(u32v.encode("ten").unwrap_err().to_string().contains("not a number"));
        let u8v = Variable { addr: 0x1000, size: 1 };
        assert_eq!(u8v.encode("-128").unwrap(), 0x80);
        assert!(u8v.encode("-129").is_err());
        assert!(u8v.encode("256").is_err());
        let u64v = Variable { addr: 0x1000, size: 8 };
        assert_eq!(u64v.encode("-1").unwrap(), u64::MAX);
        assert_eq!(u64v.encode("18446744073709551615").unwrap(), u64::MAX);
    }
}
