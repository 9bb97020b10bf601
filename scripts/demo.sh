#!/usr/bin/env bash
# The demo: set up the machine, build everything, boot it and trace it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --quiet --release -p hv-trace
exec ./target/release/hv-trace demo "$@"
