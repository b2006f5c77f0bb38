// Programs whose targets this kernel (or any) lacks, for the plain-word
// failure messages; the first one attaches, so the config still starts.
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, u32);
	__type(value, u64);
} missing_targets_total SEC(".maps");

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch)
{
	return 0;
}

SEC("fentry/ee_no_such_function")
int BPF_PROG(on_missing_function)
{
	return 0;
}

SEC("tp_btf/ee_no_such_tracepoint")
int BPF_PROG(on_missing_tracepoint)
{
	return 0;
}

SEC("perf_event/type=0,config=0,frequency=99")
int on_cycles(void *ctx)
{
	return 0;
}

SEC("usdt//nonexistent/ee-demo:ebpf_exporter:probe")
int BPF_USDT(on_missing_usdt)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
