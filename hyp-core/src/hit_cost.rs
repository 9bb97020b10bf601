//! What hits of a probe cost the hypervisor: counted per core on the hit
//! path (no allocation, no locks beyond the core's own), merged when a probe
//! is listed or removed, and reported as min, median and p99 bounds.

/// What hits of one probe cost in the hypervisor, in counter ticks from the
/// trap handler's first counter read to the return to the guest: min, max
/// and a log2 histogram (for the median and p99).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HitCost {
    /// Hits counted.
    pub count: u64,
    /// The cheapest hit (`u64::MAX` before the first: one compare a hit).
    least: u64,
    /// The dearest hit.
    pub max: u64,
    /// Bucket `b` counts hits of `2^(b-1)..2^b` ticks (bucket 0: 0 ticks).
    buckets: [u32; 32],
}

impl HitCost {
    /// No hits yet.
    pub const NEW: HitCost = HitCost {
        count: 0,
        least: u64::MAX,
        max: 0,
        buckets: [0; 32],
    };

    /// The cheapest hit (0 before any).
    pub fn min(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            self.least
        }
    }

    /// Both histograms in one (the per-core parts of a probe's cost).
    pub fn merge(&mut self, other: &HitCost) {
        if other.count == 0 {
            return;
        }
        self.least = self.least.min(other.least);
        self.count += other.count;
        self.max = self.max.max(other.max);
        for (b, o) in self.buckets.iter_mut().zip(other.buckets) {
            *b = b.saturating_add(o);
        }
    }

    /// Counts one hit of `ticks`.
    pub fn add(&mut self, ticks: u64) {
        self.least = self.least.min(ticks);
        self.count += 1;
        self.max = self.max.max(ticks);
        let b = (64 - ticks.leading_zeros()).min(31) as usize;
        self.buckets[b] = self.buckets[b].saturating_add(1);
    }

    /// Upper bound of the bucket holding quantile `q` (0..1).
    pub fn quantile(&self, q: f32) -> u64 {
        let total: u64 = self.buckets.iter().map(|&b| u64::from(b)).sum();
        let want = (total as f32 * q) as u64;
        let mut seen = 0;
        for (i, &b) in self.buckets.iter().enumerate() {
            seen += u64::from(b);
            if seen > want {
                // The last bucket holds everything from 2^30 up: only the
                // max bounds it.
                return if i == self.buckets.len() - 1 {
                    self.max
                } else {
                    ((1u64 << i) - 1).min(self.max)
                };
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_cost_has_no_hits() {
        let c = HitCost::NEW;
        assert_eq!((c.count, c.min(), c.max), (0, 0, 0));
        assert_eq!(c.quantile(0.5), 0);
    }

    #[test]
    fn min_max_and_quantile_bounds() {
        let mut c = HitCost::NEW;
        for t in [100, 90, 110, 95, 105, 2000] {
            c.add(t);
        }
        assert_eq!((c.count, c.min(), c.max), (6, 90, 2000));
        // 90..110 are in the 64..127 bucket: the median's bound is 127.
        assert_eq!(c.quantile(0.5), 127);
        // The p99 lies in 2000's bucket (1024..2047), bounded by the max.
        assert_eq!(c.quantile(0.99), 2000);
    }

    #[test]
    fn merging_is_adding_the_hits() {
        let (mut a, mut b, mut both) = (HitCost::NEW, HitCost::NEW, HitCost::NEW);
        for t in [5, 70, 300] {
            a.add(t);
            both.add(t);
        }
        for t in [3, 4000] {
            b.add(t);
            both.add(t);
        }
        a.merge(&b);
        assert_eq!(a, both);
        // Merging nothing changes nothing, and into nothing copies.
        let before = a;
        a.merge(&HitCost::NEW);
        assert_eq!(a, before);
        let mut empty = HitCost::NEW;
        empty.merge(&b);
        assert_eq!(empty, b);
    }

    #[test]
    fn huge_tick_counts_land_in_the_last_bucket() {
        let mut c = HitCost::NEW;
        c.add(u64::MAX);
        assert_eq!(c.quantile(0.5), u64::MAX);
    }
}
