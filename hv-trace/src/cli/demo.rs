//! `hv-trace demo`: the whole story in one command. Boot, probe the RTOS's
//! context switches, record both OSes (streamed home, shown live on a
//! terminal) under a Linux load, merge, summarise.

use anyhow::{Context, Result};
use hv_trace::target::boot::{self, Pace};
use hv_trace::target::probe::{Site, Vm, RTOS_SWITCHES, TIMING_PROBES};
use hv_trace::target::session;
use hv_trace::target::system::{self, Plan};
use hv_trace::target::{hvtrace, record};
use std::io::IsTerminal;
use std::path::PathBuf;
use trace_convert::analysis::{InjectionLatency, Recording};
use trace_convert::pipeline::{self, Format};
use trace_convert::timing::{Timing, TimingOptions};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Seconds to record.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Output directory (guest.dat, merged.dat, merged.txt).
    #[arg(long, default_value = "hv-trace-demo")]
    out: PathBuf,
    /// Do not show the recording live in the viewer (on a terminal it is).
    #[arg(long)]
    no_view: bool,
    /// Trace this RTOS ELF instead of ours (any uC/OS-II build linked to run
    /// at IPA 0x4010_0000 in the RTOS VM's 16 MiB at 0x4000_0000; its tasks
    /// are read through its DWARF).
    #[arg(long, value_name = "ELF")]
    rtos_elf: Option<PathBuf>,
    /// Also time the RTOS's jobs: probe each tick and each delay, and print
    /// each task's period, execution and response times and deadline misses.
    #[arg(long)]
    timing: bool,
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
        rtos_elf: args.rtos_elf,
        ..Plan::default()
    };
    let (machine, built) = system::machine(&plan)?;
    let (running, mut ctl) = boot::boot(&machine, Some(&built), "hypervisor + Linux + RTOS", Pace::Normal)?;
    for name in RTOS_SWITCHES {
        let site = Site::resolve(&built, name, Vm::Rtos, None)?;
        let id = hvtrace::add(&mut ctl, &site)?;
        eprintln!(
            "[hv-trace] probe {id}: {} ({:#x}), {:?}",
            site.label, site.addr, site.kind
        );
    }
    if args.timing {
        let ids = hvtrace::ensure_timing_probes(&mut ctl, &built)?;
        eprintln!("[hv-trace] timing probes {ids:?}: {}", TIMING_PROBES.join(", "));
    }
    // On a terminal the recording is shown while it runs (and stays on
    // screen, whole, when it is over); elsewhere a progress line.
    let interactive = !args.no_view && std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    let streamed = if interactive {
        let live = super::live::LiveRecording::start(
            ctl,
            &args.out,
            Some(args.duration),
            Some(DEMO_LOAD),
            &Default::default(),
        )?;
        let (streamed, back) = viewer::run_live(live)?.finish()?;
        ctl = back;
        streamed
    } else {
        record::record(
            &mut ctl,
            Some(args.duration),
            &args.out,
            Some(DEMO_LOAD),
            &Default::default(),
        )?
    };
    print!("{}", streamed.render());
    let guest = streamed.path;
    let stats = hvtrace::stats_text(&mut ctl).unwrap_or_default();
    drop(ctl);
    session::stop_other().ok();
    running.stop();

    let merged = args.out.join("merged.dat");
    let text = args.out.join("merged.txt");
    for (out, format) in [(&merged, Format::Dat), (&text, Format::Text)] {
        if format == Format::Dat && streamed.merged.as_ref() == Some(&merged) {
            eprintln!("merged {} while it was recorded", merged.display());
            continue;
        }
        let s = pipeline::convert_files(
            std::slice::from_ref(&guest),
            out,
            Some(format),
            Default::default(),
            true,
        )?;
        for w in &s.warnings {
            eprintln!("[hv-trace] warning: {w}");
        }
        eprintln!("wrote {} events on {} CPUs to {}", s.events, s.cpus, out.display());
    }
    let recording = Recording::of_file(&merged).with_context(|| format!("reading {}", merged.display()))?;
    let module_drops = stats.lines().find(|l| l.contains("drops")).unwrap_or("n/a").trim();
    print!("{}", recording.render(&merged.display().to_string(), module_drops, 10));
    match InjectionLatency::of_file(&guest) {
        Ok(l) => println!("{l}"),
        Err(e) => eprintln!("[hv-trace] hit-to-ftrace latency not available: {e:#}"),
    }
    if args.timing {
        let trace = pipeline::open(&guest)?;
        let timing = Timing::of_trace(&trace, &TimingOptions::default())?;
        print!("{}", timing.render());
    }
    println!("wrote {}, {} and {}", guest.display(), merged.display(), text.display());
    if interactive {
        eprintln!("[hv-trace] look again: hv-trace view {}", merged.display());
    }
    Ok(())
}
