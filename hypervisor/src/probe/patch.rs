//! Inserting and removing a probe on the VM's own core: translate the site
//! through both stages, check it is the VM's executable RAM and safe to
//! displace, write the `HVC`, and put the original word back on removal.

use super::cache::El1Regs;
use super::{hit_totals, table, table_changed, Probe};
use crate::arch;
use crate::guestmem::VmPhysMem;
use crate::read_sysreg;
use guest_probe::a64::{self, Class};
use guest_probe::abi::fetch::FetchPlan;
use guest_probe::abi::{self, HvError, ProbeKind};
use guest_probe::addr::{GuestVirtAddr, PhysAddr};
use guest_probe::emulate;
use guest_probe::memory::GuestMemory;
use guest_probe::walk::{Access, Stage2, Translator};
use hyp_core::config::VmConfig;

/// The running vCPU's translation regime: its stage 1 and our stage 2.
pub(super) fn translator() -> Translator {
    let stage2 = Stage2::new(read_sysreg!("vttbr_el2"), read_sysreg!("vtcr_el2")).ok();
    Translator::new(El1Regs::read().stage1(), stage2)
}

/// Write one instruction word at a checked PA and make it visible to
/// instruction fetch on every core.
pub(super) fn patch(mem: &mut VmPhysMem, pa: u64, word: u32) -> Result<(), HvError> {
    mem.write(PhysAddr::new(pa), &word.to_le_bytes())
        .map_err(|_| HvError::Unmapped)?;
    arch::sync_icache(pa);
    Ok(())
}

pub(super) fn add_here(
    vm: &'static VmConfig,
    va: u64,
    kind: ProbeKind,
    entry_id: u16,
    plan: &FetchPlan,
) -> Result<u64, HvError> {
    if kind == ProbeKind::Entry && plan.argc != 0 {
        // An entry probe records nothing: arguments would be lost.
        return Err(HvError::InvalidArgument);
    }
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
    let exec = emulate::plan(original, class, cpu_features());
    if exec == emulate::Execution::Step && vm.cpus.len() > 1 {
        // The step puts the original word back: another core of this VM
        // could run past the site unseen meanwhile.
        crate::warn!(
            "probe at {va:#x} in VM {} refused: {original:#010x} would be single-stepped in place, and the VM has {} cores",
            vm.name,
            vm.cpus.len()
        );
        return Err(HvError::Unsafe);
    }
    // A return site belongs to its function's entry probe, which must be one.
    let entry = match kind {
        ProbeKind::Return => t_lock
            .slots
            .iter()
            .flatten()
            .find(|p| p.id == entry_id && p.kind == ProbeKind::Entry)
            .map(|p| (p.id, p.serial))
            .ok_or(HvError::NotFound)?,
        _ => (0, 0),
    };
    let slot = t_lock.slots.iter().position(|s| s.is_none()).ok_or(HvError::NoSpace)?;
    let id = slot as u16 + 1;
    let hvc = abi::probe_hvc(id).ok_or(HvError::NoSpace)?;
    patch(&mut mem, t.pa.raw(), hvc)?;
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
        entry,
        simple: plan.argc == 0 && matches!(kind, ProbeKind::ContextSwitch | ProbeKind::Plain),
    });
    t_lock.plans[slot] = *plan;
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

pub(super) fn remove_here(vm: &'static VmConfig, id: u64) -> Result<u64, HvError> {
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
        // stays listed) -- unless the guest has rewritten it since: its new
        // code stays.
        let mut word = [0u8; 4];
        mem.read(PhysAddr::new(p.pa), &mut word)
            .map_err(|_| HvError::Unmapped)?;
        let current = u32::from_le_bytes(word);
        match abi::word_on_removal(current, p.original, p.id) {
            Some(original) if original != current => patch(&mut mem, p.pa, original)?,
            Some(_) => {}
            None => crate::warn!(
                "VM {}: probe {} at {:#x}: the guest rewrote the word ({current:#010x}, not the probe's HVC); left as it is",
                vm.name,
                p.id,
                p.va
            ),
        }
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
        cost.min(),
        cost.quantile(0.5),
        cost.quantile(0.99),
        cost.max
    );
    Ok(hits)
}

/// MEM_WRITE on the VM's own core: store `size` bytes of `value` at `va`,
/// translated as the VM's EL1 would write it (a page it cannot write is
/// refused) into its own RAM. A probe's patched word is never overwritten.
pub(super) fn write_here(vm: &'static VmConfig, va: u64, size: u64, value: u64) -> Result<u64, HvError> {
    if !matches!(size, 1 | 2 | 4 | 8) || va % size != 0 {
        return Err(HvError::InvalidArgument);
    }
    let mut mem = VmPhysMem { vm };
    let t = translator()
        .translate(&mem, GuestVirtAddr::new(va), Access::Write)
        .map_err(|fault| {
            crate::warn!("write at {va:#x} in VM {} refused: {fault}", vm.name);
            HvError::Unmapped
        })?;
    if crate::vm::ipa_to_pa(vm, t.ipa.raw(), size) != Some(t.pa.raw()) {
        crate::warn!(
            "write at {va:#x} in VM {} refused: IPA {:#x} is not its RAM",
            vm.name,
            t.ipa.raw()
        );
        return Err(HvError::Denied);
    }
    let t_lock = table(vm.id)?.lock();
    let (pa, end) = (t.pa.raw(), t.pa.raw() + size);
    if t_lock.slots.iter().flatten().any(|p| p.pa < end && pa < p.pa + 4) {
        crate::warn!("write at {va:#x} in VM {} refused: a probe's word is there", vm.name);
        return Err(HvError::Exists);
    }
    mem.write(PhysAddr::new(pa), &value.to_le_bytes()[..size as usize])
        .map_err(|_| HvError::Unmapped)?;
    drop(t_lock);
    crate::info!(
        "VM {}: wrote {value:#x} ({size} bytes) at {va:#x} (PA {pa:#x})",
        vm.name
    );
    Ok(0)
}

/// What this CPU implements that decides how a displaced instruction runs.
fn cpu_features() -> emulate::Cpu {
    // ID_AA64ISAR2_EL1 by its encoding: older assemblers lack the name, and
    // on an ARMv8.0 CPU it is a reserved ID register, which reads as zero.
    emulate::Cpu::from_id_regs(
        crate::read_sysreg!("id_aa64isar1_el1"),
        crate::read_sysreg!("s3_0_c0_c6_2"),
    )
}
