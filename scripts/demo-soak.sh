#!/usr/bin/env bash
# hv-trace demo N times in a row (default 20, each recording SECONDS, default
# 5): every run must bring a complete guest.dat home and write a merged.dat
# that the host's real trace-cmd reads. Prints one line a run and a total;
# exits non-zero if any run failed. A soak, not a CI test (~30 s a run).
#   bash scripts/demo-soak.sh [N] [SECONDS] [OUT_DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
n=${1:-20}
seconds=${2:-5}
out=${3:-$(mktemp -d /tmp/hv-trace-soak.XXXXXX)}
bash scripts/setup.sh >/dev/null || exit 1
cargo build --quiet --release -p hv-trace || exit 1
mkdir -p "$out"
ok=0 resent=0
for i in $(seq 1 "$n"); do
    d="$out/run$i"
    started=$(date +%s)
    if ./target/release/hv-trace demo --duration "$seconds" --out "$d" --no-view >"$d.log" 2>&1 \
        && trace-cmd report -i "$d/merged.dat" >"$d/report.txt" 2>"$d/report.err"; then
        ok=$((ok + 1))
        status="ok: trace-cmd report read $(grep -c 'sched_switch\|hvtrace' "$d/report.txt") events of merged.dat"
    else
        status="FAILED (see $d.log and $d/report.err)"
    fi
    again=$(grep -c 'arrived damaged' "$d.log")
    resent=$((resent + again))
    echo "demo $i/$n: $status; $again copies sent again; $(( $(date +%s) - started )) s"
done
echo "$ok of $n demos: complete merged.dat read by the host's trace-cmd; $resent damaged copies sent again; runs in $out"
[ "$ok" = "$n" ]
