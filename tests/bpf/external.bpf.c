// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* An object written the way an operator would for the reference exporter,
 * compiled by the tests (not by build.rs) to prove config-only additions.
 * It also carries programs that cannot run on every kernel, to test that
 * they fail cleanly without taking the working ones down. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

/* Set from `kaddrs:` before load. */
const volatile u64 kaddr_do_nanosleep = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u32);
	__type(value, u64);
} getpid_calls_total SEC(".maps");

/* Counter with no labels: the reference reads key u32 0 of a 1-entry array. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} nanosleep_kaddr SEC(".maps");

/* Per-CPU counter split by CPU through a trailing `cpu` label. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} percpu_getpid_total SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, u32);
	__type(value, u64);
} kprobe_hits_total SEC(".maps");

SEC("raw_tp/sys_enter")
int BPF_PROG(count_getpid, struct pt_regs *regs, long id)
{
	u32 pid, zero = 0;
	u64 one = 1, *v;

	if (id != 39 /* __NR_getpid on x86_64 */ && id != 172 /* arm64 */)
		return 0;
	pid = bpf_get_current_pid_tgid() >> 32;
	v = bpf_map_lookup_elem(&getpid_calls_total, &pid);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&getpid_calls_total, &pid, &one, BPF_NOEXIST);
	v = bpf_map_lookup_elem(&percpu_getpid_total, &zero);
	if (v)
		*v += 1;
	v = bpf_map_lookup_elem(&nanosleep_kaddr, &zero);
	if (v)
		*v = kaddr_do_nanosleep;
	return 0;
}

SEC("kprobe/do_nanosleep")
int BPF_KPROBE(kprobe_nanosleep)
{
	u32 k = 0;
	u64 one = 1;

	bpf_map_update_elem(&kprobe_hits_total, &k, &one, BPF_ANY);
	return 0;
}

SEC("fentry/do_nanosleep")
int BPF_PROG(fentry_nanosleep)
{
	u32 k = 1;
	u64 one = 1;

	bpf_map_update_elem(&kprobe_hits_total, &k, &one, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
