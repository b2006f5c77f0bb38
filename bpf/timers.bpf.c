// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Timer expirations by callback function, for timer wheel timers
 * (timer_list) and high-resolution timers (hrtimer). Keys are kernel text
 * addresses, so the cardinality is bounded by the callbacks that exist. */
#include <vmlinux.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "exporter.bpf.h"

#define MAX_FUNCTIONS EE_MAX_ENTRIES_SMALL

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_FUNCTIONS);
	__type(key, u64);
	__type(value, u64);
} timer_expirations_total SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_FUNCTIONS);
	__type(key, u64);
	__type(value, u64);
} hrtimer_expirations_total SEC(".maps");

SEC("tp_btf/timer_expire_entry")
int BPF_PROG(timer_expire, struct timer_list *timer, unsigned long baseclk)
{
	u64 fn = (u64)BPF_CORE_READ(timer, function);

	ee_map_add(&timer_expirations_total, &fn, 1);
	return 0;
}

SEC("tp_btf/hrtimer_expire_entry")
int BPF_PROG(hrtimer_expire, struct hrtimer *hrtimer, ktime_t *now)
{
	u64 fn = (u64)BPF_CORE_READ(hrtimer, function);

	ee_map_add(&hrtimer_expirations_total, &fn, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
