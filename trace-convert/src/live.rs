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
    merge: Option<RtosMerge>,
    meta: Option<TraceMeta>,
    out: Vec<Event>,
    events: u64,
}

impl LiveMerge {
    /// Follows the capture in `dir` from its start.
    pub fn new(dir: &Path) -> LiveMerge {
        LiveMerge {
            tail: Tail::new(dir),
            merge: None,
            meta: None,
            out: Vec::new(),
            events: 0,
        }
    }

    /// Merges the pages that arrived since the last call; hands every event
    /// that is ready to `sink` (each CPU's in time order). Returns how many.
    pub fn poll(&mut self, sink: &mut dyn FnMut(&TraceMeta, Event)) -> Result<u64> {
        let Some(trace) = self.tail.poll()? else {
            return Ok(0);
        };
        if self.meta.is_none() {
            // The merged formats from the start: an RTOS switch needs its sched_switch.
            let plan = MergePlan {
                rtos_events: 1,
                ..Default::default()
            };
            let meta = merge::merged_meta_from(trace.meta().clone(), &plan);
            self.merge = Some(RtosMerge::new(merge::switch_format(&meta)));
            self.meta = Some(meta);
        }
        let (Some(m), Some(meta)) = (self.merge.as_mut(), self.meta.as_ref()) else {
            return Ok(0);
        };
        let mut n = 0;
        for ev in trace.events() {
            if let Some(linux) = m.push(ev?) {
                sink(meta, linux);
                n += 1;
            }
        }
        m.release(&mut self.out);
        for ev in self.out.drain(..) {
            sink(meta, ev);
            n += 1;
        }
        self.events += n;
        Ok(n)
    }

    /// After the stream's end: the last pages, then every event still held.
    pub fn finish(&mut self, sink: &mut dyn FnMut(&TraceMeta, Event)) -> Result<u64> {
        let mut n = self.poll(sink)?;
        if let (Some(m), Some(meta)) = (self.merge.as_mut(), self.meta.as_ref()) {
            m.finish(&mut self.out);
            for ev in self.out.drain(..) {
                sink(meta, ev);
                n += 1;
            }
        }
        self.events += n;
        Ok(n)
    }

    /// The merged metadata so far (`None` before the first pages).
    pub fn meta(&self) -> Option<&TraceMeta> {
        self.meta.as_ref()
    }

    /// What the merge learned so far (see [`RtosMerge::plan`]).
    pub fn plan(&self) -> MergePlan {
        let cpus = self.meta.as_ref().map_or(0, |m| m.cpus);
        self.merge.as_ref().map(|m| m.plan(cpus)).unwrap_or_default()
    }

    /// The RTOS merge (its late and forced counts).
    pub fn rtos(&self) -> Option<&RtosMerge> {
        self.merge.as_ref()
    }

    /// Events handed out so far.
    pub fn events(&self) -> u64 {
        self.events
    }
}
