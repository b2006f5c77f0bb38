// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Streams distinct keys through a small LRU map: each BPF_PROG_TEST_RUN
 * inserts the next BATCH keys, evicting older ones, so over many runs the
 * exporter sees a million distinct keys while the map stays small. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>

#define BATCH 50000

u64 next_key = 0;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, BATCH);
	__type(key, u64);
	__type(value, u64);
} churn_total SEC(".maps");

static long insert_one(u32 i, void *ctx)
{
	u64 k = next_key + i, one = 1;

	bpf_map_update_elem(&churn_total, &k, &one, BPF_ANY);
	return 0;
}

SEC("syscall")
int stream_keys(void *ctx)
{
	bpf_loop(BATCH, insert_one, NULL, 0);
	next_key += BATCH;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
