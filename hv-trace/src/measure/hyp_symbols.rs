//! The hypervisor's code symbols by address, for putting the PCs of QEMU's
//! exec log in functions: its ELF's `.text`, its demangled symbols, its
//! vector entries, and the symbols that mark a probe hit.

use anyhow::{Context, Result};
use guest_probe::symbols::SymbolTable;
use object::{Object, ObjectSection};

/// Offsets of the lower-EL AArch64 entries in the vector table.
pub(crate) const SYNC_VECTOR: u64 = 0x400;
pub(crate) const IRQ_VECTOR: u64 = 0x480;
/// Symbols whose presence in a synchronous trap makes it a probe hit: a
/// record written (with or without fetched values), or the out-of-line hit
/// path (a function entry for return probes writes no record).
const HIT_MARKERS: [&str; 4] = [
    "hypervisor::trace::emit",
    "hypervisor::trace::emit_with_data",
    "hypervisor::probe::hit::hit",
    "hypervisor::probe::hit::hit_with_data",
];
/// Of those, the ones that write a record (a hit without one is a return
/// probe's function entry).
const RECORD_MARKERS: [&str; 2] = ["hypervisor::trace::emit", "hypervisor::trace::emit_with_data"];
/// Runs `trace::emit` without being a probe hit (the test hypercall).
const NOT_HITS: [&str; 1] = ["hypervisor::trace::test_emit"];

/// An address range `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Range {
    pub start: u64,
    pub end: u64,
}

/// What a marker symbol says about a synchronous trap that runs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Marker {
    None,
    /// The hit path without a record.
    Hit,
    /// A record written (a hit).
    Record,
    NotHit,
}

/// The hypervisor's code symbols by address (demangled, without hashes),
/// and its vector entries.
/// Symbols sorted by address as parallel address and name lists, aliases
/// folded: the first name at an address stands for all.
pub(crate) fn fold_aliases(mut sorted: Vec<(u64, String)>) -> (Vec<u64>, Vec<String>) {
    sorted.dedup_by_key(|s| s.0);
    sorted.into_iter().unzip()
}

/// The index of the nearest symbol address at or below `pc` in sorted
/// `addrs`, or `addrs.len()` for a PC below them all.
pub(crate) fn nearest_below(addrs: &[u64], pc: u64) -> usize {
    match addrs.partition_point(|&a| a <= pc) {
        0 => addrs.len(),
        n => n - 1,
    }
}

pub(crate) struct HypSymbols {
    addrs: Vec<u64>,
    /// One name per address, then the name of PCs below the first symbol.
    names: Vec<String>,
    markers: Vec<Marker>,
    /// Where a lower EL's synchronous exception enters the hypervisor.
    pub(crate) sync_entry: u64,
    /// Where a lower EL's IRQ enters the hypervisor.
    pub(crate) irq_entry: u64,
}

impl HypSymbols {
    /// `.text` and the code symbols of the hypervisor ELF.
    pub(crate) fn from_elf(bytes: &[u8]) -> Result<(Range, Self)> {
        let file = object::File::parse(bytes).context("not an ELF image")?;
        let text = file.section_by_name(".text").context("the image has no .text")?;
        let range = Range {
            start: text.address(),
            end: text.address() + text.size(),
        };
        anyhow::ensure!(range.start < range.end, "the image's .text is empty");
        let table = SymbolTable::from_elf(bytes)?;
        let vectors = table
            .lookup("hyp_vectors")
            .first()
            .map(|s| s.addr)
            .context("the image has no hyp_vectors symbol")?;
        let symbols = table
            .symbols()
            .iter()
            .filter(|s| s.executable)
            .map(|s| (s.addr, format!("{:#}", rustc_demangle::demangle(&s.name))));
        Ok((range, Self::new(symbols, vectors)))
    }

    /// From `(address, demangled name)` pairs and the vector table's address.
    pub(crate) fn new(symbols: impl IntoIterator<Item = (u64, String)>, vectors: u64) -> Self {
        let mut all: Vec<(u64, String)> = symbols.into_iter().collect();
        all.sort();
        let (addrs, mut names) = fold_aliases(all);
        names.push("(no symbol)".into());
        let markers = names
            .iter()
            .map(|n| {
                if RECORD_MARKERS.contains(&n.as_str()) {
                    Marker::Record
                } else if HIT_MARKERS.contains(&n.as_str()) {
                    Marker::Hit
                } else if NOT_HITS.contains(&n.as_str()) {
                    Marker::NotHit
                } else {
                    Marker::None
                }
            })
            .collect();
        HypSymbols {
            addrs,
            names,
            markers,
            sync_entry: vectors + SYNC_VECTOR,
            irq_entry: vectors + IRQ_VECTOR,
        }
    }

    /// The names, by index; the last one is for PCs below the first symbol.
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    /// The index of the symbol with the greatest address <= `pc`.
    pub(crate) fn index(&self, pc: u64) -> usize {
        nearest_below(&self.addrs, pc)
    }

    /// The address of the symbol named `name` (demangled).
    pub(crate) fn address_of(&self, name: &str) -> Option<u64> {
        self.names
            .iter()
            .position(|n| n == name)
            .and_then(|i| self.addrs.get(i).copied())
    }

    /// What the symbol at `index` says of a synchronous trap that runs it.
    pub(crate) fn marker(&self, index: usize) -> Marker {
        self.markers[index]
    }

    /// A name for reports: `hypervisor::` is implied.
    pub(crate) fn short(&self, index: usize) -> String {
        self.names[index].replace("hypervisor::", "")
    }
}
