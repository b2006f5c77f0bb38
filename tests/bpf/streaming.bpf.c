// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* A map large enough that its exposition streams in many chunks (60k
 * series, about 3 MB of text), filled by a test-run program. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>

#define N 60000

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, N);
	__type(key, u32);
	__type(value, u64);
} st_big_total SEC(".maps");

static long fill_one(u64 i, void *ctx)
{
	u32 k = i;
	u64 v = i + 1;

	bpf_map_update_elem(&st_big_total, &k, &v, BPF_ANY);
	return 0;
}

SEC("syscall")
int fill(void *ctx)
{
	bpf_loop(N, fill_one, NULL, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
