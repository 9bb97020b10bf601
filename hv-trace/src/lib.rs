//! hv-trace's library, under the `hv-trace` command line:
//!
//! - [`target`] drives the traced system: builds its images into the cache,
//!   starts QEMU, boots the hypervisor with Linux and the RTOS, talks to the
//!   Linux guest's control shell and to QEMU's monitor, inserts probes through
//!   the hvtrace module, records with trace-cmd and brings the file home.
//! - [`measure`] measures it: the overhead bench, and the instruction-exact
//!   profiles of a probe hit and of a bench workload from QEMU's exec log.
//!
//! What a trace file says (merging, statistics, latencies) is trace-convert's;
//! the terminal timeline is the viewer's. The binary only parses arguments
//! and calls these.

pub mod measure;
pub mod progress;
pub mod target;
