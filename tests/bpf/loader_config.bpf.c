// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* An object whose loader would have work to do, as libbpf-tools' do: a
 * bare SEC("perf_event") program (its events opened by the loader), a
 * const volatile switch, and results in global variables, not maps. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>

#define MAX_CPUS 64

const volatile __u32 weight = 1;

__u64 samples = 0;
__u64 per_cpu[MAX_CPUS] = {};

SEC("perf_event")
int sample(void *ctx)
{
	__u32 cpu = bpf_get_smp_processor_id();

	__sync_fetch_and_add(&samples, weight);
	if (cpu < MAX_CPUS)
		__sync_fetch_and_add(&per_cpu[cpu], 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
