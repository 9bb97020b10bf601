//! The probe manager: insert `HVC #0x8000|id` into a running guest's code,
//! and on each hit record the current (and next) task, then execute the
//! displaced instruction — simulated when it is PC-relative, single-stepped
//! in place otherwise.
//!
//! Adding and removing happen on the target VM's own core: its translation
//! registers live there, and running the change there means the vCPU is
//! paused (in EL2) while its code changes. A request from another core is
//! posted in a mailbox and signalled with an SGI; the caller waits for the
//! answer.

use crate::arch::{self, exceptions::TrapFrame};
use crate::guestmem::{VmIpaMem, VmPhysMem};
use crate::percpu::{this_cpu, MAX_CPUS};
use crate::sync::SpinLock;
use crate::{gic, read_sysreg, trace, write_sysreg};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use guest_probe::a64::{self, Class, Regs};
use guest_probe::abi::profile::{NameKind, OsKind};
use guest_probe::abi::{self, HvError, OsProfile, ProbeKind, Record, RecordKind, Stat, NAME_LEN};
use guest_probe::addr::{GuestVirtAddr, PhysAddr};
use guest_probe::emulate::{self, Execution};
use guest_probe::memory::GuestMemory;
use guest_probe::regs::Ttbr;
use guest_probe::walk::{Access, AccessError, Stage1, Stage2, Translator};
use hyp_core::config::{self, VmConfig};

/// Probes per VM.
pub const MAX_PROBES: usize = 256;
/// The SGI that asks a core to run a probe request.
pub const REQUEST_SGI: u32 = 9;
const MAX_VMS: usize = 2;

#[derive(Clone, Copy)]
struct Probe {
    id: u16,
    va: u64,
    pa: u64,
    original: u32,
    kind: ProbeKind,
    /// How a hit executes the displaced instruction (decided at insertion).
    exec: Execution,
    /// Which insertion this is (ids are slot numbers and come back; a
    /// core's statistics belong to one insertion).
    serial: u32,
}

/// What hits of one probe cost in the hypervisor, in counter ticks from the
/// trap handler's first counter read to the return to the guest: min, max
/// and a log2 histogram (for the median and p99).
#[derive(Clone, Copy)]
struct HitCost {
    count: u64,
    min: u64,
    max: u64,
    buckets: [u32; 32],
}

impl HitCost {
    const NEW: HitCost = HitCost {
        count: 0,
        min: 0,
        max: 0,
        buckets: [0; 32],
    };

    /// Both histograms in one (the per-core parts of a probe's cost).
    fn merge(&mut self, other: &HitCost) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 || other.min < self.min {
            self.min = other.min;
        }
        self.count += other.count;
        self.max = self.max.max(other.max);
        for (b, o) in self.buckets.iter_mut().zip(other.buckets) {
            *b = b.saturating_add(o);
        }
    }

    fn add(&mut self, ticks: u64) {
        if self.count == 0 || ticks < self.min {
            self.min = ticks;
        }
        self.count += 1;
        self.max = self.max.max(ticks);
        let b = (64 - ticks.leading_zeros()).min(31) as usize;
        self.buckets[b] = self.buckets[b].saturating_add(1);
    }

    /// Upper bound of the bucket holding quantile `q` (0..1).
    fn quantile(&self, q: f32) -> u64 {
        let total: u64 = self.buckets.iter().map(|&b| u64::from(b)).sum();
        let want = (total as f32 * q) as u64;
        let mut seen = 0;
        for (i, &b) in self.buckets.iter().enumerate() {
            seen += u64::from(b);
            if seen > want {
                return ((1u64 << i) - 1).min(self.max);
            }
        }
        self.max
    }
}

/// A VM's probes (the definitions: hits are counted per core, see
/// [`TableCopy`]) and its OS profile.
struct VmProbes {
    slots: [Option<Probe>; MAX_PROBES],
    profile: Option<OsProfile>,
    /// The serial of the next insertion.
    next_serial: u32,
}

static TABLES: [SpinLock<VmProbes>; MAX_VMS] = [const {
    SpinLock::new(VmProbes {
        slots: [None; MAX_PROBES],
        profile: None,
        next_serial: 1,
    })
}; MAX_VMS];

/// Bumped (under the table's lock, see [`table_changed`]) whenever a VM's
/// probes or OS profile change, so cores refresh their copies before the
/// next hit.
static TABLE_GENERATION: [AtomicU32; MAX_VMS] = [const { AtomicU32::new(0) }; MAX_VMS];

/// Call with `vm`'s table locked, after changing it.
fn table_changed(vm: u8) {
    TABLE_GENERATION[usize::from(vm)].fetch_add(1, Ordering::Release);
}

fn table(vm_id: u8) -> Result<&'static SpinLock<VmProbes>, HvError> {
    TABLES.get(usize::from(vm_id)).ok_or(HvError::InvalidArgument)
}

fn partition() -> &'static config::Partition {
    crate::partition()
}

fn target_vm(vm_id: u64) -> Result<&'static VmConfig, HvError> {
    let id = u8::try_from(vm_id).map_err(|_| HvError::InvalidArgument)?;
    partition().vm(id).ok_or(HvError::InvalidArgument)
}

// --- cross-core requests -------------------------------------------------

const IDLE: u32 = 0;
const POSTED: u32 = 1;
const DONE: u32 = 2;
/// A requester is filling the mailbox.
const CLAIMED: u32 = 3;
const OP_ADD: u64 = 1;
const OP_REMOVE: u64 = 2;

struct Mailbox {
    state: AtomicU32,
    op: AtomicU64,
    args: [AtomicU64; 3],
    result: AtomicU64,
}

static MAILBOXES: [Mailbox; MAX_CPUS] = [const {
    Mailbox {
        state: AtomicU32::new(IDLE),
        op: AtomicU64::new(0),
        args: [const { AtomicU64::new(0) }; 3],
        result: AtomicU64::new(0),
    }
}; MAX_CPUS];

/// Run `op` on `vm`'s core: here if that is this core, else through its mailbox.
fn on_vm_core(vm: &'static VmConfig, op: u64, args: [u64; 3]) -> Result<u64, HvError> {
    let target = usize::from(vm.cpus[0]);
    if target == arch::cpu_id() {
        return run_op(vm, op, args);
    }
    let mb = &MAILBOXES[target];
    if mb
        .state
        .compare_exchange(IDLE, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return Err(HvError::Busy);
    }
    mb.op.store(op, Ordering::Relaxed);
    for (slot, v) in mb.args.iter().zip(args) {
        slot.store(v, Ordering::Relaxed);
    }
    mb.state.store(POSTED, Ordering::Release);
    gic::send_sgi(REQUEST_SGI, target);
    // The target answers within microseconds unless its VM was stopped.
    let deadline = arch::counter() + arch::counter_freq() / 5;
    loop {
        if mb.state.load(Ordering::Acquire) == DONE {
            let raw = mb.result.load(Ordering::Relaxed);
            mb.state.store(IDLE, Ordering::Release);
            return match raw as i64 {
                code if code < 0 => Err(HvError::from_code(code).unwrap_or(HvError::Busy)),
                _ => Ok(raw),
            };
        }
        if arch::counter() > deadline {
            // Take the request back if it was never picked up.
            if mb
                .state
                .compare_exchange(POSTED, IDLE, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                crate::warn!(
                    "CPU{target} did not answer a probe request (is VM {} running?)",
                    vm.name
                );
                return Err(HvError::Busy);
            }
        }
        core::hint::spin_loop();
    }
}

/// The REQUEST_SGI handler: run the posted request for this core.
pub fn serve_mailbox() {
    let mb = &MAILBOXES[arch::cpu_id()];
    if mb.state.load(Ordering::Acquire) != POSTED {
        return;
    }
    let Some(vm) = this_cpu().vm else { return };
    let args = [0, 1, 2].map(|i| mb.args[i].load(Ordering::Relaxed));
    let r = run_op(vm, mb.op.load(Ordering::Relaxed), args);
    mb.result.store(abi::encode_result(r), Ordering::Relaxed);
    mb.state.store(DONE, Ordering::Release);
}

fn run_op(vm: &'static VmConfig, op: u64, a: [u64; 3]) -> Result<u64, HvError> {
    match op {
        OP_ADD => add_here(vm, a[0], ProbeKind::from_raw(a[1]).ok_or(HvError::InvalidArgument)?),
        OP_REMOVE => remove_here(vm, a[0]),
        _ => Err(HvError::NotSupported),
    }
}

// --- the hypercalls --------------------------------------------------------

pub fn request_add(vm_id: u64, va: u64, kind: u64) -> Result<u64, HvError> {
    let vm = target_vm(vm_id)?;
    ProbeKind::from_raw(kind).ok_or(HvError::InvalidArgument)?;
    if va & 3 != 0 {
        return Err(HvError::InvalidArgument);
    }
    let start = arch::counter();
    let r = on_vm_core(vm, OP_ADD, [va, kind, 0]);
    let ticks = arch::counter().wrapping_sub(start);
    if let Ok(id) = r {
        crate::info!(
            "VM {}: probe {id} in place {} ticks ({} us) after the request",
            vm.name,
            ticks,
            ticks * 1_000_000 / arch::counter_freq().max(1)
        );
    }
    r
}

pub fn request_remove(vm_id: u64, id: u64) -> Result<u64, HvError> {
    let vm = target_vm(vm_id)?;
    if id == 0 || id > MAX_PROBES as u64 {
        return Err(HvError::InvalidArgument);
    }
    on_vm_core(vm, OP_REMOVE, [id, 0, 0])
}

/// PROBE_LIST: the `index`-th probe of `vm`: (kind << 16 | id, va, hits).
pub fn list(vm_id: u64, index: u64) -> Result<(u64, u64, u64), HvError> {
    let vm = target_vm(vm_id)?;
    let index = usize::try_from(index).map_err(|_| HvError::NotFound)?;
    // Copied out: the cores' statistics are locked after the table is let go
    // (a hit holds its core's statistics, then may take the table).
    let p = *table(vm.id)?
        .lock()
        .slots
        .iter()
        .flatten()
        .nth(index)
        .ok_or(HvError::NotFound)?;
    let (hits, _) = hit_totals(vm, &p);
    Ok(((p.kind as u64) << 16 | u64::from(p.id), p.va, hits))
}

/// A probe's hits and their cost, summed over its VM's cores.
fn hit_totals(vm: &VmConfig, p: &Probe) -> (u64, HitCost) {
    let slot = usize::from(p.id) - 1;
    let mut hits = 0;
    let mut cost = HitCost::NEW;
    for &core in vm.cpus {
        let Some(cache) = HIT_CACHES.get(usize::from(core)) else {
            continue;
        };
        let cache = cache.lock();
        if let Some(s) = cache.table.stats_of(vm.id, slot, p.serial) {
            hits += s.hits;
            cost.merge(&s.cost);
        }
    }
    (hits, cost)
}

/// PROFILE_SET: copy an OS profile blob from the caller's memory.
pub fn set_profile(caller: &VmConfig, vm_id: u64, ipa: u64, len: u64) -> Result<u64, HvError> {
    let vm = target_vm(vm_id)?;
    let len = usize::try_from(len).map_err(|_| HvError::InvalidArgument)?;
    if len != abi::profile::PROFILE_SIZE {
        return Err(HvError::InvalidArgument);
    }
    let pa = crate::vm::ipa_to_pa(caller, ipa, len as u64).ok_or(HvError::Unmapped)?;
    let mut bytes = [0u8; abi::profile::PROFILE_SIZE];
    crate::guestmem::read_bytes(pa, &mut bytes);
    let profile = OsProfile::from_bytes(&bytes).map_err(|_| HvError::InvalidArgument)?;
    crate::info!("VM {}: OS profile set ({:?})", vm.name, profile.kind());
    table(vm.id)?.lock().profile = Some(profile);
    table_changed(vm.id);
    Ok(0)
}

/// A profile the host loaded with the images (boot core, before VMs run).
pub fn set_boot_profile(vm: &VmConfig, bytes: &[u8]) {
    match OsProfile::from_bytes(bytes) {
        Ok(p) => {
            crate::info!("VM {}: OS profile from the boot info ({:?})", vm.name, p.kind());
            if let Ok(t) = table(vm.id) {
                t.lock().profile = Some(p);
                table_changed(vm.id);
            }
        }
        Err(e) => crate::warn!(
            "VM {}: the boot OS profile is invalid ({e:?}); probes will not name tasks",
            vm.name
        ),
    }
}

// --- translation -------------------------------------------------------------

/// The running vCPU's translation regime: its stage 1 and our stage 2.
fn translator() -> Translator {
    let stage2 = Stage2::new(read_sysreg!("vttbr_el2"), read_sysreg!("vtcr_el2")).ok();
    Translator::new(El1Regs::read().stage1(), stage2)
}

/// Write one instruction word at a checked PA and make it visible to
/// instruction fetch on every core.
fn patch(mem: &mut VmPhysMem, pa: u64, word: u32) -> Result<(), HvError> {
    mem.write(PhysAddr::new(pa), &word.to_le_bytes())
        .map_err(|_| HvError::Unmapped)?;
    arch::sync_icache(pa);
    Ok(())
}

fn add_here(vm: &'static VmConfig, va: u64, kind: ProbeKind) -> Result<u64, HvError> {
    let mut mem = VmPhysMem { vm };
    let tr = translator();
    let t = tr
        .translate(&mem, GuestVirtAddr::new(va), Access::Execute)
        .map_err(|fault| {
            crate::warn!("probe at {va:#x} in VM {} refused: {fault}", vm.name);
            HvError::Unmapped
        })?;
    if !t.el1.exec {
        crate::warn!("probe at {va:#x} in VM {} refused: not executable at EL1", vm.name);
        return Err(HvError::Unmapped);
    }
    if crate::vm::ipa_to_pa(vm, t.ipa.raw(), 4) != Some(t.pa.raw()) {
        crate::warn!(
            "probe at {va:#x} in VM {} refused: IPA {:#x} is not its RAM",
            vm.name,
            t.ipa.raw()
        );
        return Err(HvError::Denied);
    }
    // The site in context (for exclusive sequences), as far as it is mapped.
    let mut window = [0u32; 17];
    let mut first = 0;
    for (i, w) in window.iter_mut().enumerate() {
        let at = (va as i64 + (i as i64 - 8) * 4) as u64;
        let mut b = [0u8; 4];
        match tr.read_virt(&mem, GuestVirtAddr::new(at), &mut b, Access::Inspect) {
            Ok(()) => *w = u32::from_le_bytes(b),
            Err(_) if i < 8 => first = i + 1,
            Err(_) => break,
        }
    }
    let mut t_lock = table(vm.id)?.lock();
    if t_lock.slots.iter().flatten().any(|p| p.va == va) {
        return Err(HvError::Exists);
    }
    let original = window[8];
    if abi::hvc_imm(original).is_some() {
        // A probe of ours already here (or the guest's own HVC).
        return Err(HvError::Exists);
    }
    let class = a64::classify_site(&window[first..], 8 - first);
    if let Class::Refused(why) = class {
        crate::warn!("probe at {va:#x} in VM {} refused: {why} ({original:#010x})", vm.name);
        return Err(HvError::Unsafe);
    }
    let slot = t_lock.slots.iter().position(|s| s.is_none()).ok_or(HvError::NoSpace)?;
    let id = slot as u16 + 1;
    let hvc = abi::probe_hvc(id).ok_or(HvError::NoSpace)?;
    patch(&mut mem, t.pa.raw(), hvc)?;
    let exec = emulate::plan(original, class);
    let serial = t_lock.next_serial;
    t_lock.next_serial = serial.wrapping_add(1).max(1);
    t_lock.slots[slot] = Some(Probe {
        id,
        va,
        pa: t.pa.raw(),
        original,
        kind,
        exec,
        serial,
    });
    table_changed(vm.id);
    drop(t_lock);
    crate::info!(
        "VM {}: probe {id} at {va:#x} (PA {:#x}, {:?})",
        vm.name,
        t.pa.raw(),
        exec
    );
    Ok(u64::from(id))
}

fn remove_here(vm: &'static VmConfig, id: u64) -> Result<u64, HvError> {
    let mut mem = VmPhysMem { vm };
    let p = {
        let mut t = table(vm.id)?.lock();
        let slot = t
            .slots
            .iter()
            .position(|s| s.is_some_and(|p| u64::from(p.id) == id))
            .ok_or(HvError::NotFound)?;
        let p = t.slots[slot].ok_or(HvError::NotFound)?;
        // Whatever state a hit left it in (HVC, or the original mid-step),
        // the site ends with its original word (if that fails, the probe
        // stays listed).
        patch(&mut mem, p.pa, p.original)?;
        t.slots[slot] = None;
        table_changed(vm.id);
        p
    };
    let (hits, cost) = hit_totals(vm, &p);
    crate::info!(
        "VM {}: probe {} at {:#x} removed after {} hits; handler cost in counter ticks min {} median <{} p99 <{} max {}",
        vm.name,
        p.id,
        p.va,
        hits,
        cost.min,
        cost.quantile(0.5),
        cost.quantile(0.99),
        cost.max
    );
    Ok(hits)
}

// --- the hit path -----------------------------------------------------------------

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
    let HitCache { s1, table } = &mut *cache;
    let Some((probe, stats, profile)) = table.hit(vm.id, slot, id, site) else {
        drop(cache);
        return not_a_probe(vm, frame, id, site);
    };
    stats.hits += 1;
    let first_hit = stats.hits == 1;
    trace::count(Stat::ProbeHits);
    let static_tables = profile.is_some_and(|p| p.kind() == Some(OsKind::UcosII));
    // Guest memory through the guest's stage 1 (cached per core) and the
    // partition's linear stage 2.
    let mut view = FastView::new(vm, s1, static_tables);
    if trace::ENABLED.load(Ordering::Relaxed) {
        let mut r = Record {
            timestamp: now,
            pc: site,
            kind: match probe.kind {
                ProbeKind::ContextSwitch => RecordKind::ContextSwitch as u16,
                ProbeKind::Plain => RecordKind::ProbeHit as u16,
            },
            probe_id: id,
            vm: vm.id,
            cpu: arch::cpu_id() as u8,
            ..Record::default()
        };
        if let Some(profile) = profile {
            describe_tasks(profile, &view, probe.kind, &mut r);
        }
        trace::emit(&r);
    }
    execute_displaced(vm, frame, probe, first_hit, &mut view, now, site);
    drop(view);
    stats.cost.add(arch::counter().wrapping_sub(now));
}

/// An `HVC #0x8000|id` with no probe `id` at `site` in this core's (fresh)
/// copy of the table. A probe removed by another core while this one
/// trapped leaves the original word behind: run that. Anything else is
/// the guest's own doing.
#[cold]
fn not_a_probe(vm: &'static VmConfig, frame: &mut TrapFrame, id: u16, site: u64) {
    let tr = translator();
    let mem = VmPhysMem { vm };
    let mut word = [0u8; 4];
    let ours = abi::probe_hvc(id);
    let still_hvc = tr
        .read_virt(&mem, GuestVirtAddr::new(site), &mut word, Access::Execute)
        .map_or(true, |()| Some(u32::from_le_bytes(word)) == ours);
    if still_hvc {
        crate::trap::stop_vm(
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
struct FrameRegs<'a> {
    frame: &'a mut TrapFrame,
    sp: u64,
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
}

fn execute_displaced(
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
            let mut regs = Regs {
                x: frame.x,
                sp: guest_sp(frame),
                pc: site,
                nzcv: (frame.spsr as u32) & 0xf000_0000,
            };
            if let Err(e) = a64::simulate(sim, &mut regs, &*view) {
                crate::trap::stop_vm(
                    vm,
                    frame,
                    format_args!("probe {id}: simulating the displaced instruction failed: {e}"),
                );
            }
            frame.x = regs.x;
            frame.elr = regs.pc;
            frame.spsr = (frame.spsr & !0xf000_0000) | u64::from(regs.nzcv & 0xf000_0000);
        }
        Execution::Emulate(e) => {
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
        Execution::Step => start_step(vm, frame, probe),
    }
}

fn set_guest_sp(frame: &TrapFrame, sp: u64) {
    if frame.spsr & 0xf == 0b0101 {
        write_sysreg!("sp_el1", sp);
    } else {
        write_sysreg!("sp_el0", sp);
    }
}

/// The stack pointer the guest was using (SPSR.M: EL1h → SP_EL1, else SP_EL0).
fn guest_sp(frame: &TrapFrame) -> u64 {
    if frame.spsr & 0xf == 0b0101 {
        read_sysreg!("sp_el1")
    } else {
        read_sysreg!("sp_el0")
    }
}

/// Reads guest virtual memory during one hit (through the [`FastView`]).
struct HitReader<'a, 'b> {
    view: &'a FastView<'b>,
}

impl HitReader<'_, '_> {
    /// Fills `buf` from `va`; false if any byte is unmapped.
    fn read(&mut self, va: u64, buf: &mut [u8]) -> bool {
        a64::VirtRead::read_virt(self.view, GuestVirtAddr::new(va), buf).is_ok()
    }

    /// The `size`-byte (1..=8) little-endian value at `va`, if mapped: one
    /// translation and one load when it lies within a page.
    fn value(&mut self, va: u64, size: u8) -> Option<u64> {
        let n = usize::from(size);
        if n == 0 || n > 8 {
            return None;
        }
        if (va & 0xfff) as usize + n <= 0x1000 {
            let pa = self.view.pa(va, n, Access::Read).ok()?;
            return Some(crate::guestmem::load_le(pa, size));
        }
        let mut b = [0u8; 8];
        self.read(va, &mut b[..n]).then(|| u64::from_le_bytes(b))
    }

    fn u64_at(&mut self, va: u64) -> u64 {
        self.value(va, 8).unwrap_or(0)
    }
}

fn describe_tasks(profile: &OsProfile, view: &FastView, kind: ProbeKind, r: &mut Record) {
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
}

fn read_field(rd: &mut HitReader, base: u64, f: abi::profile::Field) -> u64 {
    if !f.present() {
        return 0;
    }
    rd.value(base.wrapping_add(u64::from(f.offset)), f.size as u8)
        .unwrap_or(0)
}

fn ucos_task(p: &OsProfile, rd: &mut HitReader, tcb: u64, prio: &mut u8, state: &mut u16, name: &mut [u8; NAME_LEN]) {
    if tcb == 0 {
        return;
    }
    // A TCB within one page is translated once for all its fields.
    let size = u64::from(p.tcb_size);
    let whole = if size != 0 && (tcb & 0xfff) + size <= 0x1000 {
        rd.view.pa(tcb, size as usize, Access::Read).ok()
    } else {
        None
    };
    let field = |rd: &mut HitReader, f: abi::profile::Field| match whole {
        Some(pa) if f.present() && f.size <= 8 && u64::from(f.offset) + u64::from(f.size) <= size => {
            crate::guestmem::load_le(pa + u64::from(f.offset), f.size as u8)
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
            }
        }
        Some(NameKind::Inline) => read_name(rd, tcb.wrapping_add(u64::from(p.tcb_task_name.offset)), name),
        _ => {}
    }
}

/// A NUL-terminated name at `va`, at most NAME_LEN - 1 bytes: two 8-byte
/// reads (the translation from the cache, or a walk), or byte by byte up to
/// the first unreadable byte when those 16 bytes cross into another page.
#[inline(always)]
fn read_name(rd: &mut HitReader, va: u64, out: &mut [u8; NAME_LEN]) {
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
            let (lo, hi) = Record::name_words(crate::guestmem::load_le(pa, 8), crate::guestmem::load_le(pa + 8, 8));
            out[..8].copy_from_slice(&lo.to_le_bytes());
            out[8..].copy_from_slice(&hi.to_le_bytes());
        }
        None => *out = Record::name_from_raw(read_name_bytewise(rd, va)),
    }
}

/// `read_name` byte by byte, up to the first unreadable byte.
#[inline(never)]
fn read_name_bytewise(rd: &mut HitReader, va: u64) -> [u8; NAME_LEN] {
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

// --- single-stepping the displaced instruction ----------------------------------------

/// What a core must undo when its single step completes.
#[derive(Clone, Copy)]
pub struct Step {
    vm: u8,
    id: u16,
    pa: u64,
    daif: u64,
    mdscr: u64,
}

const SPSR_SS: u64 = 1 << 21;
const SPSR_IF: u64 = 0b11 << 6;
const MDSCR_SS: u64 = 1;
const MDCR_TDE: u64 = 1 << 8;

fn start_step(vm: &'static VmConfig, frame: &mut TrapFrame, probe: &Probe) {
    let mut mem = VmPhysMem { vm };
    if patch(&mut mem, probe.pa, probe.original).is_err() {
        crate::trap::stop_vm(
            vm,
            frame,
            format_args!("probe {}: cannot restore the original instruction", probe.id),
        );
    }
    let mdscr = read_sysreg!("mdscr_el1");
    this_cpu().step = Some(Step {
        vm: vm.id,
        id: probe.id,
        pa: probe.pa,
        daif: frame.spsr & SPSR_IF,
        mdscr,
    });
    // Step exactly the original instruction, with interrupts masked so the
    // step is not taken into the guest's IRQ handler, and debug exceptions
    // routed here.
    frame.elr = probe.va;
    frame.spsr |= SPSR_SS | SPSR_IF;
    write_sysreg!("mdscr_el1", mdscr | MDSCR_SS);
    write_sysreg!("mdcr_el2", read_sysreg!("mdcr_el2") | MDCR_TDE);
    arch::isb();
}

/// After any trap on a core with a step in flight (normally the software
/// step exception): put the probe back and restore the guest's state.
pub fn finish_step(frame: &mut TrapFrame) -> bool {
    let Some(step) = this_cpu().step.take() else {
        return false;
    };
    write_sysreg!("mdscr_el1", step.mdscr);
    write_sysreg!("mdcr_el2", read_sysreg!("mdcr_el2") & !MDCR_TDE);
    frame.spsr = (frame.spsr & !(SPSR_SS | SPSR_IF)) | step.daif;
    if let (Ok(t), Some(vm)) = (table(step.vm), partition().vm(step.vm)) {
        let still_there = t
            .lock()
            .slots
            .iter()
            .flatten()
            .any(|p| p.id == step.id && p.pa == step.pa);
        if still_there {
            if let Some(hvc) = abi::probe_hvc(step.id) {
                let _ = patch(&mut VmPhysMem { vm }, step.pa, hvc);
            }
        }
    }
    true
}

// --- a per-core cache of stage-1 translations ---------------------------------------

/// What a core keeps between hits: its stage-1 cache, its copy of its
/// VM's table, and its hits' statistics. The hit path takes only its own
/// core's; `list` and `remove` take each core's briefly to sum the
/// statistics (never while holding a table).
struct HitCache {
    s1: S1Cache,
    table: TableCopy,
}

static HIT_CACHES: [SpinLock<HitCache>; MAX_CPUS] = [const {
    SpinLock::new(HitCache {
        s1: S1Cache::new(),
        table: TableCopy::new(),
    })
}; MAX_CPUS];

/// A core's copy of its VM's table, probes and OS profile (refreshed when
/// the table's generation moves; a hit reads them in place), and what each
/// probe's hits on this core cost.
struct TableCopy {
    vm: u8,
    /// The generation copied (`u32::MAX`: none yet).
    seen: u32,
    slots: [Option<Probe>; MAX_PROBES],
    profile: Option<OsProfile>,
    stats: [SlotStats; MAX_PROBES],
}

/// One slot's hits on one core, for the insertion `serial` (0: none).
#[derive(Clone, Copy)]
struct SlotStats {
    serial: u32,
    hits: u64,
    cost: HitCost,
}

impl SlotStats {
    const fn new(serial: u32) -> Self {
        SlotStats {
            serial,
            hits: 0,
            cost: HitCost::NEW,
        }
    }
}

impl TableCopy {
    const fn new() -> Self {
        TableCopy {
            vm: 0,
            seen: u32::MAX,
            slots: [None; MAX_PROBES],
            profile: None,
            stats: [SlotStats::new(0); MAX_PROBES],
        }
    }

    /// Copy `vm`'s table (under its lock, with the generation it is at).
    #[cold]
    fn refresh(&mut self, vm: u8) {
        let Ok(t) = table(vm) else { return };
        let t = t.lock();
        self.slots = t.slots;
        self.profile = t.profile;
        self.vm = vm;
        self.seen = TABLE_GENERATION[usize::from(vm)].load(Ordering::Acquire);
    }

    /// The probe `id` at `site`, its statistics on this core and the VM's
    /// OS profile. A probe missing from a current copy may be one being
    /// inserted right now (its HVC goes in before the table changes, under
    /// the table's lock): the copy is taken again under that lock before
    /// giving up.
    #[inline(always)]
    fn hit(&mut self, vm: u8, slot: usize, id: u16, site: u64) -> Option<(&Probe, &mut SlotStats, Option<&OsProfile>)> {
        let generation = TABLE_GENERATION.get(usize::from(vm))?.load(Ordering::Acquire);
        if self.vm != vm || self.seen != generation {
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
                return None;
            }
        }
        let probe = self.slots[slot].as_ref()?;
        let stats = &mut self.stats[slot];
        if stats.serial != probe.serial {
            *stats = SlotStats::new(probe.serial);
        }
        Some((probe, stats, self.profile.as_ref()))
    }

    /// This core's statistics of insertion `serial` (never 0) of `vm`'s `slot`.
    fn stats_of(&self, vm: u8, slot: usize, serial: u32) -> Option<&SlotStats> {
        self.stats.get(slot).filter(|s| self.vm == vm && s.serial == serial)
    }
}

/// One stage-1 leaf: the VA block it maps, where its descriptor lives and
/// what it said, and where the block's memory is (all as PAs, checked
/// against the VM's RAM when the entry was made).
#[derive(Clone, Copy)]
struct S1Entry {
    /// The TTBR's table base: the walk does not depend on the ASID (Linux
    /// keeps it in TTBR1, so it changes on every switch between processes).
    table: u64,
    tcr: u64,
    va_base: u64,
    size: u64,
    desc_pa: u64,
    desc: u64,
    out_pa: u64,
    writable: bool,
}

/// Recent stage-1 translations, per core. An entry is used only while the
/// table base of its half and TCR_EL1 are unchanged and its leaf descriptor still
/// reads the same (one memory read instead of a four-level walk). Upper-level
/// tables are assumed to stay put: true of Linux's kernel half and of an
/// RTOS's static tables, so user halves are cached only for an RTOS.
struct S1Cache {
    /// Direct-mapped by page (see `slot`); empty entries have size 0 (no
    /// address is inside them).
    entries: [S1Entry; S1_CACHE_ENTRIES],
}

/// Enough for the task structs and stacks of a busy Linux (fork-heavy
/// workloads bring new pages every few hits) and an RTOS's few pages.
const S1_CACHE_ENTRIES: usize = 64;

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

    const fn new() -> Self {
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
    fn find(&self, va: u64, table: u64, tcr: u64, write: bool) -> Option<S1Entry> {
        let e = self.entries[Self::slot(va)];
        (va.wrapping_sub(e.va_base) < e.size && e.table == table && e.tcr == tcr && (!write || e.writable)).then_some(e)
    }
}

/// The EL1 translation registers of the running vCPU, read once per hit.
#[derive(Clone, Copy)]
struct El1Regs {
    mmu_on: bool,
    wxn: bool,
    ttbr0: u64,
    ttbr1: u64,
    tcr: u64,
}

impl El1Regs {
    fn read() -> Self {
        let sctlr = read_sysreg!("sctlr_el1");
        El1Regs {
            mmu_on: sctlr & 1 != 0,
            wxn: sctlr & (1 << 19) != 0,
            ttbr0: read_sysreg!("ttbr0_el1"),
            ttbr1: read_sysreg!("ttbr1_el1"),
            tcr: read_sysreg!("tcr_el1"),
        }
    }

    fn stage1(&self) -> Option<Stage1> {
        self.mmu_on
            .then(|| Stage1::new(self.ttbr0, self.ttbr1, self.tcr).with_wxn(self.wxn))
    }
}

/// Guest virtual memory for the hit path: stage 1 through the cache, or the
/// walker (decoded only on a miss); stage 2 from the partition's linear map.
struct FastView<'a> {
    regs: El1Regs,
    mem: VmIpaMem,
    /// Whether lower-half (TTBR0) translations may be cached.
    static_tables: bool,
    walker: core::cell::OnceCell<Translator>,
    cache: core::cell::RefCell<&'a mut S1Cache>,
}

impl<'a> FastView<'a> {
    fn new(vm: &'static VmConfig, cache: &'a mut S1Cache, static_tables: bool) -> Self {
        FastView {
            regs: El1Regs::read(),
            mem: VmIpaMem { vm },
            static_tables,
            walker: core::cell::OnceCell::new(),
            cache: core::cell::RefCell::new(cache),
        }
    }

    fn walker(&self) -> &Translator {
        self.walker.get_or_init(|| Translator::new(self.regs.stage1(), None))
    }

    /// The PA of `va..va + len` for `access` (`len` ≥ 1, within one page).
    /// The cache lookup is inlined into the caller; a walk is a call.
    #[inline(always)]
    fn pa(&self, va: u64, len: usize, access: Access) -> Result<u64, AccessError> {
        match self.cached_pa(va, access) {
            Some(pa) => Ok(pa),
            None => self.walk_pa(va, len, access),
        }
    }

    /// Whether translations of `va`'s half may be cached, and from which
    /// table base.
    #[inline(always)]
    fn cache_key(&self, va: u64) -> (bool, u64) {
        let upper = va >> 55 & 1 == 1;
        let cacheable = self.regs.mmu_on && (upper || self.static_tables);
        (
            cacheable,
            Ttbr(if upper { self.regs.ttbr1 } else { self.regs.ttbr0 }).baddr(),
        )
    }

    #[inline(always)]
    fn cached_pa(&self, va: u64, access: Access) -> Option<u64> {
        let (cacheable, table) = self.cache_key(va);
        if !cacheable {
            return None;
        }
        let e = self
            .cache
            .borrow()
            .find(va, table, self.regs.tcr, access == Access::Write)?;
        // SAFETY: `desc_pa` was checked to be 8 bytes of this VM's RAM
        // (identity-mapped at EL2) when the entry was made; the guest may
        // change it concurrently, hence volatile.
        let desc = unsafe { core::ptr::read_volatile(e.desc_pa as *const u64) };
        (desc == e.desc).then(|| e.out_pa + (va - e.va_base))
    }

    /// `pa` on a cache miss: the walker, then a new cache entry.
    #[inline(never)]
    fn walk_pa(&self, va: u64, len: usize, access: Access) -> Result<u64, AccessError> {
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
                self.cache.borrow_mut().entries[S1Cache::slot(va)] = S1Entry {
                    table,
                    tcr: self.regs.tcr,
                    va_base: va & !(leaf.size - 1),
                    size: leaf.size,
                    desc_pa,
                    desc: leaf.descriptor.0,
                    out_pa,
                    writable: t.el1.write,
                };
            }
        }
        Ok(pa)
    }

    /// Runs `f(pa, range of the buffer)` for each page-bounded piece of
    /// `va..va + len`.
    fn access(
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
            crate::guestmem::copy_from_ram(pa, &mut buf[r])
        })
    }
}

impl emulate::VirtMem for FastView<'_> {
    fn write_virt(&mut self, va: GuestVirtAddr, data: &[u8]) -> Result<(), AccessError> {
        self.access(va.raw(), data.len(), Access::Write, |pa, r| {
            crate::guestmem::copy_to_ram(pa, &data[r])
        })
    }
}
