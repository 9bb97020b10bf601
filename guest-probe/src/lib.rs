//! Guest introspection for hv-trace (`no_std` core, `std` feature for host tools).
#![cfg_attr(not(feature = "std"), no_std)]
