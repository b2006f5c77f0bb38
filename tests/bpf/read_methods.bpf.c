// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Maps of every type the exporter reads, pinned by name so that several
 * exporters (one per read method) serve the very same maps. The test fills
 * them from user space, with values that differ per key and per CPU: a
 * program filling them would need bpf_loop() or syscall programs, which
 * kernels before 5.17 lack. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>

#define N 10000

struct rm_key {
	u32 a;
	u16 b;
	u16 c;
};

#define PINNED_MAP(kind, nm, k, max)                                           \
	struct {                                                               \
		__uint(type, kind);                                            \
		__uint(max_entries, max);                                      \
		__uint(pinning, LIBBPF_PIN_BY_NAME);                           \
		__type(key, k);                                                \
		__type(value, u64);                                            \
	} nm SEC(".maps")

PINNED_MAP(BPF_MAP_TYPE_HASH, rm_hash_total, struct rm_key, N);
PINNED_MAP(BPF_MAP_TYPE_PERCPU_HASH, rm_percpu_total, struct rm_key, N);
/* LRU maps evict before they are full; room to spare keeps all N. */
PINNED_MAP(BPF_MAP_TYPE_LRU_HASH, rm_lru_total, struct rm_key, 2 * N);
PINNED_MAP(BPF_MAP_TYPE_LRU_PERCPU_HASH, rm_lrupc_total, struct rm_key, 2 * N);
PINNED_MAP(BPF_MAP_TYPE_ARRAY, rm_array_total, u32, 512);
PINNED_MAP(BPF_MAP_TYPE_PERCPU_ARRAY, rm_pcarray_total, u32, 512);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 12);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__type(key, u32);
	__type(value, u64);
} rm_mmap_seconds SEC(".maps");

char LICENSE[] SEC("license") = "GPL";
