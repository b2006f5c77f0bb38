// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Page faults taken in user mode and in kernel mode (a kernel access to user
 * memory, e.g. copy_from_user, or a vmalloc fault). These are the x86
 * exceptions tracepoints: they do not exist on other architectures, where
 * this program loads but does not attach. Faults are frequent, so they count
 * into a per-CPU array. */
#include <vmlinux.h>
#include <bpf/bpf_tracing.h>
#include "exporter.bpf.h"

#define MODE_USER 0
#define MODE_KERNEL 1

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, u32);
	__type(value, u64);
} page_faults_total SEC(".maps");

SEC("raw_tp/page_fault_user")
int BPF_PROG(page_fault_user, unsigned long address, struct pt_regs *regs, unsigned long error_code)
{
	u32 mode = MODE_USER;

	ee_map_add(&page_faults_total, &mode, 1);
	return 0;
}

SEC("raw_tp/page_fault_kernel")
int BPF_PROG(page_fault_kernel, unsigned long address, struct pt_regs *regs, unsigned long error_code)
{
	u32 mode = MODE_KERNEL;

	ee_map_add(&page_faults_total, &mode, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
