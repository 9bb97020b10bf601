//! Recording with the real trace-cmd in the Linux guest (the hvtrace events
//! and the scheduler's), and bringing the file home.

use crate::progress::Step;
use crate::target::control::Control;
use crate::target::hvtrace;
use anyhow::{Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    ctl.run(&cmd, limit)?;
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
