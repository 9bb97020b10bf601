//! Helpers for the end-to-end tests: the real `hv-trace` binary and bounded
//! QEMU runs. Every QEMU a test starts is stopped by its PID, on success and
//! on failure alike.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repo")
        .to_path_buf()
}

/// The `hv-trace` binary of this workspace, built once per test process.
pub fn hv_trace_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "-p",
                "hv-trace",
                "--message-format=json-render-diagnostics",
            ])
            .current_dir(repo_root())
            .stderr(Stdio::inherit())
            .output()
            .expect("running cargo build -p hv-trace");
        assert!(out.status.success(), "cargo build -p hv-trace failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["reason"] == "compiler-artifact" && v["target"]["name"] == "hv-trace")
            .find_map(|v| v["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported no hv-trace executable")
    })
}

/// Runs `hv-trace ARGS` with a wall-clock bound; returns its output. Each
/// call gets its own session directory, so tests (and a developer's own
/// `hv-trace run`) never share a running system.
pub fn hv_trace(args: &[&str], limit: Duration) -> Result<Output> {
    let session = tempfile::tempdir()?;
    run_bounded(
        Command::new(hv_trace_bin())
            .args(args)
            .env("HV_TRACE_SESSION", session.path()),
        limit,
    )
}

/// Runs `hv-trace ARGS` in a given session directory (for tests that start
/// a system with `run` and drive it with `probe`, `record`, `stop`).
pub fn hv_trace_in(session: &Path, args: &[&str], limit: Duration) -> Result<Output> {
    run_bounded(
        Command::new(hv_trace_bin()).args(args).env("HV_TRACE_SESSION", session),
        limit,
    )
}

/// Runs a command to completion, killing it (by its PID) at `limit`.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Result<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    let started = Instant::now();
    loop {
        if child.try_wait()?.is_some() {
            return Ok(child.wait_with_output()?);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output()?;
            bail!(
                "{:?} did not finish within {:?}; its output so far:\n{}\n{}",
                cmd.get_program(),
                limit,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `hv-trace build TARGET --json` → artifact name → path.
pub fn build_artifacts(target: &str, extra: &[&str]) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut args = vec!["build", target, "--json"];
    args.extend_from_slice(extra);
    let out = hv_trace(&args, Duration::from_secs(3600))?;
    if !out.status.success() {
        bail!(
            "hv-trace build {target} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("hv-trace build --json printed no JSON")?;
    Ok(v.as_object().cloned().unwrap_or_default())
}
