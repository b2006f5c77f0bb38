#!/bin/sh
# Runs every fuzz target for SECONDS each (default 360), on the committed
# seed corpus plus a working corpus under fuzz/work/ (not committed).
# Crashes are left in fuzz/artifacts/TARGET/; copy each into
# fuzz/regressions/TARGET/ once fixed, so plain `cargo test` replays it.
set -eu
cd "$(dirname "$0")/.."
seconds=${1:-360}
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
for target in config decoders web_config accept encoders; do
    mkdir -p "fuzz/work/$target"
    echo "== $target: ${seconds}s"
    cargo +nightly fuzz run -O "$target" "fuzz/work/$target" "fuzz/corpus/$target" \
        -- -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
done
