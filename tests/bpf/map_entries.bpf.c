// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* An object whose filters its loader would fill before attaching: the
 * commands to watch (with a weight each) and the syscalls to count. The
 * exporter fills both from `maps.NAME.entries`. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>

#define COMM_LEN 16

struct syscall_key {
	__u32 nr;
	__u32 unused;
};

struct count_key {
	char comm[COMM_LEN];
	__u32 nr;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, char[COMM_LEN]);
	__type(value, __u64);
} watched_comms SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct syscall_key);
	__type(value, __u8);
} watched_syscalls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct count_key);
	__type(value, __u64);
} counts SEC(".maps");

SEC("tracepoint/raw_syscalls/sys_enter")
int enter(struct trace_event_raw_sys_enter *ctx)
{
	struct syscall_key sk = { .nr = (__u32)ctx->id };
	struct count_key key = {};
	__u64 *weight, *count;

	if (!bpf_map_lookup_elem(&watched_syscalls, &sk))
		return 0;
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	weight = bpf_map_lookup_elem(&watched_comms, key.comm);
	if (!weight)
		return 0;
	key.nr = sk.nr;
	count = bpf_map_lookup_elem(&counts, &key);
	if (count) {
		__sync_fetch_and_add(count, *weight);
		return 0;
	}
	bpf_map_update_elem(&counts, &key, weight, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
