// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Context switches per CPU, voluntary (the task blocked) or involuntary (it
 * was preempted or yielded while still runnable), the split that
 * /proc/PID/status reports per task; and task migrations between CPUs.
 * Both fire very often, so they count into per-CPU arrays: no shared cache
 * line, no hash lookup. */
#include <vmlinux.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "exporter.bpf.h"
#include "exporter_tracing.bpf.h"

#define TASK_RUNNING 0
#define SWITCH_VOLUNTARY 0
#define SWITCH_INVOLUNTARY 1

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, u32);
	__type(value, u64);
} context_switches_total SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} sched_migrations_total SEC(".maps");

SEC("tp_btf/sched_switch")
int BPF_PROG(context_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	u32 kind = SWITCH_VOLUNTARY;

	if (preempt || ee_task_state(prev) == TASK_RUNNING)
		kind = SWITCH_INVOLUNTARY;
	ee_map_add(&context_switches_total, &kind, 1);
	return 0;
}

SEC("tp_btf/sched_migrate_task")
int BPF_PROG(sched_migrate, struct task_struct *p, int dest_cpu)
{
	u32 zero = 0;

	ee_map_add(&sched_migrations_total, &zero, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
