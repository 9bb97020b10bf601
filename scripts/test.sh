#!/usr/bin/env bash
# The whole test suite: machine setup, lint gates, host unit tests, then the
# end-to-end tests that boot the real system in QEMU (one at a time: they
# measure timing and share two cores). Ends with one summary line and fails
# if any step or test failed.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
log=$(mktemp)
status=0
failed_steps=()
step() {
    echo "[test] $*" >&2
    "$@" 2>&1 | tee -a "$log"
    local rc=${PIPESTATUS[0]}
    [ "$rc" = 0 ] || { status=1; failed_steps+=("$1 $2 (status $rc)"); }
    return 0
}
step cargo fmt --all --check
step cargo fmt --manifest-path hypervisor/Cargo.toml --check
# The kernel module is built by kbuild, outside any cargo workspace, from
# its folder plus guest-probe's control protocol as its `cmd` module: check
# it as the build assembles it.
modsrc=$(mktemp -d)
cp linux-module/*.rs "$modsrc/" && cp guest-probe/src/abi/control.rs "$modsrc/cmd.rs" && cp guest-probe/src/abi/fetch.rs "$modsrc/fetch.rs"
step rustfmt --edition 2021 --config-path rustfmt.toml --check "$modsrc"/*.rs
step cargo clippy --quiet --workspace --all-targets -- -D warnings
step cargo test --workspace --exclude hv-trace-e2e --no-fail-fast
step cargo test -p hv-trace-e2e --no-fail-fast -- --test-threads=1
# cargo test prints one summary per test binary; add them up.
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "%d passed, %d failed, %d skipped\n", p, f, i }' "$log"
# A lint or build step can fail without a failed test: say which.
for f in "${failed_steps[@]}"; do echo "step failed: $f"; done
if grep -q '^test result: FAILED' "$log"; then status=1; fi
rm -f "$log"
rm -rf "$modsrc"
exit $status
