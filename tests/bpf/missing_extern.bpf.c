// Calls a kfunc no kernel has: the whole object fails at extern resolution,
// and the error must say that rather than blame its programs.
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, u32);
	__type(value, u64);
} missing_extern_total SEC(".maps");

extern int ee_no_such_kfunc(int x) __ksym;

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch)
{
	u32 key = 0;
	u64 one = 1;

	if (ee_no_such_kfunc(1))
		bpf_map_update_elem(&missing_extern_total, &key, &one, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
