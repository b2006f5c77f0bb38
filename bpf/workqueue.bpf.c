// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Workqueue latency: time from a work item being queued to a worker starting
 * to run it, by work function. Delayed work is counted from when its timer
 * queues it, not from the queue_delayed_work() call. Work functions are
 * kernel text addresses, so their number is bounded (a few hundred busy ones
 * on a typical machine). */
#include <vmlinux.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "exporter.bpf.h"

#define MAX_BUCKET 24 /* 2^24 us: about 17 seconds */

struct work_key {
	u64 function;
	u64 bucket;
};

/* (MAX_BUCKET + 2) x about 390 functions, fewer if histograms are dense;
 * when full, new functions are not counted. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EE_MAX_ENTRIES);
	__type(key, struct work_key);
	__type(value, u64);
} workqueue_latency_seconds SEC(".maps");

/* Queue time per pending work item. LRU, so work cancelled before it runs
 * cannot fill it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, EE_MAX_ENTRIES);
	__type(key, u64);
	__type(value, u64);
} queued_at SEC(".maps");

SEC("tp_btf/workqueue_queue_work")
int BPF_PROG(workqueue_queue, int req_cpu, struct pool_workqueue *pwq, struct work_struct *work)
{
	u64 ptr = (u64)work, ts = bpf_ktime_get_ns();

	ee_map_put(&queued_at, &ptr, &ts, BPF_ANY);
	return 0;
}

SEC("tp_btf/workqueue_execute_start")
int BPF_PROG(workqueue_execute, struct work_struct *work)
{
	u64 ptr = (u64)work, *tsp, delta_us;
	struct work_key key;

	tsp = bpf_map_lookup_elem(&queued_at, &ptr);
	if (!tsp)
		return 0;
	delta_us = (bpf_ktime_get_ns() - *tsp) / 1000;
	bpf_map_delete_elem(&queued_at, &ptr);

	key.function = (u64)BPF_CORE_READ(work, func);
	ee_hist_exp2(&workqueue_latency_seconds, key, delta_us, MAX_BUCKET);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
