#!/usr/bin/env bash
# Builds ebpf-exporter in release mode and runs it on the built-in default
# configs, serving http://localhost:9435/metrics. Extra arguments go to the
# exporter (e.g. --config.dir=config to run every shipped program).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
exec $SUDO ./target/release/ebpf-exporter "$@"
