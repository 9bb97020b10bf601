//! Writing an output file so that nothing is lost: never over one of the
//! inputs (the same file through any path, hard link or symbolic link), and
//! never half-written. The data goes to a temporary file beside the output,
//! which is synced and renamed into place only when complete; on any error
//! (or a panic, or an early return) the temporary file is removed and an
//! existing output is left as it was.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// An output file being written.
#[derive(Debug)]
pub struct OutputFile {
    /// Where the data ends up (a symbolic link's target, so that writing
    /// through a link updates the file it names).
    path: PathBuf,
    /// The temporary file beside it.
    tmp: PathBuf,
    file: Option<File>,
}

impl OutputFile {
    /// Starts writing `output`, after checking it is none of `inputs`.
    pub fn create(output: &Path, inputs: &[PathBuf]) -> Result<Self> {
        refuse_inputs(output, inputs)?;
        // Through a symbolic link to its target; a new file as given.
        let path = fs::canonicalize(output).unwrap_or_else(|_| output.to_path_buf());
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = path
            .file_name()
            .ok_or_else(|| Error::io(output, std::io::Error::other("not a file name")))?
            .to_string_lossy()
            .into_owned();
        if path.is_dir() {
            return Err(Error::io(output, std::io::Error::other("is a directory")));
        }
        let tmp = dir.join(format!(".{name}.{}.partial", std::process::id()));
        let file = File::create(&tmp).map_err(|e| Error::io(output, e))?;
        Ok(OutputFile {
            path,
            tmp,
            file: Some(file),
        })
    }

    /// The temporary file, to write into (a clone of its handle).
    pub fn writer(&self) -> Result<File> {
        let file = self.file.as_ref().expect("present until committed");
        file.try_clone().map_err(|e| Error::io(&self.tmp, e))
    }

    /// The data is complete: sync it and put it in place.
    pub fn commit(mut self) -> Result<()> {
        let file = self.file.take().expect("present until committed");
        file.sync_all().map_err(|e| Error::io(&self.tmp, e))?;
        drop(file);
        fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e))
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Refuses `output` when it is one of `inputs`.
pub fn refuse_inputs(output: &Path, inputs: &[PathBuf]) -> Result<()> {
    let Ok(out) = fs::metadata(output) else {
        return Ok(()); // a new file is no input
    };
    for input in inputs {
        if let Ok(inp) = fs::metadata(input) {
            if inp.dev() == out.dev() && inp.ino() == out.ino() {
                return Err(Error::OutputIsInput {
                    output: output.to_path_buf(),
                    input: input.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` the same way: complete or not at all.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let out = OutputFile::create(path, &[])?;
    out.writer()?.write_all(bytes).map_err(|e| Error::io(path, e))?;
    out.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_uncommitted_output_leaves_nothing_and_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        fs::write(&path, "old").unwrap();
        {
            let out = OutputFile::create(&path, &[]).unwrap();
            out.writer().unwrap().write_all(b"half").unwrap();
            // Dropped without commit: an error happened.
        }
        assert_eq!(fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
    }

    #[test]
    fn a_committed_output_replaces_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        fs::write(&path, "old").unwrap();
        write_atomically(&path, b"new").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn writing_through_a_symlink_updates_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real.txt");
        let link = dir.path().join("link.txt");
        fs::write(&target, "old").unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write_atomically(&link, b"new").unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "new");
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    }

    #[test]
    fn an_input_is_refused_by_any_name() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("a.dat");
        fs::write(&input, "trace").unwrap();
        let hard = dir.path().join("hard.dat");
        fs::hard_link(&input, &hard).unwrap();
        let soft = dir.path().join("soft.dat");
        std::os::unix::fs::symlink(&input, &soft).unwrap();
        let dotted = dir.path().join(".").join("a.dat");
        for out in [&input, &hard, &soft, &dotted] {
            let e = OutputFile::create(out, std::slice::from_ref(&input)).unwrap_err();
            assert!(matches!(e, Error::OutputIsInput { .. }), "{out:?}: {e}");
        }
        assert_eq!(fs::read_to_string(&input).unwrap(), "trace");
        // Another file is fine.
        assert!(OutputFile::create(&dir.path().join("b.dat"), &[input]).is_ok());
    }

    #[test]
    fn a_directory_is_no_output() {
        let dir = tempfile::tempdir().unwrap();
        assert!(OutputFile::create(dir.path(), &[]).is_err());
    }
}
