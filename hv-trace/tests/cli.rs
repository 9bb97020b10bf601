//! The command line's manners, on the real binaries: help is an answer
//! (exit 0), unknown options are errors (exit 2).

use std::process::{Command, Output};

fn hv_trace(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hv-trace"))
        .args(args)
        .output()
        .unwrap()
}

/// Regression: `hv-trace export --help` printed the help as an error and
/// exited 1.
#[test]
fn export_help_is_an_answer() {
    for args in [
        &["export", "--help"][..],
        &["export", "merge", "--help"],
        &["export", "--version"],
    ] {
        let o = hv_trace(args);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(!out.trim().is_empty(), "{args:?} printed nothing");
    }
    let o = hv_trace(&["export", "merge", "--help"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("--output"));
}

#[test]
fn unknown_subcommands_and_options_are_errors() {
    for args in [
        &["frobnicate"][..],
        &["export", "frobnicate"],
        &["probe", "list", "--bogus"],
    ] {
        let o = hv_trace(args);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(!o.stderr.is_empty(), "{args:?}: no error message");
    }
}

/// Regression: `run --rtos-only --rtos-elf X` booted the project's own RTOS
/// instead of X, and `demo` had no `--rtos-elf`. A missing X is named
/// before anything is built or booted.
#[test]
fn a_given_rtos_elf_is_the_one_used() {
    let dir = std::env::temp_dir().join(format!("hv-trace-cli-{}", std::process::id()));
    let missing = dir.join("no-such-rtos.elf");
    for args in [
        &["run", "--rtos-only", "--duration", "1", "--rtos-elf"][..],
        &["demo", "--duration", "1", "--no-view", "--rtos-elf"],
    ] {
        let mut args = args.to_vec();
        args.push(missing.to_str().unwrap());
        let o = Command::new(env!("CARGO_BIN_EXE_hv-trace"))
            .args(&args)
            .env("HV_TRACE_SESSION", &dir)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(
            err.contains("no-such-rtos.elf") && err.contains("does not exist"),
            "{args:?}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
