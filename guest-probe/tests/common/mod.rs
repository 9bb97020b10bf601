//! What the tests that compile C for AArch64 share: the cross compiler,
//! whether it is there, and a scratch directory.

#![allow(dead_code)]

use object::{Object, ObjectSection, ObjectSymbol};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

pub const CC: &str = "aarch64-linux-gnu-gcc";

/// Whether the cross compiler runs (a SKIP line says so when it does not).
pub fn have_cc() -> bool {
    let ok = Command::new(CC)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIP: {CC} not installed (scripts/setup.sh installs gcc-aarch64-linux-gnu)");
    }
    ok
}

/// A directory removed when dropped, unique per process and call.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("gp-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// `CC ARGS -o OUT SRCS`, which must succeed.
pub fn cc(args: &[&str], srcs: &[&Path], out: &Path) {
    let o = Command::new(CC)
        .args(args)
        .arg("-o")
        .arg(out)
        .args(srcs)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{CC} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The values of the 8-byte `const unsigned long NAME = ...;` symbols of an
/// object (the C compiler's own `offsetof`s, to check DWARF readings by).
pub fn constants(obj: &[u8]) -> HashMap<String, u64> {
    let f = object::File::parse(obj).unwrap();
    let mut out = HashMap::new();
    for s in f.symbols() {
        let (Ok(name), Some(idx)) = (s.name(), s.section_index()) else {
            continue;
        };
        let Ok(sec) = f.section_by_index(idx) else { continue };
        let Ok(data) = sec.data() else { continue };
        let at = (s.address() - sec.address()) as usize;
        if s.size() == 8 && data.len() >= at + 8 {
            out.insert(
                name.to_string(),
                u64::from_le_bytes(data[at..at + 8].try_into().unwrap()),
            );
        }
    }
    out
}
