#!/usr/bin/env bash
# Installs what building and testing ebpf-exporter needs on Debian 12, when
# missing. Idempotent: a machine that has everything runs no apt at all.
set -euo pipefail

# Build: clang llvm libelf-dev zlib1g-dev pkg-config make gcc.
# Tests run: bpftool, prometheus (promtool and a real server), pci.ids,
# util-linux (losetup, mount), iproute2 (ip), iputils-ping (ping),
# e2fsprogs (mkfs.ext4), coreutils (dd, sleep), curl, openssl, python3.
# The README's worked example compiles against libbpf-dev's headers;
# systemtap-sdt-dev gives tests/spans.rs the USDT probes of its demo program.
# libbpf-tools: objects nobody here wrote; tests/libbpf_tools.rs cuts the BPF
# objects out of its binaries.
# python3-venv holds the manifest validator (kubernetes-validate, from PyPI).
# The kernel matrix (scripts/kernel-matrix.sh): qemu-system-x86 boots the
# kernels, busybox-static and cpio make their initramfs, xz-utils unpacks
# their modules, binutils strips and reads ELF files.
packages=(clang llvm libelf-dev zlib1g-dev pkg-config make gcc bpftool prometheus pci.ids systemtap-sdt-dev
  util-linux iproute2 iputils-ping e2fsprogs coreutils curl openssl python3 python3-venv libbpf-dev
  libbpf-tools
  qemu-system-x86 busybox-static cpio xz-utils binutils)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Kubernetes manifests are validated offline against the API schemas
# (tests/manifests.rs), with a tool from PyPI kept out of the system Python.
tools=$(cd "$(dirname "$0")/.." && pwd)/.tools/venv
if [ ! -x "$tools/bin/kubernetes-validate" ]; then
  echo "setup: installing kubernetes-validate into $tools" >&2
  python3 -m venv "$tools"
  "$tools/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate
fi

# Prometheus's package starts a server on :9090 that tests do not need.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  systemctl stop prometheus || true
fi

# BPF needs bpffs for nothing here, but tracepoint programs need tracefs;
# the exporter mounts it itself, this just makes bpftool happy.
mountpoint -q /sys/fs/bpf 2>/dev/null || mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
