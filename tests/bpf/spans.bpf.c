// Emits one span per close(987654) call (an fd no process has), with known
// ids, so tests/spans.rs can check every field at a real OTLP receiver.
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define MAGIC_FD 987654

struct span {
	u8 trace_id[16];
	u8 parent_span_id[8];
	u8 span_id[8];
	u64 span_monotonic_timestamp_ns;
	u64 span_duration_ns;
	char span_name[16];
	u32 pid;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} test_spans SEC(".maps");

/* Spans the ring buffer had no room for: lost in the kernel, where the
 * exporter cannot count them. A slow reader (an emulated VM) loses some. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} spans_lost_in_kernel_total SEC(".maps");

SEC("raw_tp/sys_enter")
int BPF_PROG(emit_span, struct pt_regs *regs, long id)
{
	if (id != 3 || BPF_CORE_READ(regs, di) != MAGIC_FD)
		return 0;
	struct span *s = bpf_ringbuf_reserve(&test_spans, sizeof(*s), 0);
	if (!s) {
		u32 zero = 0;
		u64 *lost = bpf_map_lookup_elem(&spans_lost_in_kernel_total, &zero);
		if (lost)
			__sync_fetch_and_add(lost, 1);
		return 0;
	}
	for (int i = 0; i < 16; i++)
		s->trace_id[i] = i + 1;
	for (int i = 0; i < 8; i++) {
		s->parent_span_id[i] = 0x11;
		s->span_id[i] = 0;
	}
	s->span_monotonic_timestamp_ns = bpf_ktime_get_ns();
	s->span_duration_ns = 12345;
	__builtin_memcpy(s->span_name, "close-span", 11);
	s->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_ringbuf_submit(s, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
