//! The hit path: a probe's `HVC` trapped on this core. Count it, write the
//! record (with the current and next task read from the guest's memory at
//! the OS profile's offsets), and execute the displaced instruction.

use super::cache::{DataScratch, FastView, HitCache, TableCopy, DATA_SCRATCH, HIT_CACHES};
use super::patch::translator;
use super::step::start_step;
use super::Probe;
use crate::arch::{self, exceptions::TrapFrame};
use crate::guestmem::{self, VmPhysMem};
use crate::percpu::MAX_CPUS;
use crate::{read_sysreg, trace, vm, write_sysreg};
use core::sync::atomic::Ordering;
use guest_probe::a64;
use guest_probe::abi::fetch;
use guest_probe::abi::profile::{NameKind, OsKind};
use guest_probe::abi::{self, OsProfile, ProbeKind, Record, RecordKind, Stat, NAME_LEN};
use guest_probe::addr::GuestVirtAddr;
use guest_probe::emulate::{self, Execution};
use guest_probe::walk::Access;
use hyp_core::config::VmConfig;
use hyp_core::entry_times::{self, EntryKey};

/// A probe `id` was hit on this core: `frame.elr` is the site + 4.
pub fn hit(vm: &'static VmConfig, frame: &mut TrapFrame, id: u16) {
    let now = arch::counter();
    let site = frame.elr.wrapping_sub(4);
    // Probe ids are slot index + 1.
    let slot = usize::from(id).wrapping_sub(1);
    // This core's cache: only this core takes it here, so the lock is
    // uncontended; the probe's definition is this core's copy (no lock of
    // the shared table unless it changed).
    let mut cache = HIT_CACHES[arch::cpu_id() % MAX_CPUS].lock();
    let HitCache { s1, table, pages } = &mut *cache;
    if !table.holds(vm.id, slot, id, site) {
        drop(cache);
        return not_a_probe(vm, frame, id, site);
    }
    let TableCopy {
        slots,
        plans,
        profile,
        stats,
        ..
    } = table;
    let (Some(Some(probe)), Some(stats)) = (slots.get(slot), stats.get_mut(slot)) else {
        return;
    };
    let profile = profile.as_ref();
    // Its hits are the cost's count, added as the hit ends.
    let first_hit = stats.cost.count == 0;
    trace::count(Stat::ProbeHits);
    let static_tables = profile.is_some_and(|p| p.kind() == Some(OsKind::UcosII));
    // Guest memory through the guest's stage 1 (cached per core) and the
    // partition's linear stage 2.
    let mut view = FastView::new(vm, s1, pages, static_tables);
    if trace::ENABLED.load(Ordering::Relaxed) {
        if probe.simple {
            // The common case, kept tight: a switch or a plain hit.
            let switch = probe.kind == ProbeKind::ContextSwitch;
            let mut r = Record {
                timestamp: now,
                pc: site,
                kind: if switch {
                    RecordKind::ContextSwitch as u16
                } else {
                    RecordKind::ProbeHit as u16
                },
                probe_id: id,
                vm: vm.id,
                cpu: arch::cpu_id() as u8,
                ..Record::default()
            };
            if let Some(profile) = profile {
                let _ = describe_tasks(profile, &view, probe.kind, &mut r);
            }
            if !switch {
                r.next_name = plans[slot].label;
            }
            trace::emit(&r);
        } else {
            hit_with_data(vm, frame, probe, &plans[slot], profile, &view, now);
        }
    }
    execute_displaced(vm, frame, probe, first_hit, &mut view, now, site);
    drop(view);
    stats.cost.add(arch::counter().wrapping_sub(now));
}

/// A hit that does more than record the task: a function's entry (note
/// when the task entered), a return site (the duration since), fetch
/// arguments (run the plan through the VM's own translations and write the
/// values after the record). Out of line: switch and plain hits do not pay
/// for the payload buffer.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn hit_with_data(
    vm: &VmConfig,
    frame: &TrapFrame,
    probe: &Probe,
    plan: &fetch::FetchPlan,
    profile: Option<&OsProfile>,
    view: &FastView,
    now: u64,
) {
    let site = frame.elr.wrapping_sub(4);
    // This core's: only this core takes it, inside its hit cache's lock.
    let mut scratch = DATA_SCRATCH[arch::cpu_id() % MAX_CPUS].lock();
    let DataScratch { entries, payload } = &mut *scratch;
    if probe.kind == ProbeKind::Entry {
        let task = current_task(profile, view);
        entries.enter(entry_key(vm, (probe.id, probe.serial), task), now);
        return;
    }
    let mut r = Record {
        timestamp: now,
        pc: site,
        kind: RecordKind::ProbeHit as u16,
        probe_id: probe.id,
        vm: vm.id,
        cpu: arch::cpu_id() as u8,
        next_name: plan.label,
        ..Record::default()
    };
    // uC/OS-II's current TCB pointer as the record read it: an argument
    // through `OSTCBCur` uses it rather than loading it again.
    let cur_tcb = profile.and_then(|p| Some((p.os_tcb_cur.va, describe_tasks(p, view, ProbeKind::Plain, &mut r)?)));
    let mut src = HitFetch {
        frame,
        rd: HitReader { view },
        comm: &r.prev_name,
        prio: cur_tcb.map(|_| u64::from(r.prev_prio)),
        cur_tcb,
    };
    let mut n = fetch::run(plan, &mut src, payload);
    if probe.kind == ProbeKind::Return {
        r.next_state = abi::HIT_RETURN;
        let task = match cur_tcb {
            Some((_, tcb)) => tcb,
            None => current_task(profile, view),
        };
        let duration = entries
            .leave(entry_key(vm, probe.entry, task))
            .map(|t0| entry_times::ticks_to_ns(now.wrapping_sub(t0), arch::counter_freq()));
        n = fetch::append_int(payload, n, abi::DURATION_ARG, fetch::ValueType::U64, duration);
    }
    trace::emit_with_data(&r, payload.words(n));
}

/// The task running now (what an entry and its return are matched by):
/// uC/OS-II's `OSTCBCur`, Linux's `current` (SP_EL0 in the kernel).
fn current_task(profile: Option<&OsProfile>, view: &FastView) -> u64 {
    match profile.and_then(|p| p.kind()) {
        Some(OsKind::UcosII) => HitReader { view }.u64_at(profile.map_or(0, |p| p.os_tcb_cur.va)),
        _ => read_sysreg!("sp_el0"),
    }
}

fn entry_key(vm: &VmConfig, (probe, serial): (u16, u32), task: u64) -> EntryKey {
    EntryKey {
        vm: vm.id,
        probe,
        serial,
        task,
    }
}

/// What a hit's arguments are fetched from: the trapped registers, the
/// current task as the record describes it, and guest memory through the
/// VM's stage 1 and stage 2 (nothing outside the VM translates).
struct HitFetch<'a, 'b, 'c> {
    frame: &'c TrapFrame,
    rd: HitReader<'a, 'b>,
    /// The record's (read only by `$comm`: not copied at each hit).
    comm: &'c [u8; NAME_LEN],
    prio: Option<u64>,
    /// `OSTCBCur`'s address and the value the record was made from.
    cur_tcb: Option<(u64, u64)>,
}

impl fetch::FetchSource for HitFetch<'_, '_, '_> {
    fn reg(&self, n: u8) -> u64 {
        self.frame.x.get(usize::from(n)).copied().unwrap_or(0)
    }
    fn sp(&self) -> u64 {
        guest_sp(self.frame)
    }
    fn comm(&self) -> [u8; 16] {
        *self.comm
    }
    fn prio(&self) -> Option<u64> {
        self.prio
    }
    #[inline(always)]
    fn load(&mut self, va: u64, size: u8) -> Option<u64> {
        match self.cur_tcb {
            Some((at, tcb)) if at == va && size == 8 => Some(tcb),
            _ => self.rd.value_inline(va, size),
        }
    }
    fn read_within_page(&mut self, va: u64, buf: &mut [u8]) -> bool {
        match self.rd.view.pa(va, buf.len(), Access::Read) {
            Ok(pa) => {
                guestmem::read_bytes(pa, buf);
                true
            }
            Err(_) => false,
        }
    }
}

/// An `HVC #0x8000|id` with no probe `id` at `site` in this core's (fresh)
/// copy of the table: the site runs again (counted as a rerun). A probe
/// removed by another core while this one trapped left the original word
/// behind; a probe added meanwhile is in the table now. But this core may
/// have fetched the `HVC` before the removal stored the original word and
/// still hold that copy: QEMU keeps a block it translated while another
/// core stored to it, and would loop here for ever. So, with no add or
/// remove in between (the table's lock), the word is stored again, which
/// drops every core's copy of it. An `HVC` of ours with no probe is the
/// guest's own doing, and stops the VM.
#[cold]
#[inline(never)]
pub(super) fn not_a_probe(vm: &'static VmConfig, frame: &mut TrapFrame, id: u16, site: u64) {
    trace::count(Stat::Reruns);
    let pa = translator()
        .translate(&VmPhysMem { vm }, GuestVirtAddr::new(site), Access::Execute)
        .ok()
        .map(|t| (t.ipa.raw(), t.pa.raw()))
        .filter(|&(ipa, pa)| crate::vm::ipa_to_pa(vm, ipa, 4) == Some(pa));
    let ours = abi::probe_hvc(id);
    let stray_hvc = pa.is_none_or(|(_, pa)| {
        let Ok(table) = super::table(vm.id) else { return true };
        let table = table.lock();
        if table.slots.iter().flatten().any(|p| p.id == id && p.va == site) {
            return false; // added meanwhile: the next trap is its hit
        }
        let word = guestmem::load_le(pa, 4) as u32;
        if Some(word) == ours {
            return true;
        }
        guestmem::store_again_u32(pa, word);
        arch::sync_icache(pa);
        false
    });
    if stray_hvc {
        vm::stop_vm(
            vm,
            frame,
            format_args!("HVC #{:#x} with no probe of ours there", id | 0x8000),
        );
    }
    frame.elr = site;
}

/// The trap frame as the register file of an emulated instruction (no copy
/// of the general registers; the stack pointer is read once and written
/// back only if it changed).
pub(super) struct FrameRegs<'a> {
    pub(super) frame: &'a mut TrapFrame,
    pub(super) sp: u64,
}

impl emulate::RegisterFile for FrameRegs<'_> {
    fn x(&self, n: u8) -> u64 {
        self.frame.x[usize::from(n)]
    }
    fn set_x(&mut self, n: u8, v: u64) {
        self.frame.x[usize::from(n)] = v;
    }
    fn sp(&self) -> u64 {
        self.sp
    }
    fn set_sp(&mut self, v: u64) {
        self.sp = v;
    }
    fn pc(&self) -> u64 {
        self.frame.elr
    }
    fn set_pc(&mut self, v: u64) {
        self.frame.elr = v;
    }
    fn nzcv(&self) -> u32 {
        (self.frame.spsr as u32) & 0xf000_0000
    }
}

pub(super) fn execute_displaced(
    vm: &'static VmConfig,
    frame: &mut TrapFrame,
    probe: &Probe,
    first_hit: bool,
    view: &mut FastView,
    now: u64,
    site: u64,
) {
    let id = probe.id;
    match probe.exec {
        Execution::ReadDaif { rt } => {
            if rt != 31 {
                frame.x[usize::from(rt)] = frame.spsr & 0x3c0;
            }
            frame.elr = site + 4;
        }
        Execution::ReadCounter { rt } => {
            // CNTVOFF is 0, so virtual = physical.
            if rt != 31 {
                frame.x[usize::from(rt)] = now;
            }
            frame.elr = site + 4;
        }
        Execution::Simulate(sim) => {
            // On the trap frame itself (no copy of the register file):
            // a PC-relative instruction writes at most one register and the PC.
            let sp = guest_sp(frame);
            frame.elr = site;
            let mut regs = FrameRegs { frame, sp };
            if let Err(e) = a64::simulate(sim, &mut regs, &*view) {
                vm::stop_vm(
                    vm,
                    regs.frame,
                    format_args!("probe {id}: simulating the displaced instruction failed: {e}"),
                );
            }
        }
        Execution::Emulate(ref e) => {
            let sp = guest_sp(frame);
            frame.elr = site;
            let mut regs = FrameRegs { frame, sp };
            match emulate::emulate_decoded(e, &mut regs, view) {
                Ok(()) => {
                    if regs.sp != sp {
                        set_guest_sp(regs.frame, regs.sp);
                    }
                }
                // A fault: let the hardware run it (and fault as it would).
                Err(err) => {
                    if first_hit {
                        crate::warn!("probe {id}: emulation failed ({err}); single-stepping instead");
                    }
                    start_step(vm, frame, probe)
                }
            }
        }
        Execution::OutOfLine => {
            crate::arch::out_of_line::run(frame, probe.original, crate::arch::cpu_id());
            frame.elr = site + 4;
        }
        Execution::Step => start_step(vm, frame, probe),
    }
}

pub(super) fn set_guest_sp(frame: &TrapFrame, sp: u64) {
    if frame.spsr & 0xf == 0b0101 {
        write_sysreg!("sp_el1", sp);
    } else {
        write_sysreg!("sp_el0", sp);
    }
}

/// The stack pointer the guest was using (SPSR.M: EL1h → SP_EL1, else SP_EL0).
pub(super) fn guest_sp(frame: &TrapFrame) -> u64 {
    if frame.spsr & 0xf == 0b0101 {
        read_sysreg!("sp_el1")
    } else {
        read_sysreg!("sp_el0")
    }
}

/// Reads guest virtual memory during one hit (through the [`FastView`]).
pub(super) struct HitReader<'a, 'b> {
    pub(super) view: &'a FastView<'b>,
}

impl HitReader<'_, '_> {
    /// Fills `buf` from `va`; false if any byte is unmapped.
    pub(super) fn read(&mut self, va: u64, buf: &mut [u8]) -> bool {
        a64::VirtRead::read_virt(self.view, GuestVirtAddr::new(va), buf).is_ok()
    }

    /// The `size`-byte (1..=8) little-endian value at `va`, if mapped: one
    /// translation and one load when it lies within a page.
    pub(super) fn value(&mut self, va: u64, size: u8) -> Option<u64> {
        self.value_inline(va, size)
    }

    /// [`HitReader::value`], inlined where a hit with arguments makes
    /// several loads (the TCB reads keep theirs a call: inlined there, it
    /// makes the switch hit's field reads dearer).
    #[inline(always)]
    pub(super) fn value_inline(&mut self, va: u64, size: u8) -> Option<u64> {
        let n = usize::from(size);
        if n == 0 || n > 8 {
            return None;
        }
        if (va & 0xfff) as usize + n <= 0x1000 {
            let pa = self.view.pa(va, n, Access::Read).ok()?;
            return Some(guestmem::load_le(pa, size));
        }
        let mut b = [0u8; 8];
        self.read(va, &mut b[..n]).then(|| u64::from_le_bytes(b))
    }

    pub(super) fn u64_at(&mut self, va: u64) -> u64 {
        self.value(va, 8).unwrap_or(0)
    }
}

/// Fills `r`'s current (and, at a switch, next) task from the guest's
/// memory. Returns the current task's `OSTCBCur` as read, for uC/OS-II.
#[inline(always)]
pub(super) fn describe_tasks(profile: &OsProfile, view: &FastView, kind: ProbeKind, r: &mut Record) -> Option<u64> {
    let mut rd = HitReader { view };
    let rd = &mut rd;
    match profile.kind() {
        Some(OsKind::UcosII) => {
            let cur = rd.u64_at(profile.os_tcb_cur.va);
            ucos_task(profile, rd, cur, &mut r.prev_prio, &mut r.prev_state, &mut r.prev_name);
            if kind == ProbeKind::ContextSwitch {
                let next = rd.u64_at(profile.os_tcb_high_rdy.va);
                ucos_task(profile, rd, next, &mut r.next_prio, &mut r.next_state, &mut r.next_name);
            }
            return Some(cur);
        }
        Some(OsKind::Linux) => {
            // In the kernel, SP_EL0 holds `current` (arm64 Linux ≥ 4.x).
            let task = read_sysreg!("sp_el0");
            if profile.task_comm.present() {
                read_name(
                    rd,
                    task.wrapping_add(u64::from(profile.task_comm.offset)),
                    &mut r.prev_name,
                );
            }
        }
        None => {}
    }
    None
}

pub(super) fn read_field(rd: &mut HitReader, base: u64, f: abi::profile::Field) -> u64 {
    if !f.present() {
        return 0;
    }
    rd.value(base.wrapping_add(u64::from(f.offset)), f.size as u8)
        .unwrap_or(0)
}

pub(super) fn ucos_task(
    p: &OsProfile,
    rd: &mut HitReader,
    tcb: u64,
    prio: &mut u8,
    state: &mut u16,
    name: &mut [u8; NAME_LEN],
) {
    if tcb == 0 {
        return unreadable(state, name);
    }
    // A TCB within one page is translated once for all its fields.
    let size = u64::from(p.tcb_size);
    let whole = if size != 0 && (tcb & 0xfff) + size <= 0x1000 {
        rd.view.pa(tcb, size as usize, Access::Read).ok()
    } else {
        None
    };
    // Not the VM's RAM through its own stage 1 and the partition's stage 2
    // (unmapped, a device, another VM's memory): nothing is read.
    if whole.is_none() && rd.value(tcb, 1).is_none() {
        return unreadable(state, name);
    }
    let field = |rd: &mut HitReader, f: abi::profile::Field| match whole {
        Some(pa) if f.present() && f.size <= 8 && u64::from(f.offset) + u64::from(f.size) <= size => {
            guestmem::load_le(pa + u64::from(f.offset), f.size as u8)
        }
        _ => read_field(rd, tcb, f),
    };
    *prio = field(rd, p.tcb_prio) as u8;
    *state = field(rd, p.tcb_stat) as u16;
    if *state == 0 && field(rd, p.tcb_dly) != 0 {
        *state = abi::STATE_DELAYED;
    }
    match p.name_kind() {
        Some(NameKind::Pointer) => {
            let s = field(rd, p.tcb_task_name);
            if s != 0 {
                read_name(rd, s, name);
                if name[0] == 0 && rd.value(s, 1).is_none() {
                    unreadable(state, name);
                }
            }
        }
        Some(NameKind::Inline) => read_name(rd, tcb.wrapping_add(u64::from(p.tcb_task_name.offset)), name),
        _ => {}
    }
}

/// Marks a task the guest's pointers do not lead to (see
/// [`abi::STATE_UNREADABLE`]).
#[cold]
#[inline(never)]
fn unreadable(state: &mut u16, name: &mut [u8; NAME_LEN]) {
    *state |= abi::STATE_UNREADABLE;
    *name = [0; NAME_LEN];
    name[..abi::UNREADABLE_NAME.len()].copy_from_slice(abi::UNREADABLE_NAME);
}

/// A NUL-terminated name at `va`, at most NAME_LEN - 1 bytes: two 8-byte
/// reads (the translation from the cache, or a walk), or byte by byte up to
/// the first unreadable byte when those 16 bytes cross into another page.
#[inline(always)]
pub(super) fn read_name(rd: &mut HitReader, va: u64, out: &mut [u8; NAME_LEN]) {
    let within_page = (va & 0xfff) as usize + NAME_LEN <= 0x1000;
    let pa = if within_page {
        rd.view
            .cached_pa(va, Access::Read)
            .or_else(|| rd.view.walk_pa(va, NAME_LEN, Access::Read).ok())
    } else {
        None
    };
    match pa {
        Some(pa) => {
            let (lo, hi) = Record::name_words(guestmem::load_le(pa, 8), guestmem::load_le(pa + 8, 8));
            out[..8].copy_from_slice(&lo.to_le_bytes());
            out[8..].copy_from_slice(&hi.to_le_bytes());
        }
        None => *out = Record::name_from_raw(read_name_bytewise(rd, va)),
    }
}

/// `read_name` byte by byte, up to the first unreadable byte.
#[inline(never)]
pub(super) fn read_name_bytewise(rd: &mut HitReader, va: u64) -> [u8; NAME_LEN] {
    let mut raw = [0u8; NAME_LEN];
    for (i, b) in raw[..NAME_LEN - 1].iter_mut().enumerate() {
        let mut one = [0u8];
        if !rd.read(va.wrapping_add(i as u64), &mut one) {
            break;
        }
        *b = one[0];
    }
    raw
}
