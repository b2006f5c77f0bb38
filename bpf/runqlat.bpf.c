// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Run-queue latency: time from a task becoming runnable (wakeup, or being
 * preempted while runnable) until it runs on a CPU. tp_btf hooks give typed
 * task_struct pointers without tracefs. */
#include <vmlinux.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "exporter.bpf.h"
#include "exporter_tracing.bpf.h"

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
 * kernel when the task exits. Kernel 5.11 or later; on older kernels the
 * exporter leaves this map uncreated (the kernel cannot make it) and the
 * hash below takes its place. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, u64);
} enqueued_at SEC(".maps");

/* Enqueue times by thread id, for kernels without task storage (5.10).
 * Preallocated: these hooks run with a run queue locked, where allocating
 * an entry could deadlock on those kernels. An entry lives from a wakeup to
 * the switch that runs the thread, so it holds the threads waiting to run;
 * one that finds it full is counted in ee_update_failures and not timed. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, u32);
	__type(value, u64);
} enqueued_at_by_tid SEC(".maps");

/* Resolved at load time by CO-RE: the branch for the other kernel is dead
 * code, which the verifier drops unchecked. */
static __always_inline bool have_task_storage(void)
{
	return bpf_core_enum_value_exists(enum bpf_map_type, BPF_MAP_TYPE_TASK_STORAGE);
}

static __always_inline void mark_enqueued(struct task_struct *p)
{
	u32 tid = BPF_CORE_READ(p, pid);
	u64 now, *ts;

	if (!tid)
		return; /* the idle task */
	now = bpf_ktime_get_ns();
	if (have_task_storage()) {
		ts = bpf_task_storage_get(&enqueued_at, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (ts)
			*ts = now;
		return;
	}
	ee_map_put(&enqueued_at_by_tid, &tid, &now, BPF_ANY);
}

/* When `next` became runnable, and forgets it: 0 if it was not seen. */
static __always_inline u64 take_enqueued(struct task_struct *next)
{
	u64 *tsp, ts;
	u32 tid;

	if (have_task_storage()) {
		tsp = bpf_task_storage_get(&enqueued_at, next, 0, 0);
		if (!tsp)
			return 0;
		ts = *tsp;
		*tsp = 0;
		return ts;
	}
	tid = BPF_CORE_READ(next, pid);
	tsp = bpf_map_lookup_elem(&enqueued_at_by_tid, &tid);
	if (!tsp)
		return 0;
	ts = *tsp;
	bpf_map_delete_elem(&enqueued_at_by_tid, &tid);
	return ts;
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
	u64 ts;

	/* A task preempted while still runnable goes straight back to the queue. */
	if (ee_task_state(prev) == TASK_RUNNING)
		mark_enqueued(prev);

	ts = take_enqueued(next);
	if (!ts)
		return 0;
	ee_hist_exp2_array(&run_queue_latency_seconds, (bpf_ktime_get_ns() - ts) / 1000,
			   MAX_BUCKET);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
