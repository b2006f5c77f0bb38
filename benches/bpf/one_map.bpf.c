// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Maps for the one-large-map benchmarks (`scaling -- --one-map`, `builds --
 * --one-map`): a HASH sized for a million keys, as a per-pid, per-cgroup or
 * per-connection map would be, between two small maps of the size most
 * tools give theirs. The large map sits between the small ones in scrape
 * order, so no reader can gain from it coming first or last. Filled from
 * user space; the program only exists so that the bench finds the maps. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>

#define LARGE_KEYS 1048576
#define SMALL_KEYS 10240

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, SMALL_KEYS);
	__type(key, u32);
	__type(value, u64);
} om_before_total SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LARGE_KEYS);
	__type(key, u32);
	__type(value, u64);
} om_large_total SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SMALL_KEYS);
	__type(key, u32);
	__type(value, u64);
} om_after_total SEC(".maps");

SEC("syscall")
int touch(void *ctx)
{
	u32 k = 0;

	bpf_map_lookup_elem(&om_before_total, &k);
	bpf_map_lookup_elem(&om_large_total, &k);
	bpf_map_lookup_elem(&om_after_total, &k);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
