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
//!
//! The pieces: [`plan`] (workloads, modes, the validated plan), [`modes`]
//! (setting a mode up and down in the guest), [`summary`] (medians, tables,
//! CSV, chart); this file boots the systems and takes the turns.

pub mod modes;
pub mod plan;
pub mod summary;

pub use modes::Sites;
pub use plan::{crng_warning, parse_elapsed, parse_value, BenchArgs, BenchPlan, Mode, Workload, TESTS};
pub use summary::{handler_costs, samples_csv, Sample, Summary};

use crate::target::artifacts;
use crate::target::boot;
use crate::target::control::Control;
use crate::target::hvtrace;
use crate::target::qemu;
use crate::target::session::{self, Running};
use crate::target::system::{self, Plan};
use anyhow::{ensure, Context, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use trace_convert::output::write_atomically;

const T: Duration = Duration::from_secs(20);

fn measure(ctl: &mut Control, running: &mut Running, w: &Workload, mode: Mode, run: u32) -> Result<Sample> {
    // The ftrace counters restart with an empty buffer.
    if mode == Mode::Ftrace {
        modes::clear_trace(ctl)?;
    }
    let before = modes::hit_counter(ctl, mode)?;
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
    let after = modes::hit_counter(ctl, mode)?;
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
            let initrd = artifacts::build_rootfs(None, &built["bench"], &built["agents"])?;
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
        machine.icount(n);
    }
    let (running, mut ctl) = boot::boot(&machine, None, what, boot::Pace::Normal)?;
    let missing = ctl.exec("ls /usr/bench/context1", T)?;
    ensure!(
        missing.status == 0,
        "the guest has no /usr/bench: the initramfs was built without the benchmarks"
    );
    let entropy = ctl.exec("cat /proc/sys/kernel/random/entropy_avail", T)?.text;
    let warning = crng_warning(if hyp { "hyp" } else { "native" }, &entropy);
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
pub fn run(plan: BenchPlan) -> Result<ExitCode> {
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
    // Each file complete or not at all.
    for (name, text) in [
        ("table.txt", table),
        ("samples.csv", samples_csv(&collected.samples)),
        ("summary.csv", summary.csv()),
        ("bench.svg", summary.svg()),
    ] {
        write_atomically(&plan.out.join(name), text.as_bytes())?;
    }
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
    modes::enable(ctl, mode, sys.sites.as_ref())?;
    let stats = |ctl: &mut Control| -> Result<BTreeMap<String, u64>> { hvtrace::stats(ctl) };
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
    modes::disable(ctl, mode)
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
    use crate::measure::bench::plan::LOOPS_RE;
    use crate::measure::bench::summary::*;
    use regex::Regex;

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
        let p = args(&["--tests", "spawn", "--modes", "kprobe,traced-linux,hyp"]).unwrap();
        assert_eq!(
            p.modes,
            vec![Mode::Hyp, Mode::TracedLinux, Mode::Kprobe],
            "Linux traced alone, beside its peer"
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
}
