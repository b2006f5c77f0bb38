// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* libc malloc() calls and requested sizes, system-wide, via a uprobe on the
 * libc.so.6 that libbpf finds in the standard library paths (processes that
 * run another libc, e.g. in containers with their own root, are not seen).
 *
 * Cost: every malloc() in every process takes a uprobe trap, about a
 * microsecond each, which can be a large slowdown for allocation-heavy
 * programs. Nothing is keyed by process, so memory stays fixed. The arrays
 * are per-CPU so the counters themselves add no cross-CPU contention. */
#include <vmlinux.h>
#include <bpf/bpf_tracing.h>
#include "exporter.bpf.h"

#define MAX_BUCKET 32 /* 2^32 bytes: 4 GiB and above */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} malloc_calls_total SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_BUCKET + 2);
	__type(key, u32);
	__type(value, u64);
} malloc_size_bytes SEC(".maps");

SEC("uprobe/libc.so.6:malloc")
int BPF_UPROBE(malloc_enter, size_t size)
{
	u32 zero = 0;

	ee_map_add(&malloc_calls_total, &zero, 1);
	ee_hist_exp2_array(&malloc_size_bytes, size, MAX_BUCKET);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
