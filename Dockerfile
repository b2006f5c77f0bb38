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
      clang llvm libelf-dev zlib1g-dev pkg-config make gcc pci.ids \
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
# A static, stripped binary: glibc, libelf and zlib linked in, so the image
# needs no libraries at all. The revision and build date go into
# `--version` and ebpf_exporter_build_info (EBPF_EXPORTER_REVISION can be
# passed as a build argument where the build context has no .git).
# Cache mounts keep downloaded crates and compiled dependencies between
# builds (BuildKit and buildah/podman alike), so a source edit rebuilds only
# this crate. The binary is copied out because cache mounts are not layers.
ARG EBPF_EXPORTER_REVISION=""
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    EBPF_EXPORTER_REVISION="$EBPF_EXPORTER_REVISION" \
    RUSTFLAGS="-C target-feature=+crt-static" \
    CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=symbols \
    cargo build --release --locked --bin ebpf-exporter --target "$(rustc -vV | sed -n 's/^host: //p')" \
 && mkdir -p /out/root/usr/local/bin /out/root/usr/share/misc /out/root/etc/ebpf-exporter \
 && install -m 0755 target/*/release/ebpf-exporter /out/root/ebpf_exporter \
 && ln -s /ebpf_exporter /out/root/usr/local/bin/ebpf-exporter \
 && cp -a config /out/root/etc/ebpf-exporter/config \
 && cp /usr/share/misc/pci.ids /out/root/usr/share/misc/pci.ids

# --- runtime -----------------------------------------------------------------
# Nothing but the binary (at the reference image's /ebpf_exporter, and at
# /usr/local/bin/ebpf-exporter), pci.ids for the pci_* decoders, and the
# built-in configs as a starting point for `--config.dir`. No shell: debug
# with `podman exec` tools from the host, or the exporter's own /healthz.
FROM scratch

COPY --from=builder /out/root/ /

EXPOSE 9435
ENTRYPOINT ["/ebpf_exporter"]
