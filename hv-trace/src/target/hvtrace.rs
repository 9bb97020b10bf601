//! The typed client of the hvtrace module's control files in
//! `/sys/kernel/hvtrace`: add, remove and list probes, read the statistics,
//! switch recording on and off. The commands it writes and the listing it
//! reads are `guest_probe::abi::control`'s types, the same file the module
//! compiles, so the two sides cannot drift apart.

use crate::target::artifacts::Artifacts;
use crate::target::control::Control;
use crate::target::probe::{self, Placement, Site, Vm, RTOS_SWITCHES, TIMING_PROBES};
use anyhow::{bail, Context, Result};
use guest_probe::abi::control::{stat_lines, AddKind, ProbeCmd, ProbeLine};
use std::collections::BTreeMap;
use std::time::Duration;

/// Where the module's control files are.
pub const SYSFS: &str = "/sys/kernel/hvtrace";
/// How long a control-file access may take in the guest.
const T: Duration = Duration::from_secs(20);

/// The shell command that writes `cmd` to the `probes` file (`printf`, not
/// `echo`: fetch arguments may hold a backslash).
pub fn probe_command(cmd: &ProbeCmd) -> String {
    format!("printf '%s\\n' '{cmd}' > {SYSFS}/probes")
}

/// The shell command that switches recording on or off.
pub fn enable_command(on: bool) -> String {
    format!("echo {} > {SYSFS}/enable", u8::from(on))
}

/// Inserts a probe at `site`; its id.
pub fn add(ctl: &mut Control, site: &Site) -> Result<u16> {
    add_as(ctl, site, site.add_command())
}

/// Inserts the probes of a placement (a function's entry before its
/// returns); the ids, in that order. If one is refused, those already in
/// are taken out again.
pub fn add_placement(ctl: &mut Control, placement: &Placement) -> Result<Vec<u16>> {
    let (entry, returns) = match placement {
        Placement::One(site) => return Ok(vec![add(ctl, site)?]),
        Placement::Return { entry, returns, .. } => (entry, returns),
    };
    let entry_id = add_as(ctl, entry, entry.add_command_as(AddKind::Entry))?;
    let mut ids = vec![entry_id];
    for site in returns {
        match add_as(ctl, site, site.add_command_as(AddKind::Return { entry: entry_id })) {
            Ok(id) => ids.push(id),
            Err(e) => {
                for &id in ids.iter().rev() {
                    let _ = remove(ctl, site.vm.id(), id);
                }
                return Err(e);
            }
        }
    }
    Ok(ids)
}

/// Writes `cmd` to the `probes` file; on a refusal, the module's answer and
/// its last log lines (where it says why).
fn send(ctl: &mut Control, cmd: &ProbeCmd) -> Result<std::result::Result<(), String>> {
    let out = ctl.exec(&probe_command(cmd), T)?;
    if out.status == 0 {
        return Ok(Ok(()));
    }
    let why = ctl.exec("dmesg | grep -i hvtrace | tail -n 2", Duration::from_secs(5))?;
    Ok(Err(format!("{}\n{}", out.text.trim(), why.text.trim())))
}

fn add_as(ctl: &mut Control, site: &Site, cmd: ProbeCmd) -> Result<u16> {
    if let Err(why) = send(ctl, &cmd)? {
        bail!("the system refused a probe at {} ({:#x}): {why}", site.label, site.addr);
    }
    Ok(find(ctl, site.vm.id(), site.addr)?
        .context("the probe was added but does not appear in the probe list")?
        .id)
}

/// Makes sure the RTOS probes the timing analysis needs are in: its context
/// switches and [`TIMING_PROBES`], and that the hypervisor times the RTOS's
/// interrupts. Probes already in are kept as they are; the ids of the ones
/// added.
pub fn ensure_timing_probes(ctl: &mut Control, images: &Artifacts) -> Result<Vec<u16>> {
    let mut added = Vec::new();
    for spec in RTOS_SWITCHES.iter().chain(TIMING_PROBES.iter()) {
        let mut words = spec.split_whitespace();
        let target = words.next().unwrap_or_default();
        let args: Vec<String> = words.map(str::to_string).collect();
        let placement = match probe::resolve(images, target, &args, Vm::Rtos, None) {
            Ok(p) => p,
            // Readying by a post is an internal function of uC/OS-II: a build
            // without it still gets the rest.
            Err(e) if *spec == trace_convert::timing::READY_PROBE => {
                eprintln!("[hv-trace] note: no probe for releases by posts ({e:#}); those tasks' jobs start at their first run");
                continue;
            }
            Err(e) => return Err(e.context(format!("the timing probe {spec:?}"))),
        };
        let first = match &placement {
            Placement::One(site) => site,
            Placement::Return { entry, .. } => entry,
        };
        if find(ctl, first.vm.id(), first.addr)?.is_none() {
            added.extend(add_placement(ctl, &placement)?);
        }
    }
    let cmd = ProbeCmd::IrqTiming {
        vm: Vm::Rtos.id(),
        on: true,
    };
    let out = ctl.exec(&probe_command(&cmd), T)?;
    if out.status != 0 {
        bail!("the system refused to time the RTOS's interrupts: {}", out.text.trim());
    }
    Ok(added)
}

/// Stores `value` in `size` bytes at `addr` of VM `vm` (`hv-trace set`).
pub fn write(ctl: &mut Control, vm: u8, addr: u64, size: u8, value: u64) -> Result<()> {
    if let Err(why) = send(ctl, &ProbeCmd::Write { vm, addr, size, value })? {
        bail!("the system refused to write at {addr:#x}: {why}");
    }
    Ok(())
}

/// Removes probe `id` of VM `vm`.
pub fn remove(ctl: &mut Control, vm: u8, id: u16) -> Result<()> {
    let out = ctl.exec(&probe_command(&ProbeCmd::Remove { vm, id }), T)?;
    if out.status != 0 {
        bail!("the system refused to remove probe {id}: {}", out.text.trim());
    }
    Ok(())
}

/// The probe listing as the module prints it.
pub fn list_text(ctl: &mut Control) -> Result<String> {
    ctl.run(&format!("cat {SYSFS}/probes"), T)
}

/// The probes of every VM. A line the module could not fill (a VM's
/// `error:` line) is left out.
pub fn list(ctl: &mut Control) -> Result<Vec<ProbeLine>> {
    Ok(parse_list(&list_text(ctl)?))
}

/// The probe lines of a listing.
pub fn parse_list(text: &str) -> Vec<ProbeLine> {
    text.lines().filter_map(|l| ProbeLine::parse(l).ok()).collect()
}

/// The probe of `vm` at `addr`, if there is one.
pub fn find(ctl: &mut Control, vm: u8, addr: u64) -> Result<Option<ProbeLine>> {
    Ok(list(ctl)?.into_iter().find(|p| p.vm == vm && p.addr == addr))
}

/// The module's and the hypervisor's counters (`stats`).
pub fn stats(ctl: &mut Control) -> Result<BTreeMap<String, u64>> {
    Ok(parse_stats(&stats_text(ctl)?))
}

/// The `stats` file as the module prints it.
pub fn stats_text(ctl: &mut Control) -> Result<String> {
    ctl.run(&format!("cat {SYSFS}/stats"), T)
}

/// The counters of a `stats` text.
pub fn parse_stats(text: &str) -> BTreeMap<String, u64> {
    stat_lines(text).map(|(k, v)| (k.to_string(), v)).collect()
}

/// Switches recording on or off.
pub fn enable(ctl: &mut Control, on: bool) -> Result<()> {
    ctl.run(&enable_command(on), T).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use guest_probe::abi::control::{parse_probe, ListedKind};
    use guest_probe::abi::fetch::{FetchArg, FetchPlan};

    fn sem_post_plan() -> FetchPlan {
        let mut plan = FetchPlan::with_label("OSSemPost");
        plan.push(FetchArg::parse("cnt=+8(%x0):u16", 0).unwrap()).unwrap();
        plan.push(FetchArg::parse("k=\\5:s8", 1).unwrap()).unwrap();
        plan.push(FetchArg::parse("who=$comm", 2).unwrap()).unwrap();
        plan
    }

    #[test]
    fn probe_commands_are_what_the_module_parses() {
        for cmd in [
            ProbeCmd::Add {
                vm: 1,
                addr: 0xffff_0000_4010_5af0,
                kind: AddKind::Switch,
                plan: FetchPlan::EMPTY,
            },
            ProbeCmd::Add {
                vm: 0,
                addr: 0xffff_8000_8001_2340,
                kind: AddKind::Plain,
                plan: sem_post_plan(),
            },
            ProbeCmd::Remove { vm: 1, id: 32767 },
        ] {
            let shell = probe_command(&cmd);
            let written = shell
                .strip_prefix("printf '%s\\n' '")
                .and_then(|s| s.strip_suffix("' > /sys/kernel/hvtrace/probes"))
                .expect("an echo into the probes file");
            assert_eq!(parse_probe(written.as_bytes()), Ok(cmd));
        }
    }

    #[test]
    fn a_listing_reads_back_what_the_module_writes() {
        let lines = [
            ProbeLine {
                vm: 0,
                id: 3,
                addr: 0xffff_8000_8001_2340,
                kind: ListedKind::Plain,
                hits: 123_456,
                owned: true,
                plan: sem_post_plan(),
            },
            ProbeLine {
                vm: 1,
                id: 0,
                addr: 0xffff_0000_4010_5af0,
                kind: ListedKind::Switch,
                hits: 0,
                owned: false,
                plan: FetchPlan::EMPTY,
            },
        ];
        let text = format!("{}\n{}\nvm=2 error: not supported\n", lines[0], lines[1]);
        assert_eq!(parse_list(&text), lines);
    }

    #[test]
    fn stats_keep_counters_and_skip_descriptions() {
        let s =
            parse_stats("records 12\ndrops 0\nregion 0x42000000 2097152\nring0 cpu=1 capacity=64 head=3\nhyp_irqs 7\n");
        assert_eq!(s.len(), 3);
        assert_eq!((s["records"], s["drops"], s["hyp_irqs"]), (12, 0, 7));
    }
}
