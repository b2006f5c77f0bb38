// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Softirqs handled, per vector and CPU, and the time each handler run takes,
 * per vector. Handler runs are short, so durations are kept in nanoseconds.
 * Softirqs do not nest on a CPU, so one per-CPU start slot suffices. */
#include <vmlinux.h>
#include <bpf/bpf_tracing.h>
#include "exporter.bpf.h"

#define MAX_BUCKET 30 /* 2^30 ns: about a second */
#define VECTORS 10   /* NR_SOFTIRQS */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VECTORS);
	__type(key, u32);
	__type(value, u64);
} softirqs_total SEC(".maps");

struct softirq_key {
	u32 vector;
	u64 bucket;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, (MAX_BUCKET + 2) * VECTORS);
	__type(key, struct softirq_key);
	__type(value, u64);
} softirq_duration_seconds SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} softirq_start SEC(".maps");

SEC("tp_btf/softirq_entry")
int BPF_PROG(softirq_entry, unsigned int vec)
{
	u32 zero = 0, key = vec;
	u64 *start;

	ee_map_add(&softirqs_total, &key, 1);
	start = bpf_map_lookup_elem(&softirq_start, &zero);
	if (start)
		*start = bpf_ktime_get_ns();
	return 0;
}

SEC("tp_btf/softirq_exit")
int BPF_PROG(softirq_exit, unsigned int vec)
{
	struct softirq_key key;
	u32 zero = 0;
	u64 *start, delta;

	start = bpf_map_lookup_elem(&softirq_start, &zero);
	if (!start || !*start)
		return 0;
	delta = bpf_ktime_get_ns() - *start;
	*start = 0;
	if (vec >= VECTORS)
		return 0;
	__builtin_memset(&key, 0, sizeof(key));
	key.vector = vec;
	ee_hist_exp2(&softirq_duration_seconds, key, delta, MAX_BUCKET);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
