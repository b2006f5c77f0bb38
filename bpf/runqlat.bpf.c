// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Run-queue latency: time from a task becoming runnable (wakeup, or being
 * preempted while runnable) until it runs on a CPU. tp_btf hooks give typed
 * task_struct pointers without tracefs. */
#include <vmlinux.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "exporter.bpf.h"

#define MAX_BUCKET 26 /* 2^26 us: about a minute */
#define TASK_RUNNING 0

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_BUCKET + 2);
	__type(key, u32);
	__type(value, u64);
} run_queue_latency_seconds SEC(".maps");

/* Per-thread enqueue time. An LRU map, so threads that exit while queued
 * cannot fill it up: their stale entries are evicted first. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, EE_MAX_ENTRIES * 4);
	__type(key, u32);
	__type(value, u64);
} enqueued_at SEC(".maps");

static __always_inline void mark_enqueued(struct task_struct *p)
{
	u32 pid = BPF_CORE_READ(p, pid);
	u64 ts;

	if (!pid)
		return;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&enqueued_at, &pid, &ts, BPF_ANY);
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(runqlat_wakeup, struct task_struct *p)
{
	mark_enqueued(p);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(runqlat_wakeup_new, struct task_struct *p)
{
	mark_enqueued(p);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(runqlat_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	u64 *tsp, delta_us;
	u32 pid;

	/* A task preempted while still runnable goes straight back to the queue. */
	if (BPF_CORE_READ(prev, __state) == TASK_RUNNING)
		mark_enqueued(prev);

	pid = BPF_CORE_READ(next, pid);
	tsp = bpf_map_lookup_elem(&enqueued_at, &pid);
	if (!tsp)
		return 0;
	delta_us = (bpf_ktime_get_ns() - *tsp) / 1000;
	bpf_map_delete_elem(&enqueued_at, &pid);

	ee_hist_exp2_array(&run_queue_latency_seconds, delta_us, MAX_BUCKET);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
