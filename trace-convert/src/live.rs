//! A streamed recording merged while it arrives: the capture's new pages
//! ([`Tail`]) go through the RTOS merge ([`RtosMerge`]) batch by batch, and
//! every event that is ready goes to the caller (a live view's index, a
//! `.dat` being written). Nothing is merged twice; when the stream has ended,
//! [`LiveMerge::finish`] gives the rest, and what came out in all equals
//! [`crate::merge::merged_events`] of the finished file, CPU by CPU.

use std::path::Path;

use crate::capture::Tail;
use crate::error::Result;
use crate::event::{Event, TraceMeta};
use crate::merge::{self, MergePlan, RtosMerge};

/// The merge of a capture directory being filled (see the module docs).
pub struct LiveMerge {
    tail: Tail,
    /// The merged metadata and the merge, from the first pages on.
    merging: Option<(TraceMeta, RtosMerge)>,
    out: Vec<Event>,
}

impl LiveMerge {
    /// Follows the capture in `dir` from its start.
    pub fn new(dir: &Path) -> LiveMerge {
        LiveMerge {
            tail: Tail::new(dir),
            merging: None,
            out: Vec::new(),
        }
    }

    /// Merges the pages that arrived since the last call; hands every event
    /// that is ready to `sink` (each CPU's in time order). Returns how many.
    pub fn poll(&mut self, sink: &mut dyn FnMut(&TraceMeta, Event)) -> Result<u64> {
        let Some(trace) = self.tail.poll()? else {
            return Ok(0);
        };
        let (meta, m) = self.merging.get_or_insert_with(|| {
            // The merged formats from the start: an RTOS switch needs its sched_switch.
            let plan = MergePlan {
                rtos_events: 1,
                ..Default::default()
            };
            let meta = merge::merged_meta_from(trace.meta().clone(), &plan);
            let m = RtosMerge::new(merge::switch_format(&meta));
            (meta, m)
        });
        let mut n = 0;
        for ev in trace.events() {
            if let Some(linux) = m.push(ev?) {
                sink(meta, linux);
                n += 1;
            }
        }
        m.release(&mut self.out);
        Ok(n + self.hand_out(sink))
    }

    /// After the stream's end: the last pages, then every event still held.
    pub fn finish(&mut self, sink: &mut dyn FnMut(&TraceMeta, Event)) -> Result<u64> {
        let n = self.poll(sink)?;
        if let Some((_, m)) = self.merging.as_mut() {
            m.finish(&mut self.out);
        }
        Ok(n + self.hand_out(sink))
    }

    /// Gives `sink` what the merge released; how many.
    fn hand_out(&mut self, sink: &mut dyn FnMut(&TraceMeta, Event)) -> u64 {
        let Some((meta, _)) = self.merging.as_ref() else {
            return 0;
        };
        let n = self.out.len() as u64;
        for ev in self.out.drain(..) {
            sink(meta, ev);
        }
        n
    }

    /// What the merge learned so far (see [`RtosMerge::plan`]).
    pub fn plan(&self) -> MergePlan {
        self.merging
            .as_ref()
            .map(|(meta, m)| m.plan(meta.cpus))
            .unwrap_or_default()
    }

    /// The RTOS merge (its late and forced counts).
    pub fn rtos(&self) -> Option<&RtosMerge> {
        self.merging.as_ref().map(|(_, m)| m)
    }
}
