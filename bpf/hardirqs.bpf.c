// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Hardware interrupts handled, by handler name (the name in
 * /proc/interrupts, e.g. "virtio0-input.0", "nvme0q3"). The typed
 * irq_handler_entry tracepoint passes the struct irqaction, so the name is
 * read from it directly instead of from the tracefs event's __data_loc
 * string: cheaper, and no tracefs needed. */
#include <vmlinux.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "exporter.bpf.h"

#define NAME_LEN 32
/* One entry per registered handler: a few hundred even on large machines. */
#define MAX_HANDLERS EE_MAX_ENTRIES_SMALL

struct irq_key {
	char name[NAME_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_HANDLERS);
	__type(key, struct irq_key);
	__type(value, u64);
} hardirqs_total SEC(".maps");

SEC("tp_btf/irq_handler_entry")
int BPF_PROG(hardirq_entry, int irq, struct irqaction *action)
{
	struct irq_key key;

	__builtin_memset(&key, 0, sizeof(key));
	bpf_probe_read_kernel_str(key.name, sizeof(key.name), BPF_CORE_READ(action, name));
	ee_map_add(&hardirqs_total, &key, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
