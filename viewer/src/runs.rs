//! Sorted, non-overlapping run intervals with prefix sums and block summaries.
//!
//! This is the level-of-detail structure behind every timeline row: a column of the screen
//! covers a time range, and the questions a column asks ("which run is here?", "how much of
//! this range is busy?", "how many runs start here, and how long are the shortest and longest
//! of them?") are answered with binary searches over the interval starts/ends, the prefix sum
//! of counted durations and per-block min/max durations — never by walking every run in the
//! range. A frame therefore costs O(columns × log runs) whatever the zoom.

use std::ops::Range;

/// Runs per min/max summary block (a power of two).
const BLOCK: usize = 256;

/// A row's run intervals (half-open `[start, end)`), sorted and non-overlapping.
#[derive(Debug, Default, Clone)]
pub struct Runs {
    start: Vec<u64>,
    end: Vec<u64>,
    who: Vec<u32>,
    /// `prefix[k]` = counted time of runs `0..k`.
    prefix: Vec<u64>,
    /// Per block of [`BLOCK`] runs: (min, max) duration.
    blocks: Vec<(u64, u64)>,
}

impl Runs {
    /// Builds from `(start, end, who)` triples in start order; `counted(who)` says whether a
    /// run adds to the busy time (idle tasks do not).
    ///
    /// Overlapping input (which a well-formed trace does not produce) is clipped so that each
    /// run ends no later than the next one starts.
    pub fn new(mut runs: Vec<(u64, u64, u32)>, counted: impl Fn(u32) -> bool) -> Runs {
        if !runs.is_sorted_by_key(|r| r.0) {
            runs.sort_by_key(|r| r.0);
        }
        let n = runs.len();
        let mut r = Runs {
            start: Vec::with_capacity(n),
            end: Vec::with_capacity(n),
            who: Vec::with_capacity(n),
            prefix: Vec::with_capacity(n + 1),
            blocks: Vec::with_capacity(n.div_ceil(BLOCK)),
        };
        r.prefix.push(0);
        let mut acc = 0u64;
        for k in 0..n {
            let (s, mut e, w) = runs[k];
            if let Some(next) = runs.get(k + 1) {
                e = e.min(next.0);
            }
            let e = e.max(s);
            r.start.push(s);
            r.end.push(e);
            r.who.push(w);
            if counted(w) {
                acc += e - s;
            }
            r.prefix.push(acc);
        }
        for b in r.start.chunks(BLOCK).enumerate() {
            let lo = b.0 * BLOCK;
            let (mut mn, mut mx) = (u64::MAX, 0);
            for k in lo..lo + b.1.len() {
                let d = r.end[k] - r.start[k];
                mn = mn.min(d);
                mx = mx.max(d);
            }
            r.blocks.push((mn, mx));
        }
        r
    }

    /// Number of runs.
    pub fn len(&self) -> usize {
        self.start.len()
    }

    /// No runs?
    pub fn is_empty(&self) -> bool {
        self.start.is_empty()
    }

    /// Run `k`: (start, end, who).
    pub fn get(&self, k: usize) -> (u64, u64, u32) {
        (self.start[k], self.end[k], self.who[k])
    }

    /// Runs overlapping `[t0, t1)`.
    pub fn overlapping(&self, t0: u64, t1: u64) -> Range<usize> {
        let i = self.end.partition_point(|&e| e <= t0);
        let j = self.start.partition_point(|&s| s < t1);
        i..j.max(i)
    }

    /// Runs starting in `[t0, t1)`.
    pub fn starting(&self, t0: u64, t1: u64) -> Range<usize> {
        let i = self.start.partition_point(|&s| s < t0);
        let j = self.start.partition_point(|&s| s < t1);
        i..j.max(i)
    }

    /// The run containing `t`.
    pub fn at(&self, t: u64) -> Option<usize> {
        let k = self.start.partition_point(|&s| s <= t).checked_sub(1)?;
        (t < self.end[k]).then_some(k)
    }

    /// First run starting strictly after `t`.
    pub fn next_start(&self, t: u64) -> Option<usize> {
        let k = self.start.partition_point(|&s| s <= t);
        (k < self.len()).then_some(k)
    }

    /// Last run starting strictly before `t`.
    pub fn prev_start(&self, t: u64) -> Option<usize> {
        self.start.partition_point(|&s| s < t).checked_sub(1)
    }

    fn counted(&self, k: usize) -> bool {
        self.prefix[k + 1] > self.prefix[k]
    }

    /// Counted (busy) time inside `[t0, t1)`.
    pub fn busy(&self, t0: u64, t1: u64) -> u64 {
        let r = self.overlapping(t0, t1);
        if r.is_empty() {
            return 0;
        }
        let mut sum = self.prefix[r.end] - self.prefix[r.start];
        let first = r.start;
        if self.counted(first) && self.start[first] < t0 {
            sum -= t0 - self.start[first];
        }
        let last = r.end - 1;
        if self.counted(last) && self.end[last] > t1 {
            sum -= self.end[last] - t1.max(self.start[last]);
        }
        sum
    }

    /// (min, max) duration of runs `r`, from block summaries plus the partial blocks' runs.
    pub fn min_max(&self, r: Range<usize>) -> Option<(u64, u64)> {
        if r.is_empty() {
            return None;
        }
        let (mut mn, mut mx) = (u64::MAX, 0u64);
        let mut k = r.start;
        while k < r.end {
            if k & (BLOCK - 1) == 0 && k + BLOCK <= r.end {
                let (a, b) = self.blocks[k / BLOCK];
                mn = mn.min(a);
                mx = mx.max(b);
                k += BLOCK;
            } else {
                let d = self.end[k] - self.start[k];
                mn = mn.min(d);
                mx = mx.max(d);
                k += 1;
            }
        }
        Some((mn, mx))
    }

    /// Total duration of runs `r` (counted or not).
    pub fn total(&self, r: Range<usize>) -> u64 {
        // Uncounted runs have no prefix contribution, so sum them directly only if needed.
        self.prefix[r.end] - self.prefix[r.start]
    }

    /// Approximate heap bytes used.
    pub fn heap_bytes(&self) -> usize {
        self.start.capacity() * 8
            + self.end.capacity() * 8
            + self.who.capacity() * 4
            + self.prefix.capacity() * 8
            + self.blocks.capacity() * 16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Runs {
        // who 0 is idle (not counted).
        Runs::new(vec![(0, 10, 1), (10, 20, 0), (20, 25, 2), (30, 60, 1)], |w| w != 0)
    }

    #[test]
    fn busy_clips_partial_runs_and_skips_idle() {
        let r = sample();
        assert_eq!(r.busy(0, 100), 10 + 5 + 30);
        assert_eq!(r.busy(5, 22), 5 + 2);
        assert_eq!(r.busy(12, 18), 0);
        assert_eq!(r.busy(40, 50), 10);
        assert_eq!(r.busy(100, 200), 0);
    }

    #[test]
    fn lookups() {
        let r = sample();
        assert_eq!(r.at(0), Some(0));
        assert_eq!(r.at(27), None);
        assert_eq!(r.at(59), Some(3));
        assert_eq!(r.overlapping(9, 21), 0..3);
        assert_eq!(r.starting(9, 21), 1..3);
        assert_eq!(r.next_start(20), Some(3));
        assert_eq!(r.prev_start(20), Some(1));
        assert_eq!(r.min_max(0..4), Some((5, 30)));
    }

    #[test]
    fn block_min_max_matches_scan() {
        let runs: Vec<_> = (0..2000u64)
            .map(|k| (k * 100, k * 100 + (k * 7919) % 97 + 1, 1))
            .collect();
        let r = Runs::new(runs.clone(), |_| true);
        for (a, b) in [(0, 2000), (3, 1999), (255, 257), (256, 512), (100, 1900)] {
            let d = runs[a..b].iter().map(|x| x.1 - x.0);
            let want = (d.clone().min().unwrap(), d.max().unwrap());
            assert_eq!(r.min_max(a..b), Some(want), "{a}..{b}");
        }
    }
}
