//! One file per subcommand that needs more than a line: each parses its
//! arguments into the library's terms and calls the library.

pub mod bench;
pub mod boot_time;
pub mod build;
pub mod demo;
pub mod fetch;
pub mod live;
pub mod probe;
pub mod profile_hits;
pub mod profile_kernel;
pub mod run;
