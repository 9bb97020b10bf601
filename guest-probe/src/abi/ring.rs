//! The per-CPU trace ring: a single-producer (the hypervisor, on the source
//! core), single-consumer (Linux) queue of [`Record`]s in shared memory.
//!
//! # Layout
//! ```text
//! offset   0  u32 magic "HVTR" (0x52545648), u16 abi_major, u16 abi_minor,
//!             u32 record_size (64), u32 capacity (records, power of two),
//!             u64 cpu, u64 seq_base (producer: drops minus the slots
//!             ever used by data, wrapping), reserved to 64
//! offset  64  u64 head   (producer: slots ever written), own cache line
//! offset 128  u64 tail   (consumer: slots ever read),   own cache line
//! offset 192  u64 drops  (producer: records dropped),   own cache line
//! offset 256  capacity × 64-byte slots; slot n lives at n % capacity
//! ```
//!
//! A slot holds a [`Record`], or data that belongs to the record before it:
//! a probe hit with fetched values ([`Record::data_slots`]) is followed by
//! that many slots of its [`fetch`](super::fetch) payload. A record and its
//! data are published by one store of `head` and dropped as one.
//!
//! # Ordering
//! The producer writes the record into slot `head % capacity`, then stores
//! `head + 1` with **Release**; the consumer loads `head` with **Acquire**
//! before reading the slot. Symmetrically the consumer stores `tail + 1` with
//! **Release** after copying the record out, and the producer loads `tail`
//! with **Acquire** before reusing a slot. A full ring never overwrites unread
//! data: the record is counted in `drops` instead. Every record's `seq` is
//! `head + drops` at the time it was offered, so a reader sees gaps.
//!
//! The consumer is another VM and is not trusted: a `tail` that is ahead of
//! `head`, or more than `capacity` behind it, makes the producer drop (never
//! write out of bounds: slots are always indexed modulo the capacity).

use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicU64, Ordering};

use super::{Record, ABI_MAJOR, ABI_MINOR, MAX_DATA_BYTES, MAX_DATA_SLOTS};

/// `"HVTR"` in little-endian.
pub const RING_MAGIC: u32 = 0x5254_5648;
/// Size of the ring header; records start here.
pub const RING_HEADER_SIZE: usize = 256;

/// The ring header as it lies in shared memory.
#[derive(Debug)]
#[repr(C, align(64))]
pub struct RingHeader {
    /// [`RING_MAGIC`].
    pub magic: u32,
    /// ABI major version of the producer.
    pub abi_major: u16,
    /// ABI minor version of the producer.
    pub abi_minor: u16,
    /// Size of one record (64).
    pub record_size: u32,
    /// Number of record slots (a power of two).
    pub capacity: u32,
    /// The source CPU (physical core) of this ring.
    pub cpu: u64,
    /// Records dropped minus slots ever used by data after a record,
    /// wrapping (producer-owned): `head + seq_base` numbers the records.
    pub seq_base: AtomicU64,
    _reserved0: [u8; 32],
    /// Records ever written (producer-owned).
    pub head: AtomicU64,
    _pad1: [u8; 56],
    /// Records ever read (consumer-owned).
    pub tail: AtomicU64,
    _pad2: [u8; 56],
    /// Records dropped because the ring was full (producer-owned).
    pub drops: AtomicU64,
    _pad3: [u8; 56],
}

const _: () = assert!(size_of::<RingHeader>() == RING_HEADER_SIZE);
const _: () = assert!(offset_of!(RingHeader, head) == 64);
const _: () = assert!(offset_of!(RingHeader, tail) == 128);
const _: () = assert!(offset_of!(RingHeader, drops) == 192);
const _: () = assert!(offset_of!(RingHeader, cpu) == 16);
const _: () = assert!(offset_of!(RingHeader, seq_base) == 24);

/// Why a memory region is not a usable ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    /// The region is not 64-byte aligned.
    #[error("ring memory is not 64-byte aligned")]
    Misaligned,
    /// The region is smaller than the header plus the records.
    #[error("ring memory too small: {needed} bytes needed, {available} available")]
    TooSmall {
        /// Bytes the ring needs.
        needed: usize,
        /// Bytes provided.
        available: usize,
    },
    /// The capacity is zero, not a power of two, or too large.
    #[error("bad ring capacity {0} (must be a power of two)")]
    BadCapacity(u32),
    /// The magic is wrong.
    #[error("bad ring magic {0:#010x}")]
    BadMagic(u32),
    /// The producer speaks another major ABI version.
    #[error("unsupported ring ABI {major}.{minor}")]
    UnsupportedAbi {
        /// Major version found.
        major: u16,
        /// Minor version found.
        minor: u16,
    },
    /// The record size is not 64.
    #[error("bad record size {0}")]
    BadRecordSize(u32),
    /// `head` and `tail` are inconsistent.
    #[error("inconsistent ring indices: head {head}, tail {tail}")]
    Inconsistent {
        /// The head found.
        head: u64,
        /// The tail found.
        tail: u64,
    },
}

/// Bytes a ring of `capacity` records occupies.
pub const fn ring_bytes(capacity: u32) -> usize {
    RING_HEADER_SIZE + capacity as usize * Record::SIZE
}

/// A ring in shared memory.
#[derive(Clone, Copy, Debug)]
pub struct Ring<'a> {
    header: &'a RingHeader,
    slots: *mut Record,
    mask: u64,
    _slots: PhantomData<&'a [UnsafeCell<Record>]>,
}

// SAFETY: the ring is a lock-free SPSC protocol over atomics; slot accesses
// are ordered by the Release/Acquire pairs on head and tail (see the module
// documentation), so a Ring may move between threads.
unsafe impl Send for Ring<'_> {}

fn check_region(base: *mut u8, len: usize, capacity: u32) -> Result<(), RingError> {
    if base as usize & 63 != 0 {
        return Err(RingError::Misaligned);
    }
    if capacity == 0 || !capacity.is_power_of_two() || capacity > (1 << 26) {
        return Err(RingError::BadCapacity(capacity));
    }
    let needed = ring_bytes(capacity);
    if len < needed {
        return Err(RingError::TooSmall { needed, available: len });
    }
    Ok(())
}

impl<'a> Ring<'a> {
    /// Formats a new, empty ring at `base` (the producer side does this).
    ///
    /// # Safety
    /// `base` must be valid for reads and writes of `len` bytes for `'a`,
    /// accessed during `'a` only through rings attached to it, with at most
    /// one [`Producer`] and one [`Consumer`] in use at a time.
    pub unsafe fn init(base: *mut u8, len: usize, capacity: u32, cpu: u64) -> Result<Self, RingError> {
        check_region(base, len, capacity)?;
        let hdr = base.cast::<RingHeader>();
        // SAFETY: the region is valid for writes and 64-byte aligned (checked
        // above, and by the caller's contract); every byte of the header is
        // written, so the references below see initialised memory.
        unsafe {
            core::ptr::write_bytes(base, 0, RING_HEADER_SIZE);
            (*hdr).magic = RING_MAGIC;
            (*hdr).abi_major = ABI_MAJOR;
            (*hdr).abi_minor = ABI_MINOR;
            (*hdr).record_size = Record::SIZE as u32;
            (*hdr).capacity = capacity;
            (*hdr).cpu = cpu;
        }
        // SAFETY: as above; the header is now initialised.
        unsafe { Self::attach(base, len) }
    }

    /// Attaches to an existing ring at `base`, validating its header.
    ///
    /// # Safety
    /// As for [`Ring::init`].
    pub unsafe fn attach(base: *mut u8, len: usize) -> Result<Self, RingError> {
        if base as usize & 63 != 0 {
            return Err(RingError::Misaligned);
        }
        if len < RING_HEADER_SIZE {
            return Err(RingError::TooSmall {
                needed: RING_HEADER_SIZE,
                available: len,
            });
        }
        // SAFETY: the caller guarantees `base` is valid for `len` bytes
        // (≥ the header size, checked) and aligned (checked); all header
        // fields are plain integers or atomics, valid for any bit pattern.
        let header = unsafe { &*base.cast::<RingHeader>() };
        if header.magic != RING_MAGIC {
            return Err(RingError::BadMagic(header.magic));
        }
        if header.abi_major != ABI_MAJOR {
            return Err(RingError::UnsupportedAbi {
                major: header.abi_major,
                minor: header.abi_minor,
            });
        }
        if header.record_size != Record::SIZE as u32 {
            return Err(RingError::BadRecordSize(header.record_size));
        }
        check_region(base, len, header.capacity)?;
        Ok(Self {
            header,
            // SAFETY: the records start right after the header, inside the
            // region (its size was checked against the capacity).
            slots: unsafe { base.add(RING_HEADER_SIZE) }.cast::<Record>(),
            mask: u64::from(header.capacity) - 1,
            _slots: PhantomData,
        })
    }

    /// The header.
    pub fn header(&self) -> &'a RingHeader {
        self.header
    }

    /// Number of slots.
    pub fn capacity(&self) -> u64 {
        self.mask + 1
    }

    /// The producer end (the caller ensures there is only one).
    pub fn producer(self) -> Producer<'a> {
        Producer { ring: self }
    }

    /// The consumer end (the caller ensures there is only one).
    pub fn consumer(self) -> Consumer<'a> {
        Consumer { ring: self }
    }
}

/// The writing end of a ring.
#[derive(Debug)]
pub struct Producer<'a> {
    ring: Ring<'a>,
}

impl Producer<'_> {
    /// Appends `record` (its `seq` is overwritten), which carries no data
    /// ([`Record::data_slots`] is 0: see [`Producer::push_with_data`]).
    /// Returns the sequence number on success, or `Err(seq)` if the ring was
    /// full (or its tail corrupt) and the record was counted as dropped.
    pub fn push(&mut self, record: &Record) -> Result<u32, u32> {
        debug_assert_eq!(record.data_slots(), 0, "push_with_data writes a record's data");
        let h = self.ring.header;
        let head = h.head.load(Ordering::Relaxed);
        let tail = h.tail.load(Ordering::Acquire);
        let base = h.seq_base.load(Ordering::Relaxed);
        let seq = head.wrapping_add(base) as u32;
        if head.wrapping_sub(tail) >= self.ring.capacity() {
            // Full, or a tail ahead of head (used wraps to a huge value).
            self.count_drop(base);
            return Err(seq);
        }
        let mut r = *record;
        r.seq = seq;
        // SAFETY: the slot index is masked into the ring; the consumer does
        // not read this slot until it sees the Release store of head below,
        // and has released it (tail ≥ head - capacity + 1, Acquire above).
        // A plain store (whole words, not field by field): the Release store
        // of head publishes it.
        unsafe { self.ring.slots.add((head & self.ring.mask) as usize).write(r) };
        h.head.store(head.wrapping_add(1), Ordering::Release);
        Ok(seq)
    }

    /// Appends `record` and `data` (little-endian words, at most
    /// [`MAX_DATA_SLOTS`] slots) after it, all or nothing: its `data_slots`
    /// field is set to the slots `data` takes. Returns as
    /// [`Producer::push`]; a drop counts one record.
    pub fn push_with_data(&mut self, record: &Record, data: &[u64]) -> Result<u32, u32> {
        let h = self.ring.header;
        let head = h.head.load(Ordering::Relaxed);
        let tail = h.tail.load(Ordering::Acquire);
        let base = h.seq_base.load(Ordering::Relaxed);
        let seq = head.wrapping_add(base) as u32;
        const WORDS: usize = Record::SIZE / 8;
        let extra = data.len().div_ceil(WORDS).min(MAX_DATA_SLOTS);
        let used = head.wrapping_sub(tail);
        if used.saturating_add(1 + extra as u64) > self.ring.capacity() {
            // Full, or a tail ahead of head (used wraps to a huge value).
            self.count_drop(base);
            return Err(seq);
        }
        let mut r = *record;
        r.seq = seq;
        r.set_data_slots(extra);
        // SAFETY: the slot index is masked into the ring; the consumer does
        // not read this slot until it sees the Release store of head below,
        // and has released it (tail ≥ head - capacity + 1 + extra, Acquire
        // above), as for the data slots after it. A plain store (paired, not
        // field by field): the Release store of head publishes it.
        unsafe { self.ring.slots.add((head & self.ring.mask) as usize).write(r) };
        // A slot's words at once (paired stores), zeros after the data.
        for i in 0..extra {
            let at = (head.wrapping_add(1 + i as u64) & self.ring.mask) as usize;
            let words = data.get(i * WORDS..).unwrap_or(&[]);
            let slot_words: [u64; WORDS] = match words.get(..WORDS) {
                Some(full) => full.try_into().unwrap_or([0; WORDS]),
                None => core::array::from_fn(|w| words.get(w).copied().unwrap_or(0)),
            };
            // SAFETY: as above: a free slot inside the ring, published by the
            // Release store of head below; slots are 64-byte aligned.
            unsafe { self.ring.slots.add(at).cast::<[u64; WORDS]>().write(slot_words) };
        }
        if extra != 0 {
            h.seq_base.store(base.wrapping_sub(extra as u64), Ordering::Relaxed);
        }
        h.head.store(head.wrapping_add(1 + extra as u64), Ordering::Release);
        Ok(seq)
    }

    /// One record dropped: counted for the consumer and in the numbering.
    #[cold]
    fn count_drop(&mut self, base: u64) {
        let h = self.ring.header;
        h.seq_base.store(base.wrapping_add(1), Ordering::Relaxed);
        let drops = h.drops.load(Ordering::Relaxed);
        h.drops.store(drops.wrapping_add(1), Ordering::Release);
    }

    /// Records written and not yet read.
    pub fn pending(&self) -> u64 {
        let h = self.ring.header;
        h.head
            .load(Ordering::Relaxed)
            .wrapping_sub(h.tail.load(Ordering::Acquire))
    }

    /// Records dropped so far.
    pub fn drops(&self) -> u64 {
        self.ring.header.drops.load(Ordering::Relaxed)
    }
}

/// The reading end of a ring.
#[derive(Debug)]
pub struct Consumer<'a> {
    ring: Ring<'a>,
}

impl Consumer<'_> {
    /// Takes the oldest unread record, if any (its data, if it has any,
    /// is skipped: see [`Consumer::pop_with_data`]).
    pub fn pop(&mut self) -> Result<Option<Record>, RingError> {
        let mut data = [0u8; MAX_DATA_BYTES];
        Ok(self.pop_with_data(&mut data)?.map(|(r, _)| r))
    }

    /// Takes the oldest unread record and copies its data into `data`;
    /// returns the record and the data's length.
    pub fn pop_with_data(&mut self, data: &mut [u8; MAX_DATA_BYTES]) -> Result<Option<(Record, usize)>, RingError> {
        let h = self.ring.header;
        let tail = h.tail.load(Ordering::Relaxed);
        let head = h.head.load(Ordering::Acquire);
        if head == tail {
            return Ok(None);
        }
        let waiting = head.wrapping_sub(tail);
        if waiting > self.ring.capacity() {
            return Err(RingError::Inconsistent { head, tail });
        }
        // SAFETY: the slot is inside the ring (masked) and was published by
        // the producer's Release store of head, which we Acquire-loaded; the
        // producer does not reuse it until our Release store of tail.
        let r = unsafe { self.ring.slots.add((tail & self.ring.mask) as usize).read_volatile() };
        let extra = r.data_slots();
        if extra > MAX_DATA_SLOTS || extra as u64 >= waiting {
            // A record whose data was not published with it: not our producer.
            return Err(RingError::Inconsistent { head, tail });
        }
        for i in 0..extra {
            let at = (tail.wrapping_add(1 + i as u64) & self.ring.mask) as usize;
            // SAFETY: as above; these slots were published with the record.
            let slot = unsafe { self.ring.slots.add(at).cast::<[u8; Record::SIZE]>().read_volatile() };
            data[i * Record::SIZE..(i + 1) * Record::SIZE].copy_from_slice(&slot);
        }
        h.tail.store(tail.wrapping_add(1 + extra as u64), Ordering::Release);
        Ok(Some((r, extra * Record::SIZE)))
    }

    /// Records dropped by the producer so far.
    pub fn drops(&self) -> u64 {
        self.ring.header.drops.load(Ordering::Acquire)
    }
}

#[cfg(feature = "std")]
pub use owned::OwnedRing;

#[cfg(feature = "std")]
mod owned {
    use super::*;

    #[derive(Clone, Copy)]
    #[repr(C, align(64))]
    struct Line([u8; 64]);

    /// A ring in heap memory (host tests, the converter's tests, TEST_EMIT
    /// fixtures): it owns the bytes and hands out [`Ring`] views.
    pub struct OwnedRing {
        lines: Box<[UnsafeCell<Line>]>,
    }

    impl OwnedRing {
        /// A new, empty ring of `capacity` records for `cpu`.
        pub fn new(capacity: u32, cpu: u64) -> Result<Self, RingError> {
            if capacity == 0 || !capacity.is_power_of_two() || capacity > (1 << 26) {
                return Err(RingError::BadCapacity(capacity));
            }
            let lines = ring_bytes(capacity) / 64;
            let o = Self {
                lines: (0..lines).map(|_| UnsafeCell::new(Line([0; 64]))).collect(),
            };
            // SAFETY: the boxed lines are valid, 64-byte aligned and live as
            // long as `o`; only rings borrowed from `o` touch them.
            unsafe { Ring::init(o.base(), o.len(), capacity, cpu)? };
            Ok(o)
        }

        fn base(&self) -> *mut u8 {
            UnsafeCell::raw_get(self.lines.as_ptr()).cast::<u8>()
        }

        fn len(&self) -> usize {
            self.lines.len() * 64
        }

        /// A view of the ring, borrowed from `self`.
        pub fn ring(&self) -> Ring<'_> {
            // SAFETY: the memory was formatted by `new` and outlives the
            // returned view; it is only accessed through such views.
            unsafe { Ring::attach(self.base(), self.len()) }.expect("formatted by new")
        }

        /// A copy of the ring's bytes, as a memory dump would hold them.
        pub fn to_bytes(&self) -> Vec<u8> {
            // SAFETY: the region is initialised and `len` bytes long; the
            // header's atomics are read as plain bytes, which is what a
            // memory dump of shared memory sees.
            unsafe { core::slice::from_raw_parts(self.base(), self.len()) }.to_vec()
        }
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    fn rec(n: u64) -> Record {
        Record {
            timestamp: n,
            pc: 0x1000 + n,
            kind: 2,
            ..Record::default()
        }
    }

    #[test]
    fn push_pop_fill_drop_and_wrap() {
        let o = OwnedRing::new(4, 1).unwrap();
        let mut p = o.ring().producer();
        let mut c = o.ring().consumer();
        assert_eq!(c.pop(), Ok(None));
        for n in 0..4 {
            assert_eq!(p.push(&rec(n)), Ok(n as u32));
        }
        // Full: dropped, counted, never overwrites unread data.
        assert_eq!(p.push(&rec(99)), Err(4));
        assert_eq!(p.push(&rec(99)), Err(5));
        assert_eq!((p.pending(), p.drops(), c.drops()), (4, 2, 2));
        for n in 0..2 {
            let r = c.pop().unwrap().unwrap();
            assert_eq!((r.timestamp, r.seq), (n, n as u32));
        }
        // Two slots free: the next records wrap around, seq shows the gap.
        assert_eq!(p.push(&rec(10)), Ok(6));
        assert_eq!(p.push(&rec(11)), Ok(7));
        let got: Vec<(u64, u32)> = core::iter::from_fn(|| c.pop().unwrap())
            .map(|r| (r.timestamp, r.seq))
            .collect();
        assert_eq!(got, vec![(2, 2), (3, 3), (10, 6), (11, 7)]);
        assert_eq!(o.ring().header().head.load(Ordering::Relaxed), 6);
        assert_eq!(o.ring().header().cpu, 1);
    }

    fn hit(n: u64) -> Record {
        Record {
            kind: super::super::RecordKind::ProbeHit as u16,
            ..rec(n)
        }
    }

    #[test]
    fn data_goes_with_its_record_or_is_dropped_with_it() {
        let o = OwnedRing::new(8, 1).unwrap();
        let mut p = o.ring().producer();
        let mut c = o.ring().consumer();
        let bytes: Vec<u8> = (0..104).collect();
        let values: Vec<u64> = bytes
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        // 1 + 2 slots, then a plain record, then 1 + 2 again: 7 of 8 slots.
        assert_eq!(p.push_with_data(&hit(0), &values), Ok(0));
        assert_eq!(p.push(&rec(1)), Ok(1));
        assert_eq!(p.push_with_data(&hit(2), &values[..8]), Ok(2));
        assert_eq!(p.push_with_data(&hit(3), &values), Err(3));
        // Dropped whole (one record), the next one fits and seq shows the gap.
        assert_eq!(p.push(&rec(4)), Ok(4));
        assert_eq!((p.drops(), p.pending()), (1, 7));
        let mut data = [0u8; MAX_DATA_BYTES];
        let (r, n) = c.pop_with_data(&mut data).unwrap().unwrap();
        assert_eq!((r.timestamp, r.seq, r.data_slots(), n), (0, 0, 2, 128));
        assert_eq!(&data[..104], &bytes[..]);
        assert_eq!(&data[104..128], &[0; 24]);
        assert_eq!(c.pop().unwrap().map(|r| (r.timestamp, r.seq)), Some((1, 1)));
        // Wraps: the next hit's data crosses the end of the slots.
        let (r, n) = c.pop_with_data(&mut data).unwrap().unwrap();
        assert_eq!((r.timestamp, r.seq, n), (2, 2, 64));
        assert_eq!(p.push_with_data(&hit(5), &values), Ok(5));
        assert_eq!(c.pop().unwrap().map(|r| (r.timestamp, r.seq)), Some((4, 4)));
        let (r, n) = c.pop_with_data(&mut data).unwrap().unwrap();
        assert_eq!((r.timestamp, r.seq, n), (5, 5, 128));
        assert_eq!(&data[..104], &bytes[..]);
        assert_eq!(c.pop(), Ok(None));
        // A record that claims more data than was published is refused.
        let mut liar = hit(9);
        liar.next_prio = 3;
        // Written as a plain slot, the claim is not the producer's.
        let mut r = liar;
        r.kind = 1;
        p.push(&r).unwrap();
        let h = o.ring().header();
        let at = (h.head.load(Ordering::Relaxed) - 1) & 7;
        // SAFETY: slot `at` is inside the ring and not being read.
        unsafe { o.ring().slots.add(at as usize).write_volatile(liar) };
        assert!(matches!(
            c.pop_with_data(&mut data),
            Err(RingError::Inconsistent { .. })
        ));
    }

    #[test]
    fn untrusted_tail_never_causes_overwrite() {
        let o = OwnedRing::new(4, 0).unwrap();
        let mut p = o.ring().producer();
        p.push(&rec(1)).unwrap();
        // A consumer that claims to have read more than was written.
        o.ring().header().tail.store(5, Ordering::Relaxed);
        assert_eq!(p.push(&rec(2)), Err(1));
        let mut c = o.ring().consumer();
        assert_eq!(c.pop(), Err(RingError::Inconsistent { head: 1, tail: 5 }));
    }

    #[test]
    fn attach_validates() {
        let mut buf = vec![0u64; 64];
        let base = buf.as_mut_ptr().cast::<u8>();
        // SAFETY: `buf` is valid for 512 bytes, but u64 alignment only: the
        // misalignment checks run before any access.
        let r = unsafe { Ring::attach(base.wrapping_add(1), 256) };
        assert_eq!(r.err(), Some(RingError::Misaligned));
        let aligned = OwnedRing::new(2, 0).unwrap();
        let start = aligned.ring().slots.cast::<u8>().wrapping_sub(RING_HEADER_SIZE);
        // SAFETY: `start` is the base of the valid, aligned region of
        // ring_bytes(2) that `aligned` owns.
        let whole = unsafe { Ring::attach(start, ring_bytes(2)) };
        assert!(whole.is_ok());
        assert_eq!(OwnedRing::new(3, 0).err(), Some(RingError::BadCapacity(3)));
        // SAFETY: as above; a length shorter than the ring is refused.
        let short = unsafe { Ring::attach(start, 300) };
        assert_eq!(
            short.err(),
            Some(RingError::TooSmall {
                needed: ring_bytes(2),
                available: 300
            })
        );
    }

    #[test]
    fn concurrent_producer_and_consumer() {
        let o = OwnedRing::new(64, 0).unwrap();
        let total = 200_000u64;
        std::thread::scope(|s| {
            let mut p = o.ring().producer();
            s.spawn(move || {
                let mut n = 0;
                while n < total {
                    if p.push(&rec(n)).is_ok() {
                        n += 1;
                    } else {
                        std::hint::spin_loop();
                    }
                }
            });
            let mut c = o.ring().consumer();
            let mut expect = 0;
            while expect < total {
                if let Some(r) = c.pop().unwrap() {
                    assert_eq!(r.timestamp, expect);
                    assert_eq!(r.pc, 0x1000 + expect);
                    expect += 1;
                }
            }
        });
        // Drops happened whenever the consumer lagged; seq accounts for them.
        let h = o.ring().header();
        assert_eq!(h.head.load(Ordering::Relaxed), total);
    }
}
