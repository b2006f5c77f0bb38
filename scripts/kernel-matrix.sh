#!/usr/bin/env bash
# The kernel matrix: boots Debian's cloud kernels under QEMU and runs the
# exporter's kernel-facing tests (the `kernel_matrix` test binary,
# tests/kernel_matrix.rs) inside each, then prints which kernel gave which
# result.
#
#   scripts/kernel-matrix.sh [--kernels 5.10,6.1,6.12] [--accel auto|kvm|tcg]
#                            [--no-host] [--refresh] [--exec 'CMD'] [-- TEST ARGS]
#
#   --kernels   which kernels (default: all three)
#   --accel     KVM where it works, else QEMU's TCG emulation (default: auto)
#   --no-host   skip the run on this machine's own kernel (scripts/test.sh has
#               just run the same tests here)
#   --refresh   look for newer kernel packages even when some are cached
#   --exec CMD  run CMD in each guest (busybox sh) instead of the tests, for
#               trying a config or object on another kernel
#   TEST ARGS   passed to the test binary (a name filter, --test-threads=N)
#
# Kernels come from Debian's archive through apt with a private sources list
# and state directory (the system's apt setup is not touched), and are cached
# in $EE_KERNEL_CACHE (default ~/.cache/ebpf-exporter/kernels), about 30 MB
# each. Each guest boots a fixed initramfs: busybox, the test binary and the
# exporter with their shared libraries, the host tools the tests run where
# busybox's differ (mkfs.ext4, losetup, dd, ip, setpriv, bpftool, promtool),
# the repository files they read, the BPF objects the host run compiled
# (guests have no compiler), and the kernel's own modules for loop devices
# and the virtio disk. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

kernels="5.10 6.1 6.12"
accel=auto
host_run=1
refresh=0
exec_cmd=""
test_args=()
while (($#)); do
  case $1 in
    --kernels) kernels=${2//,/ }; shift 2 ;;
    --kernels=*) kernels=${1#*=}; kernels=${kernels//,/ }; shift ;;
    --accel) accel=$2; shift 2 ;;
    --accel=*) accel=${1#*=}; shift ;;
    --no-host) host_run=0; shift ;;
    --refresh) refresh=1; shift ;;
    --exec) exec_cmd=$2; host_run=0; shift 2 ;;
    --) shift; test_args=("$@"); break ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "kernel-matrix: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case $accel in auto | kvm | tcg) ;; *) echo "kernel-matrix: --accel is auto, kvm or tcg" >&2; exit 2 ;; esac

t0=$(date +%s)
say() { echo "kernel-matrix: [$(($(date +%s) - t0))s] $*" >&2; }
if [ "$(id -u)" -ne 0 ]; then
  echo "kernel-matrix: needs root (the tests load BPF programs; the image holds root-owned files)" >&2
  exit 1
fi
scripts/setup.sh

cache=${EE_KERNEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ebpf-exporter/kernels}
target=$(cargo metadata --format-version 1 --no-deps --locked \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
work=$target/kernel-matrix
mkdir -p "$cache" "$work"
trap 'rm -rf "$work"/fetch.* "$work"/extract.*' EXIT

# --- kernels -----------------------------------------------------------------
suite_of() {
  case $1 in
    5.10) echo bullseye ;;
    6.1) echo bookworm ;;
    6.12) echo trixie ;;
    *) echo "kernel-matrix: no Debian suite known for kernel $1 (5.10, 6.1, 6.12)" >&2; return 1 ;;
  esac
}

apt_dir=$cache/apt
apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o Dir::State::status=/dev/null
  -o APT::Sandbox::User=root -o Acquire::Languages=none
  -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
  -o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false
  -o Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false
  -o Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false)
apt_ready=0
apt_update() {
  ((apt_ready)) && return
  local mirror suites="" k
  mirror=$(scripts/debian-mirror.sh)
  for k in $kernels; do suites+=" $(suite_of "$k")"; done
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
  for s in $(echo "$suites" | tr ' ' '\n' | sort -u); do
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $s main"
  done >"$apt_dir/sources.list"
  say "apt update (private state in $apt_dir) from $mirror"
  apt-get "${apt_opts[@]}" -qq update
  apt_ready=1
}

# Prints module NAME's file and its dependencies' files, dependencies first,
# from the package's modules.order and each module's own .modinfo (packages
# carry no modules.dep: depmod makes it at install).
module_order() {
  local mods=$1 name=$2 path deps d
  path=$(awk -v n="$name" '{f=$0; sub(".*/", "", f); sub("[.]ko.*", "", f); gsub("-", "_", f)} f==n {print; exit}' "$mods/modules.order")
  if [ -z "$path" ]; then
    return 0 # built in
  fi
  path=$(ls "$mods/$path"* 2>/dev/null | head -1 || true)
  [ -n "$path" ] || { echo "kernel-matrix: $name is in modules.order but not in the package" >&2; return 1; }
  deps=$(decompress_module "$path" | module_info depends)
  for d in ${deps//,/ }; do
    module_order "$mods" "${d//-/_}"
  done
  echo "$path"
}
decompress_module() {
  case $1 in
    *.xz) xz -dc "$1" ;;
    *.zst) zstd -qdc "$1" ;;
    *.gz) gzip -dc "$1" ;;
    *) cat "$1" ;;
  esac
}
module_info() { # field, from a module on stdin
  local f
  f=$(mktemp)
  cat >"$f"
  objcopy -O binary --only-section=.modinfo "$f" "$f.info"
  tr '\0' '\n' <"$f.info" | sed -n "s/^$1=//p"
  rm -f "$f" "$f.info"
}

# Modules the tests need that Debian builds as modules on some kernels
# (built in on others): loop devices, and the virtio disk that /var/tmp is
# on, whose interrupts the hardirqs tests count.
guest_modules="loop virtio_pci virtio_blk"

# Makes $cache/SERIES hold the package (.deb), and from it vmlinuz, config,
# release and modules/ (the guest's modules, uncompressed, and their load
# order). The package is kept so that a change to the module list needs no
# download.
fetch_kernel() {
  local series=$1 dir=$cache/$1 suite re pkg deb tmp rel mods
  deb=$(ls "$dir"/*.deb 2>/dev/null | head -1 || true)
  if [ -z "$deb" ] || ((refresh)); then
    suite=$(suite_of "$series")
    apt_update
    re="^linux-image-${series//./\\.}\\.[0-9][^ ]*-cloud-amd64-unsigned\$"
    pkg=$(apt-cache "${apt_opts[@]}" pkgnames linux-image- | grep -E "$re" | sort -V | tail -1 || true)
    if [ -z "$pkg" ]; then
      echo "kernel-matrix: no package matching $re in Debian $suite" >&2
      return 1
    fi
    if [ -z "$deb" ] || [ "$(dpkg-deb -f "$deb" Package)" != "$pkg" ]; then
      say "downloading $pkg ($suite)"
      tmp=$(mktemp -d "$work/fetch.XXXXXX")
      (cd "$tmp" && apt-get "${apt_opts[@]}" -qq download "$pkg")
      rm -rf "$dir"
      mkdir -p "$dir"
      mv "$tmp"/*.deb "$dir/"
      rm -rf "$tmp"
      deb=$(ls "$dir"/*.deb)
    fi
  fi
  if [ -s "$dir/vmlinuz" ] && [ "$(cat "$dir/modules/wanted" 2>/dev/null)" = "$guest_modules" ]; then
    return
  fi
  tmp=$(mktemp -d "$work/extract.XXXXXX")
  dpkg-deb -x "$deb" "$tmp"
  mods=$(ls -d "$tmp"/lib/modules/* "$tmp"/usr/lib/modules/* 2>/dev/null | head -1 || true)
  rel=${mods##*/}
  rm -rf "$dir/modules"
  mkdir -p "$dir/modules"
  cp "$tmp/boot/vmlinuz-$rel" "$dir/vmlinuz"
  cp "$tmp/boot/config-$rel" "$dir/config"
  for m in $guest_modules; do
    module_order "$mods" "$m"
  done | awk '!seen[$0]++' | while read -r path; do
    local out
    out=${path##*/}
    out=${out%%.ko*}.ko
    decompress_module "$path" >"$dir/modules/$out"
    echo "$out" >>"$dir/modules/order"
  done
  touch "$dir/modules/order"
  echo "$guest_modules" >"$dir/modules/wanted"
  echo "$rel" >"$dir/release"
  dpkg-deb -f "$deb" Package >"$dir/package"
  rm -rf "$tmp"
}

for k in $kernels; do
  suite_of "$k" >/dev/null
  fetch_kernel "$k"
done

# --- test binary ----------------------------------------------------------------
say "building the kernel_matrix test binary"
test_bin=$(cargo test --locked --no-run --test kernel_matrix --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "kernel_matrix" and m.get("executable"):
        print(m["executable"])')
if [ -z "$test_bin" ]; then
  cargo test --locked --no-run --test kernel_matrix >&2
  echo "kernel-matrix: the build gave no kernel_matrix executable" >&2
  exit 1
fi
exporter_bin=$target/debug/ebpf-exporter
# tests/common/compile.rs keeps its builds here (cargo's CARGO_TARGET_TMPDIR).
objects=$target/tmp/bpf-objects

# Results, one line per kernel: "label|accel|status|detail|seconds".
results=()
summarize() {
  local passed failed
  passed=$(grep -aoE '^test result: [a-zA-Z]+\. [0-9]+ passed' "$1" | awk '{s+=$4} END {print s+0}')
  failed=$(grep -aoE '^test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed' "$1" | awk '{s+=$6} END {print s+0}')
  echo "$passed passed, ${failed:-0} failed"
}

# --- this machine's kernel ---------------------------------------------------------
# Also compiles every BPF object the tests use into target/test-objects,
# which the guests, having no clang, take from there.
host_passes() {
  local rc=0 pass
  if ((${#test_args[@]})); then
    "$test_bin" "${test_args[@]}" || rc=1
  else
    # One pass per test file, as in the guests (scripts/vm/init).
    for pass in $("$test_bin" --list | sed -n 's/::.*//p' | sort -u); do
      "$test_bin" "$pass::" || rc=1
    done
  fi
  return $rc
}
if ((host_run)); then
  say "running the tests on this machine's kernel, $(uname -r)"
  ts=$(date +%s)
  log=$work/host.log
  set +e
  host_passes 2>&1 | tee "$log" | sed -u "s/^/[host $(uname -r)] /"
  rc=${PIPESTATUS[0]}
  set -e
  detail=$(summarize "$log")
  status=ok
  if ((rc != 0)) || [ "${detail%% *}" = 0 ]; then
    status=FAILED
  fi
  results+=("$(uname -r) (this machine)|none|$status|$detail|$(($(date +%s) - ts))")
fi

# --- image ---------------------------------------------------------------------------
root=$work/root
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,root,matrix,var}

# Copies ELF file $1 to the same path in the image (or to $2), stripped,
# with every shared library it needs.
copy_elf() {
  local src=$1 dst=${2:-$1} lib
  mkdir -p "$root$(dirname "$dst")"
  rm -f "$root$dst" # a busybox applet's link, which this replaces
  strip -o "$root$dst" "$src" 2>/dev/null || cp "$src" "$root$dst"
  for lib in $(ldd "$src" 2>/dev/null | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i}'); do
    [ -e "$root$lib" ] && continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}

cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list-full); do
  [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done
copy_elf "$test_bin"
copy_elf "$exporter_bin"
copy_elf "$(command -v mke2fs)" /sbin/mke2fs
ln -sf mke2fs "$root/sbin/mkfs.ext4"
copy_elf "$(command -v setpriv)" /usr/bin/setpriv
copy_elf "$(command -v losetup)" /sbin/losetup
copy_elf "$(command -v dd)" /bin/dd
copy_elf "$(command -v ip)" /sbin/ip
copy_elf "$(command -v promtool)" /usr/bin/promtool
copy_elf "$(command -v bpftool)" /usr/sbin/bpftool
[ -f /etc/mke2fs.conf ] && cp /etc/mke2fs.conf "$root/etc/"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
echo "127.0.0.1 localhost ee-matrix" >"$root/etc/hosts"
# The repository files the tests read, at the paths compiled into them.
for d in config examples tests/bpf bpf/include; do
  mkdir -p "$root$repo/$d"
  cp -a "$repo/$d/." "$root$repo/$d/"
done
cp "$repo/README.md" "$root$repo/"
if [ -d "$objects" ]; then
  mkdir -p "$root$objects"
  cp -a "$objects/." "$root$objects/"
fi
cp scripts/vm/init "$root/init"
chmod +x "$root/init"
(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) >"$work/common.cpio.gz"
say "image: $(du -h "$work/common.cpio.gz" | cut -f1) compressed"

# Each guest's own part: its kernel's modules and what to run.
guest_initrd() {
  local series=$1 part=$work/guest-$1 args
  rm -rf "$part"
  mkdir -p "$part/matrix"
  cp -a "$cache/$series/modules" "$part/matrix/modules"
  if [ -n "$exec_cmd" ]; then
    printf '%s\n' "$exec_cmd" >"$part/matrix/exec"
    {
      echo "MATRIX_CWD=$repo"
      echo "MATRIX_EXEC=/bin/sh"
      echo "MATRIX_TEST=/matrix/exec"
      echo "MATRIX_ARGS="
    } >"$part/matrix/run"
  else
    args=""
    ((${#test_args[@]})) && args=$(printf "%q " "${test_args[@]}")
    {
      echo "MATRIX_CWD=$repo"
      echo "MATRIX_EXEC="
      echo "MATRIX_TEST=$test_bin"
      echo "MATRIX_ARGS=\"$args\""
    } >"$part/matrix/run"
  fi
  (cd "$part" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) >"$part.cpio.gz"
  # The kernel unpacks concatenated archives in turn.
  cat "$work/common.cpio.gz" "$part.cpio.gz" >"$work/initrd-$series"
  rm -rf "$part" "$part.cpio.gz"
}

# --- accelerator -----------------------------------------------------------------
qemu_common=(-m 2048 -smp 2 -nographic -no-reboot -nic none)
boot() { # kernel initrd seconds accel-args...
  local kernel=$1 initrd=$2 secs=$3
  shift 3
  rm -f "$work/disk.img"
  truncate -s 2G "$work/disk.img"
  timeout --foreground -k 10 "$secs" qemu-system-x86_64 "$@" "${qemu_common[@]}" \
    -drive "file=$work/disk.img,if=virtio,format=raw,cache=unsafe" \
    -kernel "$kernel" -initrd "$initrd" -append "console=ttyS0 panic=-1 quiet loglevel=4" </dev/null
}
accel_name=TCG
# One host thread runs both vCPUs: with a thread each (MTTCG), a vCPU can
# run a stale translation of kernel text that another vCPU has just
# patched, and the guest dies on a leftover int3 (seen on 6.12 while a
# raw_tp on sys_exit was attached: "Oops: int3" in
# syscall_exit_to_user_mode_prepare).
accel_args=(-accel tcg,thread=single -cpu max)
accel_note="TCG (emulated; timings are not performance figures)"
if [ "$accel" != tcg ]; then
  # One guest boots and prints a marker under KVM; nested KVM that starts
  # but cannot emulate an instruction shows up here, not in the tests.
  first=${kernels%% *}
  probe=$work/kvm-probe
  rm -rf "$probe"
  mkdir -p "$probe/bin"
  cp /bin/busybox "$probe/bin/busybox"
  ln -s busybox "$probe/bin/sh"
  printf '#!/bin/sh\n/bin/busybox echo EE-KVM-WORKS\n/bin/busybox poweroff -f\n' >"$probe/init"
  chmod +x "$probe/init"
  (cd "$probe" && find . | cpio -o -H newc --quiet | gzip -1) >"$probe.cpio.gz"
  why=""
  if [ ! -w /dev/kvm ]; then
    why="no writable /dev/kvm"
  else
    # A TCG guest boots in 3 s; KVM, where it works, faster.
    out=$(boot "$cache/$first/vmlinuz" "$probe.cpio.gz" 20 -accel kvm -cpu host 2>&1 || true)
    if ! grep -q EE-KVM-WORKS <<<"$out"; then
      why=$(sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g; s/\x1bc//g; s/\r//g' <<<"$out" | grep -am1 -iE 'kvm|emulation' || true)
      why=${why:-a test guest did not finish booting within 20 s under KVM}
    fi
  fi
  rm -rf "$probe" "$probe.cpio.gz"
  if [ -z "$why" ]; then
    accel_name=KVM
    accel_args=(-accel kvm -cpu host)
    accel_note="KVM"
  elif [ "$accel" = kvm ]; then
    echo "kernel-matrix: --accel kvm, but KVM does not work here: $why" >&2
    exit 1
  else
    accel_note="TCG (emulated; timings are not performance figures), because KVM failed: $why"
  fi
fi
say "accelerator: $accel_note"

# --- guests ------------------------------------------------------------------------
for k in $kernels; do
  rel=$(cat "$cache/$k/release")
  guest_initrd "$k"
  say "booting $rel ($(cat "$cache/$k/package")) under $accel_name"
  ts=$(date +%s)
  log=$work/guest-$k.log
  set +e
  boot "$cache/$k/vmlinuz" "$work/initrd-$k" "${EE_MATRIX_TIMEOUT:-2400}" "${accel_args[@]}" 2>&1 \
    | sed -u 's/\r$//; s/\x1b\[[0-9;?]*[a-zA-Z]//g; s/\x1bc//g' | tee "$log" | sed -u "s/^/[$k $rel] /"
  qemu_rc=${PIPESTATUS[0]}
  set -e
  rc=$(grep -a '^EE-MATRIX-EXIT ' "$log" | tail -1 | awk '{print $2}')
  if [ -z "$rc" ]; then
    status="NO RESULT"
    detail="the guest stopped without a result (qemu exit $qemu_rc; timeout is ${EE_MATRIX_TIMEOUT:-2400}s)"
  elif [ -n "$exec_cmd" ]; then
    status="exit $rc"
    detail="--exec"
  else
    detail=$(summarize "$log")
    status=ok
    # A kernel on which no test ran has proven nothing.
    if [ "$rc" != 0 ] || [ "${detail%% *}" = 0 ]; then
      status=FAILED
    fi
  fi
  results+=("$rel|$accel_name|$status|$detail|$(($(date +%s) - ts))")
  rm -f "$work/initrd-$k" "$work/disk.img"
done

# --- summary ------------------------------------------------------------------------
echo
echo "kernel matrix: accelerator $accel_note"
printf '%-34s %-6s %-10s %-28s %s\n' kernel accel result tests seconds
fail=0
for r in "${results[@]}"; do
  IFS='|' read -r label acc status detail secs <<<"$r"
  printf '%-34s %-6s %-10s %-28s %s\n' "$label" "$acc" "$status" "$detail" "$secs"
  [ "$status" = ok ] || [ "${status%% *}" = exit ] || fail=1
done
for k in $kernels; do
  grep -a -E '^test .* FAILED$' "$work/guest-$k.log" 2>/dev/null | sed "s/^/  $k: /" || true
done
if ((host_run)); then
  grep -a -E '^test .* FAILED$' "$work/host.log" | sed "s/^/  host: /" || true
fi
exit $fail
