// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Generic user-space probes whose sections name no target, as
 * libbpf-tools' funclatency and uprobe-based tools leave them for their
 * loader: `programs.attach` says which binary and function. Counts calls
 * and returns per process, for one process when targ_tgid is set. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>

const volatile __u32 targ_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} returns SEC(".maps");

static __always_inline int count(void *map)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 one = 1, *n;

	if (targ_tgid && tgid != targ_tgid)
		return 0;
	n = bpf_map_lookup_elem(map, &tgid);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(map, &tgid, &one, BPF_NOEXIST);
	return 0;
}

SEC("uprobe")
int on_call(struct pt_regs *ctx)
{
	return count(&calls);
}

SEC("uretprobe")
int on_return(struct pt_regs *ctx)
{
	return count(&returns);
}

char LICENSE[] SEC("license") = "GPL";
