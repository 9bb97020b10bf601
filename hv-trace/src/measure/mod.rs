//! Measuring the traced system: the overhead [`bench`] (UnixBench-style
//! workloads, mode against mode), and two instruction-exact profiles read
//! from QEMU's exec log ([`exec_log`]) with the hypervisor's symbols
//! ([`hyp_symbols`]): what a probe hit costs the hypervisor
//! ([`profile_hits`]) and where a workload's instructions go, kernel symbol
//! by symbol ([`profile_kernel`]).

pub mod bench;
pub mod exec_log;
pub mod hyp_symbols;
pub mod profile_hits;
pub mod profile_kernel;
