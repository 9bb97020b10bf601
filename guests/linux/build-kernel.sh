#!/usr/bin/env bash
# Build the Linux guest kernel out of tree: build-kernel.sh SRC OUT BINDGEN
# SRC: unpacked linux-source-6.12; OUT: build directory (arch/arm64/boot/Image,
# vmlinux and the kbuild tree for out-of-tree modules end up there).
set -euo pipefail
SRC=$1 OUT=$2 BINDGEN=$3
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
MAKE=(make -C "$SRC" O="$OUT" ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-
      RUSTC=/usr/bin/rustc HOSTRUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
      BINDGEN="$BINDGEN" -j"$(nproc)")
"${MAKE[@]}" -s KCONFIG_ALLCONFIG="$HERE/kernel.config" allnoconfig
# Every option of the fragment must have survived (a dependency may drop one).
missing=0
while IFS= read -r line; do
  case "$line" in CONFIG_*=*) grep -qxF "$line" "$OUT/.config" || { echo "kernel config: $line did not take effect" >&2; missing=1; } ;; esac
done < "$HERE/kernel.config"
[ $missing = 0 ] || exit 1
"${MAKE[@]}" rustavailable >/dev/null
"${MAKE[@]}" Image vmlinux modules 2>&1
