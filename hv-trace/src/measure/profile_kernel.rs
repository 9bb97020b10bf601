//! `hv-trace profile-kernel`: where the Linux-side (and hypervisor-side) time
//! of a traced workload goes, counted instruction by instruction, per bench
//! mode.
//!
//! The system boots under QEMU with `-icount` (guest time counts
//! instructions, so a workload run of N seconds is a fixed instruction budget)
//! and `-singlestep` (one translation block per instruction). The bench's
//! probes are added mode by mode (`bench::modes::enable`); in each mode the workload
//! runs once as a warm-up, then once with QEMU's exec log on (`logfile` and
//! `log exec,nochain` on the HMP monitor), logging everything. Each logged
//! instruction is put, by its address, in the Linux kernel (a symbol of the
//! guest's `/proc/kallsyms`, modules included), the RTOS, the hypervisor
//! (a symbol of its ELF) or user space, and counted per core and symbol, from
//! the workload's first call of `bench_window()` to its second (the start and
//! the end of its timed part), so that the numbers, divided by the loops the
//! workload reports, leave out its start-up and exit.

use crate::measure::bench::{self, modes, Mode, Sites};
use crate::measure::exec_log::{self, Lines};
use crate::measure::hyp_symbols::{self, HypSymbols, Range};
use crate::measure::profile_hits::Profiled;
use crate::progress::Step;
use crate::target::control::Control;
use crate::target::monitor::Monitor;
use crate::target::session::{self, Running};
use anyhow::{ensure, Context, Result};
use regex::Regex;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

/// Linux's kernel half (kernel image, modules, vmalloc) starts here.
const KERNEL_BASE: u64 = 0xffff_8000_0000_0000;
/// The RTOS runs in the upper half below Linux's (TTBR1 with a 48-bit VA).
const RTOS_BASE: u64 = 0xffff_0000_0000_0000;
/// `-icount shift=3`: one instruction is 8 ns of guest time.
const ICOUNT_SHIFT: u8 = 3;
/// Guest seconds of the unlogged warm-up run in each mode.
const WARMUP_SECONDS: f64 = 0.5;
/// How the built-in workloads report their loops: `<test>: N loops in T s: …`.
const LOOPS_RE: &str = r"([0-9]+) loops in ";
/// Where the workloads' `bench_window()` runs: `guests/linux/bench` links it
/// alone at this address, which no other program of the guest runs.
const BENCH_WINDOW_PC: u64 = 0x400_0000;
/// Cores of the machine (Linux on CPU0, the RTOS on CPU1).
const CORES: u8 = 2;
const T: Duration = Duration::from_secs(60);

#[derive(clap::Args, Debug)]
pub struct ProfileKernelArgs {
    /// The built-in bench workload: dhry, whets, execl, fcopy, pipe, context1, spawn, syscall.
    #[arg(long, default_value = "context1")]
    test: String,
    /// Guest seconds of the logged run in each mode (0 < S <= 2; ~1 GB of log per 0.1 s).
    #[arg(long, default_value_t = 0.1)]
    seconds: f64,
    /// Comma-separated bench modes, profiled in this order: hyp, probe, records, traced,
    /// traced-linux (Linux's probe only, as the kprobe peer), ftrace, kprobe.
    #[arg(long, value_delimiter = ',', default_value = "probe,records,traced")]
    modes: Vec<String>,
    /// Rows of the per-symbol table.
    #[arg(long, default_value_t = 30)]
    top: usize,
    /// Print the numbers as JSON.
    #[arg(long)]
    json: bool,
}

/// The validated arguments.
#[derive(Debug)]
pub struct Job {
    test: String,
    seconds: f64,
    modes: Vec<Mode>,
    top: usize,
    /// Print the numbers as JSON.
    pub json: bool,
}

impl Job {
    pub fn new(args: ProfileKernelArgs) -> Result<Self> {
        ensure!(
            args.seconds.is_finite() && args.seconds > 0.0 && args.seconds <= 2.0,
            "--seconds must be more than 0 and at most 2 (the log grows ~1 GB per 0.1 s), not {}",
            args.seconds
        );
        let test = args.test.trim();
        ensure!(
            bench::TESTS.iter().any(|t| t.name == test),
            "unknown test {test:?}; the tests are {}",
            bench::TESTS.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
        );
        let mut modes = Vec::new();
        for m in &args.modes {
            let m = Mode::parse(m.trim())?;
            ensure!(
                m.hypervisor(),
                "the {} mode boots another system; profile-kernel profiles modes under the hypervisor",
                m.name()
            );
            if !modes.contains(&m) {
                modes.push(m);
            }
        }
        ensure!(!modes.is_empty(), "--modes names no mode");
        ensure!(args.top >= 1, "--top must be at least 1");
        Ok(Job {
            test: test.to_string(),
            seconds: args.seconds,
            modes,
            top: args.top,
            json: args.json,
        })
    }
}

/// Profiles `job` in a private session (removed, with the exec logs, when
/// it ends).
pub fn profile_kernel(job: &Job) -> Result<Report> {
    let session = session::Private::new("profile-kernel")?;
    profile(job, &session.dir)
}

/// Boot, profile every mode, stop.
fn profile(job: &Job, dir: &Path) -> Result<Report> {
    let mut system = Profiled::new(dir)?;
    let sites = Sites::resolve(&system.built)?;
    system.machine.extra_args.extend([
        "-icount".to_string(),
        format!("shift={ICOUNT_SHIFT},align=off,sleep=on"),
        "-singlestep".to_string(),
        "-D".to_string(),
        dir.join("exec.log").display().to_string(),
    ]);

    let (mut running, mut ctl) = system.boot("icount, single-stepping QEMU")?;
    let program = format!("/usr/bench/{}", job.test);
    ensure!(
        ctl.exec(&format!("test -x {program}"), T)?.status == 0,
        "the guest has no {program}: the initramfs was built without the benchmarks"
    );

    let step = Step::start("reading /proc/kallsyms from the guest");
    let kallsyms = ctl
        .run("cat /proc/kallsyms", Duration::from_secs(600))
        .context("reading /proc/kallsyms in the guest")?;
    let symbols = Symbols::new(&kallsyms, system.symbols, system.text);
    ensure!(
        symbols.kernel_symbols() > 0,
        "/proc/kallsyms lists no code symbols with addresses (kptr_restrict?)"
    );
    step.finish(&format!("{} kernel code symbols", symbols.kernel_symbols()));

    let mut monitor = Monitor::connect(&running.dir.join("monitor.sock"))?;
    let mut measured = Vec::new();
    for &mode in &job.modes {
        let m = measure(job, mode, &mut ctl, &mut monitor, &mut running, &sites, &symbols)
            .with_context(|| format!("profiling the {} mode", mode.name()))?;
        measured.push(m);
    }
    drop(ctl);
    running.stop();
    report(job, &symbols, &measured)
}

/// One mode: set up, warm up, log one run, take down, count the log.
///
/// The logged run is a quiet one (`Control::arm_quiet`): a logged run takes a
/// minute of wall time, and the control channel's wake-ups of the guest's
/// console while it waits would put hundreds of console interrupts into the
/// log (they cost context1 a third of its loops in a first version).
fn measure(
    job: &Job,
    mode: Mode,
    ctl: &mut Control,
    monitor: &mut Monitor,
    running: &mut Running,
    sites: &Sites,
    symbols: &Symbols,
) -> Result<Measured> {
    let name = mode.name();
    let step = Step::start(format!("{name}: warm-up and {} s of {} logged", job.seconds, job.test));
    modes::enable(ctl, mode, Some(sites))?;
    let program = format!("/usr/bench/{}", job.test);
    ctl.run(&format!("{program} {WARMUP_SECONDS}"), T + Duration::from_secs(120))
        .context("the warm-up run")?;
    let armed = ctl
        .arm_quiet(&format!("{program} {}", job.seconds))
        .context("arming the workload")?;
    let log = running.dir.join(format!("{name}.log"));
    monitor.cmd(&format!("logfile {}", log.display()))?;
    monitor.cmd("log exec,nochain")?;
    // Logging every instruction slows QEMU down a lot (guest time does not care).
    let ran = armed.release(ctl, running, Duration::from_secs_f64(600.0 + job.seconds * 3000.0));
    // Closes (and so flushes) the log file, whatever the run did.
    monitor.cmd("log none")?;
    ran?;
    let out = armed.output(ctl)?;
    ensure!(
        out.status == 0,
        "{program} failed in the guest (status {}): {}",
        out.status,
        out.text.trim()
    );
    let output = out.text;
    let loops = parse_loops(&output)?;
    let elapsed = bench::parse_elapsed(&output);
    modes::disable(ctl, mode)?;
    let log_bytes = fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    ensure!(
        log_bytes > 0,
        "QEMU wrote no exec log ({}): is this QEMU 7.2 with -singlestep?",
        log.display()
    );
    step.finish(&format!("{loops} loops, {} MiB of log", log_bytes >> 20));

    let step = Step::start(format!("{name}: counting the log"));
    let file = fs::File::open(&log).with_context(|| format!("opening {}", log.display()))?;
    let counts = count(BufReader::with_capacity(1 << 20, file), symbols)
        .with_context(|| format!("reading {}", log.display()))?;
    // One log on disk at a time.
    let _ = fs::remove_file(&log);
    ensure!(
        counts.marks == 2,
        "the exec log has {} call(s) of the workload's bench_window() at {BENCH_WINDOW_PC:#x}, not 2 (its start and end): \
         was /usr/bench built from guests/linux/bench of this checkout?",
        counts.marks
    );
    step.finish(&format!(
        "{} instructions ({} retracted, {} other lines)",
        counts.instructions(),
        counts.lines.retracted,
        counts.lines.other
    ));
    Ok(Measured {
        mode: name.to_string(),
        loops,
        elapsed,
        log_bytes,
        counts,
    })
}

/// Records written and turned into hvtrace events inside a run's window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
struct Records {
    written: u64,
    events: u64,
}

impl Records {
    fn of(counts: &Counts) -> Self {
        let calls = |c: Call| counts.calls[c as usize];
        Records {
            written: calls(Call::Record),
            events: calls(Call::ProbeEvent) + calls(Call::SwitchEvent),
        }
    }

    /// Whether the window turned about as many records into events as it
    /// wrote (within 10 %). Linux's own records wait in their ring for the
    /// module's tick (0.1 s) or a half-full ring, so a short window may
    /// catch more or fewer of their events than it caused.
    fn balanced(&self) -> bool {
        self.events.abs_diff(self.written) * 10 <= self.written
    }
}

/// The loop count of a built-in workload's output.
fn parse_loops(output: &str) -> Result<u64> {
    let re = Regex::new(LOOPS_RE).expect("a valid pattern");
    let loops = bench::parse_value(output, &re).context("reading the workload's loop count")?;
    ensure!(loops >= 1.0, "the workload ran no loop: {}", output.trim());
    Ok(loops as u64)
}

// --- where a PC is -----------------------------------------------------------------------

/// Whose code an instruction is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Space {
    Hyp,
    Kernel,
    User,
    Rtos,
}

impl Space {
    const ALL: [Space; 4] = [Space::Hyp, Space::Kernel, Space::User, Space::Rtos];

    fn name(self) -> &'static str {
        match self {
            Space::Hyp => "hyp",
            Space::Kernel => "kernel",
            Space::User => "user",
            Space::Rtos => "rtos",
        }
    }

    /// By address alone: Linux's upper half, the RTOS's, the hypervisor's
    /// `.text`, anything else (Linux's lower half).
    fn of(pc: u64, hyp_text: Range) -> Space {
        if pc >= KERNEL_BASE {
            Space::Kernel
        } else if pc >= RTOS_BASE {
            Space::Rtos
        } else if (hyp_text.start..hyp_text.end).contains(&pc) {
            Space::Hyp
        } else {
            Space::User
        }
    }
}

/// The code symbols of `/proc/kallsyms` (`trace_convert::printfmt::code_symbols`),
/// demangled, modules as `name [module]`.
fn kallsyms(text: &str) -> Vec<(u64, String)> {
    trace_convert::printfmt::code_symbols(text)
        .map(|(addr, name, module)| {
            // Rust code (the hvtrace module) is listed mangled.
            let name = format!("{:#}", rustc_demangle::demangle(name));
            match module {
                Some(module) => (addr, format!("{name} {module}")),
                None => (addr, name),
            }
        })
        .collect()
}

/// Every symbol an instruction can count toward, numbered: Linux's code
/// symbols, then the hypervisor's, then one each for user space and the RTOS.
pub(crate) struct Symbols {
    kernel_addrs: Vec<u64>,
    names: Vec<String>,
    spaces: Vec<Space>,
    hyp: HypSymbols,
    hyp_text: Range,
    hyp_first: usize,
    user: usize,
    rtos: usize,
}

impl Symbols {
    pub(crate) fn new(kallsyms_text: &str, hyp: HypSymbols, hyp_text: Range) -> Self {
        let mut kernel = kallsyms(kallsyms_text);
        // Stable: of aliases, the first one listed stands for all.
        kernel.sort_by_key(|s| s.0);
        let (kernel_addrs, mut names) = hyp_symbols::fold_aliases(kernel);
        names.push("(no kernel symbol)".into());
        let mut spaces = vec![Space::Kernel; names.len()];
        let hyp_first = names.len();
        names.extend(hyp.names().iter().cloned());
        spaces.resize(names.len(), Space::Hyp);
        let user = names.len();
        names.push("(user)".into());
        spaces.push(Space::User);
        let rtos = names.len();
        names.push("(rtos)".into());
        spaces.push(Space::Rtos);
        Symbols {
            kernel_addrs,
            names,
            spaces,
            hyp,
            hyp_text,
            hyp_first,
            user,
            rtos,
        }
    }

    fn kernel_symbols(&self) -> usize {
        self.kernel_addrs.len()
    }

    /// The entry addresses of [`Call`]s, in its order (`u64::MAX`: unknown).
    fn call_entries(&self) -> [u64; Call::ALL.len()] {
        Call::ALL.map(|c| {
            let name = c.symbol();
            let kernel = self.names[..self.kernel_addrs.len()].iter().position(|n| n == name);
            kernel
                .map(|i| self.kernel_addrs[i])
                .or_else(|| self.hyp.address_of(name))
                .unwrap_or(u64::MAX)
        })
    }

    fn len(&self) -> usize {
        self.names.len()
    }

    /// The symbol `pc` counts toward: the nearest lower one in its space.
    fn id(&self, pc: u64) -> usize {
        match Space::of(pc, self.hyp_text) {
            Space::Kernel => hyp_symbols::nearest_below(&self.kernel_addrs, pc),
            Space::Hyp => self.hyp_first + self.hyp.index(pc),
            Space::User => self.user,
            Space::Rtos => self.rtos,
        }
    }
}

// --- counting a log ----------------------------------------------------------------------

/// Functions whose calls are counted: what a run wrote and turned into
/// ftrace events, inside the window itself. `ALL` is in declaration order,
/// so a call's index in it is `call as usize`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    /// A record written by the hypervisor.
    Record,
    /// An `hvtrace:rtos_probe` event.
    ProbeEvent,
    /// An `hvtrace:rtos_switch` event.
    SwitchEvent,
}

impl Call {
    const ALL: [Call; 3] = [Call::Record, Call::ProbeEvent, Call::SwitchEvent];

    fn symbol(self) -> &'static str {
        match self {
            Call::Record => "hypervisor::trace::emit",
            Call::ProbeEvent => "hvtrace_shim_emit_probe [hvtrace]",
            Call::SwitchEvent => "hvtrace_shim_emit_switch [hvtrace]",
        }
    }
}

/// Instructions per core and symbol.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    /// Per core, instructions by symbol id.
    per_cpu: BTreeMap<u32, Vec<u64>>,
    lines: Lines,
    /// Calls of `bench_window()` logged (a whole run: 2).
    marks: usize,
    /// Inside the window, how often each [`Call`]'s first instruction ran.
    calls: [u64; Call::ALL.len()],
}

impl Counts {
    fn instructions(&self) -> u64 {
        self.per_cpu.values().flatten().sum()
    }
}

/// Count an exec log (streamed: memory does not grow with it), every core's
/// instructions logged between the first and the second call of
/// `bench_window()`.
fn count(log: impl BufRead, symbols: &Symbols) -> std::io::Result<Counts> {
    let mut per_cpu: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    // The log lines of the marks, as they are read (a block is counted once
    // its core's next one shows it ran, which may be after the end mark).
    let marks = std::cell::RefCell::new(Vec::new());
    let entries = symbols.call_entries();
    let mut calls = [0; Call::ALL.len()];
    let lines = exec_log::replay_numbered(
        log,
        |_, pc, line| {
            if pc == BENCH_WINDOW_PC {
                marks.borrow_mut().push(line);
            }
        },
        |cpu, pc, line| {
            let inside = match marks.borrow().as_slice() {
                [start] => line > *start,
                [start, end, ..] => line > *start && line < *end,
                [] => false,
            };
            if inside {
                per_cpu.entry(cpu).or_insert_with(|| vec![0; symbols.len()])[symbols.id(pc)] += 1;
                if let Some(i) = entries.iter().position(|&e| e == pc) {
                    calls[i] += 1;
                }
            }
        },
    )?;
    let marks = marks.into_inner().len();
    Ok(Counts {
        per_cpu,
        lines,
        marks,
        calls,
    })
}

/// One mode's logged run.
pub(crate) struct Measured {
    mode: String,
    loops: u64,
    /// The run's guest seconds as the workload reports them.
    elapsed: Option<f64>,
    log_bytes: u64,
    counts: Counts,
}

// --- the report --------------------------------------------------------------------------

/// One core's instructions per loop, by space.
#[derive(Debug, Serialize)]
struct CpuSplit {
    cpu: u32,
    hyp: f64,
    kernel: f64,
    user: f64,
    rtos: f64,
    total: f64,
}

#[derive(Debug, Serialize)]
struct ModeReport {
    mode: String,
    /// Records written and turned into hvtrace events in the window.
    records: Records,
    loops: u64,
    elapsed_s: Option<f64>,
    log_bytes: u64,
    instructions: u64,
    retracted: u64,
    other_lines: u64,
    /// Instructions per loop, per core (CPU0 Linux, CPU1 the RTOS).
    per_loop: Vec<CpuSplit>,
}

/// One symbol of CPU0: instructions per loop in each mode.
#[derive(Debug, Serialize)]
struct Row {
    symbol: String,
    space: Space,
    per_loop: Vec<f64>,
    /// Last mode − first mode (with one mode: its value).
    increase: f64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    test: String,
    seconds: f64,
    icount_shift: u8,
    modes: Vec<ModeReport>,
    /// CPU0's symbols by change of instructions per loop (either way), first
    /// mode to last.
    top: Vec<Row>,
}

/// The report from counted runs (one per mode, in order).
fn report(job: &Job, symbols: &Symbols, measured: &[Measured]) -> Result<Report> {
    ensure!(!measured.is_empty(), "no mode was profiled");
    let per_loop = |n: u64, m: &Measured| n as f64 / m.loops.max(1) as f64;
    let modes = measured
        .iter()
        .map(|m| {
            let mut cpus: Vec<u32> = (0..u32::from(CORES)).collect();
            cpus.extend(m.counts.per_cpu.keys().filter(|&&c| c >= u32::from(CORES)));
            let per_loop = cpus
                .into_iter()
                .map(|cpu| {
                    let mut by = [0u64; Space::ALL.len()];
                    if let Some(v) = m.counts.per_cpu.get(&cpu) {
                        for (id, &n) in v.iter().enumerate() {
                            by[Space::ALL.iter().position(|&s| s == symbols.spaces[id]).unwrap_or(0)] += n;
                        }
                    }
                    let of = |s: Space| per_loop(by[Space::ALL.iter().position(|&x| x == s).unwrap_or(0)], m);
                    CpuSplit {
                        cpu,
                        hyp: of(Space::Hyp),
                        kernel: of(Space::Kernel),
                        user: of(Space::User),
                        rtos: of(Space::Rtos),
                        total: per_loop(by.iter().sum(), m),
                    }
                })
                .collect();
            ModeReport {
                mode: m.mode.clone(),
                records: Records::of(&m.counts),
                loops: m.loops,
                elapsed_s: m.elapsed,
                log_bytes: m.log_bytes,
                instructions: m.counts.instructions(),
                retracted: m.counts.lines.retracted,
                other_lines: m.counts.lines.other,
                per_loop,
            }
        })
        .collect();
    let mut rows: Vec<Row> = (0..symbols.len())
        .filter_map(|id| {
            let counts: Vec<u64> = measured
                .iter()
                .map(|m| m.counts.per_cpu.get(&0).map_or(0, |v| v[id]))
                .collect();
            if counts.iter().all(|&n| n == 0) {
                return None;
            }
            let values: Vec<f64> = counts.iter().zip(measured).map(|(&n, m)| per_loop(n, m)).collect();
            let last = values[values.len() - 1];
            let increase = if values.len() > 1 { last - values[0] } else { last };
            Some(Row {
                symbol: symbols.names[id].clone(),
                space: symbols.spaces[id],
                per_loop: values,
                increase,
            })
        })
        .collect();
    // By the size of the change either way: what one mode spends that the
    // other does not, from both sides.
    rows.sort_by(|a, b| {
        b.increase
            .abs()
            .total_cmp(&a.increase.abs())
            .then_with(|| a.symbol.cmp(&b.symbol))
    });
    rows.truncate(job.top);
    Ok(Report {
        test: job.test.clone(),
        seconds: job.seconds,
        icount_shift: ICOUNT_SHIFT,
        modes,
        top: rows,
    })
}

impl Report {
    pub fn text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "instructions per loop of {} ({} s per mode; QEMU -icount shift={} -singlestep exec log)",
            self.test, self.seconds, self.icount_shift
        );
        let _ = writeln!(
            o,
            "{:<8} {:>7} | {:>9} {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9}",
            "mode", "loops", "CPU0 hyp", "kernel", "user", "total", "CPU1 rtos", "hyp", "total"
        );
        let blank = CpuSplit {
            cpu: 0,
            hyp: 0.0,
            kernel: 0.0,
            user: 0.0,
            rtos: 0.0,
            total: 0.0,
        };
        for m in &self.modes {
            let cpu = |n: u32| m.per_loop.iter().find(|c| c.cpu == n).unwrap_or(&blank);
            let (c0, c1) = (cpu(0), cpu(1));
            let _ = writeln!(
                o,
                "{:<8} {:>7} | {:>9.0} {:>9.0} {:>9.0} {:>9.0} | {:>9.0} {:>9.0} {:>9.0}",
                m.mode, m.loops, c0.hyp, c0.kernel, c0.user, c0.total, c1.rtos, c1.hyp, c1.total
            );
        }
        for m in self.modes.iter().filter(|m| m.mode == Mode::Traced.name()) {
            let r = m.records;
            if !r.balanced() {
                let _ = writeln!(
                    o,
                    "note: {}: {} hvtrace events were emitted in the window while {} records were written. \
                     Linux's own records wait in their ring for the module's tick (0.1 s) or a half-full \
                     ring, so the kernel's share of a window this short is off by the difference; \
                     --seconds 1 evens it out.",
                    m.mode, r.events, r.written
                );
            }
        }
        let (first, last) = (&self.modes[0].mode, &self.modes[self.modes.len() - 1].mode);
        let order = if self.modes.len() > 1 {
            format!("by change {first} -> {last} (either way)")
        } else {
            format!("in {first}")
        };
        let _ = writeln!(
            o,
            "\ntop {} symbols on CPU0 {order}, instructions per loop:",
            self.top.len()
        );
        let _ = write!(o, "{:<7}", "where");
        for m in &self.modes {
            let _ = write!(o, " {:>9}", m.mode);
        }
        let _ = writeln!(o, " {:>9}  symbol", "change");
        for r in &self.top {
            let _ = write!(o, "{:<7}", r.space.name());
            for v in &r.per_loop {
                let _ = write!(o, " {v:>9.1}");
            }
            let _ = writeln!(o, " {:>+9.1}  {}", r.increase, r.symbol);
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYP_TEXT: Range = Range {
        start: 0x4020_0000,
        end: 0x4030_0000,
    };
    const KALLSYMS: &str = "\
0000000000000000 T no_address
ffff800080010000 T _text
ffff800080010000 T _stext
ffff800080020000 t __switch_to
ffff800080030000 D some_data
ffff800080040000 W weak_fn
garbage line
ffff80007a000000 t _RNvCs5soJHaUpt7w_12hvtrace_main5drain\t[hvtrace]
ffff80007a000100 T hvtrace_irq\t[hvtrace]
";

    fn symbols() -> Symbols {
        let hyp = HypSymbols::new(
            [(0x4020_0800, "hyp_vectors"), (0x4020_2000, "hypervisor::trace::emit")].map(|(a, n)| (a, n.to_string())),
            0x4020_0800,
        );
        Symbols::new(KALLSYMS, hyp, HYP_TEXT)
    }

    fn name(s: &Symbols, pc: u64) -> (&str, Space) {
        let id = s.id(pc);
        (s.names[id].as_str(), s.spaces[id])
    }

    #[test]
    fn pcs_are_classified_by_address_and_symbol() {
        assert_eq!(Space::of(0xffff_8000_8002_0010, HYP_TEXT), Space::Kernel);
        assert_eq!(Space::of(0xffff_0000_4010_5ac0, HYP_TEXT), Space::Rtos);
        assert_eq!(Space::of(0x4020_2004, HYP_TEXT), Space::Hyp);
        assert_eq!(Space::of(0x4030_0000, HYP_TEXT), Space::User);
        assert_eq!(Space::of(0xaaaa_0000_1234, HYP_TEXT), Space::User);

        let s = symbols();
        assert_eq!(
            s.kernel_symbols(),
            5,
            "data, garbage, zero addresses and aliases left out"
        );
        assert_eq!(name(&s, 0xffff_8000_8001_0004), ("_text", Space::Kernel));
        assert_eq!(name(&s, 0xffff_8000_8003_0000), ("__switch_to", Space::Kernel));
        assert_eq!(name(&s, 0xffff_8000_8004_0000), ("weak_fn", Space::Kernel));
        assert_eq!(
            name(&s, 0xffff_8000_7a00_0080),
            ("hvtrace_main::drain [hvtrace]", Space::Kernel)
        );
        assert_eq!(
            name(&s, 0xffff_8000_7a00_0104),
            ("hvtrace_irq [hvtrace]", Space::Kernel)
        );
        assert_eq!(name(&s, 0xffff_8000_0000_0000), ("(no kernel symbol)", Space::Kernel));
        assert_eq!(name(&s, 0x4020_2010), ("hypervisor::trace::emit", Space::Hyp));
        assert_eq!(name(&s, 0x4020_0000), ("(no symbol)", Space::Hyp));
        assert_eq!(name(&s, 0x40_0000), ("(user)", Space::User));
        assert_eq!(name(&s, 0xffff_0000_4010_0000), ("(rtos)", Space::Rtos));
    }

    fn line(cpu: u32, pc: u64) -> String {
        format!("Trace {cpu}: 0x7f9465193280 [0000000000000000/{pc:016x}/00000061/ff080201] sym\n")
    }

    #[test]
    fn counts_a_log_per_core_and_symbol() {
        let s = symbols();
        let mut log = String::new();
        // Start-up, before the timed part: not counted.
        log.push_str(&line(0, 0xffff_8000_8002_0000));
        log.push_str(&line(1, 0xffff_0000_4010_0000));
        log.push_str(&line(0, BENCH_WINDOW_PC));
        log.push_str(&line(0, 0xffff_8000_8002_0000));
        log.push_str(&line(0, 0xffff_8000_8002_0004));
        log.push_str(&line(1, 0xffff_0000_4010_0000));
        log.push_str(&line(0, 0x4020_2000));
        // Taken back: CPU0's hypervisor block did not run.
        log.push_str("Stopped execution of TB chain before 0x7f9465193280 [0000000040202000] sym\n");
        log.push_str("Trace 0: garbage\n\u{1b}[Kjunk\n");
        log.push_str(&line(0, 0x40_0000));
        log.push_str(&line(1, 0x4020_0800));
        log.push_str(&line(0, BENCH_WINDOW_PC));
        // Exit and the shell, after it: not counted either.
        log.push_str(&line(0, 0x40_0000));
        log.push_str(&line(0, 0xffff_8000_8002_0000));
        let c = count(std::io::Cursor::new(log), &s).unwrap();
        assert_eq!(c.marks, 2);
        assert_eq!(c.instructions(), 5);
        assert_eq!(c.lines.retracted, 1);
        assert_eq!(c.lines.other, 2);
        let cpu0 = &c.per_cpu[&0];
        assert_eq!(cpu0[s.id(0xffff_8000_8002_0000)], 2);
        assert_eq!(cpu0[s.id(0x4020_2000)], 0);
        assert_eq!(cpu0[s.user], 1);
        assert_eq!(c.per_cpu[&1][s.rtos], 1);
        assert_eq!(c.per_cpu[&1][s.id(0x4020_0800)], 1);
    }

    fn job(modes: &[&str]) -> Result<Job> {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            a: ProfileKernelArgs,
        }
        let mut v = vec!["profile-kernel", "--top", "3"];
        if !modes.is_empty() {
            v.push("--modes");
            v.extend_from_slice(modes);
        }
        Job::new(Cli::try_parse_from(v)?.a)
    }

    #[test]
    fn arguments_are_validated() {
        let j = job(&[]).unwrap();
        assert_eq!(j.modes, [Mode::Probe, Mode::Records, Mode::Traced]);
        assert_eq!((j.test.as_str(), j.seconds, j.top), ("context1", 0.1, 3));
        let j = job(&["traced,hyp,traced"]).unwrap();
        assert_eq!(j.modes, [Mode::Traced, Mode::Hyp], "the given order, once each");
        assert!(job(&["native"]).unwrap_err().to_string().contains("another system"));
        assert!(job(&["fast"]).unwrap_err().to_string().contains("unknown mode"));
        let parse = |extra: &[&str]| {
            use clap::Parser;
            #[derive(Parser)]
            struct Cli {
                #[command(flatten)]
                a: ProfileKernelArgs,
            }
            let mut v = vec!["profile-kernel"];
            v.extend_from_slice(extra);
            Job::new(Cli::try_parse_from(v).unwrap().a)
        };
        assert!(parse(&["--seconds", "0"]).is_err());
        assert!(parse(&["--seconds", "2.5"]).is_err());
        assert!(parse(&["--seconds", "2"]).is_ok());
        assert!(parse(&["--top", "0"]).is_err());
        let e = parse(&["--test", "context2"]).unwrap_err().to_string();
        assert!(e.contains("unknown test") && e.contains("context1"), "{e}");
    }

    #[test]
    fn loop_counts_parse() {
        assert_eq!(
            parse_loops("context1: 1111 loops in 0.101 s: 11000.0 loops/s\n").unwrap(),
            1111
        );
        assert!(parse_loops("Segmentation fault\n").is_err());
        assert!(parse_loops("context1: 0 loops in 0.100 s: 0.0 loops/s\n").is_err());
    }

    fn measured(s: &Symbols, mode: &str, loops: u64, cpu0: &[(u64, u64)], cpu1: &[(u64, u64)]) -> Measured {
        let mut per_cpu = BTreeMap::new();
        for (cpu, pcs) in [(0u32, cpu0), (1, cpu1)] {
            let mut v = vec![0; s.len()];
            for &(pc, n) in pcs {
                v[s.id(pc)] += n;
            }
            per_cpu.insert(cpu, v);
        }
        Measured {
            mode: mode.into(),
            loops,
            elapsed: Some(0.1),
            log_bytes: 1 << 20,
            counts: Counts {
                per_cpu,
                lines: Lines::default(),
                marks: 2,
                calls: [0; Call::ALL.len()],
            },
        }
    }

    #[test]
    fn report_splits_per_loop_and_ranks_increases() {
        let s = symbols();
        let (switch, drain, emit, user) = (0xffff_8000_8002_0000, 0xffff_8000_7a00_0000, 0x4020_2000, 0x40_0000);
        let rtos = 0xffff_0000_4010_0000;
        let mut runs = [
            measured(
                &s,
                "probe",
                100,
                &[(switch, 1000), (emit, 500), (user, 200)],
                &[(rtos, 50_000)],
            ),
            measured(
                &s,
                "records",
                50,
                &[(switch, 500), (emit, 500), (drain, 100)],
                &[(rtos, 50_000)],
            ),
            measured(
                &s,
                "traced",
                200,
                &[(switch, 2000), (emit, 3000), (drain, 2000), (user, 400)],
                &[(rtos, 50_000), (emit, 400)],
            ),
        ];
        // traced: 300 records written in the window, 100 of them emitted.
        runs[2].counts.calls = [300, 60, 40];
        let r = report(&job(&[]).unwrap(), &s, &runs).unwrap();
        let p = &r.modes[0].per_loop[0];
        assert_eq!((p.hyp, p.kernel, p.user, p.rtos, p.total), (5.0, 10.0, 2.0, 0.0, 17.0));
        let t = &r.modes[2].per_loop[1];
        assert_eq!((t.cpu, t.rtos, t.hyp, t.total), (1, 250.0, 2.0, 252.0));
        // emit 5 -> 15, drain 0 -> 10, switch 10 -> 10 (user 2 -> 2 ties it, and loses by name).
        let top: Vec<(&str, Space, f64)> = r.top.iter().map(|x| (x.symbol.as_str(), x.space, x.increase)).collect();
        assert_eq!(
            top,
            [
                ("hvtrace_main::drain [hvtrace]", Space::Kernel, 10.0),
                ("hypervisor::trace::emit", Space::Hyp, 10.0),
                ("(user)", Space::User, 0.0),
            ]
        );
        assert_eq!(r.top[0].per_loop, [0.0, 2.0, 10.0]);
        let text = r.text();
        assert!(
            text.contains("top 3 symbols on CPU0 by change probe -> traced (either way)"),
            "{text}"
        );
        assert!(
            text.contains("probe        100 |         5        10         2        17 |       500         0       500"),
            "{text}"
        );
        assert!(
            text.contains("kernel        0.0       2.0      10.0     +10.0  hvtrace_main::drain [hvtrace]"),
            "{text}"
        );
        // A run that caught few drains says so; one with enough does not.
        assert!(
            text.contains("note: traced: 100 hvtrace events were emitted in the window while 300 records were written"),
            "{text}"
        );
        assert_eq!(text.matches("note:").count(), 1, "{text}");
        runs[2].counts.calls = [300, 250, 40];
        let balanced = report(&job(&[]).unwrap(), &s, &runs).unwrap().text();
        assert!(!balanced.contains("note:"), "{balanced}");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["modes"][1]["loops"], 50);
        assert_eq!(json["modes"][2]["records"]["written"], 300);
        assert_eq!(json["top"][1]["space"], "hyp");
    }
}
