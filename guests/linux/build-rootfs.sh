#!/usr/bin/env bash
# Build the Linux guest's initramfs: build-rootfs.sh DEBS_DIR OUT.cpio.gz [MODULE.ko] [BENCH_DIR] [AGENT_DIR]
# BENCH_DIR holds the benchmark programs of guests/linux/bench (to /usr/bench),
# AGENT_DIR the agents of guests/linux/agent (to /usr/bin).
# DEBS_DIR holds the arm64 .debs scripts/setup.sh downloaded (busybox-static,
# trace-cmd and its libraries); they are unpacked, never run, on the host.
set -euo pipefail
DEBS=$1 OUT=$2 MODULE=${3:-} BENCH=${4:-} AGENTS=${5:-}
HERE=$(cd "$(dirname "$0")" && pwd)
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
for deb in "$DEBS"/*_arm64.deb; do dpkg-deb -x "$deb" "$STAGE"; done
[ -x "$STAGE/bin/busybox" ] || { echo "busybox-static arm64 missing in $DEBS (run scripts/setup.sh)" >&2; exit 1; }
[ -x "$STAGE/usr/bin/trace-cmd" ] || { echo "trace-cmd arm64 missing in $DEBS (run scripts/setup.sh)" >&2; exit 1; }
rm -rf "$STAGE/usr/share/doc" "$STAGE/usr/share/man" "$STAGE/usr/share/locale" "$STAGE/usr/share/lintian"
cp -a "$HERE/rootfs/." "$STAGE/"
mkdir -p "$STAGE/lib/modules" "$STAGE/proc" "$STAGE/sys" "$STAGE/dev" "$STAGE/tmp" "$STAGE/root"
[ -n "$MODULE" ] && cp "$MODULE" "$STAGE/lib/modules/hvtrace.ko"
if [ -n "$BENCH" ]; then mkdir -p "$STAGE/usr/bench" && cp "$BENCH"/* "$STAGE/usr/bench/"; fi
if [ -n "$AGENTS" ]; then mkdir -p "$STAGE/usr/bin" && cp "$AGENTS"/* "$STAGE/usr/bin/"; fi
(cd "$STAGE" && find . -print0 | sort -z | cpio --null -o -H newc --quiet -R 0:0) | gzip -6 > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
