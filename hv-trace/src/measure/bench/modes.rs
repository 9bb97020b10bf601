//! Setting each bench mode up in the guest and taking it down again, and
//! the counter of its instrumentation's hits: our probes through the hvtrace
//! module, and the peers a Linux user would reach for (the sched_switch
//! event, a kprobe event) through tracefs.

use super::plan::Mode;
use crate::target::artifacts::Artifacts;
use crate::target::control::Control;
use crate::target::hvtrace;
use crate::target::probe::{Site, Vm, LINUX_SWITCH, RTOS_SWITCHES};
use anyhow::{Context, Result};
use guest_probe::abi::control::ProbeCmd;
use std::time::Duration;

const TRACING: &str = "/sys/kernel/tracing";
const T: Duration = Duration::from_secs(20);

/// The probe sites of the probing modes: Linux's context switch (a plain
/// probe) and the RTOS's (switch probes).
pub struct Sites(Vec<Site>);

impl Sites {
    /// Linux's and the RTOS's context-switch functions in the images `system::machine` built.
    pub fn resolve(built: &Artifacts) -> Result<Self> {
        let mut sites = vec![Site::resolve(built, LINUX_SWITCH, Vm::Linux, None)?];
        for name in RTOS_SWITCHES {
            sites.push(Site::resolve(built, name, Vm::Rtos, None)?);
        }
        Ok(Sites(sites))
    }
}

/// The first number of the line of `text` that starts with `key`.
fn field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.trim_start().starts_with(key))?
        .split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())?
        .parse()
        .ok()
}

/// Sets `mode` up (its probes and events), in one guest command.
pub fn enable(ctl: &mut Control, mode: Mode, sites: Option<&Sites>) -> Result<()> {
    match mode {
        Mode::Native | Mode::Hyp => {}
        Mode::Probe | Mode::Records | Mode::Traced | Mode::TracedLinux => {
            let s = sites.context("no probe sites")?;
            let mut cmds: Vec<String> =
                s.0.iter()
                    .filter(|site| mode != Mode::TracedLinux || site.vm == Vm::Linux)
                    .map(|site| hvtrace::probe_command(&site.add_command()))
                    .collect();
            if matches!(mode, Mode::Traced | Mode::TracedLinux) {
                cmds.push(format!("echo 1 > {TRACING}/events/hvtrace/enable"));
                cmds.push(format!("echo 1 > {TRACING}/tracing_on"));
            }
            if mode != Mode::Probe {
                cmds.push(hvtrace::enable_command(true));
            }
            ctl.run(&cmds.join(" && "), T)
                .with_context(|| format!("setting up the {} mode", mode.name()))?;
        }
        Mode::Ftrace => {
            ctl.run(
                &format!("echo 1 > {TRACING}/events/sched/sched_switch/enable && echo 1 > {TRACING}/tracing_on"),
                T,
            )?;
        }
        Mode::Kprobe => {
            ctl.run(
                &format!(
                    "echo 'p:hvbench/switch {LINUX_SWITCH}' >> {TRACING}/kprobe_events && echo 1 > {TRACING}/events/hvbench/switch/enable && echo 1 > {TRACING}/tracing_on"
                ),
                T,
            )
            .context("adding the kprobe peer")?;
        }
    }
    Ok(())
}

/// Takes `mode` down: recording off, every probe removed, events off, the
/// ftrace buffer emptied.
pub fn disable(ctl: &mut Control, mode: Mode) -> Result<()> {
    match mode {
        Mode::Native | Mode::Hyp => {}
        Mode::Probe | Mode::Records | Mode::Traced | Mode::TracedLinux => {
            // Recording off and the listing in one round trip, as before.
            let listing = ctl.run(
                &format!("{} && cat {}/probes", hvtrace::enable_command(false), hvtrace::SYSFS),
                T,
            )?;
            let mut cmds = vec![format!("echo 0 > {TRACING}/events/hvtrace/enable")];
            for p in hvtrace::parse_list(&listing) {
                cmds.push(hvtrace::probe_command(&ProbeCmd::Remove { vm: p.vm, id: p.id }));
            }
            ctl.run(&cmds.join(" && "), T)?;
        }
        Mode::Ftrace => {
            ctl.run(&format!("echo 0 > {TRACING}/events/sched/sched_switch/enable"), T)?;
        }
        Mode::Kprobe => {
            ctl.run(
                &format!("echo 0 > {TRACING}/events/hvbench/switch/enable && echo '-:hvbench/switch' >> {TRACING}/kprobe_events"),
                T,
            )?;
        }
    }
    ctl.run(&format!("echo > {TRACING}/trace"), T)?;
    Ok(())
}

/// Empties the ftrace buffer (the ftrace mode's counters restart with it).
pub fn clear_trace(ctl: &mut Control) -> Result<()> {
    ctl.run(&format!("echo > {TRACING}/trace"), T).map(drop)
}

/// The counter of the mode's hits (read before and after a run): for our
/// modes, the hits of Linux's probes.
pub fn hit_counter(ctl: &mut Control, mode: Mode) -> Result<Option<u64>> {
    Ok(match mode {
        Mode::Native | Mode::Hyp => None,
        Mode::Probe | Mode::Records | Mode::Traced | Mode::TracedLinux => Some(
            hvtrace::list(ctl)?
                .iter()
                .filter(|p| p.vm == Vm::Linux.id())
                .map(|p| p.hits)
                .sum(),
        ),
        Mode::Ftrace => {
            let s = ctl.run(&format!("cat {TRACING}/per_cpu/cpu0/stats"), T)?;
            Some(field(&s, "entries:").unwrap_or(0) + field(&s, "overrun:").unwrap_or(0))
        }
        Mode::Kprobe => {
            let s = ctl.run(&format!("cat {TRACING}/kprobe_profile"), T)?;
            s.lines()
                .find(|l| l.contains("switch"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        }
    })
}
