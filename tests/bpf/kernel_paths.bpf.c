// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Programs whose outcome depends on the kernel, for tests/kernel_paths.rs.
 *
 * fill_tiny inserts a new key into a four-entry hash for every close() of
 * fd 987653 (which no process has), through the shared helper that counts
 * refused inserts by the map's id, read through BTF.
 *
 * The other two are refused on every kernel, each for reading past the
 * arguments its hook has there, so the test can check the words the
 * exporter finds for that on each kernel. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "exporter.bpf.h"

#define MAGIC_FD 987653
#define NR_close 3 /* x86_64 */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, u64);
	__type(value, u64);
} tiny_total SEC(".maps");

SEC("raw_tp/sys_enter")
int BPF_PROG(fill_tiny, struct pt_regs *regs, long id)
{
	u64 key;

	if (id != NR_close || BPF_CORE_READ(regs, di) != MAGIC_FD)
		return 0;
	key = bpf_ktime_get_ns();
	ee_map_add(&tiny_total, &key, 1);
	return 0;
}

/* sched_switch passes 3 arguments before 5.18 and 4 after: slot 7 is past
 * both. */
SEC("tp_btf/sched_switch")
int BPF_PROG(reads_past_sched_switch)
{
	return ctx[7] == 1;
}

/* do_nanosleep takes 2 arguments, so an fexit program's return value is
 * slot 2: slot 5 is past it. */
SEC("fexit/do_nanosleep")
int BPF_PROG(reads_past_do_nanosleep)
{
	return ctx[5] == 1;
}

char LICENSE[] SEC("license") = "GPL";
