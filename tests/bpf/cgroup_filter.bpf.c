// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Counts getpid() calls by cgroup, split by whether the exporter put the
 * caller's cgroup into cgroup_id_map, in either of the reference's shapes:
 * a hash of cgroup ids, or cgroup storage. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "exporter.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, u64);
	__type(value, u64);
} cgroup_getpid_matched_total SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, u64);
	__type(value, u64);
} cgroup_getpid_other_total SEC(".maps");

#ifndef CGRP_STORAGE
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u64);
	__type(value, u64);
} cgroup_id_map SEC(".maps");

static __always_inline bool matched(u64 cgroup_id)
{
	return bpf_map_lookup_elem(&cgroup_id_map, &cgroup_id);
}
#else
/* The other shape (-DCGRP_STORAGE, Linux 6.2 and later): a value stored in
 * each matching cgroup itself, which the exporter sets through the
 * cgroup's directory. */
struct {
	__uint(type, BPF_MAP_TYPE_CGRP_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, u64);
} cgroup_id_map SEC(".maps");

static __always_inline bool matched(u64 cgroup_id)
{
	struct task_struct *task = bpf_get_current_task_btf();
	u64 *v = bpf_cgrp_storage_get(&cgroup_id_map, task->cgroups->dfl_cgrp, 0, 0);

	return v && *v;
}
#endif

static __always_inline void count(long id)
{
	u64 cgroup_id;

	if (id != 39 && id != 172)
		return;
	cgroup_id = bpf_get_current_cgroup_id();
	if (matched(cgroup_id))
		ee_map_add(&cgroup_getpid_matched_total, &cgroup_id, 1);
	else
		ee_map_add(&cgroup_getpid_other_total, &cgroup_id, 1);
}

#ifndef CGRP_STORAGE
SEC("raw_tp/sys_enter")
#else
SEC("tp_btf/sys_enter") /* a typed program, for bpf_get_current_task_btf() */
#endif
int BPF_PROG(cgroup_getpid, struct pt_regs *regs, long id)
{
	count(id);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
