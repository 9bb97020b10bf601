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
