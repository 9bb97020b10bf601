//! `hv-trace-view`'s command line on the real binary.

use std::process::{Command, Output};

fn view(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hv-trace-view"))
        .args(args)
        .output()
        .unwrap()
}

/// Regression: `--version` was taken for a file name, and so was any
/// unknown option.
#[test]
fn version_is_an_answer_and_unknown_options_are_errors() {
    let o = view(&["--version"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("hv-trace-view "));
    for bad in ["--bogus", "-x"] {
        let o = view(&[bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("unknown option"), "{bad}");
    }
    assert_eq!(view(&[]).status.code(), Some(2));
    assert!(view(&["--help"]).status.success());
}
