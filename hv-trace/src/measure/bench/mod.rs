//! `hv-trace bench`: the overhead benchmark. UnixBench-style workloads
//! (guests/linux/bench, in the initramfs at /usr/bench) run in the Linux
//! guest in several modes, and the scores are compared:
//!
//! - `native`: Linux alone in QEMU, no hypervisor (QEMU's own device tree,
//!   `nr_cpus=1 mem=960M` so Linux has what it has under the hypervisor);
//! - `hyp`: under the hypervisor, the RTOS beside it, tracing off;
//! - `probe`: + probes on Linux's context switch and the RTOS's, recording off
//!   (the cost of the trap alone);
//! - `records`: + recording on: the hypervisor writes records and the module
//!   drains them, but the hvtrace ftrace events are off (what a record costs
//!   before ftrace);
//! - `traced`: + the hvtrace ftrace events enabled (the whole data path);
//! - `ftrace`, `kprobe`: the peers a Linux user would reach for, under the
//!   hypervisor with no probes of ours: the sched_switch event, and a kprobe
//!   event on the same context-switch function.
//!
//! Each system boots once; in the hypervisor's system the modes take turns
//! within every run (so slow drift of the host hits them alike). Scores are
//! loops/s ÷ UnixBench's published baseline × 10, medians over the runs.

use crate::session::{self, Control, Running};
use crate::system::{self, Plan};
use crate::{artifacts, qemu};
use anyhow::{bail, ensure, Context, Result};
use guest_probe::a64::{self, Class};
use guest_probe::symbols::SymbolTable;
use regex::Regex;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The function probed as "Linux's context switch" (hvtrace probe and kprobe).
const LINUX_SWITCH: &str = "__switch_to";
/// The RTOS's context-switch functions, probed in `probe` and `traced`.
const RTOS_SWITCHES: [&str; 2] = ["OSCtxSw", "OSIntCtxSw"];
const HVTRACE: &str = "/sys/kernel/hvtrace";
const TRACING: &str = "/sys/kernel/tracing";
/// How the built-in workloads report: `<test>: N loops in T s: R loops/s`.
const LOOPS_RE: &str = r"([0-9]+(?:\.[0-9]+)?) loops/s";
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);
/// Bits of entropy Linux's crng needs to be ready (its input pool's size;
/// `/proc/sys/kernel/random/entropy_avail` counts up to it and stays there).
const CRNG_READY_BITS: u32 = 256;

/// A built-in workload and the UnixBench index baseline it is scored against.
///
/// The baselines are UnixBench's published index values (`pgms/index.base`
/// of UnixBench 5.1: the "George" SPARCstation 20-61, which scores 10 on
/// every test): Dhrystone 2 116700 lps, Whetstone 55.0 MWIPS, execl 43.0 lps,
/// File Copy 1024 bufsize 2000 maxblocks 3960 KBps, pipe throughput 12440 lps,
/// pipe-based context switching 4000 lps, process creation 126 lps,
/// system call overhead 15000 lps.
pub struct Test {
    pub name: &'static str,
    pub baseline: f64,
    pub what: &'static str,
}

pub const TESTS: [Test; 8] = [
    Test {
        name: "dhry",
        baseline: 116_700.0,
        what: "Dhrystone-like integer loop (loops/s)",
    },
    Test {
        name: "whets",
        baseline: 55.0,
        what: "Whetstone-like float loop (loops/s ~ MWIPS)",
    },
    Test {
        name: "execl",
        baseline: 43.0,
        what: "execl of itself (loops/s)",
    },
    Test {
        name: "fcopy",
        baseline: 3960.0,
        what: "file copy on tmpfs, 1 KiB blocks (KiB/s)",
    },
    Test {
        name: "pipe",
        baseline: 12_440.0,
        what: "512-byte pipe write+read (loops/s)",
    },
    Test {
        name: "context1",
        baseline: 4000.0,
        what: "pipe ping-pong between two processes (loops/s)",
    },
    Test {
        name: "spawn",
        baseline: 126.0,
        what: "fork + exit + wait (loops/s)",
    },
    Test {
        name: "syscall",
        baseline: 15_000.0,
        what: "close(dup()), getpid, getuid, umask (loops/s)",
    },
];

/// One way of running the system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mode {
    Native,
    Hyp,
    Probe,
    Records,
    Traced,
    Ftrace,
    Kprobe,
}

impl Mode {
    const ALL: [Mode; 7] = [
        Mode::Native,
        Mode::Hyp,
        Mode::Probe,
        Mode::Records,
        Mode::Traced,
        Mode::Ftrace,
        Mode::Kprobe,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Native => "native",
            Mode::Hyp => "hyp",
            Mode::Probe => "probe",
            Mode::Records => "records",
            Mode::Traced => "traced",
            Mode::Ftrace => "ftrace",
            Mode::Kprobe => "kprobe",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Mode> {
        Mode::ALL.into_iter().find(|m| m.name() == s).with_context(|| {
            let names: Vec<_> = Mode::ALL.iter().map(|m| m.name()).collect();
            format!("unknown mode {s:?}; the modes are {}", names.join(", "))
        })
    }

    /// Whether the mode runs under the hypervisor.
    pub(crate) fn hypervisor(self) -> bool {
        self != Mode::Native
    }

    /// What counts as a hit of the mode's instrumentation.
    fn hit_source(self) -> Option<&'static str> {
        match self {
            Mode::Probe | Mode::Records | Mode::Traced => Some("probe hits"),
            Mode::Ftrace => Some("sched_switch events"),
            Mode::Kprobe => Some("kprobe hits"),
            Mode::Native | Mode::Hyp => None,
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Comma-separated tests (default: all built-in ones; none with --cmd):
    /// dhry, whets, execl, fcopy, pipe, context1, spawn, syscall.
    #[arg(long, value_delimiter = ',')]
    tests: Option<Vec<String>>,
    /// Comma-separated modes: native, hyp, probe, records, traced, ftrace, kprobe.
    #[arg(long, value_delimiter = ',', default_value = "native,hyp,traced,ftrace,kprobe")]
    modes: Vec<String>,
    /// Runs per test and mode (the table shows their median).
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Seconds each built-in workload runs.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Output directory (samples.csv, summary.csv, bench.svg, table.txt).
    #[arg(long, default_value = "hv-trace-bench")]
    out: PathBuf,
    /// A shell command to run in the guest as a workload (`{seconds}` is
    /// replaced by --seconds); needs --score-regex.
    #[arg(long)]
    cmd: Option<String>,
    /// Where the --cmd's score is in its output: the first capture group (or
    /// the whole match) must be a number; higher is better.
    #[arg(long, value_name = "RE")]
    score_regex: Option<String>,
    /// Deterministic guest time: QEMU's `-icount shift=N` (one instruction =
    /// 2^N ns of guest time, one host thread), so scores count instructions
    /// and host load stops mattering. Without it, times are the host's.
    #[arg(long, value_name = "N")]
    icount: Option<u8>,
}

/// A workload to run in the guest.
#[derive(Clone, Debug)]
pub struct Workload {
    pub name: String,
    pub command: String,
    /// Score = value ÷ baseline × 10 (None: the value is the score).
    pub baseline: Option<f64>,
    pub pattern: Regex,
    pub timeout: Duration,
}

/// The validated plan.
#[derive(Debug)]
pub struct BenchPlan {
    pub workloads: Vec<Workload>,
    pub modes: Vec<Mode>,
    pub runs: u32,
    pub out: PathBuf,
    pub icount: Option<u8>,
}

impl BenchPlan {
    pub fn new(args: BenchArgs) -> Result<Self> {
        ensure!(
            args.runs >= 1 && args.runs <= 100,
            "--runs must be 1..100, not {}",
            args.runs
        );
        ensure!(
            args.seconds.is_finite() && args.seconds > 0.0 && args.seconds <= 600.0,
            "--seconds must be more than 0 and at most 600, not {}",
            args.seconds
        );
        let mut modes = Vec::new();
        for m in &args.modes {
            let m = Mode::parse(m.trim())?;
            if !modes.contains(&m) {
                modes.push(m);
            }
        }
        ensure!(!modes.is_empty(), "--modes names no mode");
        modes.sort();
        let default_tests: Vec<String> = if args.cmd.is_some() {
            vec![]
        } else {
            TESTS.iter().map(|t| t.name.to_string()).collect()
        };
        let mut workloads = Vec::new();
        let loops = Regex::new(LOOPS_RE).expect("a valid pattern");
        for name in args.tests.unwrap_or(default_tests) {
            let name = name.trim();
            let t = TESTS.iter().find(|t| t.name == name).with_context(|| {
                let names: Vec<_> = TESTS.iter().map(|t| t.name).collect();
                format!("unknown test {name:?}; the tests are {}", names.join(", "))
            })?;
            if workloads.iter().any(|w: &Workload| w.name == t.name) {
                continue;
            }
            workloads.push(Workload {
                name: t.name.into(),
                command: format!("/usr/bench/{} {}", t.name, args.seconds),
                baseline: Some(t.baseline),
                pattern: loops.clone(),
                timeout: Duration::from_secs_f64(args.seconds) + Duration::from_secs(40),
            });
        }
        match (args.cmd, args.score_regex) {
            (Some(cmd), Some(re)) => {
                ensure!(
                    !cmd.trim().is_empty() && !cmd.contains('\n'),
                    "--cmd must be one non-empty line"
                );
                let pattern = Regex::new(&re)
                    .with_context(|| format!("--score-regex {re:?} is not a valid regular expression"))?;
                workloads.push(Workload {
                    name: "cmd".into(),
                    command: cmd.replace("{seconds}", &args.seconds.to_string()),
                    baseline: None,
                    pattern,
                    timeout: Duration::from_secs_f64(args.seconds * 10.0).max(Duration::from_secs(600)),
                });
            }
            (Some(_), None) => bail!("--cmd needs --score-regex (where its score is in its output)"),
            (None, Some(_)) => bail!("--score-regex goes with --cmd"),
            (None, None) => {}
        }
        ensure!(!workloads.is_empty(), "no tests to run");
        if let Some(n) = args.icount {
            ensure!(
                n <= 10,
                "--icount takes a shift of 0..=10 (2^N ns per instruction), not {n}"
            );
        }
        Ok(BenchPlan {
            workloads,
            modes,
            runs: args.runs,
            out: args.out,
            icount: args.icount,
        })
    }
}

/// The score a workload's output reports: the number `pattern` finds.
pub fn parse_value(output: &str, pattern: &Regex) -> Result<f64> {
    let caps = pattern
        .captures(output)
        .with_context(|| format!("no match of /{pattern}/ in the output:\n{}", output.trim()))?;
    let text = caps
        .get(1)
        .or_else(|| caps.get(0))
        .map(|m| m.as_str())
        .unwrap_or_default();
    let v: f64 = text
        .trim()
        .parse()
        .with_context(|| format!("/{pattern}/ matched {text:?}, which is not a number"))?;
    ensure!(v.is_finite() && v >= 0.0, "the score {v} is not a non-negative number");
    Ok(v)
}

/// A warning when the system's crng was not ready at boot (`entropy_avail`:
/// what `/proc/sys/kernel/random/entropy_avail` said then), else None.
///
/// Until Linux's input pool has 128 bits every `get_random_*` call (six per
/// exec) extracts a new key from it, until 256 it still skips the per-CPU batches;
/// the bits come from interrupts, so a boot crosses both marks somewhere in
/// the runs and execl jumps from ~290 to ~343 to ~352 loops/s (`--icount 3`).
/// Both systems are seeded at boot (QEMU's `/chosen/rng-seed`, which the
/// hypervisor passes on), so this is a warning about a broken setup.
pub(crate) fn crng_warning(system: &str, entropy_avail: &str) -> Option<String> {
    let bits: Option<u32> = entropy_avail.trim().parse().ok();
    if bits.is_some_and(|b| b >= CRNG_READY_BITS) {
        return None;
    }
    let have = bits.map_or_else(|| format!("{:?}", entropy_avail.trim()), |b| b.to_string());
    Some(format!(
        "{system}: Linux's crng was not ready at boot (entropy_avail {have} of {CRNG_READY_BITS} bits; \
         no rng-seed in its device tree?): exec-heavy tests (execl) speed up by ~20 % when interrupts \
         have credited 128 and 256 bits, so their scores mix states"
    ))
}

/// The elapsed time a built-in workload reports (`in T s`).
pub(crate) fn parse_elapsed(output: &str) -> Option<f64> {
    let re = Regex::new(r"loops in ([0-9.]+) s").expect("a valid pattern");
    re.captures(output)?.get(1)?.as_str().parse().ok()
}

/// One measurement.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub test: String,
    pub mode: Mode,
    pub run: u32,
    /// What the workload reported (loops/s for the built-in ones).
    pub value: f64,
    pub score: f64,
    pub seconds: f64,
    /// Hits of the mode's instrumentation during the run.
    pub hits: Option<u64>,
}

pub fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// One (test, mode) cell of the result.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    pub score: f64,
    pub min: f64,
    pub max: f64,
    /// (max − min) ÷ median, in percent.
    pub spread_pct: f64,
    pub hits_per_s: Option<f64>,
}

/// Score loss of `score` against `base`, in percent (positive = slower).
pub fn overhead_pct(score: f64, base: f64) -> f64 {
    (base - score) / base * 100.0
}

/// Estimated cost of one hit: the fraction of time lost to the
/// instrumentation (1 − score/base) divided by the hits per second.
pub fn cost_per_hit_us(score: f64, base: f64, hits_per_s: f64) -> Option<f64> {
    (hits_per_s > 0.0 && base > 0.0).then(|| (1.0 - score / base) / hits_per_s * 1e6)
}

/// Whether two cells' medians differ by less than their half-spreads
/// together (the difference is not a measurement).
pub fn within_noise(a: &Cell, b: &Cell) -> bool {
    let noise = (a.max - a.min) / 2.0 + (b.max - b.min) / 2.0;
    (a.score - b.score).abs() <= noise
}

/// Results by test, then mode, in the order the plan names them.
pub struct Summary {
    pub tests: Vec<String>,
    pub modes: Vec<Mode>,
    pub runs: u32,
    pub cells: BTreeMap<(String, Mode), Cell>,
    /// Modes that could not be measured, and why.
    pub failed: BTreeMap<Mode, String>,
}

impl Summary {
    pub fn new(tests: Vec<String>, modes: Vec<Mode>, runs: u32, samples: &[Sample]) -> Self {
        let mut cells = BTreeMap::new();
        for t in &tests {
            for &m in &modes {
                let mine: Vec<&Sample> = samples.iter().filter(|s| &s.test == t && s.mode == m).collect();
                if mine.is_empty() {
                    continue;
                }
                let scores: Vec<f64> = mine.iter().map(|s| s.score).collect();
                let score = median(&scores);
                let min = scores.iter().copied().fold(f64::INFINITY, f64::min);
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let rates: Vec<f64> = mine
                    .iter()
                    .filter_map(|s| s.hits.map(|h| h as f64 / s.seconds.max(1e-9)))
                    .collect();
                cells.insert(
                    (t.clone(), m),
                    Cell {
                        score,
                        min,
                        max,
                        spread_pct: if score > 0.0 { (max - min) / score * 100.0 } else { 0.0 },
                        hits_per_s: (!rates.is_empty()).then(|| median(&rates)),
                    },
                );
            }
        }
        Summary {
            tests,
            modes,
            runs,
            cells,
            failed: BTreeMap::new(),
        }
    }

    pub fn cell(&self, test: &str, mode: Mode) -> Option<&Cell> {
        self.cells.get(&(test.to_string(), mode))
    }

    fn overhead(&self, test: &str, mode: Mode, base: Mode) -> Option<f64> {
        let (c, b) = (self.cell(test, mode)?, self.cell(test, base)?);
        Some(overhead_pct(c.score, b.score))
    }

    /// The printed report: scores, overheads, per-hit costs.
    pub fn table(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "score = loops/s ÷ UnixBench baseline × 10; median of {} run(s), ± half the min–max spread",
            self.runs
        );
        let _ = write!(o, "{:<10}", "test");
        for m in &self.modes {
            let _ = write!(o, " {:>18}", m.name());
        }
        o.push('\n');
        for t in &self.tests {
            let _ = write!(o, "{t:<10}");
            for &m in &self.modes {
                let text = match self.cell(t, m) {
                    Some(c) => format!("{:.1} ±{:.1}%", c.score, c.spread_pct / 2.0),
                    None if self.failed.contains_key(&m) => "failed".into(),
                    None => "-".into(),
                };
                let _ = write!(o, " {text:>18}");
            }
            o.push('\n');
        }
        let others: Vec<Mode> = self.modes.iter().copied().filter(|m| *m != Mode::Native).collect();
        if !others.is_empty() && (self.modes.contains(&Mode::Native) || self.modes.contains(&Mode::Hyp)) {
            let _ = writeln!(o, "\noverhead (score loss, positive = slower): vs hyp / vs native");
            let _ = write!(o, "{:<10}", "test");
            for m in &others {
                let _ = write!(o, " {:>18}", m.name());
            }
            o.push('\n');
            for t in &self.tests {
                let _ = write!(o, "{t:<10}");
                for &m in &others {
                    let pct = |b: Mode| match self.overhead(t, m, b) {
                        Some(v) if m != b => format!("{v:+.1}%"),
                        _ => "-".into(),
                    };
                    let _ = write!(o, " {:>18}", format!("{} / {}", pct(Mode::Hyp), pct(Mode::Native)));
                }
                o.push('\n');
            }
        }
        for (m, why) in &self.failed {
            let _ = writeln!(o, "\n{} failed: {why}", m.name());
        }
        let built_in: Vec<&Test> = TESTS
            .iter()
            .filter(|t| self.tests.iter().any(|n| n == t.name))
            .collect();
        if !built_in.is_empty() {
            let _ = writeln!(o, "\nbaselines (UnixBench index, score 10):");
            for t in built_in {
                let _ = writeln!(o, "  {:<9} {:>9} {}", t.name, t.baseline, t.what);
            }
        }
        let hit_modes: Vec<Mode> = self
            .modes
            .iter()
            .copied()
            .filter(|m| m.hit_source().is_some())
            .collect();
        if !hit_modes.is_empty() && self.modes.contains(&Mode::Hyp) {
            let _ = writeln!(
                o,
                "\nper hit: hits/s during the run; est. cost = (1 − score/hyp score) ÷ hits/s"
            );
            let _ = writeln!(
                o,
                "{:<10} {:<8} {:>12} {:>14}  hits are",
                "test", "mode", "hits/s", "cost/hit"
            );
            for t in &self.tests {
                for &m in &hit_modes {
                    let (Some(c), Some(base)) = (self.cell(t, m), self.cell(t, Mode::Hyp)) else {
                        continue;
                    };
                    let Some(rate) = c.hits_per_s else { continue };
                    let cost = match cost_per_hit_us(c.score, base.score, rate) {
                        // A difference inside the runs' own spread says nothing.
                        Some(_) if within_noise(c, base) => "in noise".into(),
                        Some(us) => format!("{us:.2} us"),
                        None => "-".into(),
                    };
                    let _ = writeln!(
                        o,
                        "{t:<10} {:<8} {rate:>12.0} {cost:>14}  {}",
                        m.name(),
                        m.hit_source().unwrap_or_default()
                    );
                }
            }
        }
        o
    }

    /// summary.csv: one line per (test, mode).
    pub fn csv(&self) -> String {
        let mut o = String::from(
            "test,mode,runs,median_score,min_score,max_score,spread_pct,overhead_vs_native_pct,overhead_vs_hyp_pct,hits_per_s,cost_per_hit_us\n",
        );
        let opt = |v: Option<f64>| v.map(|v| format!("{v:.4}")).unwrap_or_default();
        for t in &self.tests {
            for &m in &self.modes {
                let Some(c) = self.cell(t, m) else { continue };
                let base = self.cell(t, Mode::Hyp);
                let cost = c
                    .hits_per_s
                    .zip(base)
                    .and_then(|(rate, b)| cost_per_hit_us(c.score, b.score, rate));
                let _ = writeln!(
                    o,
                    "{t},{},{},{:.4},{:.4},{:.4},{:.3},{},{},{},{}",
                    m.name(),
                    self.runs,
                    c.score,
                    c.min,
                    c.max,
                    c.spread_pct,
                    opt(self.overhead(t, m, Mode::Native).filter(|_| m != Mode::Native)),
                    opt(self.overhead(t, m, Mode::Hyp).filter(|_| m != Mode::Hyp)),
                    opt(c.hits_per_s),
                    opt(cost)
                );
            }
        }
        o
    }

    /// A grouped bar chart like the paper's Fig. 13: per test, each mode's
    /// score relative to the reference mode (native, or hyp without it), with
    /// min–max whiskers.
    pub fn svg(&self) -> String {
        let reference = if self.modes.contains(&Mode::Native) {
            Mode::Native
        } else {
            self.modes[0]
        };
        let colours = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1"];
        let (left, top, plot_h, group_w) = (60.0, 40.0, 260.0, 30.0 + 16.0 * self.modes.len() as f64);
        let width = left + group_w * self.tests.len().max(1) as f64 + 20.0;
        let height = top + plot_h + 90.0;
        let rel = |t: &str, m: Mode, v: fn(&Cell) -> f64| -> Option<f64> {
            let r = self.cell(t, reference)?.score;
            let c = self.cell(t, m)?;
            (r > 0.0).then(|| v(c) / r * 100.0)
        };
        let mut top_value: f64 = 100.0;
        for t in &self.tests {
            for &m in &self.modes {
                if let Some(v) = rel(t, m, |c| c.max) {
                    top_value = top_value.max(v);
                }
            }
        }
        let y_max = (top_value / 20.0).ceil() * 20.0;
        let y = |v: f64| top + plot_h - v / y_max * plot_h;
        let mut o = String::new();
        let _ = writeln!(
            o,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="sans-serif" font-size="11">"#
        );
        let _ = writeln!(o, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            o,
            r#"<text x="{left}" y="20" font-size="13">hv-trace bench: score relative to {} (%), median of {} run(s), whiskers min–max</text>"#,
            reference.name(),
            self.runs
        );
        let mut tick = 0.0;
        while tick <= y_max + 1e-9 {
            let yy = y(tick);
            let _ = writeln!(
                o,
                r##"<line x1="{left}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{tick:.0}</text>"##,
                width - 20.0,
                left - 4.0,
                yy + 4.0
            );
            tick += 20.0;
        }
        for (i, t) in self.tests.iter().enumerate() {
            let x0 = left + group_w * i as f64 + 15.0;
            for (j, &m) in self.modes.iter().enumerate() {
                let (Some(v), Some(lo), Some(hi)) =
                    (rel(t, m, |c| c.score), rel(t, m, |c| c.min), rel(t, m, |c| c.max))
                else {
                    continue;
                };
                let x = x0 + 16.0 * j as f64;
                let colour = colours[Mode::ALL.iter().position(|a| *a == m).unwrap_or(0) % colours.len()];
                let _ = writeln!(
                    o,
                    r#"<rect x="{x:.1}" y="{:.1}" width="14" height="{:.1}" fill="{colour}"><title>{t} {}: {v:.1}%</title></rect>"#,
                    y(v),
                    (y(0.0) - y(v)).max(0.0),
                    m.name()
                );
                let _ = writeln!(
                    o,
                    r#"<line x1="{0:.1}" y1="{1:.1}" x2="{0:.1}" y2="{2:.1}" stroke="black"/>"#,
                    x + 7.0,
                    y(lo),
                    y(hi)
                );
            }
            let _ = writeln!(
                o,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{t}</text>"#,
                x0 + 8.0 * self.modes.len() as f64,
                y(0.0) + 16.0
            );
        }
        let _ = writeln!(
            o,
            r#"<line x1="{left}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="black"/>"#,
            y(0.0),
            width - 20.0
        );
        for (j, &m) in self.modes.iter().enumerate() {
            let colour = colours[Mode::ALL.iter().position(|a| *a == m).unwrap_or(0) % colours.len()];
            let (x, yy) = (left + 80.0 * j as f64, y(0.0) + 40.0);
            let _ = writeln!(
                o,
                r#"<rect x="{x:.1}" y="{:.1}" width="12" height="12" fill="{colour}"/><text x="{:.1}" y="{yy:.1}">{}</text>"#,
                yy - 10.0,
                x + 16.0,
                m.name()
            );
        }
        o.push_str("</svg>\n");
        o
    }
}

/// The hypervisor's own measure of its probe handler, from the lines it
/// logs when a probe is removed ("VM linux: probe 1 at 0x… removed after N
/// hits; handler cost in counter ticks min A median <B p99 <C max D") and the
/// counter frequency Linux logs: per VM, hits and the hits-weighted median
/// bound and worst p99 bound, in microseconds.
pub fn handler_costs(console: &str) -> BTreeMap<String, (u64, f64, f64)> {
    let re = Regex::new(
        r"VM (\w+): probe \d+ at 0x[0-9a-f]+ removed after (\d+) hits; handler cost in counter ticks min \d+ median <(\d+) p99 <(\d+)",
    )
    .expect("a valid pattern");
    let mhz = Regex::new(r"running at ([0-9.]+)MHz")
        .expect("a valid pattern")
        .captures(console)
        .and_then(|c| c[1].parse::<f64>().ok())
        .unwrap_or(62.5);
    let mut by_vm: BTreeMap<String, (u64, f64, f64)> = BTreeMap::new();
    for c in re.captures_iter(console) {
        let (Ok(hits), Ok(median), Ok(p99)) = (c[2].parse::<u64>(), c[3].parse::<f64>(), c[4].parse::<f64>()) else {
            continue;
        };
        let e = by_vm.entry(c[1].to_string()).or_default();
        e.0 += hits;
        e.1 += hits as f64 * median / mhz;
        e.2 = e.2.max(p99 / mhz);
    }
    for e in by_vm.values_mut() {
        e.1 /= e.0.max(1) as f64;
    }
    by_vm
}

/// samples.csv: every measurement.
pub fn samples_csv(samples: &[Sample]) -> String {
    let mut o = String::from("test,mode,run,value,score,seconds,hits\n");
    for s in samples {
        let _ = writeln!(
            o,
            "{},{},{},{:.4},{:.4},{:.3},{}",
            s.test,
            s.mode.name(),
            s.run,
            s.value,
            s.score,
            s.seconds,
            s.hits.map(|h| h.to_string()).unwrap_or_default()
        );
    }
    o
}

// --- driving the guest ---------------------------------------------------------------

/// Probe addresses resolved in the booted images.
pub(crate) struct Sites {
    linux: u64,
    rtos: Vec<u64>,
}

impl Sites {
    /// Linux's and the RTOS's context-switch functions in the images `system::machine` built.
    pub(crate) fn resolve(built: &artifacts::Artifacts) -> Result<Self> {
        let image = |name: &str| built.get(name).with_context(|| format!("no {name} image was built"));
        let rtos = image("rtos")?;
        Ok(Sites {
            linux: site(image("vmlinux")?, LINUX_SWITCH)?,
            rtos: RTOS_SWITCHES.iter().map(|s| site(rtos, s)).collect::<Result<_>>()?,
        })
    }
}

fn site(image: &Path, name: &str) -> Result<u64> {
    let bytes = fs::read(image).with_context(|| format!("reading {}", image.display()))?;
    let table = SymbolTable::from_elf(&bytes).with_context(|| format!("reading symbols of {}", image.display()))?;
    let r = table
        .resolve(name)
        .with_context(|| format!("{name} in {}", image.display()))?;
    if let Some(Class::Refused(why)) = r.insn.map(a64::classify) {
        bail!("{name} ({:#x}) cannot be probed: {why}", r.addr);
    }
    Ok(r.addr)
}

/// The sum of the `hits=` fields of a VM's probes in the module's list.
fn probe_hits(list: &str, vm: u8) -> u64 {
    list.lines()
        .filter(|l| l.split_whitespace().any(|f| f == format!("vm={vm}")))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|f| f.strip_prefix("hits=")?.parse::<u64>().ok())
        })
        .sum()
}

/// `name value` lines (the module's stats) as a map.
fn counters(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.trim().to_string(), v.trim().parse().ok()?))
        })
        .collect()
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

const T: Duration = Duration::from_secs(20);

pub(crate) fn enable(ctl: &mut Control, mode: Mode, sites: Option<&Sites>) -> Result<()> {
    match mode {
        Mode::Native | Mode::Hyp => {}
        Mode::Probe | Mode::Records | Mode::Traced => {
            let s = sites.context("no probe sites")?;
            let mut cmds = vec![format!("echo 'add 0 {:x}' > {HVTRACE}/probes", s.linux)];
            cmds.extend(
                s.rtos
                    .iter()
                    .map(|a| format!("echo 'add 1 {a:x} switch' > {HVTRACE}/probes")),
            );
            if mode == Mode::Traced {
                cmds.push(format!("echo 1 > {TRACING}/events/hvtrace/enable"));
                cmds.push(format!("echo 1 > {TRACING}/tracing_on"));
            }
            if mode != Mode::Probe {
                cmds.push(format!("echo 1 > {HVTRACE}/enable"));
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

pub(crate) fn disable(ctl: &mut Control, mode: Mode) -> Result<()> {
    match mode {
        Mode::Native | Mode::Hyp => {}
        Mode::Probe | Mode::Records | Mode::Traced => {
            let list = ctl.run(&format!("echo 0 > {HVTRACE}/enable; cat {HVTRACE}/probes"), T)?;
            let mut cmds = vec![format!("echo 0 > {TRACING}/events/hvtrace/enable")];
            for line in list.lines() {
                let f = |k: &str| {
                    line.split_whitespace()
                        .find_map(|w| w.strip_prefix(k).map(str::to_string))
                };
                if let (Some(vm), Some(id)) = (f("vm="), f("id=")) {
                    cmds.push(format!("echo 'remove {vm} {id}' > {HVTRACE}/probes"));
                }
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

/// The counter of the mode's hits (read before and after a run).
fn hit_counter(ctl: &mut Control, mode: Mode) -> Result<Option<u64>> {
    Ok(match mode {
        Mode::Native | Mode::Hyp => None,
        Mode::Probe | Mode::Records | Mode::Traced => {
            Some(probe_hits(&ctl.run(&format!("cat {HVTRACE}/probes"), T)?, 0))
        }
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

fn measure(ctl: &mut Control, running: &mut Running, w: &Workload, mode: Mode, run: u32) -> Result<Sample> {
    // The ftrace counters restart with an empty buffer.
    if mode == Mode::Ftrace {
        ctl.run(&format!("echo > {TRACING}/trace"), T)?;
    }
    let before = hit_counter(ctl, mode)?;
    let started = Instant::now();
    // With the control channel idle: its wake-ups of the guest's console
    // while it waits would be measured too.
    let out = ctl.exec_quiet(running, &w.command, w.timeout)?;
    let wall = started.elapsed().as_secs_f64();
    ensure!(
        out.status == 0,
        "{} failed in the guest ({} mode, status {}): {}",
        w.name,
        mode.name(),
        out.status,
        out.text.trim()
    );
    let after = hit_counter(ctl, mode)?;
    let value = parse_value(&out.text, &w.pattern).with_context(|| format!("reading the score of {}", w.name))?;
    let score = w.baseline.map_or(value, |b| value / b * 10.0);
    Ok(Sample {
        test: w.name.clone(),
        mode,
        run,
        value,
        score,
        seconds: parse_elapsed(&out.text).unwrap_or(wall),
        hits: before.zip(after).map(|(b, a)| a.saturating_sub(b)),
    })
}

/// Boots the native or the hypervisor's system in the session directory.
fn boot(hyp: bool, icount: Option<u8>) -> Result<(Running, Control, Option<Sites>, Option<String>)> {
    let dir = session::dir();
    let (machine, sites) = if hyp {
        let plan = Plan {
            session: Some(dir.clone()),
            ..Plan::default()
        };
        let (machine, built) = system::machine(&plan)?;
        (machine, Some(Sites::resolve(&built)?))
    } else {
        // Native Linux has no hvtrace module: its hypercalls would reach
        // Linux's own EL2 stub instead of our hypervisor.
        let (built, initrd) = {
            let _lock = artifacts::BuildLock::acquire()?;
            let built = artifacts::build_linux()?;
            let initrd = artifacts::build_rootfs(None, &built["bench"])?;
            (built, initrd)
        };
        let mut extra = vec![
            "-initrd".into(),
            initrd.display().to_string(),
            "-append".into(),
            "console=ttyAMA0 rdinit=/init nr_cpus=1 mem=960M".into(),
        ];
        extra.extend(session::qemu_args(&dir));
        let machine = qemu::Machine {
            cpus: 2,
            memory_mib: 1024,
            virtualization: true,
            kernel: built["linux-image"].clone(),
            blobs: vec![],
            extra_args: extra,
        };
        (machine, None)
    };
    let what = if hyp {
        "hypervisor + Linux + RTOS"
    } else {
        "Linux alone (native)"
    };
    let mut machine = machine;
    if let Some(n) = icount {
        machine
            .extra_args
            .extend(["-icount".to_string(), format!("shift={n},align=off,sleep=on")]);
    }
    let step = crate::progress::Step::start(format!("booting {what}"));
    let mut running = Running::start(&machine, Box::new(std::io::sink()))?;
    running.wait_for("init done", BOOT_TIMEOUT)?;
    let mut ctl = session::wait_control(&running.dir, Duration::from_secs(60))?;
    let missing = ctl.exec("ls /usr/bench/context1", T)?;
    ensure!(
        missing.status == 0,
        "the guest has no /usr/bench: the initramfs was built without the benchmarks"
    );
    let entropy = ctl.exec("cat /proc/sys/kernel/random/entropy_avail", T)?.text;
    let warning = crng_warning(if hyp { "hyp" } else { "native" }, &entropy);
    step.finish("up");
    if let Some(w) = &warning {
        eprintln!("[bench] warning: {w}");
    }
    Ok((running, ctl, sites, warning))
}

/// Under `-icount` the RTOS's own load counts against Linux in every mode
/// but native (docs/performance.md): said under a table that compares with
/// native.
fn icount_note(plan: &BenchPlan) -> Option<String> {
    let with_native = plan.modes.contains(&Mode::Native) && plan.modes.iter().any(|m| m.hypervisor());
    (plan.icount.is_some() && with_native).then(|| {
        "under --icount QEMU runs both cores on one instruction clock, so the RTOS's own tasks on \
         CPU1 take guest time from Linux in every mode but native: ~30 % in spawn and execl, ~0 % in \
         dhry and context1, where QEMU's round robin hardly runs the RTOS (it stalls). \"vs native\" includes that \
         share; traced and the peers are compared with hyp, which has it too."
            .to_string()
    })
}

/// Exit status: 0 when every mode ran, 2 when some failed (their reasons
/// are in the table), an error when nothing could be measured.
pub fn run(args: BenchArgs) -> Result<ExitCode> {
    let plan = BenchPlan::new(args)?;
    fs::create_dir_all(&plan.out).with_context(|| format!("creating {}", plan.out.display()))?;
    let session = session::Private::new("bench")?;
    let result = collect(&plan);
    drop(session);
    let collected = result?;
    let tests: Vec<String> = plan.workloads.iter().map(|w| w.name.clone()).collect();
    let mut summary = Summary::new(tests, plan.modes.clone(), plan.runs, &collected.samples);
    summary.failed = collected.failed;
    let mut table = summary.table();
    for w in &collected.warnings {
        let _ = writeln!(table, "\nwarning: {w}");
    }
    if let Some(note) = icount_note(&plan) {
        let _ = writeln!(table, "\nnote: {note}");
    }
    let mut consoles = String::new();
    for entry in fs::read_dir(&plan.out)?.flatten() {
        if entry.file_name().to_string_lossy().starts_with("console-hyp") {
            consoles.push_str(&fs::read_to_string(entry.path()).unwrap_or_default());
        }
    }
    let costs = handler_costs(&consoles);
    if !costs.is_empty() {
        let _ = writeln!(
            table,
            "\nhypervisor probe handler time (its own counter histogram, log2 buckets):"
        );
        for (vm, (hits, median, p99)) in costs {
            let _ = writeln!(
                table,
                "  {vm:<6} {hits:>9} hits  median < {median:.1} us  p99 < {p99:.1} us"
            );
        }
    }
    print!("{table}");
    fs::write(plan.out.join("table.txt"), &table)?;
    fs::write(plan.out.join("samples.csv"), samples_csv(&collected.samples))?;
    fs::write(plan.out.join("summary.csv"), summary.csv())?;
    fs::write(plan.out.join("bench.svg"), summary.svg())?;
    println!(
        "wrote {} (table.txt, samples.csv, summary.csv, bench.svg)",
        plan.out.display()
    );
    if summary.failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "hv-trace: bench: {} mode(s) failed; the table has the others",
            summary.failed.len()
        );
        Ok(ExitCode::from(2))
    }
}

/// What the runs produced: samples, and the modes that failed (with why).
#[derive(Default)]
struct Collected {
    samples: Vec<Sample>,
    failed: BTreeMap<Mode, String>,
    /// What makes some scores doubtful (printed under the table).
    warnings: Vec<String>,
}

/// A booted system and what is needed to drive it.
struct System {
    running: Running,
    ctl: Control,
    sites: Option<Sites>,
    name: &'static str,
    /// Why this system's scores are doubtful, if they are.
    warning: Option<String>,
}

impl System {
    fn boot(hyp: bool, out: &Path, icount: Option<u8>) -> Result<Self> {
        let name = if hyp { "hyp" } else { "native" };
        match boot(hyp, icount) {
            Ok((running, ctl, sites, warning)) => Ok(System {
                running,
                ctl,
                sites,
                name,
                warning,
            }),
            Err(e) => {
                let kept = out.join(format!("console-{name}.log"));
                let _ = fs::copy(session::dir().join("console.log"), &kept);
                Err(e.context(format!("booting the system (its console: {})", kept.display())))
            }
        }
    }

    /// Stop QEMU, keeping its console as `console-<name><suffix>.log`.
    fn stop(self, out: &Path, suffix: &str) {
        let log = self.running.dir.join("console.log");
        drop(self.ctl);
        self.running.stop();
        let _ = fs::copy(&log, out.join(format!("console-{}{suffix}.log", self.name)));
    }
}

/// One mode's turn in one run: set it up, run every workload, take it down.
fn turn(sys: &mut System, plan: &BenchPlan, mode: Mode, run: u32, samples: &mut Vec<Sample>) -> Result<()> {
    let ctl = &mut sys.ctl;
    let running = &mut sys.running;
    enable(ctl, mode, sys.sites.as_ref())?;
    let stats = |ctl: &mut Control| -> Result<BTreeMap<String, u64>> {
        Ok(counters(&ctl.run(&format!("cat {HVTRACE}/stats"), T)?))
    };
    let before = if mode.hypervisor() { Some(stats(ctl)?) } else { None };
    for w in &plan.workloads {
        let s = measure(ctl, running, w, mode, run)?;
        eprintln!(
            "[bench] {:<8} {:<9} run {run}/{}: {:.1} -> score {:.2}{}",
            mode.name(),
            w.name,
            plan.runs,
            s.value,
            s.score,
            s.hits.map(|h| format!(", {h} hits")).unwrap_or_default()
        );
        samples.push(s);
    }
    if let (Some(before), Some(_)) = (before, mode.hit_source()) {
        let after = stats(ctl)?;
        let d = |k: &str| after.get(k).unwrap_or(&0).saturating_sub(*before.get(k).unwrap_or(&0));
        eprintln!(
            "[bench] {} run {run}: hypervisor counted probe hits {} (both OSes), records {}, drops {}, doorbell irqs {}; module drains {}",
            mode.name(),
            d("hyp_probe_hits"),
            d("hyp_records"),
            d("hyp_drops"),
            d("hyp_irqs"),
            d("drains")
        );
    }
    disable(ctl, mode)
}

/// Runs every (run, mode, workload). Each system boots once; a mode that
/// breaks its system (the guest stops answering, a setup is refused) is
/// reported as failed, the system rebooted and the other modes go on.
fn collect(plan: &BenchPlan) -> Result<Collected> {
    let mut c = Collected::default();
    for hyp in [false, true] {
        let modes: Vec<Mode> = plan.modes.iter().copied().filter(|m| m.hypervisor() == hyp).collect();
        if modes.is_empty() {
            continue;
        }
        let mut sys: Option<System> = None;
        for run in 1..=plan.runs {
            for &mode in &modes {
                if c.failed.contains_key(&mode) {
                    continue;
                }
                let s = match sys.as_mut() {
                    Some(s) => s,
                    None => {
                        let s = sys.insert(System::boot(hyp, &plan.out, plan.icount)?);
                        if let Some(w) = s.warning.as_ref().filter(|w| !c.warnings.contains(w)) {
                            c.warnings.push(w.clone());
                        }
                        s
                    }
                };
                if let Err(e) = turn(s, plan, mode, run, &mut c.samples) {
                    let why = format!("{e:#}");
                    eprintln!("[bench] the {} mode failed: {why}", mode.name());
                    c.samples.retain(|x| x.mode != mode);
                    c.failed.insert(mode, why);
                    if let Some(s) = sys.take() {
                        s.stop(&plan.out, &format!("-failed-{}", mode.name()));
                    }
                }
            }
        }
        if let Some(s) = sys.take() {
            s.stop(&plan.out, "");
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Result<BenchPlan> {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            a: BenchArgs,
        }
        let mut v = vec!["bench"];
        v.extend_from_slice(extra);
        BenchPlan::new(Cli::try_parse_from(v)?.a)
    }

    fn sample(test: &str, mode: Mode, run: u32, score: f64, hits: Option<u64>) -> Sample {
        Sample {
            test: test.into(),
            mode,
            run,
            value: score * 400.0,
            score,
            seconds: 2.0,
            hits,
        }
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        assert_eq!(median(&[f64::NAN, 5.0]), 5.0);
    }

    #[test]
    fn built_in_output_parses_and_scores_against_the_baseline() {
        let out = "context1: 2400 loops in 2.000 s: 1200.0 loops/s\n";
        let re = Regex::new(LOOPS_RE).unwrap();
        assert_eq!(parse_value(out, &re).unwrap(), 1200.0);
        assert_eq!(parse_elapsed(out), Some(2.0));
        let ctx = TESTS.iter().find(|t| t.name == "context1").unwrap();
        assert_eq!(1200.0 / ctx.baseline * 10.0, 3.0);
        let err = parse_value("segfault\n", &re).unwrap_err().to_string();
        assert!(err.contains("no match"), "{err}");
    }

    #[test]
    fn score_regex_takes_the_first_group_or_the_match() {
        let re = Regex::new(r"ops=(\d+)").unwrap();
        assert_eq!(parse_value("x ops=42 y", &re).unwrap(), 42.0);
        let re = Regex::new(r"\d+\.\d+").unwrap();
        assert_eq!(parse_value("took 1.50 s", &re).unwrap(), 1.5);
        let re = Regex::new(r"name=(\w+)").unwrap();
        assert!(parse_value("name=abc", &re)
            .unwrap_err()
            .to_string()
            .contains("not a number"));
    }

    #[test]
    fn plan_validates_names_and_pairs() {
        let p = args(&["--tests", "context1,pipe", "--modes", "traced,hyp"]).unwrap();
        assert_eq!(p.modes, vec![Mode::Hyp, Mode::Traced]);
        let p = args(&["--tests", "spawn", "--modes", "traced,records,probe"]).unwrap();
        assert_eq!(
            p.modes,
            vec![Mode::Probe, Mode::Records, Mode::Traced],
            "the data path's stages in order"
        );
        assert_eq!(p.workloads.len(), 1);
        let p = args(&["--tests", "context1,pipe", "--modes", "traced,hyp"]).unwrap();
        assert_eq!(p.workloads.len(), 2);
        assert_eq!(p.workloads[0].command, "/usr/bench/context1 2");
        let e = args(&["--tests", "context2"]).unwrap_err().to_string();
        assert!(e.contains("unknown test \"context2\"") && e.contains("context1"), "{e}");
        let e = args(&["--modes", "fast"]).unwrap_err().to_string();
        assert!(e.contains("unknown mode"), "{e}");
        let e = args(&["--cmd", "true", "--score-regex", "("]).unwrap_err();
        assert!(format!("{e:#}").contains("not a valid regular expression"), "{e:#}");
        assert!(args(&["--cmd", "true"])
            .unwrap_err()
            .to_string()
            .contains("--score-regex"));
        assert!(args(&["--score-regex", "x"]).is_err());
        assert!(args(&["--runs", "0"]).is_err());
        assert!(args(&["--seconds", "-1"]).is_err());
        let p = args(&["--cmd", "echo {seconds}", "--score-regex", "(\\d+)", "--seconds", "1"]).unwrap();
        assert_eq!(p.workloads.len(), 1);
        assert_eq!(p.workloads[0].command, "echo 1");
    }

    fn summary() -> Summary {
        let mut s = Vec::new();
        for (run, (n, h, t)) in [(10.0, 9.9, 7.0), (10.2, 10.0, 8.0), (9.8, 10.1, 7.5)]
            .into_iter()
            .enumerate()
        {
            let run = run as u32 + 1;
            s.push(sample("context1", Mode::Native, run, n, None));
            s.push(sample("context1", Mode::Hyp, run, h, None));
            s.push(sample("context1", Mode::Traced, run, t, Some(5000)));
        }
        Summary::new(
            vec!["context1".into()],
            vec![Mode::Native, Mode::Hyp, Mode::Traced],
            3,
            &s,
        )
    }

    #[test]
    fn summary_medians_spread_overheads_and_cost() {
        let s = summary();
        let t = s.cell("context1", Mode::Traced).unwrap();
        assert_eq!(t.score, 7.5);
        assert!((t.spread_pct - 1.0 / 7.5 * 100.0).abs() < 1e-9);
        assert_eq!(t.hits_per_s, Some(2500.0));
        assert!((overhead_pct(7.5, 10.0) - 25.0).abs() < 1e-12);
        // 25% of the time lost at 2500 hits/s: 100 us per hit.
        assert!((cost_per_hit_us(7.5, 10.0, 2500.0).unwrap() - 100.0).abs() < 1e-9);
        assert_eq!(cost_per_hit_us(7.5, 10.0, 0.0), None);
        let table = s.table();
        assert!(table.contains("context1"), "{table}");
        assert!(table.contains("+25.0% / +25.0%"), "{table}");
        assert!(table.contains("100.00 us"), "{table}");
        // A wide spread hides the difference.
        let mut wide = s.cell("context1", Mode::Traced).unwrap().clone();
        assert!(!within_noise(&wide, s.cell("context1", Mode::Hyp).unwrap()));
        wide.min = 5.0;
        wide.max = 10.0;
        assert!(within_noise(&wide, s.cell("context1", Mode::Hyp).unwrap()));
        let csv = s.csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(
            lines[3].starts_with("context1,traced,3,7.5000,7.0000,8.0000,"),
            "{}",
            lines[3]
        );
        assert!(
            lines[3].ends_with(",25.0000,25.0000,2500.0000,100.0000"),
            "{}",
            lines[3]
        );
        // The baseline modes have no overhead against themselves.
        assert!(lines[1].starts_with("context1,native,3,10.0000"), "{}", lines[1]);
        assert!(lines[1].contains(",,"), "{}", lines[1]);
    }

    #[test]
    fn svg_has_one_bar_per_cell_and_is_well_formed() {
        let svg = summary().svg();
        assert!(svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<title>").count(), 3);
        assert!(svg.contains("context1 traced: 75.0%"), "{svg}");
        assert!(svg.contains("relative to native"));
        // Tags balance (a cheap well-formedness check).
        assert_eq!(svg.matches('<').count(), svg.matches('>').count());
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
        assert_eq!(svg.matches("<title>").count(), svg.matches("</title>").count());
    }

    #[test]
    fn handler_costs_from_the_console() {
        let log = "[    0.0] arch_timer: cp15 timer(s) running at 62.50MHz (virt).\n\
[hyp I] VM linux: probe 1 at 0xffff8000803400e8 removed after 100 hits; handler cost in counter ticks min 84 median <250 p99 <2000 max 259490\n\
[hyp I] VM linux: probe 1 at 0xffff8000803400e8 removed after 300 hits; handler cost in counter ticks min 84 median <125 p99 <1000 max 9\n\
[hyp I] VM rtos: probe 2 at 0xffff000040105b30 removed after 165 hits; handler cost in counter ticks min 1414 median <4095 p99 <16383 max 26611\n";
        let c = handler_costs(log);
        let (hits, median, p99) = c["linux"];
        assert_eq!(hits, 400);
        // (100 × 4 us + 300 × 2 us) / 400
        assert!((median - 2.5).abs() < 1e-9, "{median}");
        assert!((p99 - 32.0).abs() < 1e-9, "{p99}");
        assert_eq!(c["rtos"].0, 165);
    }

    #[test]
    fn failed_modes_show_in_the_table() {
        let mut s = summary();
        s.modes.push(Mode::Kprobe);
        s.failed.insert(Mode::Kprobe, "the guest stopped answering".into());
        let t = s.table();
        assert!(t.contains("failed"), "{t}");
        assert!(t.contains("kprobe failed: the guest stopped answering"), "{t}");
    }

    #[test]
    fn icount_runs_that_compare_with_native_say_what_the_rtos_takes() {
        let plan = |modes: &str, icount: Option<u8>| {
            let mut v = vec!["--modes", modes];
            let n = icount.map(|n| n.to_string());
            if let Some(n) = &n {
                v.extend(["--icount", n.as_str()]);
            }
            args(&v).unwrap()
        };
        let note = icount_note(&plan("native,hyp,traced", Some(3))).unwrap();
        assert!(note.contains("RTOS's own tasks"), "{note}");
        assert_eq!(icount_note(&plan("native,hyp,traced", None)), None);
        assert_eq!(icount_note(&plan("hyp,traced", Some(3))), None);
        assert_eq!(icount_note(&plan("native", Some(3))), None);
    }

    #[test]
    fn an_unready_crng_is_a_warning() {
        assert_eq!(crng_warning("hyp", "256\n"), None);
        let w = crng_warning("hyp", "66\n").unwrap();
        assert!(w.starts_with("hyp: ") && w.contains("entropy_avail 66 of 256"), "{w}");
        let w = crng_warning("native", "cat: can't open").unwrap();
        assert!(w.contains("\"cat: can't open\""), "{w}");
    }

    #[test]
    fn guest_counters_parse() {
        let list = "vm=0 id=3 addr=0xffff8000803400e8 kind=plain hits=120 owner=1\nvm=1 id=1 addr=0x40001000 kind=switch hits=7 owner=1\n";
        assert_eq!(probe_hits(list, 0), 120);
        assert_eq!(probe_hits(list, 1), 7);
        let stats = "entries: 55\noverrun: 10\ncommit overrun: 0\n";
        assert_eq!(field(stats, "entries:"), Some(55));
        assert_eq!(field(stats, "overrun:"), Some(10));
        let c = counters("hyp_probe_hits 12\nregion 0x1 2\n");
        assert_eq!(c.get("hyp_probe_hits"), Some(&12));
    }
}
