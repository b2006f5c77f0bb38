#!/usr/bin/env bash
# Regenerates the committed vmlinux.h for one architecture from a kernel's BTF.
# The build never reads the running kernel: CO-RE relocations make programs
# compiled against this header load on other kernels, so it only needs
# refreshing when a program wants a type this header lacks.
#
#   scripts/gen-vmlinux.sh [BTF_FILE] [ARCH]
# defaults: /sys/kernel/btf/vmlinux and the machine's architecture.
set -euo pipefail
btf=${1:-/sys/kernel/btf/vmlinux}
arch=${2:-$(uname -m)}
case "$arch" in
  aarch64) arch=arm64 ;;
esac
out="$(dirname "$0")/../bpf/include/$arch/vmlinux.h"
mkdir -p "$(dirname "$out")"
bpftool btf dump file "$btf" format c > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out ($(wc -c < "$out") bytes) from $btf"
