//! Content fingerprints of build inputs, so cached outputs are rebuilt only
//! when something they are made from changed.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};

/// Names never treated as inputs (build outputs, editor droppings).
const IGNORED: &[&str] = &["target", "build", ".git"];

/// A hash over the relative paths and contents of every file under `roots`
/// (directories are walked recursively in sorted order) and of `extra` strings
/// (tool versions, options).
pub fn fingerprint(base: &Path, roots: &[&str], extra: &[&str]) -> Result<String> {
    let mut files = Vec::new();
    for root in roots {
        collect(&base.join(root), &mut files)?;
    }
    files.sort();
    let mut hasher = Sha256::new();
    for file in &files {
        let rel = file.strip_prefix(base).unwrap_or(file);
        hasher.update(rel.to_string_lossy().as_bytes());
        hasher.update([0]);
        let bytes = fs::read(file).with_context(|| format!("reading build input {}", file.display()))?;
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    for e in extra {
        hasher.update(e.as_bytes());
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    Ok(digest.iter().take(8).map(|b| format!("{b:02x}")).collect())
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let meta = fs::metadata(path).with_context(|| format!("build input {} is missing", path.display()))?;
    if meta.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    for entry in fs::read_dir(path).with_context(|| format!("listing {}", path.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if IGNORED.contains(&name.as_ref()) || name.starts_with('.') && name != ".cargo" {
            continue;
        }
        collect(&entry.path(), out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_when_a_file_changes_and_ignores_build_outputs() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("src/target")).unwrap();
        fs::write(dir.path().join("src/a.c"), "int a;").unwrap();
        let first = fingerprint(dir.path(), &["src"], &[]).unwrap();
        fs::write(dir.path().join("src/target/out.o"), "junk").unwrap();
        assert_eq!(first, fingerprint(dir.path(), &["src"], &[]).unwrap());
        fs::write(dir.path().join("src/a.c"), "int b;").unwrap();
        assert_ne!(first, fingerprint(dir.path(), &["src"], &[]).unwrap());
        assert_ne!(first, fingerprint(dir.path(), &["src"], &["-O3"]).unwrap());
    }

    #[test]
    fn missing_input_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = fingerprint(dir.path(), &["nope"], &[]).unwrap_err();
        assert!(format!("{err:#}").contains("missing"), "{err:#}");
    }
}
