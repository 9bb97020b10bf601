//! Shared test fixtures: a merged trace generated once per test binary.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

/// A merged Linux + RTOS trace (2000 Linux switches, 3 events lost before every 500th).
pub fn merged() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("viewer-tests-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("merged.dat");
        viewer::fixture::write_merged(&p, 2000, 500).unwrap();
        p
    })
    .clone()
}

/// A real trace-cmd file from trace-convert's fixtures.
pub fn real(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../trace-convert/tests/fixtures")
        .join(name)
}
