//! When each task entered a function with a return probe: the entry probe
//! notes the time, a return site takes it back, and the difference is the
//! call's duration. One table per core (a task that moves to another core
//! between entry and return has no duration there: the value is marked
//! missing, never wrong). Bounded: [`ENTRIES`] calls in flight per core;
//! the oldest is forgotten first.

/// Calls in flight a core remembers.
pub const ENTRIES: usize = 32;

/// Whose entry: a VM's entry probe (its id and insertion serial, so a
/// probe removed and added again never sees the old one's times) and the
/// task (its TCB or `task_struct` address).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EntryKey {
    /// The VM.
    pub vm: u8,
    /// The entry probe's id.
    pub probe: u16,
    /// The entry probe's insertion serial (never 0 for a real probe).
    pub serial: u32,
    /// The task.
    pub task: u64,
}

impl EntryKey {
    /// The VM, probe and serial in one word (0 only for an empty slot: a
    /// real probe's serial is never 0).
    const fn tag(&self) -> u64 {
        (self.vm as u64) << 48 | (self.probe as u64) << 32 | self.serial as u64
    }
}

/// A core's calls in flight. Each hit searches all slots: by task first
/// (one word compare rules out almost every slot), then by [`EntryKey::tag`].
#[derive(Clone, Copy, Debug)]
pub struct EntryTimes {
    tasks: [u64; ENTRIES],
    tags: [u64; ENTRIES],
    times: [u64; ENTRIES],
    /// Where the next new entry goes (round robin: the oldest is replaced).
    next: usize,
}

impl Default for EntryTimes {
    fn default() -> Self {
        Self::NEW
    }
}

impl EntryTimes {
    /// Empty.
    pub const NEW: Self = Self {
        tasks: [0; ENTRIES],
        tags: [0; ENTRIES],
        times: [0; ENTRIES],
        next: 0,
    };

    /// `key` entered at `now` (a recursive or repeated entry replaces the
    /// earlier one: the innermost call is timed).
    pub fn enter(&mut self, key: EntryKey, now: u64) {
        let i = match self.find(&key) {
            Some(i) => i,
            None => {
                let i = self.next;
                self.next = (i + 1) % ENTRIES;
                i
            }
        };
        self.tasks[i] = key.task;
        self.tags[i] = key.tag();
        self.times[i] = now;
    }

    /// The time `key` entered, forgotten as it is returned.
    pub fn leave(&mut self, key: EntryKey) -> Option<u64> {
        if key.serial == 0 {
            return None;
        }
        let i = self.find(&key)?;
        self.tasks[i] = 0;
        self.tags[i] = 0;
        Some(self.times[i])
    }

    fn find(&self, key: &EntryKey) -> Option<usize> {
        let tag = key.tag();
        (0..ENTRIES).find(|&i| self.tasks[i] == key.task && self.tags[i] == tag)
    }
}

/// Counter ticks as nanoseconds at `freq_hz` (0 when the frequency is unknown).
pub const fn ticks_to_ns(ticks: u64, freq_hz: u64) -> u64 {
    if freq_hz == 0 {
        return 0;
    }
    (ticks as u128 * 1_000_000_000 / freq_hz as u128) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(task: u64) -> EntryKey {
        EntryKey {
            vm: 1,
            probe: 4,
            serial: 9,
            task,
        }
    }

    #[test]
    fn each_task_gets_its_own_entry_back_once() {
        let mut t = EntryTimes::NEW;
        t.enter(key(0xa0), 100);
        t.enter(key(0xb0), 150);
        assert_eq!(t.leave(key(0xb0)), Some(150));
        assert_eq!(t.leave(key(0xb0)), None);
        // Another insertion of the probe never sees this one's times.
        assert_eq!(
            t.leave(EntryKey {
                serial: 10,
                ..key(0xa0)
            }),
            None
        );
        t.enter(key(0xa0), 120);
        assert_eq!(t.leave(key(0xa0)), Some(120));
    }

    #[test]
    fn an_entry_is_found_only_by_all_of_its_key() {
        let mut t = EntryTimes::NEW;
        let k = key(0);
        assert_eq!(t.leave(k), None, "an empty slot is nobody's");
        t.enter(k, 5);
        for other in [
            EntryKey { vm: 2, ..k },
            EntryKey { probe: 5, ..k },
            EntryKey { serial: 10, ..k },
            EntryKey { task: 1, ..k },
        ] {
            assert_eq!(t.leave(other), None, "{other:?}");
        }
        assert_eq!(t.leave(k), Some(5));
    }

    #[test]
    fn the_oldest_call_is_forgotten_first() {
        let mut t = EntryTimes::NEW;
        for task in 0..ENTRIES as u64 + 1 {
            t.enter(key(task + 1), task);
        }
        assert_eq!(t.leave(key(1)), None);
        assert_eq!(t.leave(key(2)), Some(1));
        assert_eq!(t.leave(key(ENTRIES as u64 + 1)), Some(ENTRIES as u64));
        assert_eq!(t.leave(EntryKey { serial: 0, ..key(2) }), None);
    }

    #[test]
    fn ticks_convert_without_overflow() {
        assert_eq!(ticks_to_ns(62_500_000, 62_500_000), 1_000_000_000);
        assert_eq!(ticks_to_ns(u64::MAX, 1_000_000_000), u64::MAX);
        assert_eq!(ticks_to_ns(5, 0), 0);
        assert_eq!(ticks_to_ns(1, 62_500_000), 16);
    }
}
