// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Sends a record per getpid() of a process named "eeevents" through a
 * PERF_EVENT_ARRAY: every third record carries a tag that is not UTF-8, so
 * the exporter's event counter must skip those and count the rest. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(u32));
	__uint(value_size, sizeof(u32));
} getpid_events_total SEC(".maps");

struct record {
	u32 pid;
	char tag[4];
};

u32 sent = 0;

SEC("raw_tp/sys_enter")
int BPF_PROG(events_getpid, struct pt_regs *regs, long id)
{
	struct record r = {};
	char comm[16] = {};

	if (id != 39 && id != 172)
		return 0;
	bpf_get_current_comm(comm, sizeof(comm));
	if (comm[0] != 'e' || comm[1] != 'e' || comm[2] != 'e' || comm[3] != 'v')
		return 0;
	r.pid = bpf_get_current_pid_tgid() >> 32;
	/* The test's calls come from one thread, so a plain increment does. */
	if (sent++ % 3 == 2) {
		r.tag[0] = (char)0xff;
		r.tag[1] = (char)0xfe;
	} else {
		r.tag[0] = 'o';
		r.tag[1] = 'k';
	}
	bpf_perf_event_output(ctx, &getpid_events_total, BPF_F_CURRENT_CPU, &r, sizeof(r));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
