#!/usr/bin/env bash
# The whole test suite: machine setup, lint gates, host unit tests and the
# end-to-end QEMU tests. Fails on the first failing step.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "[test] cargo fmt --check" >&2
cargo fmt --all --check
echo "[test] cargo clippy --workspace --all-targets -- -D warnings" >&2
cargo clippy --quiet --workspace --all-targets -- -D warnings
echo "[test] cargo test --workspace" >&2
cargo test --workspace --no-fail-fast 2>&1 | tee /tmp/hv-trace-test.log
# cargo test's per-binary summaries, added up into one closing line.
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "%d passed, %d failed, %d skipped\n", p, f, i }' /tmp/hv-trace-test.log
