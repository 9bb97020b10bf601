//! What a core keeps between hits: its copy of its VM's probe table (and
//! each probe's hits and cost on this core), and its stage-1 translations
//! (`guest_probe::s1_cache`), behind the [`FastView`] of guest memory the hit
//! path reads through.

use super::{table, Probe, MAX_PROBES, TABLE_GENERATION};
use crate::guestmem::{self, VmIpaMem};
use crate::percpu::MAX_CPUS;
use crate::read_sysreg;
use crate::sync::SpinLock;
use core::cell::Cell;
use core::sync::atomic::Ordering;
use guest_probe::a64;
use guest_probe::abi::fetch::{FetchPlan, PayloadBuf};
use guest_probe::abi::OsProfile;
use guest_probe::addr::{GuestVirtAddr, PhysAddr};
use guest_probe::emulate;
use guest_probe::regs::Ttbr;
use guest_probe::s1_cache::{S1Cache, S1Entry};
use guest_probe::walk::{Access, AccessError, Stage1, Translator};
use hyp_core::config::VmConfig;
use hyp_core::entry_times::EntryTimes;
use hyp_core::hit_cost::HitCost;

/// What a core keeps between hits: its stage-1 cache, its copy of its
/// VM's table, and its hits' statistics. The hit path takes only its own
/// core's; `list` and `remove` take each core's briefly to sum the
/// statistics (never while holding a table).
pub(super) struct HitCache {
    pub(super) s1: S1Cache,
    pub(super) table: TableCopy,
    /// The pages the current hit has read (see [`FastView`]).
    pub(super) pages: [(u64, u64); PAGE_MEMO],
}

/// What hits that carry data use on a core, beside the hit caches (which
/// switch and plain hits index: their layout stays): when tasks entered
/// functions with return probes, and the buffer values are fetched into
/// (reused, not zeroed per hit: a payload is read only as far as written).
pub(super) struct DataScratch {
    pub(super) entries: EntryTimes,
    pub(super) payload: PayloadBuf,
}

pub(super) static DATA_SCRATCH: [SpinLock<DataScratch>; MAX_CPUS] = [const {
    SpinLock::new(DataScratch {
        entries: EntryTimes::NEW,
        payload: PayloadBuf::NEW,
    })
}; MAX_CPUS];

pub(super) static HIT_CACHES: [SpinLock<HitCache>; MAX_CPUS] = [const {
    SpinLock::new(HitCache {
        s1: S1Cache::new(),
        table: TableCopy::new(),
        pages: [(0, 0); PAGE_MEMO],
    })
}; MAX_CPUS];

/// A core's copy of its VM's table, probes and OS profile (refreshed when
/// the table's generation moves; a hit reads them in place), and what each
/// probe's hits on this core cost.
pub(super) struct TableCopy {
    pub(super) vm: u8,
    /// The generation copied (`u32::MAX`: none yet).
    pub(super) seen: u32,
    pub(super) slots: [Option<Probe>; MAX_PROBES],
    pub(super) plans: [FetchPlan; MAX_PROBES],
    pub(super) profile: Option<OsProfile>,
    pub(super) stats: [SlotStats; MAX_PROBES],
}

/// One slot's hits on one core, for the insertion `serial` (0: none).
#[derive(Clone, Copy)]
pub(super) struct SlotStats {
    pub(super) serial: u32,
    pub(super) cost: HitCost,
}

impl SlotStats {
    pub(super) const fn new(serial: u32) -> Self {
        SlotStats {
            serial,
            cost: HitCost::NEW,
        }
    }
}

impl TableCopy {
    pub(super) const fn new() -> Self {
        TableCopy {
            vm: 0,
            seen: u32::MAX,
            slots: [None; MAX_PROBES],
            plans: [FetchPlan::EMPTY; MAX_PROBES],
            profile: None,
            stats: [SlotStats::new(0); MAX_PROBES],
        }
    }

    /// Copy `vm`'s table (under its lock, with the generation it is at).
    #[cold]
    pub(super) fn refresh(&mut self, vm: u8) {
        let Ok(t) = table(vm) else { return };
        let t = t.lock();
        self.slots = t.slots;
        // Only what a hit reads: a `simple` probe's label, another's whole
        // plan. All 256 plans are ~100 KiB, which every core that hits after
        // an add or remove would copy under the table's lock.
        for (i, p) in t.slots.iter().enumerate() {
            match p {
                Some(p) if p.simple => self.plans[i].label = t.plans[i].label,
                Some(_) => self.plans[i] = t.plans[i],
                None => {}
            }
        }
        self.profile = t.profile;
        self.vm = vm;
        self.seen = TABLE_GENERATION[usize::from(vm)].load(Ordering::Acquire);
    }

    /// Whether slot `slot` of this copy holds probe `id` at `site` (its
    /// statistics then belong to it). A probe missing from a current copy
    /// may be one being inserted right now (its HVC goes in before the table
    /// changes, under the table's lock): the copy is taken again under that
    /// lock before giving up. The caller then borrows the fields it needs
    /// (`slots[slot]`, `stats[slot]`, `plans[slot]` only when it has to).
    #[inline(always)]
    pub(super) fn holds(&mut self, vm: u8, slot: usize, id: u16, site: u64) -> bool {
        let Some(generation) = TABLE_GENERATION.get(usize::from(vm)) else {
            return false;
        };
        if self.vm != vm || self.seen != generation.load(Ordering::Acquire) {
            self.refresh(vm);
        }
        let found = |s: &Self| {
            s.slots
                .get(slot)
                .and_then(|p| p.as_ref())
                .is_some_and(|p| p.id == id && p.va == site)
        };
        if !found(self) {
            self.refresh(vm);
            if !found(self) {
                return false;
            }
        }
        if let (Some(Some(probe)), Some(stats)) = (self.slots.get(slot), self.stats.get_mut(slot)) {
            if stats.serial != probe.serial {
                *stats = SlotStats::new(probe.serial);
            }
        }
        true
    }

    /// This core's statistics of insertion `serial` (never 0) of `vm`'s `slot`.
    pub(super) fn stats_of(&self, vm: u8, slot: usize, serial: u32) -> Option<&SlotStats> {
        self.stats.get(slot).filter(|s| self.vm == vm && s.serial == serial)
    }
}

/// The EL1 translation registers of the running vCPU, read once per hit.
#[derive(Clone, Copy)]
pub(super) struct El1Regs {
    pub(super) mmu_on: bool,
    pub(super) wxn: bool,
    pub(super) ttbr0: u64,
    pub(super) ttbr1: u64,
    pub(super) tcr: u64,
}

impl El1Regs {
    pub(super) fn read() -> Self {
        let sctlr = read_sysreg!("sctlr_el1");
        El1Regs {
            mmu_on: sctlr & 1 != 0,
            wxn: sctlr & (1 << 19) != 0,
            ttbr0: read_sysreg!("ttbr0_el1"),
            ttbr1: read_sysreg!("ttbr1_el1"),
            tcr: read_sysreg!("tcr_el1"),
        }
    }

    pub(super) fn stage1(&self) -> Option<Stage1> {
        self.mmu_on
            .then(|| Stage1::new(self.ttbr0, self.ttbr1, self.tcr).with_wxn(self.wxn))
    }
}

/// Guest virtual memory for the hit path: stage 1 through the cache, or the
/// walker (decoded only on a miss); stage 2 from the partition's linear map.
pub(super) struct FastView<'a> {
    pub(super) regs: El1Regs,
    pub(super) mem: VmIpaMem,
    /// Whether lower-half (TTBR0) translations may be cached.
    pub(super) static_tables: bool,
    pub(super) walker: core::cell::OnceCell<Translator>,
    pub(super) cache: core::cell::RefCell<&'a mut S1Cache>,
    /// The pages this hit has read, (VA page, PA page), the first `paged`
    /// of them (the storage is the core's, kept between hits; a hit starts
    /// with none): a hit reads the same few pages again and again (the
    /// TCB, the globals), and within one trap nothing of this core's
    /// translation changes.
    pages: &'a [Cell<(u64, u64)>; PAGE_MEMO],
    paged: Cell<usize>,
}

/// Pages a [`FastView`] remembers: the globals, the current TCB, a name,
/// an argument's object (then the oldest goes).
pub(super) const PAGE_MEMO: usize = 4;

impl<'a> FastView<'a> {
    pub(super) fn new(
        vm: &'static VmConfig,
        cache: &'a mut S1Cache,
        pages: &'a mut [(u64, u64); PAGE_MEMO],
        static_tables: bool,
    ) -> Self {
        FastView {
            regs: El1Regs::read(),
            mem: VmIpaMem { vm },
            static_tables,
            walker: core::cell::OnceCell::new(),
            cache: core::cell::RefCell::new(cache),
            pages: Cell::from_mut(pages).as_array_of_cells(),
            paged: Cell::new(0),
        }
    }

    pub(super) fn walker(&self) -> &Translator {
        self.walker.get_or_init(|| Translator::new(self.regs.stage1(), None))
    }

    /// The PA of `va..va + len` for `access` (`len` ≥ 1, within one page):
    /// a page this hit read before, else the cache lookup (inlined into the
    /// caller), else a walk (a call).
    #[inline(always)]
    pub(super) fn pa(&self, va: u64, len: usize, access: Access) -> Result<u64, AccessError> {
        let page = va >> 12;
        let paged = self.paged.get();
        if access == Access::Read {
            let seen = &self.pages[..paged.min(PAGE_MEMO)];
            if let Some(p) = seen.iter().find(|p| p.get().0 == page) {
                return Ok(p.get().1 | (va & 0xfff));
            }
        }
        let pa = match self.cached_pa(va, access) {
            Some(pa) => pa,
            None => self.walk_pa(va, len, access)?,
        };
        if access == Access::Read {
            self.pages[paged % PAGE_MEMO].set((page, pa & !0xfff));
            self.paged.set(paged + 1);
        }
        Ok(pa)
    }

    /// Whether translations of `va`'s half may be cached, and from which
    /// table base.
    #[inline(always)]
    pub(super) fn cache_key(&self, va: u64) -> (bool, u64) {
        let upper = va >> 55 & 1 == 1;
        let cacheable = self.regs.mmu_on && (upper || self.static_tables);
        (
            cacheable,
            Ttbr(if upper { self.regs.ttbr1 } else { self.regs.ttbr0 }).baddr(),
        )
    }

    #[inline(always)]
    pub(super) fn cached_pa(&self, va: u64, access: Access) -> Option<u64> {
        let (cacheable, table) = self.cache_key(va);
        if !cacheable {
            return None;
        }
        let e = self
            .cache
            .borrow()
            .find(va, table, self.regs.tcr, access == Access::Write)?;
        // `desc_pa` was checked to be 8 bytes of this VM's RAM when the
        // entry was made, and descriptors are 8-aligned.
        let desc = guestmem::load_u64_aligned(e.desc_pa);
        (desc == e.desc).then(|| e.out_pa + (va - e.va_base))
    }

    /// `pa` on a cache miss: the walker, then a new cache entry.
    #[inline(never)]
    pub(super) fn walk_pa(&self, va: u64, len: usize, access: Access) -> Result<u64, AccessError> {
        let (cacheable, table) = self.cache_key(va);
        let vm = self.mem.vm;
        let t = self
            .walker()
            .translate(&self.mem, GuestVirtAddr::new(va), access)
            .map_err(AccessError::Fault)?;
        let unmapped = || AccessError::Memory {
            va: GuestVirtAddr::new(va),
            completed: 0,
            error: guest_probe::memory::MemError::Unmapped(PhysAddr::new(t.ipa.raw())),
        };
        let pa = crate::vm::ipa_to_pa(vm, t.ipa.raw(), len as u64).ok_or_else(unmapped)?;
        if let (true, Some(leaf)) = (cacheable, t.stage1) {
            let out_ipa = t.ipa.raw() & !(leaf.size - 1);
            // Cached only when the whole block and its descriptor are RAM.
            if let (Some(out_pa), Some(desc_pa)) = (
                crate::vm::ipa_to_pa(vm, out_ipa, leaf.size),
                crate::vm::ipa_to_pa(vm, leaf.entry, 8),
            ) {
                self.cache.borrow_mut().insert(
                    va,
                    S1Entry {
                        table,
                        tcr: self.regs.tcr,
                        va_base: va & !(leaf.size - 1),
                        size: leaf.size,
                        desc_pa,
                        desc: leaf.descriptor.0,
                        out_pa,
                        writable: t.el1.write,
                    },
                );
            }
        }
        Ok(pa)
    }

    /// Runs `f(pa, range of the buffer)` for each page-bounded piece of
    /// `va..va + len`.
    pub(super) fn access(
        &self,
        va: u64,
        len: usize,
        access: Access,
        mut f: impl FnMut(u64, core::ops::Range<usize>),
    ) -> Result<(), AccessError> {
        let mut done = 0;
        while done < len {
            let at = va.wrapping_add(done as u64);
            let n = ((0x1000 - (at & 0xfff)) as usize).min(len - done);
            f(self.pa(at, n, access)?, done..done + n);
            done += n;
        }
        Ok(())
    }
}

impl a64::VirtRead for FastView<'_> {
    fn read_virt(&self, va: GuestVirtAddr, buf: &mut [u8]) -> Result<(), AccessError> {
        self.access(va.raw(), buf.len(), Access::Read, |pa, r| {
            guestmem::copy_from_ram(pa, &mut buf[r])
        })
    }
}

impl emulate::VirtMem for FastView<'_> {
    fn write_virt(&mut self, va: GuestVirtAddr, data: &[u8]) -> Result<(), AccessError> {
        self.access(va.raw(), data.len(), Access::Write, |pa, r| {
            guestmem::copy_to_ram(pa, &data[r])
        })
    }
}
