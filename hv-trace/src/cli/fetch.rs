//! `hv-trace fetch`: bring a file home from the running Linux guest.

use anyhow::{Context, Result};
use hv_trace::target::control::Control;
use hv_trace::target::session;
use std::path::PathBuf;
use std::time::Duration;

pub fn fetch(guest_file: &str, out: Option<PathBuf>) -> Result<()> {
    let out = match out {
        Some(o) => o,
        None => PathBuf::from(
            std::path::Path::new(guest_file)
                .file_name()
                .with_context(|| format!("{guest_file:?} names no file; give --out"))?,
        ),
    };
    let mut ctl = Control::connect(&session::dir())?;
    let bytes = ctl.fetch(guest_file, Duration::from_secs(3600))?;
    trace_convert::output::write_atomically(&out, &bytes)?;
    match ctl.last_transfer {
        Some(t) => eprintln!(
            "[hv-trace] {} bytes over the {} in {:.2} s ({:.2} MB/s), checked",
            t.bytes,
            t.channel,
            t.seconds,
            t.rate_mb_s()
        ),
        None => eprintln!("[hv-trace] {} bytes", bytes.len()),
    }
    println!("{}", out.display());
    Ok(())
}
