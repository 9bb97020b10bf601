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

use crate::artifacts::Artifacts;
use crate::commands::{self, BOOT_TIMEOUT, SYSFS};
use crate::session::{self, Running};
use crate::system::{self, Plan};
use crate::{qemu, ProbeKind, Vm};
use anyhow::{bail, Context, Result};
use guest_probe::symbols::SymbolTable;
use object::{Object, ObjectSection};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// Offsets of the lower-EL AArch64 entries in the vector table.
const SYNC_VECTOR: u64 = 0x400;
const IRQ_VECTOR: u64 = 0x480;
/// Logging stops early once the exec log passes this size.
const LOG_LIMIT: u64 = 2 << 30;
/// Symbols whose presence in a synchronous trap makes it a probe hit.
const HIT_MARKERS: [&str; 2] = ["hypervisor::trace::emit", "hypervisor::probe::hit"];
/// Runs `trace::emit` without being a probe hit (the test hypercall).
const NOT_HITS: [&str; 1] = ["hypervisor::trace::test_emit"];
/// The probe sites: Linux's and the RTOS's context switch.
const SITES: [(&str, Vm); 2] = [("__switch_to", Vm::Linux), ("OSCtxSw", Vm::Rtos)];
/// Cores of the profiled machine (Linux on CPU0, the RTOS on CPU1).
const CORES: u8 = 2;

#[derive(clap::Args)]
pub struct ProfileArgs {
    /// Wall seconds to log the hypervisor's instructions.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Print the numbers as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: ProfileArgs) -> Result<()> {
    anyhow::ensure!(
        args.seconds.is_finite() && args.seconds > 0.0 && args.seconds <= 600.0,
        "--seconds must be a number of seconds in (0, 600], not {}",
        args.seconds
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
    for (site, vm) in SITES {
        let t = commands::resolve(site, vm, Some(ProbeKind::Switch))?;
        let id = commands::add_probe(&mut ctl, vm, &t)?;
        eprintln!("[hv-trace] {vm:?} probe {id}: {site}");
    }
    ctl.run(&format!("echo 1 > {SYSFS}/enable"), Duration::from_secs(30))
        .context("enabling tracing in the guest")?;

    let logged = log_for(&running.dir, &log_path, Duration::from_secs_f64(args.seconds))?;
    drop(ctl);
    running.stop();

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
    let report = Report::new(&parsed, symbols, &vms, vm_of, logged, size);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text());
    }
    Ok(())
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
    pub(crate) fn boot(&self, how: &str) -> Result<(Running, session::Control)> {
        let step = crate::progress::Step::start(format!("booting hypervisor + Linux + RTOS ({how})"));
        let mut running = Running::start(&self.machine, Box::new(std::io::sink()))?;
        system::save_artifacts(&running.dir, &self.built)?;
        // Every instruction is its own translation block: boots take longer.
        running.wait_for("init done", 2 * BOOT_TIMEOUT)?;
        let ctl = session::wait_control(&running.dir, Duration::from_secs(120))?;
        step.finish("up");
        Ok((running, ctl))
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

/// QEMU's HMP monitor; its replies (echo with terminal escapes) are discarded.
pub(crate) struct Monitor(UnixStream);

impl Monitor {
    pub(crate) fn connect(sock: &Path) -> Result<Self> {
        let stream =
            UnixStream::connect(sock).with_context(|| format!("connecting to QEMU's monitor {}", sock.display()))?;
        stream.set_read_timeout(Some(Duration::from_millis(100)))?;
        let mut m = Monitor(stream);
        m.prompt()?;
        Ok(m)
    }

    /// Read until the `(qemu) ` prompt.
    fn prompt(&mut self) -> Result<()> {
        let started = Instant::now();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while started.elapsed() < Duration::from_secs(30) {
            match self.0.read(&mut buf) {
                Ok(0) => bail!("QEMU's monitor closed"),
                Ok(n) => seen.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => return Err(e).context("reading QEMU's monitor"),
            }
            if seen.ends_with(b"(qemu) ") {
                return Ok(());
            }
        }
        bail!("QEMU's monitor showed no prompt within 30 s")
    }

    pub(crate) fn cmd(&mut self, command: &str) -> Result<()> {
        self.0
            .write_all(format!("{command}\n").as_bytes())
            .with_context(|| format!("sending `{command}` to QEMU's monitor"))?;
        self.prompt().with_context(|| format!("monitor command `{command}`"))
    }
}

// --- the hypervisor's symbols ---------------------------------------------------------

/// An address range `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Range {
    pub start: u64,
    pub end: u64,
}

/// What a marker symbol says about a synchronous trap that runs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Marker {
    None,
    Hit,
    NotHit,
}

/// The hypervisor's code symbols by address (demangled, without hashes),
/// and its vector entries.
/// Symbols sorted by address as parallel address and name lists, aliases
/// folded: the first name at an address stands for all.
pub(crate) fn fold_aliases(mut sorted: Vec<(u64, String)>) -> (Vec<u64>, Vec<String>) {
    sorted.dedup_by_key(|s| s.0);
    sorted.into_iter().unzip()
}

/// The index of the nearest symbol address at or below `pc` in sorted
/// `addrs`, or `addrs.len()` for a PC below them all.
pub(crate) fn nearest_below(addrs: &[u64], pc: u64) -> usize {
    match addrs.partition_point(|&a| a <= pc) {
        0 => addrs.len(),
        n => n - 1,
    }
}

pub(crate) struct HypSymbols {
    addrs: Vec<u64>,
    /// One name per address, then the name of PCs below the first symbol.
    names: Vec<String>,
    markers: Vec<Marker>,
    sync_entry: u64,
    irq_entry: u64,
}

impl HypSymbols {
    /// `.text` and the code symbols of the hypervisor ELF.
    pub(crate) fn from_elf(bytes: &[u8]) -> Result<(Range, Self)> {
        let file = object::File::parse(bytes).context("not an ELF image")?;
        let text = file.section_by_name(".text").context("the image has no .text")?;
        let range = Range {
            start: text.address(),
            end: text.address() + text.size(),
        };
        anyhow::ensure!(range.start < range.end, "the image's .text is empty");
        let table = SymbolTable::from_elf(bytes)?;
        let vectors = table
            .lookup("hyp_vectors")
            .first()
            .map(|s| s.addr)
            .context("the image has no hyp_vectors symbol")?;
        let symbols = table
            .symbols()
            .iter()
            .filter(|s| s.executable)
            .map(|s| (s.addr, format!("{:#}", rustc_demangle::demangle(&s.name))));
        Ok((range, Self::new(symbols, vectors)))
    }

    /// From `(address, demangled name)` pairs and the vector table's address.
    pub(crate) fn new(symbols: impl IntoIterator<Item = (u64, String)>, vectors: u64) -> Self {
        let mut all: Vec<(u64, String)> = symbols.into_iter().collect();
        all.sort();
        let (addrs, mut names) = fold_aliases(all);
        names.push("(no symbol)".into());
        let markers = names
            .iter()
            .map(|n| {
                if HIT_MARKERS.contains(&n.as_str()) {
                    Marker::Hit
                } else if NOT_HITS.contains(&n.as_str()) {
                    Marker::NotHit
                } else {
                    Marker::None
                }
            })
            .collect();
        HypSymbols {
            addrs,
            names,
            markers,
            sync_entry: vectors + SYNC_VECTOR,
            irq_entry: vectors + IRQ_VECTOR,
        }
    }

    /// The names, by index; the last one is for PCs below the first symbol.
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    /// The index of the symbol with the greatest address <= `pc`.
    pub(crate) fn index(&self, pc: u64) -> usize {
        nearest_below(&self.addrs, pc)
    }

    /// The address of the symbol named `name` (demangled).
    pub(crate) fn address_of(&self, name: &str) -> Option<u64> {
        self.names
            .iter()
            .position(|n| n == name)
            .and_then(|i| self.addrs.get(i).copied())
    }

    /// A name for reports: `hypervisor::` is implied.
    fn short(&self, index: usize) -> String {
        self.names[index].replace("hypervisor::", "")
    }
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

/// QEMU's CPU indices are small; anything larger is a garbled line.
const MAX_CPUS: u32 = 256;

/// One exec log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Line {
    /// `Trace 0: 0x7f94… [0000000000000000/0000000040206f30/00000061/ff080201] sym`:
    /// CPU 0 is about to run the block at 0x40206f30.
    Block { cpu: u32, host: u64, pc: u64 },
    /// `Stopped execution of TB chain before 0x7f94… [0000000040206f30] sym`:
    /// the block just logged (on some CPU) did not run.
    Stopped { host: u64, pc: u64 },
}

fn hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok()
}

fn line_kind(line: &[u8]) -> Option<Line> {
    let line = std::str::from_utf8(line).ok()?;
    if let Some(rest) = line.strip_prefix("Trace ") {
        let (cpu, rest) = rest.split_once(':')?;
        let cpu: u32 = cpu.trim().parse().ok().filter(|&c| c < MAX_CPUS)?;
        let (host, rest) = rest.split_once('[')?;
        let fields = rest.split_once(']')?.0;
        let pc = hex(fields.split('/').nth(1)?)?;
        Some(Line::Block {
            cpu,
            host: hex(host)?,
            pc,
        })
    } else {
        let rest = line.strip_prefix("Stopped execution of TB chain before ")?;
        let (host, rest) = rest.split_once('[')?;
        let pc = hex(rest.split_once(']')?.0)?;
        Some(Line::Stopped { host: hex(host)?, pc })
    }
}

/// What replaying a log saw besides the instructions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Lines {
    /// Instruction lines QEMU took back (see `Parsed::retracted`).
    pub retracted: u64,
    /// Lines that are neither instructions nor retractions.
    pub other: u64,
}

/// Replay an exec log: `executed(cpu, pc)` for every block that ran, in log
/// order per core. QEMU logs a block before running it and takes it back
/// with `Stopped execution of TB chain before …` when a pending interrupt
/// stops it first, so each core's last block is held until its next one.
pub(crate) fn replay(log: impl BufRead, mut executed: impl FnMut(u32, u64)) -> std::io::Result<Lines> {
    replay_numbered(log, |_, _, _| {}, |cpu, pc, _| executed(cpu, pc))
}

/// [`replay`] with line numbers: `logged(cpu, pc, line)` for every block as
/// it is read, `executed(cpu, pc, line)` once it is known to have run.
pub(crate) fn replay_numbered(
    mut log: impl BufRead,
    mut logged: impl FnMut(u32, u64, u64),
    mut executed: impl FnMut(u32, u64, u64),
) -> std::io::Result<Lines> {
    let mut lines = Lines::default();
    // Per core, the last block logged and not counted yet: (host address, PC, line number).
    let mut pending: BTreeMap<u32, Option<(u64, u64, u64)>> = BTreeMap::new();
    let mut line = Vec::with_capacity(256);
    let mut number = 0u64;
    loop {
        line.clear();
        if log.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        number += 1;
        match line_kind(&line) {
            Some(Line::Block { cpu, host, pc }) => {
                logged(cpu, pc, number);
                let slot = pending.entry(cpu).or_default();
                if let Some((_, pc, n)) = slot.replace((host, pc, number)) {
                    executed(cpu, pc, n);
                }
            }
            Some(Line::Stopped { host, pc }) => {
                // The most recent matching block of any core (the line does
                // not say which core stopped).
                let stopped = pending
                    .values_mut()
                    .filter(|p| p.is_some_and(|(h, p, _)| (h, p) == (host, pc)))
                    .max_by_key(|p| p.map(|(_, _, n)| n));
                match stopped {
                    Some(p) => {
                        *p = None;
                        lines.retracted += 1;
                    }
                    None => lines.other += 1,
                }
            }
            None => lines.other += 1,
        }
    }
    for (&cpu, p) in &mut pending {
        if let Some((_, pc, n)) = p.take() {
            executed(cpu, pc, n);
        }
    }
    Ok(lines)
}

/// Cut an exec log into traps per core.
pub(crate) fn parse(log: impl BufRead, symbols: &HypSymbols) -> std::io::Result<Parsed> {
    let mut parsed = Parsed::default();
    // Per core, the trap being read.
    let mut open: BTreeMap<u32, Option<Trap>> = BTreeMap::new();
    let lines = replay(log, |cpu, pc| {
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
pub(crate) enum Class {
    ProbeHit,
    OtherSync,
    Irq,
}

impl Class {
    const ALL: [Class; 3] = [Class::ProbeHit, Class::OtherSync, Class::Irq];

    fn of(trap: &Trap, symbols: &HypSymbols) -> Class {
        if trap.entry == Entry::Irq {
            return Class::Irq;
        }
        let marks = || trap.per_symbol.iter().map(|&(s, _)| symbols.markers[s]);
        if marks().any(|m| m == Marker::Hit) && !marks().any(|m| m == Marker::NotHit) {
            Class::ProbeHit
        } else {
            Class::OtherSync
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Class::ProbeHit => "probe hits",
            Class::OtherSync => "other sync traps (hypercalls, trapped GIC accesses, steps)",
            Class::Irq => "IRQ traps (timer, SGIs, devices)",
        }
    }
}

/// Instructions spent in one symbol.
#[derive(Debug, Serialize)]
pub(crate) struct SymbolCount {
    pub symbol: String,
    pub instructions: u64,
}

/// The traps of one class on one VM's cores.
#[derive(Debug, Serialize)]
pub(crate) struct Group {
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
pub(crate) struct Report {
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

    fn text(&self) -> String {
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
            if g.class == Class::ProbeHit {
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
        let per: Vec<(&str, u64)> = hit.per_symbol.iter().map(|&(i, n)| (s.names[i].as_str(), n)).collect();
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
        assert_eq!(s.names[s.index(0x1000)], "(no symbol)");
        assert_eq!(s.names[s.index(0x4020_2fff)], "hypervisor::trace::emit");
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
        assert_eq!(r.groups.len(), 6);
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
