//! Where things live: the source tree and the cache of heavy build outputs.

use std::path::PathBuf;

/// The repository root (the source of every artifact). `HV_TRACE_ROOT`
/// overrides the location this binary was built from.
pub fn repo_root() -> PathBuf {
    if let Some(root) = std::env::var_os("HV_TRACE_ROOT") {
        return PathBuf::from(root);
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// The cache of build outputs, outside the repository: `HV_TRACE_CACHE` or
/// `~/.cache/hv-trace` (the same default as `scripts/setup.sh`).
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HV_TRACE_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".cache").join("hv-trace")
}
