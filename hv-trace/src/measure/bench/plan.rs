//! What a bench run is made of: the built-in workloads and their UnixBench
//! baselines, the modes, the validated plan, and reading a workload's score
//! from its output.

use anyhow::{bail, ensure, Context, Result};
use regex::Regex;
use std::path::PathBuf;
use std::time::Duration;

/// How the built-in workloads report: `<test>: N loops in T s: R loops/s`.
pub(crate) const LOOPS_RE: &str = r"([0-9]+(?:\.[0-9]+)?) loops/s";
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
    /// Traced with Linux's probe only, the RTOS untraced: what the kprobe
    /// peer does. Under `--icount` both VMs' cores share one instruction
    /// clock, so the RTOS's own traced switches would count against Linux.
    TracedLinux,
    Ftrace,
    Kprobe,
}

impl Mode {
    pub const ALL: [Mode; 8] = [
        Mode::Native,
        Mode::Hyp,
        Mode::Probe,
        Mode::Records,
        Mode::Traced,
        Mode::TracedLinux,
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
            Mode::TracedLinux => "traced-linux",
            Mode::Ftrace => "ftrace",
            Mode::Kprobe => "kprobe",
        }
    }

    pub fn parse(s: &str) -> Result<Mode> {
        Mode::ALL.into_iter().find(|m| m.name() == s).with_context(|| {
            let names: Vec<_> = Mode::ALL.iter().map(|m| m.name()).collect();
            format!("unknown mode {s:?}; the modes are {}", names.join(", "))
        })
    }

    /// Whether the mode runs under the hypervisor.
    pub fn hypervisor(self) -> bool {
        self != Mode::Native
    }

    /// What counts as a hit of the mode's instrumentation.
    pub fn hit_source(self) -> Option<&'static str> {
        match self {
            Mode::Probe | Mode::Records | Mode::Traced | Mode::TracedLinux => Some("probe hits"),
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
    /// Comma-separated modes: native, hyp, probe, records, traced, traced-linux (Linux's
    /// probe only, as the kprobe peer), ftrace, kprobe.
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
pub fn crng_warning(system: &str, entropy_avail: &str) -> Option<String> {
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
pub fn parse_elapsed(output: &str) -> Option<f64> {
    let re = Regex::new(r"loops in ([0-9.]+) s").expect("a valid pattern");
    re.captures(output)?.get(1)?.as_str().parse().ok()
}
