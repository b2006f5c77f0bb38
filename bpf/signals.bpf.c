// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Signals generated (sent), by signal number and by what became of them:
 * delivered (queued to the target), ignored, already pending (a standard
 * signal merged into one already queued), or dropped for lack of a sigqueue
 * entry. A key is at most 65 signals x 5 results. */
#include <vmlinux.h>
#include <bpf/bpf_tracing.h>
#include "exporter.bpf.h"

#define MAX_SIGNALS 65 /* _NSIG + 1 */
#define RESULTS 5      /* TRACE_SIGNAL_DELIVERED .. TRACE_SIGNAL_LOSE_INFO */

struct signal_key {
	u32 sig;
	u32 result;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SIGNALS * RESULTS);
	__type(key, struct signal_key);
	__type(value, u64);
} signals_total SEC(".maps");

SEC("tp_btf/signal_generate")
int BPF_PROG(signal_generate, int sig, struct kernel_siginfo *info, struct task_struct *task,
	     int group, int result)
{
	struct signal_key key = {
		.sig = sig,
		.result = result,
	};

	ee_map_add(&signals_total, &key, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
