//! A soak: Linux under fork, pipe and I/O storms on every one of its CPUs,
//! probes in both OSes, for as long as asked, and the figures that say
//! whether the tracer held: every hit a record or a counted drop, the RTOS's
//! own overrun counter against a stretch of the same load untraced, the
//! guest's memory over time.

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::target::artifacts::Artifacts;
use crate::target::control::Control;
use crate::target::hvtrace;
use crate::target::probe::{Site, Vm, RTOS_SWITCHES};
use crate::target::session;

/// Where the storms' pids are kept in the guest.
const PIDS: &str = "/tmp/soak.pids";
const T: Duration = Duration::from_secs(60);

/// One fork, one pipe and one I/O storm per Linux CPU, in the background.
fn storms_command() -> String {
    format!(
        "rm -f {PIDS}; for c in $(seq $(nproc)); do \
         (while :; do /bin/true; done) > /dev/null 2>&1 & echo $! >> {PIDS}; \
         (while :; do dd if=/dev/zero bs=64k count=256 2>/dev/null | cat > /dev/null; done) > /dev/null 2>&1 & echo $! >> {PIDS}; \
         (while :; do dd if=/dev/zero of=/tmp/soak.$c bs=64k count=64 2>/dev/null; cat /tmp/soak.$c > /dev/null; rm -f /tmp/soak.$c; done) > /dev/null 2>&1 & echo $! >> {PIDS}; \
         done; wc -l < {PIDS}"
    )
}

/// Ends the storms (their loops first, then what they started).
const STOP_STORMS: &str = "for p in $(cat /tmp/soak.pids 2>/dev/null); do kill $p 2>/dev/null; done; \
     sleep 1; killall dd cat true 2>/dev/null; rm -f /tmp/soak.pids /tmp/soak.*; true";

/// The RTOS's overruns so far: the sum over its tasks of the count in each
/// task's latest report line on the console (`… N overruns`).
pub fn rtos_overruns(console: &str) -> Option<u64> {
    let mut latest: BTreeMap<&str, u64> = BTreeMap::new();
    for line in console.lines().filter(|l| l.starts_with("[rtos]")) {
        let Some(body) = line.trim_end().strip_suffix(" overruns") else {
            continue;
        };
        let (task, n) = (body.split(" prio ").next()?, body.rsplit(' ').next()?);
        if let Ok(n) = n.parse() {
            latest.insert(task.rsplit("] ").next().unwrap_or(task), n);
        }
    }
    (!latest.is_empty()).then(|| latest.values().sum())
}

/// One look at the guest: the counters and its memory.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Seconds since the traced stretch began.
    pub at_s: f64,
    /// `stats` counters.
    pub stats: BTreeMap<String, u64>,
    /// MemAvailable, kB.
    pub mem_available_kb: u64,
    /// Slab, kB.
    pub slab_kb: u64,
}

fn sample(ctl: &mut Control, at_s: f64) -> Result<Sample> {
    let stats = hvtrace::stats(ctl)?;
    let mem = ctl.run("cat /proc/meminfo", T)?;
    let kb = |key: &str| {
        mem.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    Ok(Sample {
        at_s,
        stats,
        mem_available_kb: kb("MemAvailable"),
        slab_kb: kb("Slab"),
    })
}

/// What a soak found.
#[derive(Debug, Clone, Default)]
pub struct Soak {
    /// Storm processes (3 per Linux CPU).
    pub storms: u64,
    /// Minutes of the untraced stretch and the RTOS's overruns in it.
    pub baseline: (f64, u64),
    /// Minutes traced and the RTOS's overruns meanwhile.
    pub traced: (f64, u64),
    /// The probes (label, VM).
    pub probes: Vec<String>,
    /// Samples while traced, the last one after tracing was off and drained.
    pub samples: Vec<Sample>,
}

impl Soak {
    fn delta(&self, key: &str) -> u64 {
        let first = self
            .samples
            .first()
            .and_then(|s| s.stats.get(key))
            .copied()
            .unwrap_or(0);
        let last = self.samples.last().and_then(|s| s.stats.get(key)).copied().unwrap_or(0);
        last.saturating_sub(first)
    }

    /// Every hit became a record or a counted drop (the hypervisor's own
    /// clock-sync records aside), and every record written was delivered.
    pub fn accounted(&self) -> bool {
        let (hits, records, drops) = (
            self.delta("hyp_probe_hits"),
            self.delta("hyp_records"),
            self.delta("hyp_drops"),
        );
        let syncs = self.delta("hyp_clock_sync_records");
        records + drops == hits + syncs + self.delta("rtos_irq") && self.delta("records") == records
    }

    /// The figures, as the README carries them.
    pub fn render(&self) -> String {
        let d = |k: &str| self.delta(k);
        let mem: Vec<u64> = self.samples.iter().map(|s| s.mem_available_kb).collect();
        let slab: Vec<u64> = self.samples.iter().map(|s| s.slab_kb).collect();
        let (lo, hi) = (
            mem.iter().min().copied().unwrap_or(0),
            mem.iter().max().copied().unwrap_or(0),
        );
        let mut t = String::new();
        t += &format!(
            "soak: {} storm processes in Linux (fork, pipe, I/O per CPU); probes {}\n",
            self.storms,
            self.probes.join(", ")
        );
        t += &format!(
            "traced {:.1} min: probe hits {}, records {}, drops {} (rings' headers {}, sequence gaps {}), delivered {}: {}\n",
            self.traced.0,
            d("hyp_probe_hits"),
            d("hyp_records"),
            d("hyp_drops"),
            d("ring_drops"),
            d("seq_gaps"),
            d("records"),
            if self.accounted() {
                "every hit a record or a counted drop"
            } else {
                "NOT ACCOUNTED FOR"
            }
        );
        t += &format!(
            "RTOS overruns: {} in {:.1} min traced, {} in {:.1} min of the same load untraced\n",
            self.traced.1, self.traced.0, self.baseline.1, self.baseline.0
        );
        t += &format!(
            "guest memory: MemAvailable {} → {} kB (min {lo}, max {hi}), Slab {} → {} kB over {} samples\n",
            mem.first().copied().unwrap_or(0),
            mem.last().copied().unwrap_or(0),
            slab.first().copied().unwrap_or(0),
            slab.last().copied().unwrap_or(0),
            self.samples.len()
        );
        t
    }
}

/// What to soak: the running system in `dir` whose images are `images`,
/// `baseline` minutes untraced, then `minutes` traced.
pub struct Plan<'a> {
    /// The session directory (its console log has the RTOS's reports).
    pub dir: &'a Path,
    /// The images it booted (probe sites).
    pub images: &'a Artifacts,
    /// Minutes traced.
    pub minutes: f64,
    /// Minutes of the same load untraced first.
    pub baseline: f64,
}

/// Runs a soak: the storms, the untraced stretch, then probes on the
/// RTOS's switches and ticks and on Linux's `__switch_to` while recording.
/// `progress` gets a line every 30 s.
pub fn soak(ctl: &mut Control, plan: &Plan, progress: &mut dyn FnMut(&str)) -> Result<Soak> {
    let mut out = Soak {
        storms: ctl
            .run(&storms_command(), T)
            .context("starting the storms")?
            .trim()
            .parse()
            .unwrap_or(0),
        ..Soak::default()
    };
    let result = soak_with_storms(ctl, plan, progress, &mut out);
    let _ = ctl.run(STOP_STORMS, T);
    result.map(|_| out)
}

fn overruns_now(dir: &Path) -> Result<u64> {
    rtos_overruns(&session::console_log(dir)).context("no RTOS report on the console: is the paper app running?")
}

fn soak_with_storms(ctl: &mut Control, plan: &Plan, progress: &mut dyn FnMut(&str), out: &mut Soak) -> Result<()> {
    let Plan {
        dir,
        images,
        minutes,
        baseline,
    } = *plan;
    // Untraced, the same load.
    let o0 = overruns_now(dir)?;
    wait(ctl, baseline, &mut |s, _| progress(&format!("untraced, {s:.0} s")));
    let o1 = overruns_now(dir)?;
    out.baseline = (baseline, o1.saturating_sub(o0));
    // Recording on before the probes go in and after they are out, so
    // that every hit in between is a record or a drop (hits count whether
    // recording is on or not); the counters are read while nothing hits.
    hvtrace::enable(ctl, true)?;
    let started = Instant::now();
    out.samples.push(sample(ctl, 0.0)?);
    let mut ids = Vec::new();
    for (name, vm) in RTOS_SWITCHES
        .iter()
        .map(|n| (*n, Vm::Rtos))
        .chain([("OSTimeTick", Vm::Rtos), ("__switch_to", Vm::Linux)])
    {
        let site = Site::resolve(images, name, vm, None)?;
        ids.push((vm, hvtrace::add(ctl, &site)?));
        out.probes.push(format!("{name} ({vm:?})"));
    }
    let o2 = overruns_now(dir)?;
    let samples = &mut out.samples;
    wait(ctl, minutes, &mut |s, ctl| {
        if let Ok(x) = sample(ctl, s) {
            progress(&format!(
                "traced, {s:.0} s: {} hits, {} drops, MemAvailable {} kB",
                x.stats.get("hyp_probe_hits").copied().unwrap_or(0),
                x.stats.get("hyp_drops").copied().unwrap_or(0),
                x.mem_available_kb
            ));
            samples.push(x);
        }
    });
    let o3 = overruns_now(dir)?;
    for (vm, id) in ids.into_iter().rev() {
        hvtrace::remove(ctl, vm.id(), id)?;
    }
    // The rings drained (the module's tick drains what no doorbell asked for).
    std::thread::sleep(Duration::from_secs(2));
    out.samples.push(sample(ctl, started.elapsed().as_secs_f64())?);
    hvtrace::enable(ctl, false)?;
    out.traced = (minutes, o3.saturating_sub(o2));
    Ok(())
}

/// Waits `minutes`, calling `every` every 30 s (seconds so far, the control channel).
fn wait(ctl: &mut Control, minutes: f64, every: &mut dyn FnMut(f64, &mut Control)) {
    let start = Instant::now();
    let total = Duration::from_secs_f64(minutes * 60.0);
    let mut next = Duration::from_secs(30);
    while start.elapsed() < total {
        std::thread::sleep(Duration::from_millis(500).min(total.saturating_sub(start.elapsed())));
        if start.elapsed() >= next {
            every(start.elapsed().as_secs_f64(), ctl);
            next += Duration::from_secs(30);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overruns_are_the_sum_of_each_tasks_latest_count() {
        let console = "[rtos] [  1000 ms] RTOS-Task1 prio 10: 20 jobs, last job 1000 us, 0 overruns\n\
                       [rtos] [  1000 ms] RTOS-Task4 prio 13: 20 jobs, last job 8000 us, 1 overruns\n\
                       [hyp I] something else\n\
                       [rtos] [  2000 ms] RTOS-Task1 prio 10: 40 jobs, last job 1000 us, 2 overruns\n\
                       [rtos] [  2000 ms] RTOS-Task4 prio 13: 40 jobs, last job 8000 us, 3 overruns\r\n";
        assert_eq!(rtos_overruns(console), Some(5));
        assert_eq!(rtos_overruns("[hyp I] nothing"), None);
    }
}
