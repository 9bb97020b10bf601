//! Merged demo traces for tests, the bench and the README.
//!
//! [`write_merged`] runs the real pipeline: `trace_convert::synth` generates a Linux CPU 0
//! with the hvtrace module's RTOS events (injected on CPU 0, with clock sync points), that is
//! written as a `.dat` (`synth::write_dat`), then `trace_convert::merge` puts the RTOS on its own CPU (synthetic
//! pids, `sched_switch` events) and the result is written as the merged `.dat`. Every
//! `lost_every`-th Linux switch is marked as following lost events so lost-event marks show.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use anyhow::Context;
use trace_convert::write::dat::{DatHeader, DatWriter};
use trace_convert::{Missed, Trace};

/// Writes a merged trace with `linux_switches` Linux switches (≈ 1.25 events each in the
/// result) to `path`; `lost_every` = 0 marks no losses.
pub fn write_merged(path: &Path, linux_switches: u64, lost_every: u64) -> anyhow::Result<()> {
    let raw = path.with_extension("unmerged.tmp");
    let f = File::create(&raw).with_context(|| format!("cannot create {}", raw.display()))?;
    trace_convert::synth::write_dat(BufWriter::new(f), linux_switches)?;
    let inputs = [Trace::open(&raw)?];
    let plan = trace_convert::merge::plan(&inputs)?;
    let meta = trace_convert::merge::merged_meta(&inputs, &plan);
    let tmp = path.with_extension("tmp");
    let f = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let mut w = DatWriter::new(BufWriter::new(f), DatHeader::from_meta(&meta), &meta.formats)?;
    let mut n = 0u64;
    for ev in trace_convert::merge::merged_events(&inputs, &plan, &meta) {
        let mut ev = ev?;
        if ev.cpu == 0 && ev.is("sched", "sched_switch") {
            n += 1;
            if n.checked_rem(lost_every) == Some(0) {
                ev.missed_before = Missed::Count(3);
            }
        }
        w.write(&ev)?;
    }
    w.finish_into()?;
    drop(inputs);
    std::fs::remove_file(&raw).ok();
    std::fs::rename(&tmp, path)?;
    Ok(())
}
