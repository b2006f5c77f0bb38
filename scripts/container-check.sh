#!/usr/bin/env bash
# Builds the top-level Dockerfile with podman, exactly as users would build it
# with Docker, runs the image with the documented privileges, and checks that
# it serves metrics from attached BPF programs.
#
# Where no image registry is reachable, the two base images the Dockerfile
# names (debian:bookworm-slim, rust:1-bookworm) are first made locally from
# Debian's archive with debootstrap, so the Dockerfile itself stays unchanged.
#
# Needs root. Environment:
#   CONTAINER_CHECK_PORT   port the exporter listens on (default 19435)
#   CONTAINER_CHECK_KEEP=1 leave the image and base images in place (default)
#   CONTAINER_CHECK_FRESH=1 rebuild base images and build without layer cache
set -euo pipefail
cd "$(dirname "$0")/.."

port=${CONTAINER_CHECK_PORT:-19435}
image=localhost/ebpf-exporter:check
name=ebpf-exporter-check-$$
t0=$(date +%s)
say() { echo "container-check: [$(($(date +%s) - t0))s] $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  echo "container-check: needs root (podman, debootstrap, BPF)" >&2
  exit 1
fi

# --- podman as it works on this kind of host ---------------------------------
missing=()
for p in podman runc debootstrap curl; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Without CAP_SYS_RESOURCE podman cannot apply its default rlimits.
if ! grep -qs '^default_ulimits' /etc/containers/containers.conf; then
  mkdir -p /etc/containers
  if [ -s /etc/containers/containers.conf ]; then
    say "containers.conf exists without default_ulimits; leaving it alone"
  else
    printf '[containers]\ndefault_ulimits = []\n' >/etc/containers/containers.conf
  fi
fi
# crun refuses hybrid cgroup layouts; runc copes with them.
podman=(podman --runtime runc)

# --- local base images --------------------------------------------------------
mirror() { scripts/debian-mirror.sh; }

work=$(mktemp -d /var/tmp/container-check.XXXXXX)
cleanup() {
  "${podman[@]}" rm -f "$name" >/dev/null 2>&1 || true
  for d in "$work"/*/proc; do mountpoint -q "$d" 2>/dev/null && umount "$d"; done
  rm -rf "$work"
}
trap cleanup EXIT

has_image() { "${podman[@]}" image exists "$1"; }

if [ "${CONTAINER_CHECK_FRESH:-0}" = 1 ]; then
  "${podman[@]}" rmi -f "$image" debian:bookworm-slim rust:1-bookworm >/dev/null 2>&1 || true
fi

if ! has_image debian:bookworm-slim || ! has_image rust:1-bookworm; then
  say "debootstrap bookworm from $(mirror)"
  debootstrap --variant=minbase bookworm "$work/base" "$(mirror)" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  rm -rf "$work"/base/var/cache/apt/archives/*.deb "$work"/base/var/lib/apt/lists/*
fi

if ! has_image debian:bookworm-slim; then
  say "importing debian:bookworm-slim"
  tar -C "$work/base" -c . | "${podman[@]}" import -q - debian:bookworm-slim >/dev/null
fi

if ! has_image rust:1-bookworm; then
  say "preparing rust:1-bookworm (build deps + host Rust toolchain)"
  root=$work/rust
  cp -a "$work/base" "$root"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  mount -t proc proc "$root/proc"
  chroot "$root" apt-get update -qq
  chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    clang llvm libelf-dev zlib1g-dev pkg-config make gcc libc6-dev ca-certificates >/dev/null
  chroot "$root" apt-get clean
  # Trust anchors the host added (an egress proxy's CA, a corporate CA) are
  # part of this machine's environment, as they would be on a build host
  # whose Docker trusts them: cargo inside the build needs them for TLS.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates >/dev/null 2>&1
  fi
  rm -rf "$root"/var/lib/apt/lists/*
  umount "$root/proc"
  # The official image keeps rustup and cargo under /usr/local; copy only the
  # default toolchain, without its documentation.
  rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
  cargo_home=${CARGO_HOME:-$HOME/.cargo}
  toolchain=$(rustup show active-toolchain | awk '{print $1}')
  mkdir -p "$root/usr/local/rustup/toolchains" "$root/usr/local/cargo"
  cp "$rustup_home/settings.toml" "$root/usr/local/rustup/"
  sed -i "s/^default_toolchain = .*/default_toolchain = \"$toolchain\"/" "$root/usr/local/rustup/settings.toml"
  tar -C "$rustup_home/toolchains" --exclude="$toolchain/share/doc" -c "$toolchain" \
    | tar -C "$root/usr/local/rustup/toolchains" -x
  cp -a "$cargo_home/bin" "$root/usr/local/cargo/bin"
  tar -C "$root" -c . | "${podman[@]}" import \
    --change 'ENV RUSTUP_HOME=/usr/local/rustup' \
    --change 'ENV CARGO_HOME=/usr/local/cargo' \
    --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -q - rust:1-bookworm >/dev/null
fi
rm -rf "$work/base" "$work/rust"
say "base images ready"

# --- build ---------------------------------------------------------------------
build_args=(--build-arg "EBPF_EXPORTER_REVISION=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)")
[ "${CONTAINER_CHECK_FRESH:-0}" = 1 ] && build_args+=(--no-cache)
tb=$(date +%s)
"${podman[@]}" build "${build_args[@]}" -t "$image" -f Dockerfile . >"$work/build.log" 2>&1 \
  || { tail -40 "$work/build.log" >&2; exit 1; }
size=$("${podman[@]}" image inspect -f '{{.Size}}' "$image")
say "image built in $(($(date +%s) - tb))s: $(numfmt --to=iec "$size")"
# A static binary on scratch: the whole image stays small.
max_size=$((15 * 1024 * 1024))
if ((size > max_size)); then
  echo "container-check: image is $(numfmt --to=iec "$size"), over the 15M budget" >&2
  exit 1
fi

# --- run ------------------------------------------------------------------------
# Privileges, and why each is there:
#   CAP_BPF       load programs, create and read maps
#   CAP_PERFMON   attach tracing programs (tracepoints, perf events, uprobes)
#   CAP_SYS_ADMIN the kernel itself is content with BPF+PERFMON (checked
#                 here), but podman's default seccomp profile, like Docker's
#                 older ones, allows bpf(2) and perf_event_open(2) only to
#                 holders of CAP_SYS_ADMIN; it also lets the exporter mount
#                 tracefs where the host has not. Without it, loading fails
#                 with EPERM unless the seccomp profile is replaced.
#   --pid=host    pids and comm labels name host processes; uprobes on host binaries
#   --cgroupns=host and /sys/fs/cgroup: cgroup ids resolve to host cgroup paths
#   /sys/kernel/btf: CO-RE relocation against the running kernel
#   /sys/kernel/tracing: tracepoint ids (podman's /sys is read-only)
# CAP_SYS_RESOURCE is not needed: kernels >= 5.11 charge BPF memory to the
# memory cgroup instead of RLIMIT_MEMLOCK.
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing
tr=$(date +%s)
"${podman[@]}" run -d --name "$name" \
  --cap-drop all --cap-add BPF --cap-add PERFMON --cap-add SYS_ADMIN \
  --pid host --net host --cgroupns host \
  -v /sys/kernel/btf:/sys/kernel/btf:ro \
  -v /sys/fs/cgroup:/sys/fs/cgroup:ro \
  -v /sys/kernel/tracing:/sys/kernel/tracing \
  "$image" --web.listen-address="127.0.0.1:$port" >/dev/null

url=http://127.0.0.1:$port/metrics
for _ in $(seq 1 120); do
  curl -fsS -o "$work/scrape.txt" "$url" 2>/dev/null && break
  if [ "$("${podman[@]}" inspect -f '{{.State.Running}}' "$name")" != true ]; then
    "${podman[@]}" logs "$name" >&2 || true
    echo "container-check: the exporter exited" >&2
    exit 1
  fi
  sleep 0.5
done
[ -s "$work/scrape.txt" ] || { "${podman[@]}" logs "$name" >&2; echo "container-check: no scrape" >&2; exit 1; }
say "serving $(($(date +%s) - tr))s after start"
# Let the programs see some activity over a few scrapes, then keep the last.
for _ in 1 2 3 4 5; do
  sleep 1
  curl -fsS -o "$work/scrape.txt" "$url"
done

fail=0
if ! grep -q '^ebpf_exporter_syscalls_total{' "$work/scrape.txt"; then
  echo "container-check: no ebpf_exporter_syscalls_total samples" >&2
  fail=1
fi
enabled=$(grep '^ebpf_exporter_enabled_configs{' "$work/scrape.txt" || true)
if [ -z "$enabled" ]; then
  echo "container-check: no ebpf_exporter_enabled_configs samples" >&2
  fail=1
elif echo "$enabled" | awk '$NF != 1 {bad=1} END {exit !bad}'; then
  echo "container-check: configs not enabled:" >&2
  echo "$enabled" | awk '$NF != 1' >&2
  fail=1
fi
pid=$("${podman[@]}" inspect -f '{{.State.Pid}}' "$name")
rss=$(awk '/^VmRSS/ {print $2 " " $3}' "/proc/$pid/status" 2>/dev/null || echo "?")
say "exporter RSS in the container: $rss"
# The container's memory cgroup is also charged for the BPF maps (kernel
# >= 5.11), which is what a memory limit has to cover.
mem=$("${podman[@]}" stats --no-stream --format '{{.MemUsage}}' "$name" 2>/dev/null || echo "?")
say "container memory (cgroup, BPF maps included): $mem"
echo "$enabled" | sed 's/^/  /' >&2
if ((fail)); then
  "${podman[@]}" logs "$name" >&2 || true
  exit 1
fi
say "OK: $(echo "$enabled" | wc -l) configs enabled, $(grep -c '^ebpf_exporter_syscalls_total{' "$work/scrape.txt") syscall series"
