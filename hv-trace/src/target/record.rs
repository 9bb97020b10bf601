//! Recording with the real trace-cmd in the Linux guest (the hvtrace events
//! and the scheduler's), and bringing the file home.

use crate::progress::Step;
use crate::target::control::Control;
use crate::target::hvtrace;
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the background recording leaves its exit status and its output.
const STATUS: &str = "/tmp/hv-trace-record.status";
const LOG: &str = "/tmp/hv-trace-record.log";

/// The events every recording takes: both OSes' switches and wake-ups.
pub const EVENTS: &str = "-e hvtrace -e sched:sched_switch -e sched:sched_wakeup";

/// Record `duration` seconds with the real trace-cmd in the guest (hvtrace
/// and scheduler events), optionally with a shell `load` running meanwhile;
/// brings the file home as `out/guest.dat`.
pub fn record(ctl: &mut Control, duration: f64, out: &Path, load: Option<&str>) -> Result<PathBuf> {
    anyhow::ensure!(
        duration.is_finite() && duration > 0.0,
        "--duration must be a positive number of seconds"
    );
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    hvtrace::enable(ctl, true)?;
    let load = load.map(|l| format!("( {l} ) & LOAD=$!; ")).unwrap_or_default();
    let stop_load = if load.is_empty() {
        ""
    } else {
        "; kill $LOAD 2>/dev/null; wait 2>/dev/null; true"
    };
    let cmd = format!("{load}trace-cmd record -q {EVENTS} -o /tmp/guest.dat sleep {duration}{stop_load}");
    let limit = Duration::from_secs_f64(duration) + Duration::from_secs(120);
    let step = Step::start(format!("recording {duration} s in the guest with trace-cmd"));
    // In the background, its status in a file, so that the recording can be
    // watched: once a second the RTOS records the module has turned into
    // events and its drops (read with shell builtins only: no process of
    // ours appears in the trace).
    ctl.run(
        &format!(
            // `{ … & }`: the channel's own `{ CMD ; }` cannot end in `& ;`.
            "rm -f {STATUS} {LOG}; {{ ( {{ {cmd} ; }} > {LOG} 2>&1; echo $? > {STATUS} ) < /dev/null > /dev/null 2>&1 & }}"
        ),
        Duration::from_secs(30),
    )?;
    let started = std::time::Instant::now();
    let status = loop {
        std::thread::sleep(Duration::from_secs(1));
        let out = ctl.run(
            &format!(
                "if [ -f {STATUS} ]; then read -r s < {STATUS}; echo \"status $s\"; fi; \
                 while read -r l; do case $l in records*|drops*) echo \"$l\";; esac; done < {}/stats",
                hvtrace::SYSFS
            ),
            Duration::from_secs(30),
        )?;
        let stats = hvtrace::parse_stats(&out);
        step.detail(&format!(
            "{:.0}/{duration} s, {} RTOS records, {} drops",
            started.elapsed().as_secs_f64().min(duration),
            stats.get("records").copied().unwrap_or(0),
            stats.get("drops").copied().unwrap_or(0)
        ));
        if let Some(s) = stats.get("status") {
            break *s;
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "trace-cmd did not finish within {} s in the guest",
            limit.as_secs()
        );
    };
    if status != 0 {
        let log = ctl
            .run(&format!("cat {LOG}"), Duration::from_secs(30))
            .unwrap_or_default();
        bail!("trace-cmd record failed in the guest (status {status}): {}", log.trim());
    }
    step.finish("done");
    let step = Step::start("bringing guest.dat home");
    let bytes = ctl.fetch("/tmp/guest.dat", Duration::from_secs(300))?;
    let path = out.join("guest.dat");
    trace_convert::output::write_atomically(&path, &bytes)?;
    let how = ctl.last_transfer.map_or_else(String::new, |t| {
        format!(" over the {}, {:.2} MB/s", t.channel, t.rate_mb_s())
    });
    step.finish(&format!("{} KiB{how}", bytes.len() / 1024));
    Ok(path)
}
