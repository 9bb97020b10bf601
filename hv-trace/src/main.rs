//! `hv-trace`: build, boot and drive the traced system, then export and view
//! its traces. A thin layer: arguments become a plan, library code does the work.

mod artifacts;
mod fingerprint;
mod paths;
mod progress;
mod qemu;
mod system;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "hv-trace",
    version,
    about = "Trace an RTOS and Linux side by side under a small hypervisor, on one timeline"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build target artifacts into the cache and print their paths.
    Build {
        #[arg(value_enum, default_value = "all")]
        target: artifacts::Target,
        /// Print a JSON object: artifact name -> absolute path.
        #[arg(long)]
        json: bool,
        /// RTOS application: paper (default) or sync.
        #[arg(long)]
        rtos_app: Option<String>,
        /// Build the RTOS with its ground-truth context-switch log.
        #[arg(long)]
        ground_truth: bool,
    },
    /// Boot the system in QEMU and stream its console.
    Run {
        /// Stop QEMU after this many seconds (exit 0 if the system booted).
        #[arg(long)]
        duration: Option<f64>,
        /// Boot only the RTOS, bare at EL1 (no hypervisor).
        #[arg(long)]
        rtos_only: bool,
        /// Build the RTOS with its ground-truth context-switch log.
        #[arg(long)]
        ground_truth: bool,
        /// Run /etc/hvtrace/NAME in the Linux guest once it has booted
        /// (e.g. `poweroff`).
        #[arg(long, value_name = "NAME")]
        linux_script: Option<String>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("hv-trace: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Cmd::Build {
            target,
            json,
            rtos_app,
            ground_truth,
        } => {
            let built = artifacts::build(target, &artifacts::Options { rtos_app, ground_truth })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&built)?);
            } else {
                for (name, path) in &built {
                    println!("{name:<12} {}", path.display());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Run {
            duration,
            rtos_only,
            ground_truth,
            linux_script,
        } => {
            let limit = match duration {
                Some(d) if !(d.is_finite() && d > 0.0) => {
                    anyhow::bail!("--duration must be a positive number of seconds, not {d}")
                }
                Some(d) => Some(Duration::from_secs_f64(d)),
                None => None,
            };
            let opts = artifacts::Options {
                rtos_app: None,
                ground_truth,
            };
            let (machine, marker) = if rtos_only {
                let (elf, _) = artifacts::build_rtos(&opts)?;
                let m = qemu::Machine {
                    cpus: 1,
                    memory_mib: 512,
                    virtualization: false,
                    kernel: elf,
                    blobs: vec![],
                    extra_args: vec![],
                };
                (m, "uC/OS-II")
            } else {
                (system::machine(&opts, linux_script.as_deref())?, "hv-trace hypervisor")
            };
            let outcome = qemu::run_console(&machine, limit, marker, &mut std::io::stdout()).context("hv-trace run")?;
            eprintln!(
                "[hv-trace] {}",
                match outcome {
                    qemu::Outcome::Exited(_) => "the system powered off".to_string(),
                    qemu::Outcome::TimedOut =>
                        format!("stopped after {:.1} s", limit.unwrap_or_default().as_secs_f64()),
                }
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
