#!/usr/bin/env bash
# Idempotent machine setup for hv-trace (Debian 12, root).
# Installs only what is missing: Debian packages (host + cross toolchains, QEMU,
# kernel source, trace-cmd as the host-side judge), bindgen-cli from crates.io,
# and the arm64 userland packages the Linux guest's rootfs is made from.
# Every step prints what it does; a failure names what is missing and why.
set -euo pipefail

CACHE="${HV_TRACE_CACHE:-$HOME/.cache/hv-trace}"
mkdir -p "$CACHE"
step() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (apt-get and dpkg need it); re-run with sudo"
command -v apt-get >/dev/null || die "apt-get not found: hv-trace setup supports Debian 12 (bookworm) only"

# Host packages. Each line: package — why we need it.
HOST_PACKAGES=(
  qemu-system-arm        # qemu-system-aarch64: the target machine
  gcc-aarch64-linux-gnu  # RTOS guest, kernel and guest programs
  libc6-dev-arm64-cross  # static glibc for the guest bench programs (guests/linux/bench)
  binutils-aarch64-linux-gnu
  rustc-web cargo-web rust-web-src  # Rust with library source for build-std (hypervisor, kernel Rust)
  lld                    # links the hypervisor (Debian ships no rust-lld)
  clang libclang-dev     # bindgen for the kernel's Rust bindings
  flex bison bc libssl-dev libelf-dev cpio  # kernel build
  linux-source-6.12      # the Linux guest kernel
  trace-cmd              # host-side judge of our .dat files
  device-tree-compiler   # dtc: inspect/derive device trees
  xz-utils make tmux file
)
# The Linux guest's userland: busybox and the real trace-cmd with its libraries.
ARM64_PACKAGES=(busybox-static trace-cmd libtraceevent1 libtraceevent1-plugin libtracefs1 libzstd1 libc6 libgcc-s1)

missing=()
for p in "${HOST_PACKAGES[@]}"; do
  [[ "$p" == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

need_update=0
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  step "adding the arm64 architecture to dpkg (for the guest's userland packages)"
  dpkg --add-architecture arm64
  need_update=1
fi

if [ ${#missing[@]} -gt 0 ] || [ $need_update = 1 ]; then
  step "apt-get update"
  # Third-party lists on this machine may be unreachable; Debian's must work.
  apt-get update -q 2>&1 | sed 's/^/  /' >&2 || true
fi
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${#missing[@]} Debian packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
    2>&1 | grep -E '^(Setting up|E:|Unpacking linux-source)' | sed 's/^/  /' >&2 \
    || true
  for p in "${missing[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
      || die "Debian package '$p' could not be installed; check 'apt-get install $p' (bookworm and bookworm-security must be in the apt sources)"
  done
else
  step "Debian packages: all ${#HOST_PACKAGES[@]} present"
fi

# bindgen-cli for the kernel's Rust support (0.73 is known to work with 6.12).
BINDGEN="$CACHE/tools/bin/bindgen"
if [ ! -x "$BINDGEN" ]; then
  step "installing bindgen-cli from crates.io into $CACHE/tools (about 2 minutes)"
  cargo install --quiet --locked --root "$CACHE/tools" bindgen-cli@0.73.0 \
    || cargo install --quiet --locked --root "$CACHE/tools" bindgen-cli \
    || die "cargo install bindgen-cli failed; the kernel's Rust bindings need it"
else
  step "bindgen: $("$BINDGEN" --version)"
fi

# arm64 userland for the guest rootfs: downloaded .debs unpacked into a staging dir.
ARM64_DIR="$CACHE/arm64-debs"
mkdir -p "$ARM64_DIR"
for p in "${ARM64_PACKAGES[@]}"; do
  if ! ls "$ARM64_DIR/${p}_"*_arm64.deb >/dev/null 2>&1; then
    step "downloading arm64 package $p"
    (cd "$ARM64_DIR" && apt-get -o APT::Sandbox::User=root download -q "$p:arm64" >/dev/null) \
      || die "apt-get download $p:arm64 failed (is arm64 in 'dpkg --print-foreign-architectures' and has 'apt-get update' run?)"
  fi
done

# The kernel source tree, unpacked once into the cache.
KSRC="$CACHE/linux-source-6.12"
if [ ! -f "$KSRC/Makefile" ]; then
  tarball=$(ls /usr/src/linux-source-6.12*.tar.xz 2>/dev/null | head -n1)
  [ -n "$tarball" ] || die "linux-source-6.12 tarball missing under /usr/src"
  step "unpacking $(basename "$tarball") into $KSRC (about a minute)"
  rm -rf "$KSRC.tmp" && mkdir -p "$KSRC.tmp"
  tar -xJf "$tarball" -C "$KSRC.tmp" --strip-components=1
  mv "$KSRC.tmp" "$KSRC"
fi

step "ready (cache: $CACHE)"
