//! One time base for both OSes: the hypervisor stamps RTOS records with the
//! shared counter, ftrace stamps events with its trace clock, and the
//! module's `clock_sync` events pair the two. [`ClockMap`] is the fit.

/// Maps shared-counter ticks to trace-clock nanoseconds: `ns = ns0 + (counter - c0) * rate`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockMap {
    /// Reference counter value.
    pub c0: u64,
    /// Trace clock at `c0`.
    pub ns0: u64,
    /// Nanoseconds per tick.
    pub rate: f64,
}

impl ClockMap {
    /// Fits `(counter, ns, freq_hz)` sync points; `None` without any.
    pub fn fit(points: &[(u64, u64, u64)]) -> Option<ClockMap> {
        let &(c0, ns0, freq) = points.first()?;
        let nominal = if freq > 0 { 1e9 / freq as f64 } else { 1.0 };
        if points.len() < 2 {
            return Some(ClockMap { c0, ns0, rate: nominal });
        }
        // Least squares on deltas from the first point, in f64 (deltas keep precision).
        let n = points.len() as f64;
        let xs: Vec<f64> = points.iter().map(|p| p.0.wrapping_sub(c0) as i64 as f64).collect();
        let ys: Vec<f64> = points.iter().map(|p| p.1.wrapping_sub(ns0) as i64 as f64).collect();
        let mx = xs.iter().sum::<f64>() / n;
        let my = ys.iter().sum::<f64>() / n;
        let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
        let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
        if sxx <= 0.0 {
            return Some(ClockMap { c0, ns0, rate: nominal });
        }
        let rate = sxy / sxx;
        // Re-anchor at the centroid so the fit's offset is exact there.
        let b = my - rate * mx;
        let ns0 = (ns0 as i128 + b.round() as i128).max(0) as u64;
        Some(ClockMap { c0, ns0, rate })
    }

    /// The trace-clock time of `counter`.
    pub fn ns(&self, counter: u64) -> u64 {
        let d = counter.wrapping_sub(self.c0) as i64 as f64 * self.rate;
        (self.ns0 as i128 + d.round() as i128).max(0) as u64
    }
}

/// Sync points on either side of an instant that its local fit uses.
pub const LOCAL_POINTS: usize = 3;

/// The `clock_sync` points of a recording, kept sorted by counter as they
/// arrive, and the clock fit *near* an instant: least squares over the
/// [`LOCAL_POINTS`] points before and after it (trace-cmd's guest time
/// sync interpolates between its samples too). A time's mapping depends only
/// on points close to it, so it is final once enough later points arrived
/// ([`SyncPoints::settled`]): a merge can stamp events while recording, and
/// stamps them exactly as a merge of the finished file does.
#[derive(Debug, Clone, Default)]
pub struct SyncPoints {
    points: Vec<(u64, u64, u64)>,
    /// The last fit and the window it was made from.
    cache: Option<(usize, usize, ClockMap)>,
}

impl SyncPoints {
    /// No points yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a `(counter, ns, freq_hz)` point (any order; duplicates kept once).
    pub fn insert(&mut self, point: (u64, u64, u64)) {
        let at = self.points.partition_point(|p| *p < point);
        if self.points.get(at) != Some(&point) {
            self.points.insert(at, point);
            self.cache = None;
        }
    }

    /// Points so far.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The points, by counter.
    pub fn points(&self) -> &[(u64, u64, u64)] {
        &self.points
    }

    /// The points `counter`'s fit uses, `lo..hi`, and whether that window
    /// is complete. It wants the LOCAL_POINTS points after `counter` and
    /// 2 × LOCAL_POINTS in all (near the start, the first ones); near the
    /// end, it takes the last 2 × LOCAL_POINTS there are until the rest come.
    fn window(&self, counter: u64) -> (usize, usize, bool) {
        let i = self.points.partition_point(|p| p.0 <= counter);
        let wanted = (i + LOCAL_POINTS).max(2 * LOCAL_POINTS);
        let hi = wanted.min(self.points.len());
        (hi.saturating_sub(2 * LOCAL_POINTS), hi, wanted <= self.points.len())
    }

    /// Whether `counter`'s mapping can no longer change: its window is complete.
    pub fn settled(&self, counter: u64) -> bool {
        self.window(counter).2
    }

    /// The trace-clock time of the last point `counter`'s fit uses (the
    /// newest one a merge must have waited for).
    pub fn window_end_ns(&self, counter: u64) -> Option<u64> {
        let (_, hi, _) = self.window(counter);
        self.points.get(hi.checked_sub(1)?).map(|p| p.1)
    }

    /// The fit near `counter`; `None` without points.
    pub fn near(&mut self, counter: u64) -> Option<ClockMap> {
        let (lo, hi, _) = self.window(counter);
        if hi == 0 {
            return None;
        }
        if let Some((a, b, m)) = self.cache {
            if (a, b) == (lo, hi) {
                return Some(m);
            }
        }
        let m = ClockMap::fit(&self.points[lo..hi])?;
        self.cache = Some((lo, hi, m));
        Some(m)
    }

    /// The trace-clock time of `counter` by the fit near it.
    pub fn ns(&mut self, counter: u64) -> Option<u64> {
        self.near(counter).map(|m| m.ns(counter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 62.5 MHz ticks; the trace clock runs 1 ppm fast after point 10 (a slew).
    fn point(i: u64) -> (u64, u64, u64) {
        let c = 1000 + i * 6_250_000;
        let mut ns = 5_000_000_000 + i * 100_000_000;
        if i > 10 {
            ns += (i - 10) * 100;
        }
        (c, ns, 62_500_000)
    }

    #[test]
    fn local_fit_follows_a_change_of_rate() {
        let mut s = SyncPoints::new();
        for i in 0..30 {
            s.insert(point(i));
        }
        // Exact on both straight stretches, away from the bend.
        assert_eq!(s.ns(point(3).0), Some(point(3).1));
        assert_eq!(s.ns(point(25).0 + 3_125_000), Some(point(25).1 + 50_000_050));
        let k = LOCAL_POINTS as u64;
        assert!(s.settled(point(29 - k).0));
        assert!(!s.settled(point(30 - k).0));
    }

    #[test]
    fn arrival_order_does_not_matter() {
        let mut a = SyncPoints::new();
        let mut b = SyncPoints::new();
        for i in 0..20 {
            a.insert(point(i));
            b.insert(point(19 - i));
        }
        b.insert(point(7));
        for c in [0, 1000, point(9).0 + 17, point(19).0 * 2] {
            assert_eq!(a.ns(c), b.ns(c));
        }
        assert_eq!(a.len(), 20);
    }
}
