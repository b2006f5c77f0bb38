# syntax=docker/dockerfile:1
# ebpf-exporter container image.
#
#   docker build -t ebpf-exporter .
#   docker run -d --name ebpf-exporter \
#     --cap-add BPF --cap-add PERFMON --cap-add SYS_ADMIN \
#     --pid host --net host --cgroupns host \
#     -v /sys/kernel/btf:/sys/kernel/btf:ro \
#     -v /sys/fs/cgroup:/sys/fs/cgroup:ro \
#     -v /sys/kernel/tracing:/sys/kernel/tracing \
#     ebpf-exporter
#
# The BPF objects and the default configs are compiled into the binary, so the
# image needs no kernel headers and runs on any kernel with BTF. See
# scripts/container-check.sh for why each privilege is there.

# --- builder -----------------------------------------------------------------
FROM rust:1-bookworm AS builder

# build.rs compiles bpf/*.bpf.c with clang; libbpf is vendored by libbpf-sys
# and links libelf and zlib from the system.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      clang llvm libelf-dev zlib1g-dev pkg-config make gcc \
 && rm -rf /var/lib/apt/lists/*

# The official image installs rustup's minimal profile but still ships a
# `rustfmt` proxy with no component behind it. build.rs generates no
# skeletons today, but libbpf-cargo runs rustfmt whenever it does, and the
# proxy then fails the build; the component keeps that from biting later.
RUN rustup component add rustfmt

WORKDIR /src
# The whole tree (less what .dockerignore drops), so every target Cargo.toml
# declares, benches included, is there when cargo reads the manifest.
COPY . .
# Cache mounts keep downloaded crates and compiled dependencies between
# builds (BuildKit and buildah/podman alike), so a source edit rebuilds only
# this crate. The binary is copied out because cache mounts are not layers.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin ebpf-exporter \
 && install -D -m 0755 target/release/ebpf-exporter /out/ebpf-exporter

# --- runtime -----------------------------------------------------------------
FROM debian:bookworm-slim

# libelf1 and zlib1g are the only shared libraries beyond libc (`ldd`);
# pci.ids names PCI vendors and devices for the pci_* label decoders.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libelf1 zlib1g pci.ids \
 && rm -rf /var/lib/apt/lists/*

COPY --from=builder /out/ebpf-exporter /usr/local/bin/ebpf-exporter
# The built-in configs are embedded in the binary; this copy is a starting
# point for `--config.dir=/etc/ebpf-exporter/config` with edited configs.
COPY config /etc/ebpf-exporter/config

EXPOSE 9435
ENTRYPOINT ["/usr/local/bin/ebpf-exporter"]
