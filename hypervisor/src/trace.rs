//! The trace data path on the hypervisor side: one single-producer ring per
//! core in the region shared with Linux, the doorbell that tells Linux to
//! drain them, and the counters behind the STATS hypercall.

use crate::percpu::{this_cpu, PerCpu, DOORBELL, MAX_CPUS};
use core::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use guest_probe::abi::ring::{ring_bytes, Ring};
use guest_probe::abi::{Record, RecordKind, Stat};
use hyp_core::config::Partition;

/// Records per ring unless the boot info asks otherwise (256 KiB per core).
pub const DEFAULT_CAPACITY: u32 = 4096;

pub static ENABLED: AtomicBool = AtomicBool::new(false);
/// Per VM: an `IrqTiming` record for each of its interrupts (IRQ_TIMING).
pub static IRQ_TIMING: [AtomicBool; 4] = [const { AtomicBool::new(false) }; 4];
/// The virtual timer's PPI: its due time is the guest's `CNTV_CVAL_EL0`.
const VIRTUAL_TIMER_INTID: u32 = 27;
/// Per core, so counting is a load and a store (each core writes only its
/// own row; readers sum the rows).
static STATS: [[AtomicU64; 7]; MAX_CPUS] = [const { [const { AtomicU64::new(0) }; 7] }; MAX_CPUS];
static RING_CAPACITY: AtomicU64 = AtomicU64::new(0);
/// The least time between two doorbells from one core (counter ticks):
/// [`hyp_core::doorbell`] defers the ones that come sooner.
static DOORBELL_GAP: AtomicU64 = AtomicU64::new(0);
/// [`DOORBELL_GAP`] in microseconds: a flood of hits raises at most 5,000
/// interrupts a second in Linux instead of one per drain.
const DOORBELL_GAP_US: u64 = 200;
static RING_BASE: AtomicU64 = AtomicU64::new(0);
static RINGS: AtomicUsize = AtomicUsize::new(0);
/// The core that runs Linux's first vCPU (where the doorbell interrupt goes).
static LINUX_CPU: AtomicUsize = AtomicUsize::new(0);

pub fn count(stat: Stat) {
    let c = &STATS[crate::arch::cpu_id() % MAX_CPUS][stat as usize];
    c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

pub fn stat(stat: Stat) -> u64 {
    STATS.iter().map(|row| row[stat as usize].load(Ordering::Relaxed)).sum()
}

/// Format one ring per core in the shared region (boot core, before any
/// core starts a guest). `capacity` is a power of two.
pub fn init_rings(partition: &Partition, cores: usize, capacity: u32, linux_cpu: usize) -> Result<(), &'static str> {
    let region = partition.trace_ring;
    let per_ring = ring_bytes(capacity) as u64;
    if per_ring * cores as u64 > region.size {
        return Err("the rings do not fit the shared region");
    }
    for cpu in 0..cores {
        let base = region.pa + cpu as u64 * per_ring;
        // SAFETY: the region is the partition's trace ring, RAM reserved for
        // the hypervisor and Linux only (stage-2 maps it nowhere else); no
        // guest runs yet, and from now on each ring is accessed only through
        // its producer (core `cpu`) and Linux's consumer.
        unsafe { Ring::init(base as *mut u8, per_ring as usize, capacity, cpu as u64) }
            .map_err(|_| "ring init failed")?;
    }
    RING_BASE.store(region.pa, Ordering::Relaxed);
    RING_CAPACITY.store(u64::from(capacity), Ordering::Relaxed);
    DOORBELL_GAP.store(
        crate::arch::counter_freq() * DOORBELL_GAP_US / 1_000_000,
        Ordering::Relaxed,
    );
    RINGS.store(cores, Ordering::Relaxed);
    LINUX_CPU.store(linux_cpu, Ordering::Release);
    Ok(())
}

/// Ring `index`: (its size in bytes, its address, its source core).
pub fn ring_info(index: u64) -> Option<(u64, u64, u64)> {
    let rings = RINGS.load(Ordering::Acquire) as u64;
    if index >= rings {
        return None;
    }
    let size = ring_bytes(RING_CAPACITY.load(Ordering::Relaxed) as u32) as u64;
    Some((size, RING_BASE.load(Ordering::Relaxed) + index * size, index))
}

fn producer(cpu: &mut PerCpu) -> Option<&mut guest_probe::abi::Producer<'static>> {
    if cpu.ring.is_none() {
        let (size, base, _) = ring_info(crate::arch::cpu_id() as u64)?;
        // SAFETY: this core's ring, formatted by `init_rings`; this core is
        // its only producer (the producer lives in this core's slot).
        let ring = unsafe { Ring::attach(base as *mut u8, size as usize) }.ok()?;
        cpu.ring = Some(ring.producer());
    }
    cpu.ring.as_mut()
}

/// Whether VM `vm`'s interrupts are timed (one load when off).
#[inline(always)]
pub fn irq_timing_on(vm: u8) -> bool {
    IRQ_TIMING
        .get(usize::from(vm))
        .is_some_and(|f| f.load(Ordering::Relaxed))
        && ENABLED.load(Ordering::Relaxed)
}

/// Records interrupt `intid` of this core's VM: it reached EL2 at
/// `arrived` and was put in a list register at `injected` (counter).
pub fn irq_timing(vm: u8, intid: u32, arrived: u64, injected: u64) {
    let due = if intid == VIRTUAL_TIMER_INTID {
        // The guest's own timer registers are live at EL2 (no VHE).
        crate::read_sysreg!("cntv_cval_el0")
    } else {
        0
    };
    let mut r = Record {
        timestamp: arrived,
        pc: due,
        kind: RecordKind::IrqTiming as u16,
        probe_id: intid as u16,
        vm,
        cpu: crate::arch::cpu_id() as u8,
        ..Record::default()
    };
    r.set_irq_injected(injected);
    emit(&r);
}

/// Append a record to this core's ring and ring Linux's doorbell when the
/// ring was empty or is half full (coalesced: one interrupt per burst).
pub fn emit(record: &Record) -> bool {
    let cpu = this_cpu();
    let in_linux = cpu.vm.is_some_and(|vm| vm.kind == hyp_core::config::GuestKind::Linux);
    let Some(p) = producer(cpu) else { return false };
    let result = p.push(record);
    // Pairs with the consumer's fence between its tail store and its final
    // head load: one of the two sides sees the other.
    fence(Ordering::SeqCst);
    let pending = p.pending();
    tally(result.is_ok());
    // Records from Linux's own cores (probes in Linux) must not ring at once:
    // the drain would cause the very context switches it then records, for
    // ever. The module polls that ring on its periodic tick; the doorbell
    // still rings at half capacity. A full ring already rang at half: drops
    // add no interrupts. A record into an empty ring rings unless the last
    // doorbell was less than the gap ago (then it is owed: `doorbell_due`).
    if result.is_ok() && moderate(cpu, record.timestamp, 1, pending, in_linux) {
        ring_doorbell();
    }
    result.is_ok()
}

/// Counts a record written or dropped (and says so when records drop).
#[inline(always)]
fn tally(written: bool) {
    if written {
        count(Stat::Records);
    } else {
        count(Stat::Drops);
        report_drops();
    }
}

/// Says on the console, at most every [`DROP_REPORT_S`] seconds, that
/// records are being dropped: when Linux is gone (its module unloaded, Linux
/// itself stopped) this is the only place the count shows.
#[cold]
fn report_drops() {
    let now = crate::arch::counter();
    let last = LAST_DROP_REPORT.load(Ordering::Relaxed);
    let gap = crate::arch::counter_freq() * DROP_REPORT_S;
    if last != 0 && now.wrapping_sub(last) < gap {
        return;
    }
    if LAST_DROP_REPORT
        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
        .is_ok()
    {
        crate::info!(
            "trace rings full: {} records dropped so far, {} written (nobody drains them fast enough, or at all)",
            stat(Stat::Drops),
            stat(Stat::Records)
        );
    }
}

/// Seconds between two [`report_drops`] lines.
const DROP_REPORT_S: u64 = 10;
static LAST_DROP_REPORT: AtomicU64 = AtomicU64::new(0);

/// Records that VM `vm` stopped at `pc` and rings the doorbell now: the
/// core halts next, so it would never ring one it owed.
pub fn vm_stopped(vm: u8, pc: u64) {
    let r = Record {
        timestamp: crate::arch::counter(),
        pc,
        kind: RecordKind::VmStopped as u16,
        vm,
        cpu: crate::arch::cpu_id() as u8,
        ..Record::default()
    };
    let Some(p) = producer(this_cpu()) else { return };
    let ok = p.push(&r).is_ok();
    fence(Ordering::SeqCst);
    tally(ok);
    ring_doorbell();
}

/// [`hyp_core::doorbell::Moderator::on_record`] with this core's state.
#[inline(always)]
fn moderate(cpu: &mut PerCpu, now: u64, slots: u64, pending: u64, quiet_start: bool) -> bool {
    cpu.doorbell.on_record(
        now,
        slots,
        pending,
        RING_CAPACITY.load(Ordering::Relaxed),
        DOORBELL_GAP.load(Ordering::Relaxed),
        quiet_start,
    )
}

/// On a return to the guest: rings the doorbell this core owes once the
/// gap since its last one has passed.
#[inline(never)]
pub fn doorbell_due() {
    let cpu = this_cpu();
    if cpu
        .doorbell
        .due(crate::arch::counter(), DOORBELL_GAP.load(Ordering::Relaxed))
    {
        ring_doorbell();
    }
}

/// [`emit`] with `data` (a probe's fetched values) in the slots after the
/// record, published and dropped with it. Never inlined: `profile-hits`
/// tells a hit that wrote values from a return probe's entry by it.
#[inline(never)]
pub fn emit_with_data(record: &Record, data: &[u64]) -> bool {
    let cpu = this_cpu();
    let in_linux = cpu.vm.is_some_and(|vm| vm.kind == hyp_core::config::GuestKind::Linux);
    let Some(p) = producer(cpu) else { return false };
    let result = p.push_with_data(record, data);
    fence(Ordering::SeqCst);
    let pending = p.pending();
    tally(result.is_ok());
    // As in `emit` (the half mark may be passed rather than hit).
    let slots = 1 + data.len().div_ceil(Record::SIZE / 8) as u64;
    if result.is_ok() && moderate(cpu, record.timestamp, slots, pending, in_linux) {
        ring_doorbell();
    }
    result.is_ok()
}

/// Tell Linux to drain the rings: a list register on its own core, an SGI
/// to its core from any other.
pub fn ring_doorbell() {
    let linux = LINUX_CPU.load(Ordering::Acquire);
    count(Stat::Irqs);
    if linux == crate::arch::cpu_id() {
        crate::virq::queue_virq(crate::HVTRACE_INTID, None);
    } else {
        DOORBELL[linux].store(true, Ordering::Release);
        crate::gic::send_sgi(crate::gic::DOORBELL_SGI, linux);
    }
}

/// TEST_EMIT: `count` synthetic context switches between four made-up
/// tasks ("synthetic-0".."synthetic-3"), for testing the data path without
/// probes. Returns how many were written (the rest were dropped).
pub fn test_emit(count: u64, vm: u8) -> u64 {
    let mut written = 0;
    for i in 0..count.min(1 << 20) {
        let mut r = Record {
            timestamp: crate::arch::counter(),
            kind: RecordKind::ContextSwitch as u16,
            vm,
            cpu: crate::arch::cpu_id() as u8,
            prev_prio: (10 + i % 4) as u8,
            next_prio: (10 + (i + 1) % 4) as u8,
            ..Record::default()
        };
        let mut name = *b"synthetic-0\0\0\0\0\0";
        name[10] = b'0' + (i % 4) as u8;
        Record::set_name(&mut r.prev_name, &name[..11]);
        name[10] = b'0' + ((i + 1) % 4) as u8;
        Record::set_name(&mut r.next_name, &name[..11]);
        written += u64::from(emit(&r));
    }
    written
}
