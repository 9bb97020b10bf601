//! `hv-trace probe add|remove|list|vars|funcs`: probes in the running
//! system, through the hvtrace module's control files, and what the VM's
//! image offers to probe and fetch (from its DWARF, no system needed).

use anyhow::{Context, Result};
use hv_trace::target::artifacts::{self, Artifacts};
use hv_trace::target::control::Control;
use hv_trace::target::hvtrace;
use hv_trace::target::probe::{self, Image, Placement, ProbeKind, Site, Vm, RETURN_SUFFIX};
use hv_trace::target::session;
use hv_trace::target::system;

/// The running system's control channel and the images it booted.
fn connect() -> Result<(Control, Artifacts)> {
    let dir = session::dir();
    let images = system::load_artifacts(&dir)?;
    Ok((Control::connect(&dir)?, images))
}

/// The images of the running system, or else the ones a system would boot.
fn images() -> Result<Artifacts> {
    // `build` takes the build lock itself (a second lock on another
    // descriptor of the same file would wait for ourselves forever).
    system::load_artifacts(&session::dir())
        .or_else(|_| artifacts::build(artifacts::Target::All, &artifacts::Options::default()))
}

/// `TARGET ARG...`, given as words or as one string (`'OSSemPost pevent->OSEventCnt'`).
fn split_spec(spec: &[String]) -> (String, Vec<String>) {
    let mut words: Vec<String> = spec
        .iter()
        .flat_map(|s| s.split_whitespace().map(str::to_string))
        .collect();
    let target = if words.is_empty() {
        String::new()
    } else {
        words.remove(0)
    };
    (target, words)
}

pub fn add(spec: &[String], vm: Vm, kind: Option<ProbeKind>) -> Result<()> {
    let (target, args) = split_spec(spec);
    let (mut ctl, images) = connect()?;
    let placement = probe::resolve(&images, &target, &args, vm, kind)?;
    let ids = hvtrace::add_placement(&mut ctl, &placement)?;
    match &placement {
        Placement::One(site) => println!(
            "probe {}: {} ({:#x}) in {:?}, {:?}{}",
            ids[0],
            site.label,
            site.addr,
            vm,
            site.kind,
            describe_args(site)
        ),
        Placement::Return {
            entry,
            returns,
            tail_calls,
        } => {
            println!(
                "probe {}: {} ({:#x}) in {vm:?}, the entry of {target} (records nothing)",
                ids[0], entry.label, entry.addr
            );
            for (id, site) in ids[1..].iter().zip(returns) {
                println!(
                    "probe {id}: {} ({:#x}), a return of {}{}, with duration",
                    site.label,
                    site.addr,
                    entry.label,
                    describe_args(site)
                );
            }
            if !tail_calls.is_empty() {
                println!(
                    "note: {} also leaves by {} tail call(s) (at {}); those returns are not seen",
                    entry.label,
                    tail_calls.len(),
                    tail_calls
                        .iter()
                        .map(|a| format!("{a:#x}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
    }
    Ok(())
}

fn describe_args(site: &Site) -> String {
    let args: Vec<String> = site.plan.args().iter().map(|a| a.to_string()).collect();
    if args.is_empty() {
        String::new()
    } else {
        format!(", fetching {}", args.join(" "))
    }
}

/// `hv-trace set VARIABLE VALUE`.
pub fn set(variable: &str, value: &str, vm: Vm) -> Result<()> {
    let (mut ctl, images) = connect()?;
    let image = Image::load(&images, vm)?;
    let var = probe::Variable::resolve(&image, variable)?;
    let raw = var.encode(value)?;
    hvtrace::write(&mut ctl, vm.id(), var.addr, var.size, raw)?;
    println!("{variable} ({:#x}, {} bytes) in {vm:?} = {value}", var.addr, var.size);
    Ok(())
}

pub fn remove(target: &str, vm: Vm) -> Result<()> {
    let (mut ctl, images) = connect()?;
    let ids = match target.parse::<u16>() {
        Ok(id) => vec![id],
        Err(_) => {
            let placement = probe::resolve(&images, target, &[], vm, None)?;
            let addrs: Vec<u64> = match &placement {
                Placement::One(site) => vec![site.addr],
                // Returns first: an entry probe outlives its returns.
                Placement::Return { entry, returns, .. } => {
                    returns.iter().map(|s| s.addr).chain([entry.addr]).collect()
                }
            };
            let listed = hvtrace::list(&mut ctl)?;
            let ids: Vec<u16> = addrs
                .iter()
                .filter_map(|a| listed.iter().find(|p| p.vm == vm.id() && p.addr == *a).map(|p| p.id))
                .collect();
            anyhow::ensure!(!ids.is_empty(), "no probe at {target} in {vm:?}");
            ids
        }
    };
    for id in &ids {
        hvtrace::remove(&mut ctl, vm.id(), *id)?;
        println!("probe {id} removed");
    }
    Ok(())
}

pub fn list() -> Result<()> {
    let mut ctl = Control::connect(&session::dir())?;
    print!("{}", hvtrace::list_text(&mut ctl)?);
    Ok(())
}

pub fn vars(target: &str, vm: Vm) -> Result<()> {
    let image = Image::load(&images()?, vm)?;
    let function = target.strip_suffix(RETURN_SUFFIX).unwrap_or(target);
    let site = Site::resolve_in(&image, function, vm, Some(ProbeKind::Plain))?;
    let vars = image
        .debug_info()?
        .vars_at(probe::dwarf_address(&image.symbols, site.addr))
        .with_context(|| format!("variables at {}", site.label))?;
    println!("Available variables at {} ({:#x}):", site.label, site.addr);
    for v in vars {
        println!("        {v}");
    }
    println!("Also: $comm, $prio (the current task's), $retval (at %return), %xN, @SYMBOL, +OFF(...)");
    Ok(())
}

pub fn funcs(pattern: Option<&str>, vm: Vm) -> Result<()> {
    let image = Image::load(&images()?, vm)?;
    for f in image.debug_info()?.functions(pattern) {
        println!("{}", f.name);
    }
    Ok(())
}

/// How a probe at each function's entry would run its displaced
/// instruction, counted over the image: simulated or emulated in the
/// hypervisor (the `HVC` stays in place, so another core of the VM never
/// runs past the site unseen), single-stepped in place (the original word
/// is back for the step: a hit on another core meanwhile is missed), or
/// refused.
pub fn sites(vm: Vm, show: usize) -> Result<()> {
    use guest_probe::a64::{self, Class};
    use guest_probe::emulate::{self, Execution};
    let image = Image::load(&images()?, vm)?;
    let table = &image.symbols;
    let mut counts: std::collections::BTreeMap<&str, Vec<String>> = std::collections::BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    for sym in table
        .symbols()
        .iter()
        .filter(|s| s.is_function && s.executable && s.size > 0)
    {
        if !seen.insert(sym.addr) {
            continue;
        }
        let Some(insn) = table.insn_at(sym.addr) else { continue };
        let class = a64::classify(insn);
        let kind = match (class, emulate::plan(insn, class, probe::QEMU_CPU)) {
            (Class::Refused(_), _) => "refused",
            (_, Execution::Simulate(_)) => "simulated",
            (_, Execution::OutOfLine) => "run at EL2",
            (_, Execution::Step) => "stepped",
            _ => "emulated",
        };
        counts
            .entry(kind)
            .or_default()
            .push(format!("{} ({insn:#010x})", sym.name));
    }
    let total: usize = counts.values().map(Vec::len).sum();
    println!("{total} function entries in the {} image:", vm.image());
    for (kind, names) in &counts {
        println!(
            "  {kind:<9} {:>6} ({:.1} %)",
            names.len(),
            100.0 * names.len() as f64 / total.max(1) as f64
        );
        for n in names.iter().take(show) {
            println!("            {n}");
        }
    }
    Ok(())
}
