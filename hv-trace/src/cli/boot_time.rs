//! `hv-trace boot-time`: wall time from QEMU's start to the RTOS's first task
//! output and to Linux's init.

use anyhow::{Context, Result};
use hv_trace::target::boot::BOOT_TIMEOUT;
use hv_trace::target::session::{self, Running};
use hv_trace::target::system::{self, Plan};
use std::time::{Duration, Instant};

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
