//! When a core's records ring Linux's doorbell: moderated, so that a flood
//! of probe hits cannot turn into an interrupt storm in Linux.
//!
//! A record that finds the ring empty rings at once if the last doorbell is
//! at least `gap` ticks old (sparse records keep their latency); one that
//! comes sooner only marks the doorbell deferred, and the next return to the
//! guest after the gap rings it ([`Moderator::due`]). Crossing half the
//! ring's capacity always rings. So a core raises at most one doorbell per
//! gap plus one per half ring, however fast its probes hit, and no record
//! waits more than the gap (or until the core's next trap, at most its
//! guest's next timer tick) for one.

/// One core's doorbell state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Moderator {
    /// Counter time of the last doorbell.
    last: u64,
    /// A doorbell is owed, once the gap has passed.
    deferred: bool,
}

impl Moderator {
    /// No doorbell yet.
    pub const fn new() -> Moderator {
        Moderator {
            last: 0,
            deferred: false,
        }
    }

    /// A record of `slots` slots was just published at counter time `now`,
    /// leaving `pending` slots in a ring of `capacity`. `quiet_start`: a
    /// record that finds the ring empty does not ring at all (records from
    /// Linux's own cores, which the module polls). Whether to ring now.
    pub fn on_record(
        &mut self,
        now: u64,
        slots: u64,
        pending: u64,
        capacity: u64,
        gap: u64,
        quiet_start: bool,
    ) -> bool {
        let half = capacity / 2;
        let was = pending.wrapping_sub(slots);
        if was < half && pending >= half {
            return self.rang(now);
        }
        if pending != slots || quiet_start {
            return false;
        }
        if now.wrapping_sub(self.last) >= gap {
            return self.rang(now);
        }
        self.deferred = true;
        false
    }

    /// Whether a doorbell is owed (the cheap test on every return).
    pub fn deferred(&self) -> bool {
        self.deferred
    }

    /// On a return to the guest at counter time `now`: whether to ring the
    /// deferred doorbell now.
    pub fn due(&mut self, now: u64, gap: u64) -> bool {
        self.deferred && now.wrapping_sub(self.last) >= gap && self.rang(now)
    }

    fn rang(&mut self, now: u64) -> bool {
        self.last = now;
        self.deferred = false;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GAP: u64 = 100;
    const CAP: u64 = 4096;

    #[test]
    fn sparse_records_ring_at_once() {
        let mut m = Moderator::new();
        for t in [1_000, 2_000, 5_000] {
            assert!(m.on_record(t, 1, 1, CAP, GAP, false), "at {t}");
        }
        assert!(!m.deferred());
    }

    #[test]
    fn records_into_a_ring_already_rung_for_do_not_ring_again() {
        let mut m = Moderator::new();
        assert!(m.on_record(1_000, 1, 1, CAP, GAP, false));
        for (t, pending) in [(1_001, 2), (1_002, 3), (1_500, 4)] {
            assert!(!m.on_record(t, 1, pending, CAP, GAP, false));
        }
        assert!(!m.deferred(), "the first doorbell covers them");
    }

    /// A flood: the ring is drained as fast as it fills, so nearly every
    /// record finds it empty; at most one doorbell per gap, none lost.
    #[test]
    fn a_flood_rings_once_a_gap_and_the_owed_one_comes() {
        let mut m = Moderator::new();
        let mut rang = 0;
        for t in 1_000..11_000u64 {
            // Every record finds the ring empty (the drain keeps up).
            if m.on_record(t, 1, 1, CAP, GAP, false) {
                rang += 1;
            }
            if m.deferred() && m.due(t, GAP) {
                rang += 1;
            }
        }
        assert_eq!(rang, 10_000 / GAP as usize);
        // The last records' doorbell (the last one rang at 10,900) is owed
        // until the gap has passed.
        assert!(m.deferred());
        assert!(!m.due(10_950, GAP));
        assert!(m.due(11_000, GAP));
        assert!(!m.deferred());
    }

    #[test]
    fn half_the_ring_always_rings_and_linux_records_only_then() {
        let mut m = Moderator::new();
        assert!(!m.on_record(10, 1, 1, CAP, GAP, true), "Linux's own: polled");
        assert!(!m.deferred());
        assert!(m.on_record(11, 1, CAP / 2, CAP, GAP, true), "half full rings");
        // A record with data slots passes the half mark rather than hits it.
        let mut m = Moderator::new();
        assert!(m.on_record(5, 3, CAP / 2 + 1, CAP, GAP, false));
        assert!(!m.on_record(6, 1, CAP / 2 + 2, CAP, GAP, false), "past half: once");
    }
}
