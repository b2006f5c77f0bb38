// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* OOM kills by the victim's cgroup (v2 hierarchy).
 * mark_victim fires in the context of the task that ran the OOM killer, not
 * the victim, so bpf_get_current_cgroup_id() would blame the wrong cgroup.
 * Where the typed tracepoint passes the victim's task_struct
 * (TP_PROTO(struct task_struct *, uid_t)), the cgroup id is read from
 * task->cgroups->dfl_cgrp->kn->id, the value bpf_get_current_cgroup_id()
 * would have returned in the victim. Older kernels (5.10 among them) pass
 * only the victim's pid; there the typed program, which dereferences its
 * task argument, does not load, and the config's programs.one_of runs the
 * fentry program on mark_oom_victim(), which takes the task, instead. */
#include <vmlinux.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "exporter.bpf.h"
#include "exporter_tracing.bpf.h"

/* Cgroups that saw a kill. LRU, so removed cgroups age out under churn. */
#define MAX_CGROUPS EE_MAX_ENTRIES_SMALL

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_CGROUPS);
	__type(key, u64);
	__type(value, u64);
} oom_kills_total SEC(".maps");

static __always_inline void count_victim(u64 cgroup)
{
	ee_map_add(&oom_kills_total, &cgroup, 1);
}

SEC("tp_btf/mark_victim")
int BPF_PROG(oom_mark_victim, struct task_struct *task, uid_t uid)
{
	/* Direct loads through the typed argument, which the verifier allows
	 * only where the argument is a task_struct pointer. */
	count_victim(task->cgroups->dfl_cgrp->kn->id);
	return 0;
}

SEC("fentry/mark_oom_victim")
int BPF_PROG(oom_mark_victim_fentry, struct task_struct *task)
{
	count_victim(ee_task_cgroup_id(task));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
