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

/* Dense buckets in a mappable array: the exporter copies the counts out of
 * a shared mapping, with no syscall per scrape. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, MAX_BUCKET + 2);
	__type(key, u32);
	__type(value, u64);
} run_queue_latency_seconds SEC(".maps");

/* Per-thread enqueue time, in task-local storage: a pointer away from the
 * task, with no hashing or bucket locks on the scheduler's hot path (an LRU
 * hash here cost about three times as much per switch), and freed by the
 * kernel when the task exits. Needs kernel 5.11 or later. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, u64);
} enqueued_at SEC(".maps");

static __always_inline void mark_enqueued(struct task_struct *p)
{
	u64 *ts;

	if (!BPF_CORE_READ(p, pid))
		return; /* the idle task */
	ts = bpf_task_storage_get(&enqueued_at, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (ts)
		*ts = bpf_ktime_get_ns();
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

	/* A task preempted while still runnable goes straight back to the queue. */
	if (BPF_CORE_READ(prev, __state) == TASK_RUNNING)
		mark_enqueued(prev);

	tsp = bpf_task_storage_get(&enqueued_at, next, 0, 0);
	if (!tsp || !*tsp)
		return 0;
	delta_us = (bpf_ktime_get_ns() - *tsp) / 1000;
	*tsp = 0;

	ee_hist_exp2_array(&run_queue_latency_seconds, delta_us, MAX_BUCKET);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
