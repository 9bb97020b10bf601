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

//!
//! The files follow a probe's life: [`mailbox`] takes a request to the VM's
//! core, [`patch`] inserts or removes it there, [`hit`] runs each hit with
//! [`cache`]'s per-core copies, and [`step`] single-steps a displaced
//! instruction that cannot be simulated or emulated. This file holds the
//! shared probe tables and the hypercalls' entry points.

mod cache;
mod hit;
mod mailbox;
mod patch;
mod step;

pub use hit::hit;
pub use mailbox::serve_mailbox;
pub use step::finish_step;

use crate::arch;
use crate::sync::SpinLock;
use cache::HIT_CACHES;
use core::sync::atomic::{AtomicU32, Ordering};
use guest_probe::abi::fetch::{FetchPlan, PLAN_MAX};
use guest_probe::abi::{self, HvError, OsProfile, ProbeKind};
use guest_probe::addr::PhysAddr;
use guest_probe::emulate::Execution;
use guest_probe::memory::GuestMemory;
use hyp_core::config::{self, VmConfig};
use hyp_core::hit_cost::HitCost;
use mailbox::{on_vm_core, OP_ADD, OP_REMOVE, OP_WRITE};

/// Probes per VM.
pub const MAX_PROBES: usize = 256;
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
    /// A return site's function entry probe: its id and insertion serial.
    entry: (u16, u32),
    /// A switch or plain hit without arguments: the hit path's tight case.
    simple: bool,
}

/// A VM's probes (the definitions: hits are counted per core, see
/// [`TableCopy`]) and its OS profile.
struct VmProbes {
    slots: [Option<Probe>; MAX_PROBES],
    /// Each slot's label and fetch arguments (beside the slots, not in
    /// them: the hit path indexes small probes).
    plans: [FetchPlan; MAX_PROBES],
    profile: Option<OsProfile>,
    /// The serial of the next insertion.
    next_serial: u32,
}

static TABLES: [SpinLock<VmProbes>; MAX_VMS] = [const {
    SpinLock::new(VmProbes {
        slots: [None; MAX_PROBES],
        plans: [FetchPlan::EMPTY; MAX_PROBES],
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

/// The VM a probe hypercall names; a stopped VM is refused (its core is
/// halted: nothing can be patched or listed there any more).
fn target_vm(vm_id: u64) -> Result<&'static VmConfig, HvError> {
    let id = u8::try_from(vm_id).map_err(|_| HvError::InvalidArgument)?;
    let vm = partition().vm(id).ok_or(HvError::InvalidArgument)?;
    if crate::vm::is_stopped(id) {
        return Err(HvError::Stopped);
    }
    Ok(vm)
}

/// PROBE_ADD: `plan_len` bytes at `plan_ipa` in the caller's memory hold the
/// probe's fetch plan (none when `plan_ipa` is 0).
pub fn request_add(
    caller: &VmConfig,
    vm_id: u64,
    va: u64,
    kind: u64,
    plan_ipa: u64,
    plan_len: u64,
) -> Result<u64, HvError> {
    let vm = target_vm(vm_id)?;
    ProbeKind::from_raw(kind).ok_or(HvError::InvalidArgument)?;
    if va & 3 != 0 {
        return Err(HvError::InvalidArgument);
    }
    let plan = if plan_ipa == 0 {
        FetchPlan::EMPTY
    } else {
        let len = usize::try_from(plan_len).map_err(|_| HvError::InvalidArgument)?;
        if len > PLAN_MAX {
            return Err(HvError::InvalidArgument);
        }
        let pa = crate::vm::ipa_to_pa(caller, plan_ipa, len as u64).ok_or(HvError::Unmapped)?;
        let mut bytes = [0u8; PLAN_MAX];
        crate::guestmem::read_bytes(pa, &mut bytes[..len]);
        FetchPlan::from_bytes(&bytes[..len]).map_err(|e| {
            crate::warn!("probe at {va:#x} in VM {} refused: {e}", vm.name);
            HvError::InvalidArgument
        })?
    };
    let start = arch::counter();
    let r = on_vm_core(vm, OP_ADD, [va, kind, 0], &plan);
    if let Err(e) = r {
        crate::info!("VM {}: probe at {va:#x} refused: {e}", vm.name);
    }
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

/// PROBE_PLAN: copy probe `id`'s plan blob into the caller's buffer.
pub fn plan(caller: &'static VmConfig, vm_id: u64, id: u64, ipa: u64, len: u64) -> Result<u64, HvError> {
    let vm = target_vm(vm_id)?;
    if len < PLAN_MAX as u64 {
        return Err(HvError::InvalidArgument);
    }
    let plan = {
        let t = table(vm.id)?.lock();
        let slot = t
            .slots
            .iter()
            .position(|p| p.is_some_and(|p| u64::from(p.id) == id))
            .ok_or(HvError::NotFound)?;
        t.plans[slot]
    };
    let mut bytes = [0u8; PLAN_MAX];
    let n = plan.encode(&mut bytes);
    let pa = crate::vm::ipa_to_pa(caller, ipa, n as u64).ok_or(HvError::Unmapped)?;
    crate::guestmem::VmPhysMem { vm: caller }
        .write(PhysAddr::new(pa), &bytes[..n])
        .map_err(|_| HvError::Unmapped)?;
    Ok(n as u64)
}

pub fn request_remove(vm_id: u64, id: u64) -> Result<u64, HvError> {
    let vm = target_vm(vm_id)?;
    if id == 0 || id > MAX_PROBES as u64 {
        return Err(HvError::InvalidArgument);
    }
    on_vm_core(vm, OP_REMOVE, [id, 0, 0], &FetchPlan::EMPTY)
}

/// MEM_WRITE: set `size` bytes at `va` in VM `vm_id` (translated on its core).
pub fn request_write(vm_id: u64, va: u64, size: u64, value: u64) -> Result<u64, HvError> {
    let vm = target_vm(vm_id)?;
    on_vm_core(vm, OP_WRITE, [va, size, value], &FetchPlan::EMPTY)
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
            hits += s.cost.count;
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
