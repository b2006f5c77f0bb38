// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Counts getpid() calls by cgroup, split by whether the exporter put the
 * caller's cgroup into cgroup_id_map (the reference's cgroup_id_map shape). */
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

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u64);
	__type(value, u64);
} cgroup_id_map SEC(".maps");

SEC("raw_tp/sys_enter")
int BPF_PROG(cgroup_getpid, struct pt_regs *regs, long id)
{
	u64 cgroup_id;

	if (id != 39 && id != 172)
		return 0;
	cgroup_id = bpf_get_current_cgroup_id();
	if (bpf_map_lookup_elem(&cgroup_id_map, &cgroup_id))
		ee_map_add(&cgroup_getpid_matched_total, &cgroup_id, 1);
	else
		ee_map_add(&cgroup_getpid_other_total, &cgroup_id, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
