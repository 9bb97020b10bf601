//! `hv-trace run`: boot the system (or the RTOS alone) and stream its console.

use anyhow::{bail, Context, Result};
use hv_trace::target::artifacts;
use hv_trace::target::qemu;
use hv_trace::target::session::{self, Running};
use hv_trace::target::system::{self, Plan};
use std::path::PathBuf;
use std::time::{Duration, Instant};

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
    /// RTOS application: paper (default) or sync (semaphores, queues,
    /// mailboxes, a mutex and event flags).
    #[arg(long, value_name = "APP")]
    rtos_app: Option<String>,
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
    /// Deterministic guest time: QEMU's `-icount shift=N` (an instruction
    /// takes 2^N ns of guest time), so work calibrated in the guest takes
    /// the same guest time whatever the host's load.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=10))]
    icount: Option<u8>,
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
        rtos_app: args.rtos_app,
        ground_truth: args.ground_truth,
    };
    if args.rtos_only {
        let elf = match args.rtos_elf {
            // The user's ELF, as it is: QEMU loads it at its link address.
            Some(elf) => {
                anyhow::ensure!(elf.is_file(), "RTOS image {} does not exist", elf.display());
                elf
            }
            None => {
                let _lock = artifacts::BuildLock::acquire()?;
                artifacts::build_rtos(&opts)?.0
            }
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
    let (mut machine, built) = system::machine(&plan)?;
    if let Some(n) = args.icount {
        machine.icount(n);
    }
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
