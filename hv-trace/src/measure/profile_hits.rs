//! `hv-trace profile-hits`: what the hypervisor executes per probe hit,
//! counted instruction by instruction.
//!
//! The system boots under QEMU with `-singlestep` (one translation block per
//! instruction) and an exec log limited by `-dfilter` to the hypervisor's
//! `.text`, so every hypervisor instruction any core executes is one log line.
//! With a switch probe in Linux (`__switch_to`) and in the RTOS (`OSCtxSw`)
//! and tracing on, logging is switched on through the HMP monitor for a few
//! wall seconds. The log is then cut, per core, into traps: a trap starts at
//! the lower-EL synchronous (`hyp_vectors + 0x400`) or IRQ
//! (`hyp_vectors + 0x480`) vector and runs up to the next such entry on the
//! same core. Partial traps at the edges of the log are left out.
//!
//! A synchronous trap is a probe hit when it runs `hypervisor::trace::emit`
//! (or `hypervisor::probe::hit`, should it stop being inlined) and not
//! `hypervisor::trace::test_emit`: with tracing on, every hit emits a record,
//! and the only other caller of `emit` is the test hypercall. The ESR is not
//! in the log, so the symbols are the classifier.

use crate::measure::exec_log;
use crate::measure::hyp_symbols::{HypSymbols, Marker, Range};
use crate::target::artifacts::Artifacts;
use crate::target::boot::{self, Pace};
use crate::target::control::Control;
use crate::target::hvtrace;
use crate::target::monitor::Monitor;
use crate::target::probe::{self, ProbeKind, Site, Vm, LINUX_SWITCH};
use crate::target::qemu;
use crate::target::session::{self, Running};
use crate::target::system::{self, Plan};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::{Duration, Instant};

/// Logging stops early once the exec log passes this size.
const LOG_LIMIT: u64 = 2 << 30;
/// The RTOS's probe unless told otherwise: its context switch.
const RTOS_SWITCH: &str = "OSCtxSw";
/// Cores of the profiled machine (Linux on CPU0, the RTOS on CPU1).
const CORES: u8 = 2;

/// Boots the 2-core system under a single-stepping QEMU with probes at
/// both OSes' context switches (or, in the RTOS, `rtos_probe`: a `probe add`
/// spec), logs the hypervisor's instructions for `seconds` of wall time, and
/// counts them trap by trap.
pub fn profile(seconds: f64, rtos_probe: Option<&str>) -> Result<Report> {
    anyhow::ensure!(
        seconds.is_finite() && seconds > 0.0 && seconds <= 600.0,
        "--seconds must be a number of seconds in (0, 600], not {seconds}"
    );
    // Removed, with its exec log, when the command ends.
    let session = session::Private::new("profile")?;
    let log_path = session.dir.join("exec.log");

    let mut system = Profiled::new(&session.dir)?;
    let text = system.text;
    system.machine.extra_args.extend([
        "-singlestep".to_string(),
        "-dfilter".to_string(),
        // `..` takes the last address, inclusive.
        format!("{:#x}..{:#x}", text.start, text.end - 1),
        "-D".to_string(),
        log_path.display().to_string(),
    ]);

    let (running, mut ctl) = system.boot("single-stepping QEMU")?;
    let symbols = &system.symbols;
    let linux = Site::resolve(&system.built, LINUX_SWITCH, Vm::Linux, Some(ProbeKind::Switch))?;
    let id = hvtrace::add(&mut ctl, &linux)?;
    eprintln!("[hv-trace] Linux probe {id}: {}", linux.label);
    let spec: Vec<String> = rtos_probe
        .unwrap_or(RTOS_SWITCH)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let (target, args) = spec.split_first().context("--rtos-probe names no site")?;
    let placement = probe::resolve(&system.built, target, args, Vm::Rtos, None)?;
    let ids = hvtrace::add_placement(&mut ctl, &placement)?;
    eprintln!("[hv-trace] RTOS probe(s) {ids:?}: {}", spec.join(" "));
    hvtrace::enable(&mut ctl, true).context("enabling tracing in the guest")?;

    let logged = log_for(&running.dir, &log_path, Duration::from_secs_f64(seconds))?;
    drop(ctl);
    running.stop();

    // For looking at single traps: HV_TRACE_KEEP_EXEC_LOG=FILE keeps a copy.
    if let Some(keep) = std::env::var_os("HV_TRACE_KEEP_EXEC_LOG") {
        fs::copy(&log_path, &keep).with_context(|| format!("keeping the exec log as {keep:?}"))?;
    }
    let size = fs::metadata(&log_path).map(|m| m.len()).unwrap_or(0);
    if size == 0 {
        bail!(
            "QEMU wrote no exec log ({}): is this QEMU 7.2 with -singlestep? (see {})",
            log_path.display(),
            session.dir.join("qemu.stderr").display()
        );
    }
    let file = fs::File::open(&log_path).with_context(|| format!("opening {}", log_path.display()))?;
    let parsed = parse(BufReader::with_capacity(1 << 20, file), symbols)
        .with_context(|| format!("reading {}", log_path.display()))?;
    let partition = hyp_core::config::for_cores(CORES).context("no 2-core partition")?;
    let vm_of = |cpu: u32| {
        partition
            .vms
            .iter()
            .find(|v| v.cpus.iter().any(|&c| u32::from(c) == cpu))
            .map_or_else(|| format!("cpu{cpu}"), |v| v.name.to_string())
    };
    let vms: Vec<String> = partition.vms.iter().map(|v| v.name.to_string()).collect();
    Ok(Report::new(&parsed, symbols, &vms, vm_of, logged, size))
}

/// The profiled system: its QEMU machine (the caller adds its logging
/// arguments), the images it runs, and the hypervisor's `.text` and symbols.
pub(crate) struct Profiled {
    pub machine: qemu::Machine,
    pub built: Artifacts,
    pub text: Range,
    pub symbols: HypSymbols,
}

impl Profiled {
    /// Build the 2-core system for the session in `dir`.
    pub(crate) fn new(dir: &Path) -> Result<Self> {
        let plan = Plan {
            session: Some(dir.to_path_buf()),
            cores: CORES,
            ..Plan::default()
        };
        let (machine, built) = system::machine(&plan)?;
        let elf_path = built.get("hypervisor").context("no hypervisor image was built")?;
        let elf = fs::read(elf_path).with_context(|| format!("reading {}", elf_path.display()))?;
        let (text, symbols) = HypSymbols::from_elf(&elf).with_context(|| format!("reading {}", elf_path.display()))?;
        Ok(Profiled {
            machine,
            built,
            text,
            symbols,
        })
    }

    /// Boot it and wait for the guest's control shell; `how` says how QEMU runs.
    pub(crate) fn boot(&self, how: &str) -> Result<(Running, Control)> {
        boot::boot(
            &self.machine,
            Some(&self.built),
            &format!("hypervisor + Linux + RTOS ({how})"),
            Pace::SingleStep,
        )
    }
}

/// How long logging ran and whether the size limit cut it short.
#[derive(Clone, Copy, Debug, Default)]
struct Logged {
    seconds: f64,
    truncated: bool,
}

/// Switch QEMU's exec log on for `wall` (or until it passes `LOG_LIMIT`).
fn log_for(dir: &Path, log: &Path, wall: Duration) -> Result<Logged> {
    let mut monitor = Monitor::connect(&dir.join("monitor.sock"))?;
    monitor.cmd("log exec,nochain")?;
    let started = Instant::now();
    let mut truncated = false;
    while started.elapsed() < wall {
        std::thread::sleep(Duration::from_millis(100));
        if fs::metadata(log).is_ok_and(|m| m.len() > LOG_LIMIT) {
            truncated = true;
            break;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    // Closes (and so flushes) the log file.
    monitor.cmd("log none")?;
    if truncated {
        eprintln!(
            "[hv-trace] the exec log passed {} GiB: logging stopped after {seconds:.1} s",
            LOG_LIMIT >> 30
        );
    }
    Ok(Logged { seconds, truncated })
}

// --- the exec log -----------------------------------------------------------------------

/// How the hypervisor was entered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    Sync,
    Irq,
}

/// One trap on one core: its instruction count, per symbol.
#[derive(Clone, Debug)]
pub(crate) struct Trap {
    pub cpu: u32,
    pub entry: Entry,
    pub instructions: u64,
    /// (symbol index, instructions), in order of first execution.
    per_symbol: Vec<(usize, u64)>,
}

impl Trap {
    fn new(cpu: u32, entry: Entry) -> Self {
        Trap {
            cpu,
            entry,
            instructions: 0,
            per_symbol: Vec::new(),
        }
    }

    fn add(&mut self, symbol: usize) {
        self.instructions += 1;
        match self.per_symbol.iter_mut().find(|(s, _)| *s == symbol) {
            Some((_, n)) => *n += 1,
            None => self.per_symbol.push((symbol, 1)),
        }
    }
}

/// What a log held.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    /// Complete traps (an entry up to the next entry on the same core).
    pub traps: Vec<Trap>,
    /// Executed instructions logged.
    pub instructions: u64,
    /// Instruction lines QEMU took back: it logs a block before running it,
    /// and a pending interrupt can stop it before its first instruction
    /// (`Stopped execution of TB chain before …`); the block runs, and is
    /// logged, again later.
    pub retracted: u64,
    /// Lines that are neither instructions nor retractions.
    pub other_lines: u64,
    /// Instructions before a core's first entry or in its last, unfinished trap.
    pub partial: u64,
}

/// Cut an exec log into traps per core.
pub(crate) fn parse(log: impl BufRead, symbols: &HypSymbols) -> std::io::Result<Parsed> {
    let mut parsed = Parsed::default();
    // Per core, the trap being read.
    let mut open: BTreeMap<u32, Option<Trap>> = BTreeMap::new();
    let lines = exec_log::replay(log, |cpu, pc| {
        parsed.instructions += 1;
        let entry = if pc == symbols.sync_entry {
            Some(Entry::Sync)
        } else if pc == symbols.irq_entry {
            Some(Entry::Irq)
        } else {
            None
        };
        let trap = open.entry(cpu).or_default();
        if let Some(entry) = entry {
            if let Some(done) = trap.replace(Trap::new(cpu, entry)) {
                parsed.traps.push(done);
            }
        }
        match trap {
            Some(trap) => trap.add(symbols.index(pc)),
            None => parsed.partial += 1,
        }
    })?;
    parsed.retracted = lines.retracted;
    parsed.other_lines = lines.other;
    parsed.partial += open.into_values().flatten().map(|t| t.instructions).sum::<u64>();
    Ok(parsed)
}

// --- the report -------------------------------------------------------------------------

/// The kinds of trap a report tells apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    ProbeHit,
    /// A return probe's function entry: the hit path, no record.
    ProbeEntry,
    OtherSync,
    Irq,
}

impl Class {
    const ALL: [Class; 4] = [Class::ProbeHit, Class::ProbeEntry, Class::OtherSync, Class::Irq];

    fn of(trap: &Trap, symbols: &HypSymbols) -> Class {
        if trap.entry == Entry::Irq {
            return Class::Irq;
        }
        let marks = || trap.per_symbol.iter().map(|&(s, _)| symbols.marker(s));
        if marks().any(|m| m == Marker::NotHit) {
            Class::OtherSync
        } else if marks().any(|m| m == Marker::Record) {
            Class::ProbeHit
        } else if marks().any(|m| m == Marker::Hit) {
            Class::ProbeEntry
        } else {
            Class::OtherSync
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Class::ProbeHit => "probe hits",
            Class::ProbeEntry => "return probes' function entries (no record)",
            Class::OtherSync => "other sync traps (hypercalls, trapped GIC accesses, steps)",
            Class::Irq => "IRQ traps (timer, SGIs, devices)",
        }
    }
}

/// Instructions spent in one symbol.
#[derive(Debug, Serialize)]
pub struct SymbolCount {
    pub symbol: String,
    pub instructions: u64,
}

/// The traps of one class on one VM's cores.
#[derive(Debug, Serialize)]
pub struct Group {
    pub vm: String,
    pub class: Class,
    pub traps: usize,
    /// Instructions per trap (absent without traps).
    pub median: Option<u64>,
    pub min: Option<u64>,
    pub max: Option<u64>,
    pub total: u64,
    /// The median-length trap, per symbol, most instructions first.
    pub median_trap: Vec<SymbolCount>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub seconds: f64,
    /// Logging stopped early: the log passed its size limit.
    pub truncated: bool,
    pub log_bytes: u64,
    pub instructions: u64,
    pub retracted: u64,
    pub other_lines: u64,
    pub partial_instructions: u64,
    pub groups: Vec<Group>,
}

impl Report {
    fn new(
        parsed: &Parsed,
        symbols: &HypSymbols,
        vms: &[String],
        vm_of: impl Fn(u32) -> String,
        logged: Logged,
        log_bytes: u64,
    ) -> Self {
        let mut by_group: BTreeMap<(String, usize), Vec<&Trap>> = BTreeMap::new();
        for t in &parsed.traps {
            let class = Class::of(t, symbols);
            let c = Class::ALL.iter().position(|&k| k == class).unwrap_or(0);
            by_group.entry((vm_of(t.cpu), c)).or_default().push(t);
        }
        // Every VM's classes, in the partition's order, then unexpected cores.
        let mut keys: Vec<(String, usize)> = vms
            .iter()
            .flat_map(|vm| (0..Class::ALL.len()).map(move |c| (vm.clone(), c)))
            .collect();
        keys.extend(by_group.keys().filter(|k| !vms.contains(&k.0)).cloned());
        let groups = keys
            .into_iter()
            .map(|key| {
                let mut traps = by_group.remove(&key).unwrap_or_default();
                traps.sort_by_key(|t| t.instructions);
                let median = traps.get(traps.len().saturating_sub(1) / 2);
                let mut median_trap: Vec<SymbolCount> = median
                    .map(|t| {
                        t.per_symbol
                            .iter()
                            .map(|&(s, n)| SymbolCount {
                                symbol: symbols.short(s),
                                instructions: n,
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                median_trap.sort_by(|a, b| b.instructions.cmp(&a.instructions).then(a.symbol.cmp(&b.symbol)));
                Group {
                    vm: key.0,
                    class: Class::ALL[key.1],
                    traps: traps.len(),
                    median: median.map(|t| t.instructions),
                    min: traps.first().map(|t| t.instructions),
                    max: traps.last().map(|t| t.instructions),
                    total: traps.iter().map(|t| t.instructions).sum(),
                    median_trap,
                }
            })
            .collect();
        Report {
            seconds: logged.seconds,
            truncated: logged.truncated,
            log_bytes,
            instructions: parsed.instructions,
            retracted: parsed.retracted,
            other_lines: parsed.other_lines,
            partial_instructions: parsed.partial,
            groups,
        }
    }

    pub fn text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "hypervisor instructions per trap, {:.1} s of QEMU's exec log ({} MiB, {} instructions{})",
            self.seconds,
            self.log_bytes >> 20,
            self.instructions,
            if self.truncated {
                ", cut short at the size limit"
            } else {
                ""
            }
        );
        for g in &self.groups {
            let (Some(median), Some(min), Some(max)) = (g.median, g.min, g.max) else {
                let _ = writeln!(out, "{} {}: none", g.vm, g.class.describe());
                continue;
            };
            let _ = writeln!(
                out,
                "{} {}: {} traps, median {median} instructions (min {min}, max {max})",
                g.vm,
                g.class.describe(),
                g.traps
            );
            if matches!(g.class, Class::ProbeHit | Class::ProbeEntry) {
                for s in &g.median_trap {
                    let _ = writeln!(out, "  {:>7} {}", s.instructions, s.symbol);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::hyp_symbols::{IRQ_VECTOR, SYNC_VECTOR};

    const VECTORS: u64 = 0x4020_0800;

    fn symbols() -> HypSymbols {
        HypSymbols::new(
            [
                (VECTORS, "hyp_vectors"),
                (0x4020_1000, "hyp_lower_sync"),
                (0x4020_2000, "hypervisor::trace::emit"),
                (0x4020_3000, "hypervisor::trace::test_emit"),
                (0x4020_4000, "return_to_guest"),
            ]
            .map(|(a, n)| (a, n.to_string())),
            VECTORS,
        )
    }

    fn line(cpu: u32, pc: u64) -> String {
        format!("Trace {cpu}: 0x7f9465193280 [0000000000000000/{pc:016x}/00000061/ff080201] sym\n")
    }

    fn trap(cpu: u32, entry: u64, pcs: &[u64]) -> String {
        let mut s = line(cpu, entry);
        for &pc in pcs {
            s.push_str(&line(cpu, pc));
        }
        s
    }

    #[test]
    fn cuts_traps_per_core_and_skips_garbage() {
        let sync = VECTORS + SYNC_VECTOR;
        let irq = VECTORS + IRQ_VECTOR;
        let mut log = String::new();
        // The end of a trap that started before logging: partial.
        log.push_str(&line(0, 0x4020_4004));
        log.push_str("Stopped execution of TB chain before 0x7f9465193280 [0000000040206f30] sym\n");
        // A probe hit on CPU0, interleaved with an IRQ on CPU1.
        log.push_str(&trap(0, sync, &[0x4020_1000, 0x4020_1004, 0x4020_2000]));
        // An IRQ entry QEMU logs, then stops before running it (CPU1 logs
        // meanwhile, outside a trap): the hit goes on.
        log.push_str(&line(0, irq));
        log.push_str(&line(1, 0x4020_1008));
        log.push_str(&format!(
            "Stopped execution of TB chain before 0x7f9465193280 [{irq:016x}] \n"
        ));
        log.push_str(&trap(1, irq, &[0x4020_1000, 0x4020_4000]));
        log.push_str(&trap(0, 0x4020_2004, &[0x4020_4000, 0x4020_4004]));
        // Garbage: not instruction lines.
        log.push_str("Trace x: 0x1 [0/1/2/3]\nTrace 0: 0x1 [0000\nTrace 999999: 0x1 [0/4020c00/0/0]\n\n");
        log.push_str("Trace 0: 0x1 [0000000000000000/zzzz/0/0] sym\n");
        // The test hypercall runs emit but is no probe hit.
        log.push_str(&trap(0, sync, &[0x4020_3000, 0x4020_2000]));
        // A plain sync trap on CPU1 ends CPU1's IRQ trap.
        log.push_str(&trap(1, sync, &[0x4020_1000]));
        // Ends the test hypercall trap; itself unfinished at the end of the log.
        log.push_str(&trap(0, irq, &[0x4020_4000]));
        let mut bytes = log.into_bytes();
        bytes.extend_from_slice(b"\xff\xfe not utf-8\n");
        let s = symbols();
        let p = parse(std::io::Cursor::new(bytes), &s).unwrap();

        let got: Vec<(u32, Entry, u64, Class)> = p
            .traps
            .iter()
            .map(|t| (t.cpu, t.entry, t.instructions, Class::of(t, &s)))
            .collect();
        assert_eq!(
            got,
            [
                (0, Entry::Sync, 7, Class::ProbeHit),
                (1, Entry::Irq, 3, Class::Irq),
                (0, Entry::Sync, 3, Class::OtherSync),
            ]
        );
        let hit = &p.traps[0];
        let per: Vec<(&str, u64)> = hit
            .per_symbol
            .iter()
            .map(|&(i, n)| (s.names()[i].as_str(), n))
            .collect();
        assert_eq!(
            per,
            [
                ("hyp_vectors", 1),
                ("hyp_lower_sync", 2),
                ("hypervisor::trace::emit", 2),
                ("return_to_guest", 2)
            ]
        );
        // The leading lines, CPU1's last trap (2) and CPU0's last trap (2).
        assert_eq!(p.partial, 6);
        assert_eq!(p.other_lines, 7);
        assert_eq!(p.retracted, 1);
        assert_eq!(p.instructions, 1 + 4 + 1 + 3 + 3 + 3 + 2 + 2);
    }

    #[test]
    fn pcs_below_the_first_symbol_have_no_name() {
        let s = symbols();
        assert_eq!(s.names()[s.index(0x1000)], "(no symbol)");
        assert_eq!(s.names()[s.index(0x4020_2fff)], "hypervisor::trace::emit");
        assert_eq!(s.short(s.index(0x4020_2000)), "trace::emit");
    }

    #[test]
    fn report_gives_median_trap_breakdown() {
        let s = symbols();
        let sync = VECTORS + SYNC_VECTOR;
        let mut log = String::new();
        for extra in [1u64, 5, 3] {
            let mut pcs = vec![0x4020_2000];
            pcs.extend((0..extra).map(|i| 0x4020_1000 + 4 * i));
            log.push_str(&trap(0, sync, &pcs));
        }
        log.push_str(&line(0, sync));
        let p = parse(std::io::Cursor::new(log), &s).unwrap();
        let vms = ["linux".to_string(), "rtos".to_string()];
        let vm_of = |cpu: u32| vms[cpu as usize].clone();
        let r = Report::new(&p, &s, &vms, vm_of, Logged::default(), 0);
        assert_eq!(r.groups.len(), 8);
        let hits = &r.groups[0];
        assert_eq!((hits.vm.as_str(), hits.class), ("linux", Class::ProbeHit));
        assert_eq!(
            (hits.traps, hits.median, hits.min, hits.max),
            (3, Some(5), Some(3), Some(7))
        );
        assert_eq!(hits.median_trap[0].symbol, "hyp_lower_sync");
        assert_eq!(hits.median_trap[0].instructions, 3);
        assert!(r.groups[3].median.is_none());
        assert!(r
            .text()
            .contains("linux probe hits: 3 traps, median 5 instructions (min 3, max 7)"));
    }
}
