// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Writes one key whose fields exercise many decoders at once, when a process
 * named "eedecoders" calls getpid(). The test checks every label string. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "exporter.bpf.h"

const volatile u64 kaddr_do_nanosleep = 0;

struct all_key {
	u8 v4[4];
	u8 v6[16];
	u32 ifindex;
	u64 ksym;
	u64 cgroup;
	char comm[16];
	u8 dname[16];
	u32 err;
	u32 syscall;
	u16 port_be;
	u8 raw[2];
	u32 op;
	u32 uid;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct all_key);
	__type(value, u64);
} decoded_total SEC(".maps");

/* Key bytes that are not UTF-8: every scrape of this metric fails to decode. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, u32);
	__type(value, u64);
} malformed_total SEC(".maps");

/* A per-CPU histogram split by CPU through a synthetic `cpu` label. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 8);
	__type(key, u32);
	__type(value, u64);
} percpu_latency_seconds SEC(".maps");

static __always_inline bool is_target(void)
{
	char comm[16] = {};
	const char want[] = "eedecoders";

	bpf_get_current_comm(comm, sizeof(comm));
	for (int i = 0; i < sizeof(want); i++)
		if (comm[i] != want[i])
			return false;
	return true;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(decoders_getpid, struct pt_regs *regs, long id)
{
	struct all_key k = {};
	u32 bad = 0xfffefdfc, bucket;

	if (id != 39 && id != 172)
		return 0;
	if (!is_target())
		return 0;
	k.v4[0] = 127; k.v4[3] = 1;
	k.v6[15] = 1;
	k.ifindex = 1;
	k.ksym = kaddr_do_nanosleep;
	k.cgroup = bpf_get_current_cgroup_id();
	bpf_get_current_comm(k.comm, sizeof(k.comm));
	__builtin_memcpy(k.dname, "\x07" "example" "\x03" "com", 13);
	k.err = 2;
	k.syscall = id;
	k.port_be = bpf_htons(8080);
	k.raw[0] = 0xab; k.raw[1] = 0xcd;
	k.op = 1;
	k.uid = (u32)bpf_get_current_uid_gid();
	ee_map_add(&decoded_total, &k, 1);
	ee_map_add(&malformed_total, &bad, 1);
	bucket = 3;
	ee_map_add(&percpu_latency_seconds, &bucket, 1);
	bucket = 7; /* max_bucket + 1: the sum */
	ee_map_add(&percpu_latency_seconds, &bucket, 5);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
