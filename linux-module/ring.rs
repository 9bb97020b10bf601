// SPDX-License-Identifier: GPL-2.0

//! The consumer end of the per-CPU trace rings in the shared region.
//!
//! The region holds rings back to back from offset 0 (see guest-probe's
//! `abi::ring`): a ring is recognised by its magic and accepted only if its
//! header is sane (ABI major, record size, power-of-two capacity) and it fits
//! in what is left of the region. The region belongs to the hypervisor, which
//! may set the headers up after this module loads, so the walk is repeated on
//! every drain instead of being cached.
//!
//! Ordering: `head` is loaded with Acquire before a slot is read, and `tail`
//! is stored with Release after the slots below it have been copied out.

use core::ptr::{self, addr_of_mut};
use core::sync::atomic::{fence, AtomicU64, Ordering};

use crate::abi::{self, Record, RingHeader};

/// Records read between two stores of `tail` (a power of two).
const TAIL_BATCH: u64 = 32;

/// A mapped ring region.
#[derive(Clone, Copy)]
pub(crate) struct Region {
    base: *mut u8,
    len: usize,
}

/// Why a ring walk stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The end of the region was reached exactly.
    End,
    /// No ring magic at this offset (the normal end when rings do not fill
    /// the region, or nothing set up yet when it is 0).
    NoMagic(usize),
    /// A header with the magic but unusable contents.
    BadHeader {
        /// Its offset in the region.
        offset: usize,
        /// What is wrong.
        why: &'static str,
        /// The offending value.
        value: u64,
    },
}

/// One ring, validated.
#[derive(Clone, Copy)]
pub(crate) struct Ring {
    /// Position in the region (0 = first).
    pub(crate) index: usize,
    /// Byte offset in the region.
    pub(crate) offset: usize,
    /// Slots.
    pub(crate) capacity: u32,
    /// The source CPU the header names.
    pub(crate) cpu: u64,
    hdr: *mut RingHeader,
    slots: *mut Record,
}

/// What one drain of one ring did.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Drained {
    /// Records handed to the callback.
    pub(crate) records: u64,
    /// `head`/`tail` were inconsistent and `tail` was moved to `head`; this
    /// many slots (if any) were skipped.
    pub(crate) resynced: Option<u64>,
}

impl Region {
    /// Wraps a mapped region.
    ///
    /// # Safety
    /// `base` must be 64-byte aligned and valid for reads and writes of `len`
    /// bytes for as long as this `Region` (and the rings it yields) is used;
    /// the memory may be written concurrently only by the ring producer,
    /// following the ring protocol.
    pub(crate) unsafe fn new(base: *mut u8, len: usize) -> Self {
        Self { base, len }
    }

    /// Calls `f` for every valid ring in order; returns why the walk stopped.
    pub(crate) fn walk(&self, mut f: impl FnMut(&Ring)) -> Stop {
        let mut offset = 0usize;
        let mut index = 0usize;
        loop {
            if offset == self.len {
                return Stop::End;
            }
            if self.len - offset < abi::RING_HEADER_SIZE {
                return Stop::NoMagic(offset);
            }
            // SAFETY: offset + header size is inside the region (checked
            // above); offset is a multiple of 64 (ring sizes are), so the
            // header is aligned.
            let hdr = unsafe { self.base.add(offset) }.cast::<RingHeader>();
            // SAFETY: as above; plain integer fields read by value, never
            // referenced, volatile because another VM writes this memory.
            let (magic, major, record_size, capacity, cpu) = unsafe {
                (
                    ptr::read_volatile(addr_of_mut!((*hdr).magic)),
                    ptr::read_volatile(addr_of_mut!((*hdr).abi_major)),
                    ptr::read_volatile(addr_of_mut!((*hdr).record_size)),
                    ptr::read_volatile(addr_of_mut!((*hdr).capacity)),
                    ptr::read_volatile(addr_of_mut!((*hdr).cpu)),
                )
            };
            if magic != abi::RING_MAGIC {
                return Stop::NoMagic(offset);
            }
            let bad = |why, value: u64| Stop::BadHeader { offset, why, value };
            if major != abi::ABI_MAJOR {
                return bad("unsupported ABI major version", major.into());
            }
            if record_size as usize != abi::RECORD_SIZE {
                return bad("record size is not 64", record_size.into());
            }
            if capacity == 0 || !capacity.is_power_of_two() || capacity > abi::MAX_RING_CAPACITY {
                return bad("capacity is not a power of two in range", capacity.into());
            }
            let bytes = abi::ring_bytes(capacity);
            if bytes > self.len - offset {
                return bad("ring does not fit in the region", bytes as u64);
            }
            let ring = Ring {
                index,
                offset,
                capacity,
                cpu,
                hdr,
                // SAFETY: the slots follow the header inside the region
                // (the ring's size was checked against what is left).
                slots: unsafe { self.base.add(offset + abi::RING_HEADER_SIZE) }.cast::<Record>(),
            };
            f(&ring);
            offset += bytes;
            index += 1;
        }
    }
}

impl Ring {
    fn counter(&self, field: *mut u64) -> &AtomicU64 {
        // SAFETY: `field` points into this ring's header, which lives in the
        // mapped region for as long as the Region is used (Region::new's
        // contract); it is 8-byte aligned (header at a 64-byte boundary,
        // field offsets 64/128/192); all accesses to it go through atomics.
        unsafe { AtomicU64::from_ptr(field) }
    }

    /// The producer's count of records written.
    pub(crate) fn head(&self) -> u64 {
        // SAFETY: a field address inside the header; no reference is made.
        self.counter(unsafe { addr_of_mut!((*self.hdr).head) })
            .load(Ordering::Acquire)
    }

    /// The consumer's count of records read.
    pub(crate) fn tail(&self) -> u64 {
        // SAFETY: as for head.
        self.counter(unsafe { addr_of_mut!((*self.hdr).tail) })
            .load(Ordering::Relaxed)
    }

    /// The producer's count of records dropped (ring full).
    pub(crate) fn drops(&self) -> u64 {
        // SAFETY: as for head.
        self.counter(unsafe { addr_of_mut!((*self.hdr).drops) })
            .load(Ordering::Relaxed)
    }

    fn set_tail(&self, tail: u64) {
        // SAFETY: as for head.
        self.counter(unsafe { addr_of_mut!((*self.hdr).tail) })
            .store(tail, Ordering::Release)
    }

    /// Records waiting to be read (0 if the indices are inconsistent).
    pub(crate) fn fill(&self) -> u64 {
        let (head, tail) = (self.head(), self.tail());
        match head.checked_sub(tail) {
            Some(n) if n <= u64::from(self.capacity) => n,
            _ => 0,
        }
    }

    /// The record in the slot of sequence number `n`, read a word at a time.
    fn read(&self, n: u64) -> Record {
        let slot = (n & (u64::from(self.capacity) - 1)) as usize;
        // SAFETY: slot < capacity, so the record lies inside the ring
        // (checked against the region in walk) and is 8-byte aligned (the
        // slots start 64-byte aligned); head was loaded with Acquire, so the
        // producer's write of this slot is visible. Volatile: another VM
        // writes this memory; by words, as a whole-struct volatile read is
        // done byte by byte for the name arrays.
        let words = unsafe {
            let p = self.slots.add(slot).cast::<u64>();
            core::array::from_fn(|i| ptr::read_volatile(p.add(i)))
        };
        Record::from_words(words)
    }

    /// The data slots after the record in slot `n` into `out`, a word at a
    /// time; returns the bytes read.
    fn read_data(&self, n: u64, slots: usize, out: &mut [u8; abi::MAX_DATA_SLOTS * abi::RECORD_SIZE]) -> usize {
        for i in 0..slots {
            let slot = (n.wrapping_add(1 + i as u64) & (u64::from(self.capacity) - 1)) as usize;
            for w in 0..abi::RECORD_SIZE / 8 {
                // SAFETY: as in `read`: a slot inside the ring, published
                // with its record by the producer's store of head.
                let word = unsafe { ptr::read_volatile(self.slots.add(slot).cast::<u64>().add(w)) };
                let at = i * abi::RECORD_SIZE + w * 8;
                out[at..at + 8].copy_from_slice(&word.to_le_bytes());
            }
        }
        slots * abi::RECORD_SIZE
    }

    /// Hands waiting records (and the data slots after a probe hit with
    /// fetched values) to `f`, in order, at most `limit` records, and frees
    /// their slots.
    pub(crate) fn drain(&self, limit: u64, mut f: impl FnMut(&Record, &[u8])) -> Drained {
        let mut out = Drained::default();
        let head = self.head();
        let mut tail = self.tail();
        let cap = u64::from(self.capacity);
        match head.checked_sub(tail) {
            Some(n) if n <= cap => {}
            _ => {
                // The producer never lets head run more than a ring ahead;
                // this is a re-initialised or corrupt header. Start over
                // from head rather than read garbage.
                self.set_tail(head);
                out.resynced = Some(head.saturating_sub(tail));
                return out;
            }
        }
        let mut head = head;
        // One buffer for the whole drain: a record's data is read only as far
        // as it was written (zeroing 640 bytes for every record, most with
        // no data at all, was the drain's biggest cost).
        let mut data = [0u8; abi::MAX_DATA_SLOTS * abi::RECORD_SIZE];
        loop {
            while tail != head {
                if out.records == limit {
                    self.set_tail(tail);
                    return out;
                }
                let record = self.read(tail);
                let extra = record.data_slots();
                if extra > abi::MAX_DATA_SLOTS || extra as u64 >= head - tail {
                    // Data that was not published with its record: not our
                    // producer's doing. Start over from head.
                    self.set_tail(head);
                    out.resynced = Some(head - tail);
                    return out;
                }
                let len = self.read_data(tail, extra, &mut data);
                tail += 1 + extra as u64;
                out.records += 1;
                f(&record, &data[..len]);
                // Slots go back to the producer in batches: one store per
                // batch, not per record, yet never a whole ring held.
                if tail % TAIL_BATCH <= extra as u64 {
                    self.set_tail(tail);
                }
            }
            self.set_tail(tail);
            // The producer rings the doorbell only when the ring goes from
            // empty to non-empty (or half full): it fences between its head
            // store and its tail load, we fence between our tail store and
            // this head load, so either it sees our progress or we see its
            // record.
            fence(Ordering::SeqCst);
            let now = self.head();
            if now == head || now.wrapping_sub(tail) > cap {
                return out;
            }
            head = now;
        }
    }
}
