//! A small direct-mapped cache of stage-1 leaves, for a hypervisor that
//! translates guest virtual addresses on every probe hit.
//!
//! An entry remembers one leaf: the VA block it maps, where its descriptor
//! lives and what it said, and where the block's memory is (all as physical
//! addresses the caller checked when it made the entry). A lookup matches
//! only under the same table base and TCR; the caller then re-reads the
//! descriptor and uses the entry only if it still says the same (one load
//! instead of a four-level walk). Upper-level tables are assumed to stay
//! put, which holds for Linux's kernel half and an RTOS's static tables.

/// One cached stage-1 leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct S1Entry {
    /// The TTBR's table base: the walk does not depend on the ASID (Linux
    /// keeps it in TTBR1, so it changes on every switch between processes).
    pub table: u64,
    /// TCR_EL1 when the entry was made.
    pub tcr: u64,
    /// The first VA of the block.
    pub va_base: u64,
    /// The block's size (a power of two); 0 in an empty entry.
    pub size: u64,
    /// Where the leaf descriptor is.
    pub desc_pa: u64,
    /// What the descriptor said.
    pub desc: u64,
    /// Where the block's memory is.
    pub out_pa: u64,
    /// Whether EL1 may write through it.
    pub writable: bool,
}

/// Entries of a cache: enough for the task structs and stacks of a busy
/// Linux (fork-heavy workloads bring new pages every few hits) and an
/// RTOS's few pages.
pub const S1_CACHE_ENTRIES: usize = 64;

/// Recent stage-1 translations of one core, direct-mapped by page.
#[derive(Clone, Debug)]
pub struct S1Cache {
    /// Empty entries have size 0 (no address is inside them).
    entries: [S1Entry; S1_CACHE_ENTRIES],
}

impl Default for S1Cache {
    fn default() -> Self {
        Self::new()
    }
}

impl S1Cache {
    const EMPTY: S1Entry = S1Entry {
        table: 0,
        tcr: 0,
        va_base: 0,
        size: 0,
        desc_pa: 0,
        desc: 0,
        out_pa: 0,
        writable: false,
    };

    /// An empty cache.
    pub const fn new() -> Self {
        S1Cache {
            entries: [Self::EMPTY; S1_CACHE_ENTRIES],
        }
    }

    /// The slot of the 4 KiB page holding `va` (a block's entry sits in the
    /// slot of the page it was made for; other pages of it miss once).
    fn slot(va: u64) -> usize {
        ((va >> 12) ^ (va >> 21)) as usize % S1_CACHE_ENTRIES
    }

    /// The entry translating `va` from table base `table` under `tcr`
    /// (writable if `write`).
    pub fn find(&self, va: u64, table: u64, tcr: u64, write: bool) -> Option<S1Entry> {
        let e = self.entries[Self::slot(va)];
        (va.wrapping_sub(e.va_base) < e.size && e.table == table && e.tcr == tcr && (!write || e.writable)).then_some(e)
    }

    /// Remembers `entry`, made for a walk of `va`, in `va`'s slot.
    pub fn insert(&mut self, va: u64, entry: S1Entry) {
        self.entries[Self::slot(va)] = entry;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: u64 = 0x4100_0000;
    const TCR: u64 = 0x35_b510_3510;

    fn page(va: u64, writable: bool) -> S1Entry {
        S1Entry {
            table: TABLE,
            tcr: TCR,
            va_base: va & !0xfff,
            size: 0x1000,
            desc_pa: 0x4100_2008,
            desc: 0x0060_0000_4120_0703,
            out_pa: 0x4120_0000,
            writable,
        }
    }

    #[test]
    fn an_empty_cache_misses_everything() {
        let c = S1Cache::new();
        assert_eq!(c.find(0, 0, 0, false), None);
        assert_eq!(c.find(0xffff_0000_4010_0000, TABLE, TCR, false), None);
    }

    #[test]
    fn a_page_hits_inside_and_misses_at_its_edges() {
        let va = 0xffff_0000_4010_5af0;
        let mut c = S1Cache::new();
        c.insert(va, page(va, true));
        assert_eq!(c.find(va, TABLE, TCR, false), Some(page(va, true)));
        assert_eq!(
            c.find(va & !0xfff, TABLE, TCR, true).map(|e| e.out_pa),
            Some(0x4120_0000)
        );
        assert!(c.find((va | 0xfff) + 1, TABLE, TCR, false).is_none(), "the next page");
        assert!(
            c.find((va & !0xfff) - 1, TABLE, TCR, false).is_none(),
            "the page before"
        );
    }

    #[test]
    fn another_table_base_or_tcr_misses() {
        let va = 0xffff_8000_8123_4000;
        let mut c = S1Cache::new();
        c.insert(va, page(va, true));
        assert!(c.find(va, TABLE + 0x1000, TCR, false).is_none());
        assert!(c.find(va, TABLE, TCR ^ 1, false).is_none());
    }

    #[test]
    fn a_read_only_entry_refuses_writes() {
        let va = 0xffff_0000_4011_0000;
        let mut c = S1Cache::new();
        c.insert(va, page(va, false));
        assert!(c.find(va, TABLE, TCR, false).is_some());
        assert!(c.find(va, TABLE, TCR, true).is_none());
    }

    #[test]
    fn a_block_is_found_from_other_pages_only_in_their_own_slot() {
        // A 2 MiB block made for its first page: that page hits; a page of
        // the block in another slot misses (once, then gets its own entry).
        let base = 0xffff_8000_8020_0000u64;
        let block = S1Entry {
            size: 0x20_0000,
            va_base: base,
            ..page(base, true)
        };
        let mut c = S1Cache::new();
        c.insert(base, block);
        assert_eq!(c.find(base + 0x10, TABLE, TCR, false), Some(block));
        let other = base + 0x1000;
        assert!(c.find(other, TABLE, TCR, false).is_none());
        c.insert(other, block);
        assert_eq!(
            c.find(other + 8, TABLE, TCR, false).map(|e| e.out_pa),
            Some(block.out_pa)
        );
    }

    #[test]
    fn pages_in_the_same_slot_replace_each_other() {
        let a = 0xffff_0000_4010_0000u64;
        // 64 pages further the slot repeats (the 2 MiB term is the same).
        let b = a + (S1_CACHE_ENTRIES as u64) * 0x1000;
        assert_eq!(S1Cache::slot(a), S1Cache::slot(b));
        let mut c = S1Cache::new();
        c.insert(a, page(a, true));
        c.insert(b, page(b, true));
        assert!(c.find(a, TABLE, TCR, false).is_none());
        assert!(c.find(b, TABLE, TCR, false).is_some());
    }
}
