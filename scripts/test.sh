#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, unit tests and the
# integration tests, which load real BPF programs and so need root.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ "$(id -u)" -ne 0 ]; then
  echo "test: the integration tests load BPF programs; run as root (sudo $0)" >&2
  exit 1
fi
# Generated files must match their generators' output.
python3 scripts/gen-decoder-tables.py --check
python3 scripts/gen-drop-reasons.py --check
python3 scripts/gen-prometheusrule.py --check
python3 scripts/gen-daemonset-configs.py --check
python3 scripts/gen-reference-tables.py --check
python3 scripts/gen-readme-tables.py --check
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked --no-fail-fast
# The kernel-facing tests again, in VMs of other kernels. The run above has
# just compiled every BPF object they use into the object cache, and run
# them on this machine's kernel.
scripts/kernel-matrix.sh --no-host
