// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* CPU time per cgroup (v2 hierarchy), charged at every context switch: the
 * time since this CPU last switched goes to the task switched out. At
 * sched_switch, current is still prev, so bpf_get_current_cgroup_id() is
 * prev's cgroup. Idle time (prev is the idle task, pid 0) is not charged.
 * The counter is in nanoseconds: counters cannot be scaled in the config,
 * and its name carries no unit, because Prometheus linters (promtool check
 * metrics) reject "nanoseconds" in a metric name. */
#include <vmlinux.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "exporter.bpf.h"

/* Live cgroups that run tasks. LRU, so ids of removed cgroups age out
 * rather than filling the map; an evicted live cgroup restarts from zero,
 * which rate() reads as a counter reset. */
#define MAX_CGROUPS EE_MAX_ENTRIES

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_CGROUPS);
	__type(key, u64);
	__type(value, u64);
} cgroup_cpu_seconds_total SEC(".maps");

/* When this CPU last switched tasks. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} last_switch SEC(".maps");

SEC("tp_btf/sched_switch")
int BPF_PROG(cgroup_cpu_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	u64 now = bpf_ktime_get_ns(), *last, delta, cgroup;
	u32 zero = 0;

	last = bpf_map_lookup_elem(&last_switch, &zero);
	if (!last)
		return 0;
	delta = *last ? now - *last : 0;
	*last = now;
	if (!delta || BPF_CORE_READ(prev, pid) == 0)
		return 0;
	cgroup = bpf_get_current_cgroup_id();
	ee_map_add(&cgroup_cpu_seconds_total, &cgroup, delta);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
