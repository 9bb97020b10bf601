// SPDX-License-Identifier: GPL-2.0

//! hvtrace: RTOS trace records from the hv-trace hypervisor as ftrace events.
//!
//! The hypervisor writes 64-byte records into per-CPU rings in memory shared
//! with Linux and raises a virtual IRQ. This module drains the rings from the
//! IRQ's thread and emits `hvtrace:rtos_switch` / `hvtrace:rtos_probe`
//! events, plus `hvtrace:clock_sync` pairs (counter, ftrace clock) so the
//! host can place RTOS records on Linux's timeline exactly. Control lives in
//! `/sys/kernel/hvtrace/` (root only); every write is validated and turned
//! into one hypercall.
//!
//! All logic is here; `hvtrace_shim.c` holds only the C glue 6.12's Rust
//! cannot express (platform driver, IRQ, sysfs, TRACE_EVENT). The C side
//! calls the `hvtrace_rs_*` functions below; this side calls it through
//! [`shim`].
//!
//! State is a set of statics (the device is a singleton): the mapped region,
//! counters, the enable flag and the table of probes this module added.

use core::ffi::{c_char, c_int, c_void, CStr};
use core::fmt::{self, Write};
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use kernel::bindings;
use kernel::prelude::*;

mod abi;
// guest-probe's `abi/control.rs`, copied here by the build: the one
// definition of the sysfs text protocol, whose host half (listing parsers)
// the module does not use.
#[allow(dead_code, unreachable_pub)]
mod cmd;
// guest-probe's `abi/fetch.rs`, copied here by the build: fetch arguments'
// text form, plan blob and payload (the hypervisor runs the plans).
#[allow(dead_code, unreachable_pub)]
mod fetch;
mod hvc;
mod ring;

use abi::{hvc as f, kind, Record};
use cmd::ProbeCmd;

module! {
    type: HvTrace,
    name: "hvtrace",
    author: "hv-trace",
    description: "RTOS trace records from the hv-trace hypervisor as ftrace events",
    license: "GPL",
}

/// This module's version (`/sys/kernel/hvtrace/version`).
const MODULE_VERSION: &str = "0.1.0";
/// Period of `clock_sync` while tracing is enabled.
const CLOCK_SYNC_PERIOD_MS: u32 = 100;
/// A drain emits a `clock_sync` first when the last one is older than this.
const CLOCK_SYNC_MAX_AGE_NS: u64 = CLOCK_SYNC_PERIOD_MS as u64 * 1_000_000;
/// Rings whose sequence numbers are followed for gaps.
const TRACKED_RINGS: usize = 8;
/// Probes this module remembers (to remove them at unload).
const OWN_PROBES: usize = 64;

// --- state -----------------------------------------------------------------

static REGION_BASE: AtomicPtr<u8> = AtomicPtr::new(ptr::null_mut());
static REGION_LEN: AtomicUsize = AtomicUsize::new(0);
static REGION_PHYS: AtomicU64 = AtomicU64::new(0);
static HYP_VERSION: AtomicU64 = AtomicU64::new(0);

static ENABLED: AtomicBool = AtomicBool::new(false);
static DRAINING: AtomicBool = AtomicBool::new(false);
static LAST_SYNC_NS: AtomicU64 = AtomicU64::new(0);
static WARNED_UNKNOWN: AtomicBool = AtomicBool::new(false);

/// Counters shown in `stats`.
struct Counters {
    irqs: AtomicU64,
    /// Doorbells whose IRQ thread had to finish the drain.
    irq_threads: AtomicU64,
    drains: AtomicU64,
    records: AtomicU64,
    switches: AtomicU64,
    probe_hits: AtomicU64,
    hyp_clock_syncs: AtomicU64,
    irq_timings: AtomicU64,
    vm_stops: AtomicU64,
    tcb_unreadable: AtomicU64,
    lost_markers: AtomicU64,
    lost_records: AtomicU64,
    seq_gaps: AtomicU64,
    unknown: AtomicU64,
    resyncs: AtomicU64,
    clock_syncs: AtomicU64,
}

static COUNT: Counters = Counters {
    irqs: AtomicU64::new(0),
    irq_threads: AtomicU64::new(0),
    drains: AtomicU64::new(0),
    records: AtomicU64::new(0),
    switches: AtomicU64::new(0),
    probe_hits: AtomicU64::new(0),
    hyp_clock_syncs: AtomicU64::new(0),
    irq_timings: AtomicU64::new(0),
    vm_stops: AtomicU64::new(0),
    tcb_unreadable: AtomicU64::new(0),
    lost_markers: AtomicU64::new(0),
    lost_records: AtomicU64::new(0),
    seq_gaps: AtomicU64::new(0),
    unknown: AtomicU64::new(0),
    resyncs: AtomicU64::new(0),
    clock_syncs: AtomicU64::new(0),
};

/// Per ring: `1 << 32 | next expected seq`, or 0 before the first record.
static NEXT_SEQ: [AtomicU64; TRACKED_RINGS] = [const { AtomicU64::new(0) }; TRACKED_RINGS];

/// Probes added through this module: `1 << 31 | vm << 16 | id`, 0 = free.
static OWN: [AtomicU32; OWN_PROBES] = [const { AtomicU32::new(0) }; OWN_PROBES];

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

// --- the C shim --------------------------------------------------------------

/// Safe wrappers around the C shim (`hvtrace_shim.c`).
mod shim {
    use core::ffi::{c_char, c_int};
    use kernel::prelude::*;

    /// One named value of the C compiler's view of the ABI.
    #[repr(C)]
    pub(crate) struct LayoutEntry {
        pub(crate) name: *const c_char,
        pub(crate) value: u64,
    }

    extern "C" {
        fn hvtrace_shim_layout(len: *mut usize) -> *const LayoutEntry;
        fn hvtrace_shim_emit_switch(
            ts: u64,
            cpu: u32,
            prev_prio: u8,
            next_prio: u8,
            prev_state: u16,
            next_state: u16,
            prev_comm: *const c_char,
            next_comm: *const c_char,
            seq: u32,
        );
        fn hvtrace_shim_emit_probe(
            ts: u64,
            cpu: u32,
            probe_id: u32,
            pc: u64,
            prio: u8,
            comm: *const c_char,
            seq: u32,
            what: *const c_char,
            what_len: u32,
        );
        fn hvtrace_shim_emit_irq(ts: u64, cpu: u32, vm: u32, irq: u32, due: u64, injected: u64, seq: u32);
        fn hvtrace_shim_irq_enabled() -> bool;
        fn hvtrace_shim_emit_vm_stopped(ts: u64, cpu: u32, vm: u32, pc: u64, seq: u32);
        fn hvtrace_shim_ipa_buf_alloc(len: usize) -> *mut u8;
        fn hvtrace_shim_ipa_buf_free(buf: *mut u8);
        fn hvtrace_shim_ipa_of(buf: *const u8) -> u64;
        fn hvtrace_shim_switch_enabled() -> bool;
        fn hvtrace_shim_probe_enabled() -> bool;
        fn hvtrace_shim_dt_present() -> c_int;
        fn hvtrace_shim_clock_sync() -> u64;
        fn hvtrace_shim_now_ns() -> u64;
        fn hvtrace_shim_tick_start(period_ms: u32);
        fn hvtrace_shim_tick_stop();
        fn hvtrace_shim_sysfs_create() -> c_int;
        fn hvtrace_shim_sysfs_remove();
        fn hvtrace_shim_driver_register() -> c_int;
        fn hvtrace_shim_driver_unregister();
    }

    fn result(ret: c_int) -> Result {
        if ret < 0 {
            Err(Error::from_errno(ret))
        } else {
            Ok(())
        }
    }

    /// The C compiler's view of the ABI, as a static table.
    pub(crate) fn layout() -> &'static [LayoutEntry] {
        let mut len = 0usize;
        // SAFETY: the shim returns a pointer to a static array and writes
        // its length; the array lives as long as the module.
        unsafe {
            let p = hvtrace_shim_layout(&mut len);
            core::slice::from_raw_parts(p, len)
        }
    }

    /// Emits `hvtrace:rtos_switch`; the names are 16-byte arrays.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn emit_switch(
        ts: u64,
        cpu: u32,
        prio: (u8, u8),
        state: (u16, u16),
        prev: &[u8; 16],
        next: &[u8; 16],
        seq: u32,
    ) {
        // SAFETY: the shim copies exactly 16 bytes from each name pointer,
        // which point to 16-byte arrays alive for the call.
        unsafe {
            hvtrace_shim_emit_switch(
                ts,
                cpu,
                prio.0,
                prio.1,
                state.0,
                state.1,
                prev.as_ptr().cast(),
                next.as_ptr().cast(),
                seq,
            )
        }
    }

    /// Emits `hvtrace:rtos_probe`; the name is a 16-byte array, `what` the
    /// event's text without a NUL (its length is passed: no scan for one).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn emit_probe(ts: u64, cpu: u32, id: u32, pc: u64, prio: u8, comm: &[u8; 16], seq: u32, what: &[u8]) {
        let len = u32::try_from(what.len()).unwrap_or(0);
        // SAFETY: the shim copies exactly 16 bytes from `comm` and `len`
        // bytes of `what`, both alive for the call.
        unsafe {
            hvtrace_shim_emit_probe(
                ts,
                cpu,
                id,
                pc,
                prio,
                comm.as_ptr().cast(),
                seq,
                what.as_ptr().cast(),
                len,
            )
        }
    }

    /// A zeroed, physically contiguous buffer the hypervisor can reach by
    /// its address (Linux's IPA = PA); freed when dropped.
    pub(crate) struct IpaBuf {
        ptr: *mut u8,
        len: usize,
    }

    impl IpaBuf {
        /// `len` bytes (process context: it may sleep).
        pub(crate) fn new(len: usize) -> Result<Self> {
            // SAFETY: a plain allocation; null is checked below.
            let ptr = unsafe { hvtrace_shim_ipa_buf_alloc(len) };
            if ptr.is_null() {
                return Err(ENOMEM);
            }
            Ok(Self { ptr, len })
        }

        /// Its bytes.
        pub(crate) fn bytes(&mut self) -> &mut [u8] {
            // SAFETY: `ptr` is a live allocation of `len` bytes owned by self.
            unsafe { core::slice::from_raw_parts_mut(self.ptr, self.len) }
        }

        /// Its intermediate physical address.
        pub(crate) fn ipa(&self) -> u64 {
            // SAFETY: `ptr` is kmalloc memory, in the linear map.
            unsafe { hvtrace_shim_ipa_of(self.ptr) }
        }
    }

    impl Drop for IpaBuf {
        fn drop(&mut self) {
            // SAFETY: allocated by hvtrace_shim_ipa_buf_alloc, freed once.
            unsafe { hvtrace_shim_ipa_buf_free(self.ptr) }
        }
    }

    /// Whether `hvtrace:rtos_switch` is on (a static key).
    pub(crate) fn switch_enabled() -> bool {
        // SAFETY: no arguments; reads a static key.
        unsafe { hvtrace_shim_switch_enabled() }
    }

    /// Whether `hvtrace:rtos_irq` is on (a static key).
    pub(crate) fn irq_enabled() -> bool {
        // SAFETY: no arguments; reads a static key.
        unsafe { hvtrace_shim_irq_enabled() }
    }

    /// Emits `hvtrace:rtos_irq`.
    pub(crate) fn emit_irq(ts: u64, cpu: u32, vm: u32, irq: u32, due: u64, injected: u64, seq: u32) {
        // SAFETY: plain values only.
        unsafe { hvtrace_shim_emit_irq(ts, cpu, vm, irq, due, injected, seq) }
    }

    /// Emits `hvtrace:vm_stopped`.
    pub(crate) fn emit_vm_stopped(ts: u64, cpu: u32, vm: u32, pc: u64, seq: u32) {
        // SAFETY: plain values only.
        unsafe { hvtrace_shim_emit_vm_stopped(ts, cpu, vm, pc, seq) }
    }

    /// Whether `hvtrace:rtos_probe` is on (a static key).
    pub(crate) fn probe_enabled() -> bool {
        // SAFETY: no arguments; reads a static key.
        unsafe { hvtrace_shim_probe_enabled() }
    }

    /// Whether the device tree describes the hv-trace hypervisor.
    pub(crate) fn dt_present() -> bool {
        // SAFETY: a device-tree lookup with no arguments to keep alive.
        unsafe { hvtrace_shim_dt_present() != 0 }
    }

    /// Emits `hvtrace:clock_sync` now; returns the ftrace clock it read.
    pub(crate) fn clock_sync() -> u64 {
        // SAFETY: no arguments; callable from any context.
        unsafe { hvtrace_shim_clock_sync() }
    }

    /// The ftrace clock now.
    pub(crate) fn now_ns() -> u64 {
        // SAFETY: no arguments; callable from any context.
        unsafe { hvtrace_shim_now_ns() }
    }

    /// Runs the periodic tick now and then every `period_ms`.
    pub(crate) fn tick_start(period_ms: u32) {
        // SAFETY: queues a static delayed work; any context.
        unsafe { hvtrace_shim_tick_start(period_ms) }
    }

    /// Stops the tick and waits for it (process context).
    pub(crate) fn tick_stop() {
        // SAFETY: cancels a static delayed work; called from process
        // context (sysfs store, module exit), never from the tick itself.
        unsafe { hvtrace_shim_tick_stop() }
    }

    /// Creates `/sys/kernel/hvtrace`.
    pub(crate) fn sysfs_create() -> Result {
        // SAFETY: called once from module init.
        result(unsafe { hvtrace_shim_sysfs_create() })
    }

    /// Removes `/sys/kernel/hvtrace`, waiting for running handlers.
    pub(crate) fn sysfs_remove() {
        // SAFETY: called from module exit after a successful create (or
        // when none exists: then it does nothing).
        unsafe { hvtrace_shim_sysfs_remove() }
    }

    /// Registers the platform driver; fails unless a device was bound.
    pub(crate) fn driver_register() -> Result {
        // SAFETY: called once from module init.
        result(unsafe { hvtrace_shim_driver_register() })
    }

    /// Unregisters the driver (frees the IRQ, unmaps the region).
    pub(crate) fn driver_unregister() {
        // SAFETY: called once from module exit after a successful register.
        unsafe { hvtrace_shim_driver_unregister() }
    }
}

// --- layout check ------------------------------------------------------------

/// Compares this module's ABI view with the C compiler's view of the
/// generated header; a mismatch refuses the load.
fn check_layout() -> Result {
    let table = shim::layout();
    let lookup = |name: &str| {
        table.iter().find_map(|e| {
            // SAFETY: every entry's name is a static NUL-terminated string
            // of the shim's table.
            let c = unsafe { CStr::from_ptr(e.name) };
            (c.to_bytes() == name.as_bytes()).then_some(e.value)
        })
    };
    match abi::check(lookup) {
        Ok(n) => {
            pr_info!("ABI layout: {n} values agree with hvtrace_abi.h\n");
            Ok(())
        }
        Err(abi::Mismatch::Missing(name)) => {
            pr_err!("ABI layout mismatch: hvtrace_abi.h has no {name}: refusing to load\n");
            Err(EINVAL)
        }
        Err(abi::Mismatch::Differs { name, ours, theirs }) => {
            pr_err!(
                "ABI layout mismatch: {name} is {ours:#x} in the module's view but {theirs:#x} in hvtrace_abi.h: refusing to load\n"
            );
            Err(EINVAL)
        }
    }
}

// --- draining ----------------------------------------------------------------

fn region() -> Option<ring::Region> {
    let base = REGION_BASE.load(Ordering::Acquire);
    if base.is_null() {
        return None;
    }
    // SAFETY: attach stored a 64-byte-aligned mapping of REGION_LEN bytes
    // that stays mapped until detach, which the C side calls only after
    // the IRQ is freed and the tick cancelled (the only drainers).
    Some(unsafe { ring::Region::new(base, REGION_LEN.load(Ordering::Acquire)) })
}

fn clock_sync_now() {
    let ns = shim::clock_sync();
    LAST_SYNC_NS.store(ns, Ordering::Relaxed);
    bump(&COUNT.clock_syncs, 1);
}

/// What one drain emitted, added to the shared counters once per drain,
/// and what it decided once per ring instead of per record.
#[derive(Default)]
struct Tally {
    records: u64,
    switches: u64,
    probe_hits: u64,
    seq_gaps: u64,
    /// Whether each event is on, read once per ring (a static key each).
    switch_on: bool,
    probe_on: bool,
    irq_on: bool,
    /// The ring's next expected sequence number (1 << 32 | seq once known),
    /// loaded before and stored after its records: one drainer at a time.
    next_seq: u64,
}

impl Tally {
    /// Before ring `ring`'s records.
    fn start_ring(&mut self, ring: usize) {
        self.switch_on = shim::switch_enabled();
        self.probe_on = shim::probe_enabled();
        self.irq_on = shim::irq_enabled();
        self.next_seq = NEXT_SEQ.get(ring).map_or(0, |s| s.load(Ordering::Relaxed));
    }

    /// After them.
    fn end_ring(&self, ring: usize) {
        if let Some(slot) = NEXT_SEQ.get(ring) {
            slot.store(self.next_seq, Ordering::Relaxed);
        }
    }

    fn track_seq(&mut self, seq: u32) {
        if self.next_seq != 0 {
            let gap = seq.wrapping_sub(self.next_seq as u32);
            if gap != 0 && gap < 1 << 31 {
                self.seq_gaps += u64::from(gap);
            }
        }
        self.next_seq = 1 << 32 | u64::from(seq.wrapping_add(1));
    }

    fn publish(&self) {
        bump(&COUNT.records, self.records);
        bump(&COUNT.switches, self.switches);
        bump(&COUNT.probe_hits, self.probe_hits);
        if self.seq_gaps != 0 {
            bump(&COUNT.seq_gaps, self.seq_gaps);
        }
    }
}

/// A probe hit's `what`: its label (or its address) and the values it
/// fetched, `name=value` as kprobe events print them; cut (ending in `...`)
/// if it does not fit in `N` bytes.
struct What<const N: usize> {
    buf: [u8; N],
    len: usize,
    cut: bool,
}

/// Longest `what` text, `...` included (the event takes its length: no NUL).
const WHAT_MAX: usize = 768;
/// Room for the `what` of a hit without values: a label (16 bytes) or an
/// address (`0x` and 16 digits), and `%return`. Such hits (a context
/// switch probed in Linux, every plain probe) are the common ones: their
/// buffer is not the 768 bytes zeroed for each event.
const WHAT_PLAIN: usize = 32;

impl<const N: usize> Write for What<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = N - 4 - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        if n < s.len() {
            self.cut = true;
            return Err(fmt::Error);
        }
        Ok(())
    }
}

impl<const N: usize> What<N> {
    fn of(r: &Record, data: &[u8]) -> Self {
        let mut w = What {
            buf: [0; N],
            len: 0,
            cut: false,
        };
        let label = &r.next_name[..r.next_name.iter().position(|&c| c == 0).unwrap_or(r.next_name.len())];
        let is_return = r.kind == kind::PROBE_HIT && r.next_state & abi::HIT_RETURN != 0;
        let _ = fetch::write_what(&mut w, label, is_return, r.pc, data);
        if w.cut {
            w.buf[w.len..w.len + 3].copy_from_slice(b"...");
            w.len += 3;
        }
        w
    }

    fn text(&self) -> &[u8] {
        &self.buf[..self.len.min(N)]
    }
}

/// Turns one record (and the values a probe fetched, `data`) into its
/// ftrace event. The names are made printable only when the event is on:
/// records are also drained with the events off.
fn emit(ring: usize, r: &Record, data: &[u8], tally: &mut Tally) {
    tally.records += 1;
    tally.track_seq(r.seq);
    if (r.prev_state | r.next_state) & abi::STATE_UNREADABLE != 0
        && matches!(r.kind, kind::CONTEXT_SWITCH | kind::PROBE_HIT)
    {
        bump(&COUNT.tcb_unreadable, 1);
    }
    match r.kind {
        kind::CONTEXT_SWITCH => {
            tally.switches += 1;
            if tally.switch_on {
                shim::emit_switch(
                    r.timestamp,
                    r.cpu.into(),
                    (r.prev_prio, r.next_prio),
                    (r.prev_state, r.next_state),
                    &abi::comm(&r.prev_name),
                    &abi::comm(&r.next_name),
                    r.seq,
                );
            }
        }
        kind::PROBE_HIT => {
            tally.probe_hits += 1;
            if tally.probe_on {
                let emit = |what: &[u8]| {
                    shim::emit_probe(
                        r.timestamp,
                        r.cpu.into(),
                        r.probe_id.into(),
                        r.pc,
                        r.prev_prio,
                        &abi::comm(&r.prev_name),
                        r.seq,
                        what,
                    )
                };
                if data.is_empty() {
                    emit(What::<WHAT_PLAIN>::of(r, data).text());
                } else {
                    emit(What::<WHAT_MAX>::of(r, data).text());
                }
            }
        }
        kind::IRQ_TIMING => {
            bump(&COUNT.irq_timings, 1);
            if tally.irq_on {
                let mut injected = [0u8; 8];
                injected.copy_from_slice(&r.next_name[..8]);
                shim::emit_irq(
                    r.timestamp,
                    r.cpu.into(),
                    r.vm.into(),
                    r.probe_id.into(),
                    r.pc,
                    u64::from_le_bytes(injected),
                    r.seq,
                );
            }
        }
        kind::VM_STOPPED => {
            bump(&COUNT.vm_stops, 1);
            pr_warn!(
                "VM {} stopped on CPU {} at pc {:#x}: its probes are refused from now on\n",
                r.vm,
                r.cpu,
                r.pc
            );
            shim::emit_vm_stopped(r.timestamp, r.cpu.into(), r.vm.into(), r.pc, r.seq);
        }
        kind::CLOCK_SYNC => bump(&COUNT.hyp_clock_syncs, 1),
        kind::LOST => {
            bump(&COUNT.lost_markers, 1);
            bump(&COUNT.lost_records, r.pc);
        }
        other => {
            bump(&COUNT.unknown, 1);
            if !WARNED_UNKNOWN.swap(true, Ordering::Relaxed) {
                pr_warn!("ring {ring}: record of unknown kind {other} skipped (further ones only counted)\n");
            }
        }
    }
}

fn pending(region: &ring::Region) -> bool {
    let mut any = false;
    region.walk(|r| any |= r.fill() > 0);
    any
}

/// Records the hard-IRQ half of the doorbell drains before it hands the rest
/// to the IRQ thread: a burst of RTOS switches fits, so a doorbell costs
/// Linux no wake-up and no context switch of its own.
const HARDIRQ_BUDGET: u64 = 64;

/// Drains every ring, at most `budget` records in all. Several contexts may
/// call it (the doorbell IRQ, its thread, the tick); one drains at a time and
/// the others leave, and whoever drained looks again after letting go, so no
/// record is left behind. Returns false only when the budget ran out with
/// records still waiting.
fn drain(budget: u64) -> bool {
    let Some(region) = region() else {
        return true;
    };
    let mut left = budget;
    loop {
        if DRAINING.swap(true, Ordering::SeqCst) {
            return true;
        }
        bump(&COUNT.drains, 1);
        if shim::now_ns().wrapping_sub(LAST_SYNC_NS.load(Ordering::Relaxed)) >= CLOCK_SYNC_MAX_AGE_NS
            && pending(&region)
        {
            clock_sync_now();
        }
        let mut tally = Tally::default();
        region.walk(|ring| {
            tally.start_ring(ring.index);
            let d = ring.drain(left, |r, data| emit(ring.index, r, data, &mut tally));
            tally.end_ring(ring.index);
            left -= d.records;
            if let Some(skipped) = d.resynced {
                bump(&COUNT.resyncs, 1);
                pr_warn!(
                    "ring {} (cpu {}): inconsistent head/tail, skipped {skipped} slots\n",
                    ring.index,
                    ring.cpu
                );
            }
        });
        tally.publish();
        DRAINING.store(false, Ordering::SeqCst);
        if !pending(&region) {
            return true;
        }
        if left == 0 {
            return false;
        }
    }
}

// --- entry points for the C shim ---------------------------------------------

/// Called by the platform driver's probe with the mapped ring region.
#[no_mangle]
pub extern "C" fn hvtrace_rs_attach(base: *mut c_void, len: usize, phys: u64) -> c_int {
    if base.is_null() || base as usize % 64 != 0 || len < abi::RING_HEADER_SIZE {
        pr_err!("ring region at {phys:#x} ({len} bytes) is unusable: too small or misaligned\n");
        return EINVAL.to_errno();
    }
    REGION_LEN.store(len, Ordering::Release);
    REGION_PHYS.store(phys, Ordering::Relaxed);
    REGION_BASE.store(base.cast(), Ordering::Release);
    let Some(region) = region() else {
        return EINVAL.to_errno();
    };
    let mut rings = 0;
    let stop = region.walk(|r| {
        rings += 1;
        pr_info!(
            "ring {}: source cpu {}, {} records at offset {:#x}, head {} tail {}\n",
            r.index,
            r.cpu,
            r.capacity,
            r.offset,
            r.head(),
            r.tail()
        );
    });
    report_stop(stop, rings);
    0
}

fn report_stop(stop: ring::Stop, rings: usize) {
    match stop {
        ring::Stop::NoMagic(0) => {
            pr_warn!("no ring set up in the region yet: records will be read once the hypervisor initialises it\n")
        }
        ring::Stop::BadHeader { offset, why, value } => {
            pr_warn!("ring header at offset {offset:#x}: {why} ({value:#x}); rings after it are ignored\n")
        }
        _ => pr_info!("{rings} ring(s) found\n"),
    }
}

/// Called by the platform driver's remove (IRQ freed, tick stopped).
#[no_mangle]
pub extern "C" fn hvtrace_rs_detach() {
    REGION_BASE.store(ptr::null_mut(), Ordering::Release);
    REGION_LEN.store(0, Ordering::Release);
}

/// Hard-IRQ half of the doorbell: drains up to [`HARDIRQ_BUDGET`] records;
/// returns whether the thread must drain the rest.
#[no_mangle]
pub extern "C" fn hvtrace_rs_hardirq() -> bool {
    bump(&COUNT.irqs, 1);
    !drain(HARDIRQ_BUDGET)
}

/// Records the IRQ thread (and the tick) drain between two chances for the
/// rest of Linux to run: under a flood of RTOS records the drain shares the
/// CPU instead of holding it (the rings then fill and the hypervisor counts
/// drops).
const THREAD_BUDGET: u64 = 1024;

/// Threaded half of the doorbell: drains up to [`THREAD_BUDGET`] of what
/// the hard half left; whether records are still waiting (the shim yields
/// the CPU and calls again).
#[no_mangle]
pub extern "C" fn hvtrace_rs_drain() -> bool {
    bump(&COUNT.irq_threads, 1);
    !drain(THREAD_BUDGET)
}

/// The periodic tick: a clock sync and a poll. Returns whether to go on.
#[no_mangle]
pub extern "C" fn hvtrace_rs_tick() -> bool {
    if !ENABLED.load(Ordering::Acquire) {
        return false;
    }
    clock_sync_now();
    // At most a budget: a flood is the IRQ thread's, which yields.
    drain(THREAD_BUDGET);
    ENABLED.load(Ordering::Acquire)
}

/// The sysfs attributes (ids shared with the shim's table).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Attr {
    Version,
    Enable,
    Probes,
    Stats,
    TestEmit,
    HypercallFuzz,
}

impl Attr {
    fn from_id(id: c_int) -> Option<Self> {
        Some(match id {
            0 => Self::Version,
            1 => Self::Enable,
            2 => Self::Probes,
            3 => Self::Stats,
            4 => Self::TestEmit,
            5 => Self::HypercallFuzz,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Version => "version",
            Self::Enable => "enable",
            Self::Probes => "probes",
            Self::Stats => "stats",
            Self::TestEmit => "test_emit",
            Self::HypercallFuzz => "hypercall_fuzz",
        }
    }
}

/// Formats into a sysfs page; output beyond it is cut.
struct Page<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Write for Page<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        if n < s.len() {
            Err(fmt::Error)
        } else {
            Ok(())
        }
    }
}

/// What a user wrote, for log lines: printable ASCII, the rest escaped, cut
/// at 64 bytes.
struct Shown<'a>(&'a [u8]);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.strip_suffix(b"\n").unwrap_or(self.0);
        for &c in s.iter().take(64) {
            if (0x20..0x7f).contains(&c) {
                f.write_char(c as char)?;
            } else {
                write!(f, "\\x{c:02x}")?;
            }
        }
        if s.len() > 64 {
            f.write_str("...")?;
        }
        Ok(())
    }
}

/// sysfs read of attribute `attr` into `buf` (`size` bytes).
#[no_mangle]
pub extern "C" fn hvtrace_rs_show(attr: c_int, buf: *mut c_char, size: usize) -> isize {
    // SAFETY: sysfs hands show() a zeroed buffer of PAGE_SIZE bytes (the
    // shim passes that size), exclusively ours for the call.
    let buf = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), size) };
    let mut page = Page { buf, len: 0 };
    let r = match Attr::from_id(attr) {
        Some(Attr::Version) => show_version(&mut page),
        Some(Attr::Enable) => show_enable(&mut page),
        Some(Attr::Probes) => show_probes(&mut page),
        Some(Attr::Stats) => show_stats(&mut page),
        Some(Attr::TestEmit) | Some(Attr::HypercallFuzz) | None => Err(EIO),
    };
    match r {
        Ok(()) => page.len as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// sysfs write of `len` bytes at `buf` to attribute `attr`.
#[no_mangle]
pub extern "C" fn hvtrace_rs_store(attr: c_int, buf: *const c_char, len: usize) -> isize {
    // SAFETY: sysfs hands store() `len` readable bytes, alive for the call.
    let input = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), len) };
    let Some(attr) = Attr::from_id(attr) else {
        return EIO.to_errno() as isize;
    };
    // The file modes already keep non-root users out; a root process
    // without CAP_SYS_ADMIN is refused here too.
    // SAFETY: capable() only inspects the current task's credentials.
    if !unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as c_int) } {
        pr_warn!("{}: write refused: CAP_SYS_ADMIN required\n", attr.name());
        return EPERM.to_errno() as isize;
    }
    let r = match attr {
        Attr::Enable => store_enable(input),
        Attr::Probes => store_probes(input),
        Attr::TestEmit => store_test_emit(input),
        Attr::HypercallFuzz => store_hypercall_fuzz(input),
        Attr::Version | Attr::Stats => Err(EACCES),
    };
    match r {
        Ok(()) => len as isize,
        Err(e) => e.to_errno() as isize,
    }
}

// --- attributes --------------------------------------------------------------

/// Logs a refused write and returns `-EINVAL`.
fn refuse(attr: &str, input: &[u8], why: cmd::ParseError<'_>) -> Error {
    pr_warn!("{attr}: refused '{}': {why}\n", Shown(input));
    EINVAL
}

fn show_version(p: &mut Page<'_>) -> Result {
    let _ = writeln!(p, "module {MODULE_VERSION}");
    let _ = writeln!(p, "abi {}.{}", abi::ABI_MAJOR, abi::ABI_MINOR);
    match hvc::call(f::VERSION, 0, 0, 0) {
        Ok(r) => {
            let _ = writeln!(p, "hypervisor_abi {}.{}", r.x0 >> 16, r.x0 & 0xffff);
        }
        Err(e) => {
            let _ = writeln!(p, "hypervisor_abi error: {}", e.describe());
        }
    }
    Ok(())
}

fn show_enable(p: &mut Page<'_>) -> Result {
    let _ = writeln!(p, "{}", u8::from(ENABLED.load(Ordering::Acquire)));
    Ok(())
}

fn store_enable(input: &[u8]) -> Result {
    let on = cmd::parse_enable(input).map_err(|e| refuse("enable", input, e))?;
    let prev = hvc::call(f::TRACE_ENABLE, u64::from(on), 0, 0)
        .map_err(|e| e.fail("TRACE_ENABLE"))?
        .x0;
    ENABLED.store(on, Ordering::Release);
    if on {
        // The tick emits a clock_sync right away, then every period.
        shim::tick_start(CLOCK_SYNC_PERIOD_MS);
    } else {
        shim::tick_stop();
        drain(u64::MAX);
        clock_sync_now();
    }
    pr_info!(
        "tracing {} (hypervisor was {})\n",
        if on { "enabled" } else { "disabled" },
        if prev != 0 { "on" } else { "off" }
    );
    Ok(())
}

fn own_entry(vm: u8, id: u16) -> u32 {
    1 << 31 | u32::from(vm) << 16 | u32::from(id)
}

fn show_probes(p: &mut Page<'_>) -> Result {
    // VM ids are dense: the first one the hypervisor calls invalid ends
    // the list.
    for vm in 0..=u64::from(u8::MAX) {
        for index in 0..u64::from(abi::MAX_PROBE_ID) {
            match hvc::call(f::PROBE_LIST, vm, index, 0) {
                Ok(r) => {
                    let id = (r.x0 & 0xffff) as u16;
                    let kind = match (r.x0 >> 16) & 0xffff {
                        abi::probe_kind::CONTEXT_SWITCH => cmd::ListedKind::Switch,
                        abi::probe_kind::ENTRY => cmd::ListedKind::Entry,
                        abi::probe_kind::RETURN => cmd::ListedKind::Return,
                        _ => cmd::ListedKind::Plain,
                    };
                    let line = cmd::ProbeLine {
                        plan: probe_plan(vm, id),
                        vm: vm as u8,
                        id,
                        addr: r.x1,
                        kind,
                        hits: r.x2,
                        owned: OWN.iter().any(|o| o.load(Ordering::Relaxed) == own_entry(vm as u8, id)),
                    };
                    if writeln!(p, "{line}").is_err() {
                        return Ok(());
                    }
                }
                Err(e) if e.0 == abi::err::INVAL && index == 0 => return Ok(()),
                Err(e) if e.0 == abi::err::NOENT => break,
                Err(e) if e.0 == abi::err::NOTSUPP => return Err(e.fail("PROBE_LIST")),
                Err(e) if e.0 == abi::err::STOPPED => {
                    let _ = writeln!(p, "vm={vm} stopped: {}", e.describe());
                    break;
                }
                Err(e) => {
                    let _ = writeln!(p, "vm={vm} error: {}", e.describe());
                    break;
                }
            }
        }
    }
    Ok(())
}

/// A probe's label and fetch arguments, as the hypervisor holds them (none
/// if it cannot say).
fn probe_plan(vm: u64, id: u16) -> fetch::FetchPlan {
    let Ok(mut buf) = shim::IpaBuf::new(fetch::PLAN_MAX) else {
        return fetch::FetchPlan::EMPTY;
    };
    match hvc::call5(f::PROBE_PLAN, [vm, id.into(), buf.ipa(), fetch::PLAN_MAX as u64, 0]) {
        Ok(r) => {
            let n = (r.x0 as usize).min(fetch::PLAN_MAX);
            fetch::FetchPlan::from_bytes(&buf.bytes()[..n]).unwrap_or(fetch::FetchPlan::EMPTY)
        }
        Err(_) => fetch::FetchPlan::EMPTY,
    }
}

fn store_probes(input: &[u8]) -> Result {
    match cmd::parse_probe(input).map_err(|e| refuse("probes", input, e))? {
        ProbeCmd::Add { vm, addr, kind, plan } => {
            if OWN.iter().all(|o| o.load(Ordering::Relaxed) != 0) {
                pr_warn!("probes: refused: this module already tracks {OWN_PROBES} probes\n");
                return Err(ENOSPC);
            }
            let (raw_kind, what) = match kind {
                cmd::AddKind::Plain => (abi::probe_kind::PLAIN, "plain"),
                cmd::AddKind::Switch => (abi::probe_kind::CONTEXT_SWITCH, "context switch"),
                cmd::AddKind::Entry => (abi::probe_kind::ENTRY, "function entry"),
                cmd::AddKind::Return { entry } => (abi::probe_kind::RETURN | u64::from(entry) << 16, "return site"),
            };
            let mut blob = [0u8; fetch::PLAN_MAX];
            let len = plan.encode(&mut blob);
            let mut buf = shim::IpaBuf::new(fetch::PLAN_MAX)?;
            buf.bytes()[..len].copy_from_slice(&blob[..len]);
            let r = hvc::call5(f::PROBE_ADD, [vm.into(), addr, raw_kind, buf.ipa(), len as u64])
                .map_err(|e| e.fail("PROBE_ADD"))?;
            let id = (r.x0 & 0xffff) as u16;
            let entry = own_entry(vm, id);
            let tracked = OWN.iter().any(|o| {
                o.compare_exchange(0, entry, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            });
            if !tracked {
                pr_warn!("probe {id} in VM {vm} added but not tracked: it stays after unload\n");
            }
            pr_info!(
                "probe {id} added in VM {vm} at {addr:#x} ({what}, {} fetch arguments)\n",
                plan.argc
            );
        }
        ProbeCmd::Remove { vm, id } => {
            hvc::call(f::PROBE_REMOVE, vm.into(), id.into(), 0).map_err(|e| e.fail("PROBE_REMOVE"))?;
            let entry = own_entry(vm, id);
            for o in &OWN {
                let _ = o.compare_exchange(entry, 0, Ordering::AcqRel, Ordering::Relaxed);
            }
            pr_info!("probe {id} removed from VM {vm}\n");
        }
        ProbeCmd::IrqTiming { vm, on } => {
            hvc::call(f::IRQ_TIMING, vm.into(), on.into(), 0).map_err(|e| e.fail("IRQ_TIMING"))?;
            pr_info!("VM {vm}: interrupt timing {}\n", if on { "on" } else { "off" });
        }
        ProbeCmd::Write { vm, addr, size, value } => {
            hvc::call5(f::MEM_WRITE, [vm.into(), addr, size.into(), value, 0]).map_err(|e| e.fail("MEM_WRITE"))?;
            pr_info!("VM {vm}: wrote {value:#x} ({size} bytes) at {addr:#x}\n");
        }
    }
    Ok(())
}

fn store_test_emit(input: &[u8]) -> Result {
    let n = cmd::parse_count(input).map_err(|e| refuse("test_emit", input, e))?;
    let r = hvc::call(f::TEST_EMIT, n, 0, 0).map_err(|e| e.fail("TEST_EMIT"))?;
    pr_info!("TEST_EMIT {n}: the hypervisor wrote {} records\n", r.x0);
    Ok(())
}

/// `hypercall_fuzz`: issue N random hypercalls (a robustness test of the
/// hypervisor: it must answer every one and keep both VMs running), then
/// remove any probe the random calls inserted.
fn store_hypercall_fuzz(input: &[u8]) -> Result {
    let n = cmd::parse_count(input).map_err(|e| refuse("hypercall_fuzz", input, e))?;
    let mut state = shim::now_ns() | 1;
    let mut next = || {
        // xorshift64
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut ok, mut refused) = (0u64, [0u64; 10]);
    for _ in 0..n {
        let pick = next();
        // Mostly real function ids, sometimes anything.
        let function = if pick % 8 == 0 {
            next()
        } else {
            [0x00, 0x01, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x1F, 0x02, 0x20][(pick >> 8) as usize % 12]
        };
        let mut arg = || {
            let r = next();
            match r % 6 {
                0 => r >> 60,                                            // small numbers (VM ids, indices, flags)
                1 => 0x4000_0000 + ((r >> 8) % 0x4000_0000),             // guest physical memory
                2 => 0xffff_0000_4010_0000 + ((r >> 8) % 0x1_0000) & !3, // the RTOS's code
                3 => 0xffff_8000_0000_0000 | (r >> 16),                  // kernel addresses
                4 => (r >> 40) as u64,                                   // counts
                _ => r,                                                  // anything
            }
        };
        let args = [arg(), arg(), arg(), arg(), arg()];
        // TEST_EMIT of a huge count would just take long: keep it small.
        let args = if function == 0x1F {
            [args[0] % 64, args[1], args[2], args[3], args[4]]
        } else {
            args
        };
        match hvc::call5(function, args) {
            Ok(_) => ok += 1,
            Err(e) => refused[(e.0.unsigned_abs() as usize).min(9)] += 1,
        }
    }
    // Take out whatever probes the random calls inserted.
    let mut removed = 0;
    for vm in 0..2u64 {
        while let Ok(r) = hvc::call(f::PROBE_LIST, vm, 0, 0) {
            if hvc::call(f::PROBE_REMOVE, vm, r.x0 & 0xffff, 0).is_err() {
                break;
            }
            removed += 1;
        }
    }
    let _ = hvc::call(f::TRACE_ENABLE, 0, 0, 0);
    pr_info!(
        "hypercall_fuzz: {n} random hypercalls: {ok} accepted, refused by error code {:?}; {removed} probes removed afterwards\n",
        &refused[1..]
    );
    Ok(())
}

fn show_stats(p: &mut Page<'_>) -> Result {
    let mut ring_drops = 0u64;
    let mut lines = 0usize;
    let mut per_ring = [(0u64, 0u32, 0u64, 0u64, 0u64); TRACKED_RINGS];
    if let Some(region) = region() {
        region.walk(|r| {
            ring_drops += r.drops();
            if lines < TRACKED_RINGS {
                per_ring[lines] = (r.cpu, r.capacity, r.head(), r.tail(), r.drops());
                lines += 1;
            }
        });
    }
    let lost = get(&COUNT.lost_records);
    // Header drops and lost markers may describe the same losses; the
    // larger one is the best lower bound.
    let _ = writeln!(p, "records {}", get(&COUNT.records));
    let _ = writeln!(p, "rtos_switch {}", get(&COUNT.switches));
    let _ = writeln!(p, "rtos_probe {}", get(&COUNT.probe_hits));
    let _ = writeln!(p, "rtos_irq {}", get(&COUNT.irq_timings));
    let _ = writeln!(p, "vm_stopped {}", get(&COUNT.vm_stops));
    let _ = writeln!(p, "tcb_unreadable {}", get(&COUNT.tcb_unreadable));
    let _ = writeln!(p, "drops {}", ring_drops.max(lost));
    let _ = writeln!(p, "ring_drops {ring_drops}");
    let _ = writeln!(p, "lost_markers {}", get(&COUNT.lost_markers));
    let _ = writeln!(p, "lost_records {lost}");
    let _ = writeln!(p, "seq_gaps {}", get(&COUNT.seq_gaps));
    let _ = writeln!(p, "unknown_records {}", get(&COUNT.unknown));
    let _ = writeln!(p, "hyp_clock_sync_records {}", get(&COUNT.hyp_clock_syncs));
    let _ = writeln!(p, "resyncs {}", get(&COUNT.resyncs));
    let _ = writeln!(p, "irqs {}", get(&COUNT.irqs));
    let _ = writeln!(p, "irq_threads {}", get(&COUNT.irq_threads));
    let _ = writeln!(p, "drains {}", get(&COUNT.drains));
    let _ = writeln!(p, "clock_syncs {}", get(&COUNT.clock_syncs));
    let _ = writeln!(p, "enabled {}", u8::from(ENABLED.load(Ordering::Acquire)));
    let _ = writeln!(
        p,
        "region {:#x} {}",
        REGION_PHYS.load(Ordering::Relaxed),
        REGION_LEN.load(Ordering::Relaxed)
    );
    for (i, (cpu, cap, head, tail, drops)) in per_ring.iter().take(lines).enumerate() {
        let fill = head.saturating_sub(*tail);
        let _ = writeln!(
            p,
            "ring{i} cpu={cpu} capacity={cap} head={head} tail={tail} fill={fill} fill_pct={} drops={drops}",
            fill * 100 / u64::from(*cap).max(1)
        );
    }
    for (stat, name) in abi::HYP_STATS {
        match hvc::call(f::STATS, stat, 0, 0) {
            Ok(r) => {
                let _ = writeln!(p, "hyp_{name} {}", r.x0);
            }
            Err(e) => {
                let _ = writeln!(p, "hyp_{name} unavailable ({})", e.describe());
            }
        }
    }
    Ok(())
}

// --- the module --------------------------------------------------------------

struct HvTrace;

impl kernel::Module for HvTrace {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        check_layout()?;
        if !shim::dt_present() {
            pr_err!(
                "no \"hv-trace,hvtrace\" node in the device tree: Linux is not running under the hv-trace hypervisor\n"
            );
            return Err(ENODEV);
        }
        let v = hvc::call(f::VERSION, 0, 0, 0).map_err(|e| {
            pr_err!(
                "VERSION hypercall failed: {}: is Linux running under the hv-trace hypervisor?\n",
                e.describe()
            );
            ENODEV
        })?;
        let (major, minor) = (v.x0 >> 16, v.x0 & 0xffff);
        if major != u64::from(abi::ABI_MAJOR) {
            pr_err!(
                "the hypervisor speaks hvtrace ABI {major}.{minor}, this module {}.{}: refusing to load\n",
                abi::ABI_MAJOR,
                abi::ABI_MINOR
            );
            return Err(EINVAL);
        }
        HYP_VERSION.store(v.x0, Ordering::Relaxed);
        shim::driver_register().map_err(|e| {
            pr_err!(
                "no usable \"hv-trace,hvtrace\" device (see the messages above): error {}\n",
                e.to_errno()
            );
            e
        })?;
        if let Err(e) = shim::sysfs_create() {
            pr_err!("cannot create /sys/kernel/hvtrace: error {}\n", e.to_errno());
            shim::driver_unregister();
            return Err(e);
        }
        pr_info!(
            "hvtrace {MODULE_VERSION} loaded: ABI {}.{}, hypervisor ABI {major}.{minor}\n",
            abi::ABI_MAJOR,
            abi::ABI_MINOR
        );
        // The hypervisor owns the tracing switch and the probes: a module
        // loaded while they are on (after an rmmod) carries on, first
        // delivering what waited in the rings.
        if matches!(hvc::call(f::STATS, abi::STAT_TRACING, 0, 0), Ok(r) if r.x0 != 0) {
            ENABLED.store(true, Ordering::Release);
            shim::tick_start(CLOCK_SYNC_PERIOD_MS);
            pr_info!("tracing was on: carrying on\n");
        }
        drain(u64::MAX);
        Ok(HvTrace)
    }
}

impl Drop for HvTrace {
    fn drop(&mut self) {
        // No more sysfs writes past this point.
        shim::sysfs_remove();
        let was_enabled = ENABLED.swap(false, Ordering::AcqRel);
        shim::tick_stop();
        // Tracing and the probes stay as they are: the hypervisor owns them
        // (the RTOS is traced whether Linux's module is loaded or not).
        // Records wait in the rings for the next module; what does not fit
        // is counted as dropped, by the hypervisor and in the rings' headers.
        let probes = OWN.iter().filter(|o| o.swap(0, Ordering::AcqRel) != 0).count();
        // Frees the IRQ, then detaches and unmaps the region.
        shim::driver_unregister();
        pr_info!(
            "hvtrace unloaded after {} records; tracing stays {} ({probes} probes added by this module stay in)\n",
            get(&COUNT.records),
            if was_enabled { "on" } else { "off" }
        );
    }
}
