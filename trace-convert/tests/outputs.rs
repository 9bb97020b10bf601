//! No tool writes over its input or leaves a half-written output: the real
//! `trace-convert` binary on copies of the fixtures, in every way a user can
//! name an input as the output.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(dir: &Path, name: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    let to = dir.join(name);
    fs::copy(src, &to).unwrap();
    to
}

fn convert(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trace-convert"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// Regression: `trace-convert export a.dat -o a.dat` died with "Bus error"
/// and left a.dat at 0 bytes (the output truncated the mapped input).
#[test]
fn an_input_named_as_the_output_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture(dir.path(), "tc-v6.dat");
    let before = fs::read(&input).unwrap();
    fs::hard_link(&input, dir.path().join("hard.dat")).unwrap();
    std::os::unix::fs::symlink(&input, dir.path().join("soft.dat")).unwrap();
    for (cmd, out, format) in [
        ("export", "tc-v6.dat", "dat"),
        ("merge", "tc-v6.dat", "dat"),
        ("export", "./tc-v6.dat", "text"),
        ("export", "hard.dat", "dat"),
        ("merge", "soft.dat", "json"),
    ] {
        let o = convert(dir.path(), &[cmd, "tc-v6.dat", "-o", out, "--format", format]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{cmd} -o {out} succeeded");
        assert!(
            stderr.contains("refusing to write") && stderr.contains("choose another output"),
            "{stderr}"
        );
        assert_eq!(fs::read(&input).unwrap(), before, "{cmd} -o {out} changed the input");
    }
}

#[test]
fn an_output_is_complete_or_absent() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path(), "tc-v6.dat");
    let o = convert(dir.path(), &["export", "tc-v6.dat", "-o", "out.txt"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let good = fs::read(dir.path().join("out.txt")).unwrap();
    // A file whose data goes bad half way: the ring-buffer page at 0x11000
    // claims more data than a page holds, so reading fails after the events
    // before it were written.
    let mut bad = fs::read(dir.path().join("tc-v6.dat")).unwrap();
    bad[0x11008..0x11010].copy_from_slice(&0xf_ffffu64.to_le_bytes());
    fs::write(dir.path().join("bad.dat"), &bad).unwrap();
    for out in ["out.txt", "new.txt"] {
        let o = convert(dir.path(), &["export", "bad.dat", "-o", out]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && stderr.contains("page commit"), "{stderr}");
    }
    // The earlier output is as it was, the new one does not exist, and no
    // partial file is left beside them.
    assert_eq!(fs::read(dir.path().join("out.txt")).unwrap(), good);
    let mut names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["bad.dat", "out.txt", "tc-v6.dat"]);
}

/// Regression: a 0-byte file was read as "ftrace text, 0 events", and a
/// directory gave "No such device (os error 19)" with its path printed twice.
#[test]
fn an_empty_file_or_a_directory_is_not_a_trace() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("empty.dat"), b"").unwrap();
    fs::create_dir(dir.path().join("adir")).unwrap();
    for (input, why) in [("empty.dat", "is empty"), ("adir", "is a directory")] {
        for args in [
            &["info", input][..],
            &["export", input, "-o", "out.txt"],
            &["stats", input],
        ] {
            let o = convert(dir.path(), args);
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(!o.status.success(), "{args:?} succeeded");
            assert!(err.contains("is not a trace") && err.contains(why), "{args:?}: {err}");
            assert_eq!(err.matches(input).count(), 1, "{args:?} names the file once: {err}");
        }
    }
    assert!(!dir.path().join("out.txt").exists());
    // A missing file: its name and the system's reason, once each.
    let o = convert(dir.path(), &["export", "missing.dat", "-o", "out.txt"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert_eq!(err.matches("missing.dat").count(), 1, "{err}");
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
}

/// Regression: one damaged byte in the format of an event type that never
/// occurs (`offxet` for `offset` in irq:softirq_entry) made the whole file
/// unreadable ("field without offset in …"); trace-cmd reads all its events.
#[test]
fn a_damaged_format_costs_only_its_event_type() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture(dir.path(), "tc-v6.dat");
    let mut bytes = fs::read(&input).unwrap();
    let at = bytes
        .windows(19)
        .position(|w| w == b"name: softirq_entry")
        .expect("the fixture has softirq_entry's format");
    let field = at
        + bytes[at..]
            .windows(22)
            .position(|w| w == b"unsigned int vec;\toffs")
            .unwrap();
    bytes[field + 21] = b'x'; // offset -> offxet
    fs::write(&input, &bytes).unwrap();
    let o = convert(dir.path(), &["info", "tc-v6.dat"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("events: 1276"), "{out}");
    assert!(
        out.contains("warning: skipped the format of irq:softirq_entry"),
        "{out}"
    );
    let o = convert(dir.path(), &["export", "tc-v6.dat", "-o", "out.txt"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("warning: tc-v6.dat: skipped the format of irq:softirq_entry"));
}
