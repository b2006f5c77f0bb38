// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Maps for the scaling benchmark (benches/scaling.rs): one of each hash
 * kind, filled from user space to growing sizes. The program only exists so
 * that the bench finds the maps through its map ids. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>

#define MAX_KEYS 400000

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_KEYS);
	__type(key, u32);
	__type(value, u64);
} sc_hash_total SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, MAX_KEYS);
	__type(key, u32);
	__type(value, u64);
} sc_percpu_total SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_KEYS);
	__type(key, u32);
	__type(value, u64);
} sc_lru_total SEC(".maps");

SEC("syscall")
int touch(void *ctx)
{
	u32 k = 0;

	bpf_map_lookup_elem(&sc_hash_total, &k);
	bpf_map_lookup_elem(&sc_percpu_total, &k);
	bpf_map_lookup_elem(&sc_lru_total, &k);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
