//! The one way to boot a system and wait until it can be driven: QEMU
//! started in the session directory, Linux's init done, its control shell
//! answering.

use crate::progress::Step;
use crate::target::artifacts::Artifacts;
use crate::target::control::{self, Control};
use crate::target::qemu::Machine;
use crate::target::session::Running;
use crate::target::system;
use anyhow::Result;
use std::time::Duration;

/// Time Linux needs from QEMU start to its control shell, with margin for
/// a loaded 2-core machine under TCG.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(180);
/// Time the control shell may take to answer once init is done.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(60);

/// How QEMU runs the system, for the progress line and the time limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    /// Translation blocks as usual.
    Normal,
    /// One translation block per instruction (`-singlestep`): boots take
    /// about twice as long.
    SingleStep,
}

/// Boots `machine` (which must carry the session's channels, see
/// `session::qemu_args`) with a progress line `booting {what}`, records which
/// `images` it runs (for `hv-trace probe` later), and waits for Linux's init
/// and its control shell. The console goes to `console.log` only.
pub fn boot(machine: &Machine, images: Option<&Artifacts>, what: &str, pace: Pace) -> Result<(Running, Control)> {
    let slowdown = match pace {
        Pace::Normal => 1,
        Pace::SingleStep => 2,
    };
    let step = Step::start(format!("booting {what}"));
    let mut running = Running::start(machine, Box::new(std::io::sink()))?;
    if let Some(images) = images {
        system::save_artifacts(&running.dir, images)?;
    }
    running.wait_for("init done", slowdown * BOOT_TIMEOUT)?;
    let ctl = control::wait_control(&running.dir, slowdown * CONTROL_TIMEOUT)?;
    step.finish("up");
    Ok((running, ctl))
}
