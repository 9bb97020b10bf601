//! `hv-trace view --live` (and the demo on a terminal): a streamed
//! recording shown in the timeline viewer while it runs. The viewer asks
//! for the trace so far once a refresh; this writes it from the capture
//! (`OUT/.live.dat`) and, when the recording is over, gives the finished
//! `OUT/guest.dat`.

use anyhow::Result;
use hv_trace::target::control::Control;
use hv_trace::target::record::{Recording, Streamed};
use hv_trace::target::stream::Selection;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A recording the live viewer shows.
pub struct LiveRecording {
    ctl: Control,
    rec: Option<Recording>,
    done: Option<Streamed>,
    deadline: Option<Instant>,
    snapshot: PathBuf,
    last_poll: Instant,
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
        Ok(LiveRecording {
            ctl,
            rec: Some(rec),
            done: None,
            deadline: duration.map(|d| Instant::now() + Duration::from_secs_f64(d)),
            snapshot: out.join(".live.dat"),
            last_poll: Instant::now(),
        })
    }

    /// Ends the recording if the viewer did not; what it brought home, and
    /// the control channel back.
    pub fn finish(mut self) -> Result<(Streamed, Control)> {
        let _ = std::fs::remove_file(&self.snapshot);
        if let Some(rec) = self.rec.take() {
            let step = hv_trace::progress::Step::start("ending the recording");
            let s = rec.finish(&mut self.ctl)?;
            step.finish("done");
            self.done = Some(s);
        }
        let done = self
            .done
            .take()
            .ok_or_else(|| anyhow::anyhow!("the recording was lost"))?;
        Ok((done, self.ctl))
    }
}

impl viewer::LiveSource for LiveRecording {
    fn snapshot(&mut self) -> Result<Option<PathBuf>> {
        let Some(rec) = self.rec.as_mut() else {
            return Ok(self.done.as_ref().map(|d| d.path.clone()));
        };
        let mut over = self.deadline.is_some_and(|d| Instant::now() >= d) || rec.guest_gone() || rec.interrupted();
        if !over && self.last_poll.elapsed() >= POLL {
            over = !rec.poll(&mut self.ctl);
            self.last_poll = Instant::now();
        }
        if over {
            let rec = self.rec.take().expect("checked above");
            let done = rec.finish(&mut self.ctl)?;
            let path = done.path.clone();
            self.done = Some(done);
            return Ok(Some(path));
        }
        if rec.stats().pages == 0 {
            return Ok(None);
        }
        trace_convert::capture::assemble(rec.capture_dir(), &self.snapshot)?;
        Ok(Some(self.snapshot.clone()))
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
