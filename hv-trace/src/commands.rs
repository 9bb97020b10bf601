//! The CLI's commands that drive a running system: run, probe, record, demo.

use crate::session::{self, Control, Running};
use crate::system::{self, Plan};
use crate::{artifacts, qemu, ProbeKind, Vm};
use anyhow::{bail, Context, Result};
use guest_probe::a64::{self, Class};
use guest_probe::symbols::SymbolTable;
use std::fs;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub(crate) const SYSFS: &str = "/sys/kernel/hvtrace";
/// Time Linux needs from QEMU start to its control shell, with margin for
/// a loaded 2-core machine under TCG.
pub(crate) const BOOT_TIMEOUT: Duration = Duration::from_secs(180);

#[derive(clap::Args)]
pub struct RunArgs {
    /// Stop QEMU after this many seconds (exit 0 if the system booted).
    #[arg(long)]
    duration: Option<f64>,
    /// Boot only the RTOS, bare at EL1 (no hypervisor).
    #[arg(long)]
    rtos_only: bool,
    /// Build the RTOS with its ground-truth context-switch log.
    #[arg(long)]
    ground_truth: bool,
    /// Run /etc/hvtrace/NAME in the Linux guest once it has booted (e.g. `poweroff`).
    #[arg(long, value_name = "NAME")]
    linux_script: Option<String>,
    /// Trace ring capacity as a power of two (records per core), e.g. 6 for 64.
    #[arg(long, value_name = "LOG2")]
    ring_order: Option<u8>,
    /// Cores: 2 (Linux on CPU0, RTOS on CPU1) or 4 (Linux on CPU0-2, RTOS on CPU3).
    #[arg(long, default_value_t = 2)]
    cores: u8,
    /// Boot this RTOS ELF instead of building ours (linked to run at IPA
    /// 0x4010_0000 in the RTOS VM's 16 MiB at 0x4000_0000).
    #[arg(long, value_name = "ELF")]
    rtos_elf: Option<PathBuf>,
}

fn duration_arg(d: Option<f64>) -> Result<Option<Duration>> {
    match d {
        Some(d) if !(d.is_finite() && d > 0.0) => bail!("--duration must be a positive number of seconds, not {d}"),
        Some(d) => Ok(Some(Duration::from_secs_f64(d))),
        None => Ok(None),
    }
}

pub fn run(args: RunArgs) -> Result<()> {
    let limit = duration_arg(args.duration)?;
    let opts = artifacts::Options {
        rtos_app: None,
        ground_truth: args.ground_truth,
    };
    if args.rtos_only {
        let (elf, _) = {
            let _lock = artifacts::BuildLock::acquire()?;
            artifacts::build_rtos(&opts)?
        };
        let m = qemu::Machine {
            cpus: 1,
            memory_mib: 512,
            virtualization: false,
            kernel: elf,
            blobs: vec![],
            extra_args: vec![],
        };
        let outcome = qemu::run_console(&m, limit, "uC/OS-II", &mut std::io::stdout()).context("hv-trace run")?;
        report_outcome(outcome, limit);
        return Ok(());
    }
    let plan = Plan {
        opts,
        linux_script: args.linux_script,
        ring_order: args.ring_order,
        session: Some(session::dir()),
        rtos_elf: args.rtos_elf,
        cores: args.cores,
    };
    let (machine, built) = system::machine(&plan)?;
    let mut running = Running::start(&machine, Box::new(std::io::stdout()))?;
    system::save_artifacts(&running.dir, &built)?;
    let started = Instant::now();
    let outcome = loop {
        if let Some(code) = running.wait_exit(Duration::from_millis(100)) {
            break qemu::Outcome::Exited(code);
        }
        if limit.is_some_and(|l| started.elapsed() >= l) {
            break qemu::Outcome::TimedOut;
        }
    };
    let booted = session::console_log(&running.dir).contains("hv-trace hypervisor");
    running.stop();
    match (outcome, booted) {
        (qemu::Outcome::Exited(code), _) if code != 0 => bail!("QEMU exited with status {code}"),
        (_, false) => bail!("the system did not boot: no hypervisor banner on the console"),
        (o, true) => report_outcome(o, limit),
    }
    Ok(())
}

fn report_outcome(outcome: qemu::Outcome, limit: Option<Duration>) {
    match outcome {
        qemu::Outcome::Exited(_) => eprintln!("[hv-trace] the system powered off"),
        qemu::Outcome::TimedOut => {
            eprintln!(
                "[hv-trace] stopped after {:.1} s",
                limit.unwrap_or_default().as_secs_f64()
            )
        }
    }
}

/// Boot the whole system `runs` times and report the wall time from QEMU's
/// start to the RTOS's first task line and to Linux's init.
pub fn boot_time(runs: u32) -> Result<()> {
    anyhow::ensure!(runs > 0, "--runs must be at least 1");
    let plan = Plan {
        session: Some(session::dir()),
        ..Plan::default()
    };
    let (machine, _) = system::machine(&plan)?;
    let mut rtos = Vec::new();
    let mut linux = Vec::new();
    for run in 1..=runs {
        let started = Instant::now();
        let running = Running::start(&machine, Box::new(std::io::sink()))?;
        let (mut t_first, mut t_rtos, mut t_linux) = (None, None, None);
        while (t_rtos.is_none() || t_linux.is_none()) && started.elapsed() < BOOT_TIMEOUT {
            let log = session::console_log(&running.dir);
            if t_first.is_none() && log.lines().any(|l| l.starts_with("[rtos] ")) {
                t_first = Some(started.elapsed());
            }
            if t_rtos.is_none() && log.lines().any(|l| l.starts_with("[rtos] ") && l.contains("RTOS-Task")) {
                t_rtos = Some(started.elapsed());
            }
            if t_linux.is_none() && log.contains("hv-trace linux: init done") {
                t_linux = Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        running.stop();
        let (r, l) = (
            t_rtos.context("the RTOS printed no task output")?,
            t_linux.context("Linux did not reach init")?,
        );
        println!(
            "boot {run}: RTOS first console line {:.3} s, first task output {:.3} s, Linux init {:.3} s",
            t_first.unwrap_or(r).as_secs_f64(),
            r.as_secs_f64(),
            l.as_secs_f64()
        );
        rtos.push(r.as_secs_f64());
        linux.push(l.as_secs_f64());
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "median over {runs}: RTOS first task output {:.3} s, Linux init {:.3} s (target: Linux init <= 3 s)",
        median(&mut rtos),
        median(&mut linux)
    );
    Ok(())
}

// --- probes -------------------------------------------------------------------------

/// A probe target resolved against the VM's image.
pub(crate) struct Target {
    addr: u64,
    label: String,
    kind: ProbeKind,
}

pub(crate) fn resolve(target: &str, vm: Vm, kind: Option<ProbeKind>) -> Result<Target> {
    let built = system::load_artifacts(&session::dir())?;
    let image = match vm {
        Vm::Rtos => built.get("rtos"),
        Vm::Linux => built.get("vmlinux"),
    }
    .context("the running system's image is unknown")?;
    let bytes = fs::read(image).with_context(|| format!("reading {}", image.display()))?;
    let table = SymbolTable::from_elf(&bytes).with_context(|| format!("reading symbols of {}", image.display()))?;
    let r = table
        .resolve(target)
        .with_context(|| format!("probe target {target:?} in {}", image.display()))?;
    if let Some(insn) = r.insn {
        if let Class::Refused(why) = a64::classify(insn) {
            bail!(
                "probe target {target:?} ({:#x}) is unsafe: {why} (instruction {insn:#010x}); pick another site",
                r.addr
            );
        }
    }
    let label = match &r.symbol {
        Some((name, 0)) => name.clone(),
        Some((name, off)) => format!("{name}+{off:#x}"),
        None => format!("{:#x}", r.addr),
    };
    const SWITCH_SITES: [&str; 2] = ["OSCtxSw", "OSIntCtxSw"];
    let kind = kind.unwrap_or(if vm == Vm::Rtos && SWITCH_SITES.contains(&label.as_str()) {
        ProbeKind::Switch
    } else {
        ProbeKind::Plain
    });
    Ok(Target {
        addr: r.addr,
        label,
        kind,
    })
}

/// Insert a probe through the module's sysfs; its id.
pub(crate) fn add_probe(ctl: &mut Control, vm: Vm, t: &Target) -> Result<u64> {
    let kind = if t.kind == ProbeKind::Switch { " switch" } else { "" };
    let out = ctl.exec(
        &format!("echo 'add {} {:x}{kind}' > {SYSFS}/probes", vm.id(), t.addr),
        Duration::from_secs(10),
    )?;
    if out.status != 0 {
        let why = ctl.exec("dmesg | grep -i hvtrace | tail -n 2", Duration::from_secs(5))?;
        bail!(
            "the system refused a probe at {} ({:#x}): {}\n{}",
            t.label,
            t.addr,
            out.text.trim(),
            why.text.trim()
        );
    }
    find_probe_id(ctl, vm, t.addr)?.context("the probe was added but does not appear in the probe list")
}

/// The id of the probe at `addr` in `vm`, from the module's probe list
/// (lines `vm=<vm> id=<id> addr=<hex> kind=<kind> hits=<n> ...`).
fn find_probe_id(ctl: &mut Control, vm: Vm, addr: u64) -> Result<Option<u64>> {
    let list = ctl.run(&format!("cat {SYSFS}/probes"), Duration::from_secs(10))?;
    for line in list.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let has_vm = fields
            .iter()
            .any(|f| *f == vm.id().to_string() || *f == format!("vm={}", vm.id()));
        let has_addr = fields.iter().any(|f| {
            let f = f.trim_start_matches("addr=").trim_start_matches("0x");
            u64::from_str_radix(f, 16).ok() == Some(addr)
        });
        if has_vm && has_addr {
            let id = fields
                .iter()
                .find_map(|f| f.strip_prefix("id="))
                .and_then(|f| f.parse().ok());
            return Ok(id);
        }
    }
    Ok(None)
}

pub fn probe_add(target: &str, vm: Vm, kind: Option<ProbeKind>) -> Result<()> {
    let t = resolve(target, vm, kind)?;
    let mut ctl = Control::connect(&session::dir())?;
    let id = add_probe(&mut ctl, vm, &t)?;
    println!("probe {id}: {} ({:#x}) in {:?}, {:?}", t.label, t.addr, vm, t.kind);
    Ok(())
}

pub fn probe_remove(target: &str, vm: Vm) -> Result<()> {
    let mut ctl = Control::connect(&session::dir())?;
    let id = match target.parse::<u64>() {
        Ok(id) => id,
        Err(_) => {
            let t = resolve(target, vm, None)?;
            find_probe_id(&mut ctl, vm, t.addr)?.with_context(|| format!("no probe at {} in {vm:?}", t.label))?
        }
    };
    let out = ctl.exec(
        &format!("echo 'remove {} {id}' > {SYSFS}/probes", vm.id()),
        Duration::from_secs(10),
    )?;
    if out.status != 0 {
        bail!("the system refused to remove probe {id}: {}", out.text.trim());
    }
    println!("probe {id} removed");
    Ok(())
}

pub fn probe_list() -> Result<()> {
    let mut ctl = Control::connect(&session::dir())?;
    print!("{}", ctl.run(&format!("cat {SYSFS}/probes"), Duration::from_secs(10))?);
    Ok(())
}

// --- recording ------------------------------------------------------------------------

/// Record `duration` seconds with the real trace-cmd in the guest (hvtrace
/// and scheduler events), optionally with a shell `load` running meanwhile;
/// brings the file home as `out/guest.dat`.
pub fn record(ctl: &mut Control, duration: f64, out: &Path, load: Option<&str>) -> Result<PathBuf> {
    anyhow::ensure!(
        duration.is_finite() && duration > 0.0,
        "--duration must be a positive number of seconds"
    );
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    ctl.run(&format!("echo 1 > {SYSFS}/enable"), Duration::from_secs(10))?;
    let load = load.map(|l| format!("( {l} ) & LOAD=$!; ")).unwrap_or_default();
    let stop_load = if load.is_empty() {
        ""
    } else {
        "; kill $LOAD 2>/dev/null; wait 2>/dev/null; true"
    };
    let cmd = format!(
        "{load}trace-cmd record -q -e hvtrace -e sched:sched_switch -e sched:sched_wakeup -o /tmp/guest.dat sleep {duration}{stop_load}"
    );
    let limit = Duration::from_secs_f64(duration) + Duration::from_secs(120);
    let step = crate::progress::Step::start(format!("recording {duration} s in the guest with trace-cmd"));
    ctl.run(&cmd, limit)?;
    step.finish("done");
    let step = crate::progress::Step::start("bringing guest.dat home");
    let bytes = ctl.fetch("/tmp/guest.dat", Duration::from_secs(300))?;
    let path = out.join("guest.dat");
    fs::write(&path, &bytes)?;
    step.finish(&format!("{} KiB", bytes.len() / 1024));
    Ok(path)
}

/// What a user wants to know after a recording: tasks per OS, events,
/// drops, CPU share per task.
pub fn summarize(merged: &Path, module_stats: &str) -> Result<()> {
    let trace = trace_convert::Trace::open(merged).with_context(|| format!("reading {}", merged.display()))?;
    let (info, stats) = trace_convert::stats::collect(trace.meta(), trace.events())?;
    let span = info.span.map_or(0, |(a, b)| b.saturating_sub(a)).max(1);
    println!("== {} ==", merged.display());
    println!(
        "{} events on {} CPUs over {:.3} s; dropped: {} (trace) / module: {}",
        info.events,
        info.cpus,
        span as f64 / 1e9,
        info.dropped,
        module_stats
            .lines()
            .find(|l| l.contains("drops"))
            .unwrap_or("n/a")
            .trim()
    );
    let types: Vec<String> = info.per_type.iter().map(|(t, n)| format!("{t} {n}")).collect();
    println!("events: {}", types.join(", "));
    for (os, rtos) in [("RTOS (CPU1)", true), ("Linux (CPU0)", false)] {
        // Linux tasks come and go: group them by name.
        let mut by_name: std::collections::BTreeMap<&str, (u64, u64, u64)> = Default::default();
        for (&pid, t) in &stats.tasks {
            if (pid >= trace_convert::merge::RTOS_PID_BASE) != rtos || pid == 0 {
                continue;
            }
            let e = by_name.entry(t.comm.as_str()).or_default();
            e.0 += t.cpu_time;
            e.1 += t.runs.n;
            e.2 += 1;
        }
        let mut rows: Vec<_> = by_name.into_iter().collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.1 .0));
        println!("{os}: {} tasks", rows.iter().map(|r| r.1 .2).sum::<u64>());
        println!("  {:<18} {:>8} {:>7} {:>12}", "task", "CPU %", "runs", "avg run us");
        for (name, (cpu, runs, _)) in rows.iter().take(10) {
            let avg = if *runs == 0 {
                0.0
            } else {
                *cpu as f64 / *runs as f64 / 1e3
            };
            println!(
                "  {:<18} {:>7.2}% {:>7} {:>12.1}",
                name,
                100.0 * *cpu as f64 / span as f64,
                runs,
                avg
            );
        }
    }
    Ok(())
}

/// How long after a probe hit its record became an ftrace event: the
/// event's ftrace time stamp minus the hit's counter time on the ftrace clock
/// (from the module's clock_sync pairs, least squares).
pub fn injection_latency(guest: &Path) -> Result<()> {
    let trace = trace_convert::Trace::open(guest)?;
    let mut sync = Vec::new();
    let mut hits = Vec::new();
    for e in trace.events() {
        let e = e?;
        match e.name() {
            "clock_sync" => {
                if let (Some(c), Some(ns)) = (e.int("counter"), e.int("trace_clock_ns")) {
                    sync.push((c as f64, ns as f64));
                }
            }
            "rtos_switch" | "rtos_probe" => {
                if let Some(c) = e.int("ts_counter") {
                    hits.push((c as f64, e.ts_ns as f64));
                }
            }
            _ => {}
        }
    }
    anyhow::ensure!(
        sync.len() >= 2 && !hits.is_empty(),
        "needs clock_sync pairs and probe hits"
    );
    let n = sync.len() as f64;
    let (mx, my) = (
        sync.iter().map(|p| p.0).sum::<f64>() / n,
        sync.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxy: f64 = sync.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = sync.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    let slope = sxy / sxx;
    let mut lat: Vec<f64> = hits.iter().map(|(c, ts)| ts - (my + slope * (c - mx))).collect();
    lat.sort_by(f64::total_cmp);
    let q = |f: f64| lat[((lat.len() - 1) as f64 * f) as usize] / 1e3;
    println!(
        "probe hit -> visible in ftrace: min {:.0} us, median {:.0} us, p99 {:.0} us ({} hits)",
        q(0.0),
        q(0.5),
        q(0.99),
        lat.len()
    );
    Ok(())
}

// --- the demo --------------------------------------------------------------------------

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Seconds to record.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Output directory (guest.dat, merged.dat, merged.txt).
    #[arg(long, default_value = "hv-trace-demo")]
    out: PathBuf,
    /// Do not open the viewer at the end.
    #[arg(long)]
    no_view: bool,
}

/// A Linux load for the demo: a few short-lived processes and sleepers, so
/// the Linux CPU shows real scheduling next to the RTOS.
const DEMO_LOAD: &str = "while :; do dd if=/dev/zero of=/dev/null bs=4k count=200 2>/dev/null; usleep 20000; done";

pub fn demo(args: DemoArgs) -> Result<()> {
    anyhow::ensure!(
        args.duration.is_finite() && args.duration > 0.0,
        "--duration must be a positive number of seconds"
    );
    let plan = Plan {
        session: Some(session::dir()),
        ..Plan::default()
    };
    let (machine, built) = system::machine(&plan)?;
    let step = crate::progress::Step::start("booting hypervisor + Linux + RTOS");
    let mut running = Running::start(&machine, Box::new(std::io::sink()))?;
    system::save_artifacts(&running.dir, &built)?;
    running.wait_for("init done", BOOT_TIMEOUT)?;
    let mut ctl = session::wait_control(&running.dir, Duration::from_secs(60))?;
    step.finish("up");
    for site in ["OSCtxSw", "OSIntCtxSw"] {
        let t = resolve(site, Vm::Rtos, None)?;
        let id = add_probe(&mut ctl, Vm::Rtos, &t)?;
        eprintln!("[hv-trace] probe {id}: {} ({:#x}), {:?}", t.label, t.addr, t.kind);
    }
    let guest = record(&mut ctl, args.duration, &args.out, Some(DEMO_LOAD))?;
    let stats = ctl
        .run(&format!("cat {SYSFS}/stats"), Duration::from_secs(10))
        .unwrap_or_default();
    drop(ctl);
    session::stop_other().ok();
    running.stop();

    let merged = args.out.join("merged.dat");
    let text = args.out.join("merged.txt");
    for (out, format) in [(&merged, "dat"), (&text, "text")] {
        trace_convert::cli::run([
            "hv-trace export".as_ref(),
            "merge".as_ref(),
            guest.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
            "--format".as_ref(),
            format.as_ref(),
        ])?;
    }
    summarize(&merged, &stats)?;
    if let Err(e) = injection_latency(&guest) {
        eprintln!("[hv-trace] hit-to-ftrace latency not available: {e:#}");
    }
    println!("wrote {}, {} and {}", guest.display(), merged.display(), text.display());
    if !args.no_view && std::io::stdout().is_terminal() && std::io::stdin().is_terminal() {
        viewer::run_app(&merged)?;
    }
    Ok(())
}
