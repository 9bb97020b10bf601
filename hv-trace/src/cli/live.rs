//! `hv-trace view --live` (and the demo on a terminal): a streamed
//! recording shown in the timeline viewer while it runs. Each refresh
//! merges only the pages that arrived since the last one
//! ([`trace_convert::live::LiveMerge`]) into the viewer's growing index
//! ([`viewer::LiveIndex`]) and into `OUT/merged.dat`, which is therefore
//! written while the recording runs and finished when it ends: the same
//! file `hv-trace export merge OUT/guest.dat` gives.

use anyhow::{Context, Result};
use hv_trace::target::control::Control;
use hv_trace::target::record::{Recording, Streamed};
use hv_trace::target::stream::Selection;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use trace_convert::live::LiveMerge;
use trace_convert::output::OutputFile;
use trace_convert::write::dat::{DatHeader, DatWriter};
use trace_convert::{Event, TraceMeta};
use viewer::{LiveIndex, TraceIndex};

/// `OUT/merged.dat`, written as the merge gives events.
struct MergedDat {
    file: OutputFile,
    writer: DatWriter<BufWriter<File>>,
}

/// Where the merged events go: the viewer's index and the merged .dat.
#[derive(Default)]
struct Sinks {
    index: Option<LiveIndex>,
    dat: Option<MergedDat>,
    /// The first failure to write the .dat (the view goes on without it).
    dat_error: Option<String>,
    path: PathBuf,
}

impl Sinks {
    fn take(&mut self, meta: &TraceMeta, ev: Event) {
        self.index.get_or_insert_with(|| LiveIndex::new(meta)).add(&ev);
        if self.dat.is_none() && self.dat_error.is_none() {
            match MergedDat::create(&self.path, meta) {
                Ok(d) => self.dat = Some(d),
                Err(e) => self.dat_error = Some(format!("{e:#}")),
            }
        }
        if let Some(d) = self.dat.as_mut() {
            if let Err(e) = d.writer.write(&ev) {
                self.dat_error = Some(format!("{e:#}"));
                self.dat = None;
            }
        }
    }
}

impl MergedDat {
    fn create(path: &Path, meta: &TraceMeta) -> Result<MergedDat> {
        let file = OutputFile::create(path, &[])?;
        let sink = BufWriter::with_capacity(1 << 16, file.writer()?);
        let writer = DatWriter::new(sink, DatHeader::from_meta(meta), &meta.formats)?;
        Ok(MergedDat { file, writer })
    }

    /// Writes the header as the finished recording says it (task names,
    /// symbols) and puts the file in place.
    fn finish(mut self, meta: &TraceMeta) -> Result<()> {
        self.writer.set_header(DatHeader::from_meta(meta));
        self.writer.finish_into()?;
        self.file.commit()?;
        Ok(())
    }
}

/// A recording the live viewer shows.
pub struct LiveRecording {
    ctl: Control,
    rec: Option<Recording>,
    done: Option<Streamed>,
    deadline: Option<Instant>,
    last_poll: Instant,
    merge: LiveMerge,
    sinks: Sinks,
    /// Set once the whole recording is merged and `merged.dat` is in place.
    merged: Option<Result<PathBuf, String>>,
}

/// How often the module's drops are read while the view runs.
const POLL: Duration = Duration::from_secs(2);

impl LiveRecording {
    /// Starts recording into `out` what `selection` says (`duration`
    /// seconds, or until the viewer quits), with `load` running in the guest.
    pub fn start(
        mut ctl: Control,
        out: &Path,
        duration: Option<f64>,
        load: Option<&str>,
        selection: &Selection,
    ) -> Result<Self> {
        let rec = Recording::start(&mut ctl, out, load, selection)?;
        let merge = LiveMerge::new(rec.capture_dir());
        Ok(LiveRecording {
            ctl,
            rec: Some(rec),
            done: None,
            deadline: duration.map(|d| Instant::now() + Duration::from_secs_f64(d)),
            last_poll: Instant::now(),
            merge,
            sinks: Sinks {
                path: out.join("merged.dat"),
                ..Default::default()
            },
            merged: None,
        })
    }

    /// Ends the recording if the viewer did not; what it brought home, and
    /// the control channel back.
    pub fn finish(mut self) -> Result<(Streamed, Control)> {
        if self.rec.is_some() {
            let step = hv_trace::progress::Step::start("ending the recording");
            self.end()?;
            step.finish("done");
        }
        let mut done = self
            .done
            .take()
            .ok_or_else(|| anyhow::anyhow!("the recording was lost"))?;
        match self.merged.take() {
            Some(Ok(p)) => done.merged = Some(p),
            Some(Err(e)) => eprintln!("[hv-trace] the live merge did not write its file: {e}"),
            None => {}
        }
        Ok((done, self.ctl))
    }

    /// Stops the recording, merges what is left and finishes `merged.dat`.
    fn end(&mut self) -> Result<()> {
        let Some(rec) = self.rec.take() else {
            return Ok(());
        };
        let done = rec.finish(&mut self.ctl)?;
        let sinks = &mut self.sinks;
        let merged = self
            .merge
            .finish(&mut |meta, ev| sinks.take(meta, ev))
            .context("merging the end of the stream")
            .and_then(|_| self.finish_merged(&done.path));
        self.merged = Some(merged.map_err(|e| format!("{e:#}")));
        self.done = Some(done);
        Ok(())
    }

    fn finish_merged(&mut self, guest: &Path) -> Result<PathBuf> {
        if let Some(e) = self.sinks.dat_error.take() {
            anyhow::bail!("{e}");
        }
        let dat = self.sinks.dat.take().context("no events arrived")?;
        // The header as the finished file says it: the same as `export merge` writes.
        let whole = trace_convert::pipeline::open(guest)?;
        let meta = trace_convert::merge::merged_meta_from(whole.meta().clone(), &self.merge.plan());
        if let Some(index) = self.sinks.index.as_mut() {
            index.set_meta(&meta);
        }
        dat.finish(&meta)?;
        if let Some(r) = self.merge.rtos().filter(|r| r.late() + r.forced() > 0) {
            eprintln!(
                "[hv-trace] the live merge placed {} RTOS events late and {} before their clock was settled; `hv-trace export merge` redoes it",
                r.late(),
                r.forced()
            );
        }
        Ok(self.sinks.path.clone())
    }
}

impl LiveRecording {
    /// The index so far, named after the file it becomes.
    fn index(&self) -> Option<TraceIndex> {
        let mut index = self.sinks.index.as_ref()?.index();
        index.path = format!("{} (live)", self.sinks.path.display());
        Some(index)
    }
}

impl viewer::LiveSource for LiveRecording {
    fn refresh(&mut self) -> Result<Option<TraceIndex>> {
        let Some(rec) = self.rec.as_mut() else {
            return Ok(None);
        };
        let mut over = self.deadline.is_some_and(|d| Instant::now() >= d) || rec.guest_gone() || rec.interrupted();
        if !over && self.last_poll.elapsed() >= POLL {
            over = !rec.poll(&mut self.ctl);
            self.last_poll = Instant::now();
        }
        if over {
            self.end()?;
            return Ok(self.index());
        }
        let sinks = &mut self.sinks;
        let new = self.merge.poll(&mut |meta, ev| sinks.take(meta, ev))?;
        Ok(if new > 0 { self.index() } else { None })
    }

    fn status(&self) -> String {
        match (&self.rec, &self.done) {
            (Some(rec), _) => {
                let left = self
                    .deadline
                    .map(|d| {
                        format!(
                            ", {:.0} s left",
                            d.saturating_duration_since(Instant::now()).as_secs_f64()
                        )
                    })
                    .unwrap_or_default();
                format!("{:.0} s{left}, {}", rec.seconds(), rec.progress())
            }
            (None, Some(done)) => format!(
                "{:.1} s, {} RTOS + {} Linux events{}",
                done.seconds,
                done.stats.rtos_events,
                done.stats.linux_events,
                if done.incomplete.is_some() { ", incomplete" } else { "" }
            ),
            (None, None) => String::new(),
        }
    }

    fn ended(&self) -> bool {
        self.done.is_some()
    }
}
