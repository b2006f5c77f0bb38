// Versions of one object for tests/reload.rs: the plain build counts
// syscalls; -DNEW_PROGRAM_FAILS adds a program whose kprobe target exists
// on no kernel, and -DVERIFIER_REFUSES one the verifier rejects. A reload
// to either must keep the plain version running.
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, u32);
	__type(value, u64);
} reload_hits_total SEC(".maps");

SEC("raw_tp/sys_enter")
int count_syscalls(void *ctx)
{
	u32 key = 0;
	u64 one = 1, *hits = bpf_map_lookup_elem(&reload_hits_total, &key);

	if (hits)
		__sync_fetch_and_add(hits, 1);
	else
		bpf_map_update_elem(&reload_hits_total, &key, &one, BPF_NOEXIST);
	return 0;
}

#ifdef NEW_PROGRAM_FAILS
SEC("kprobe/ee_no_such_function")
int on_missing(void *ctx)
{
	return 0;
}
#endif

#ifdef VERIFIER_REFUSES
SEC("raw_tp/sys_exit")
int reads_null(void *ctx)
{
	u32 key = 0;
	u64 *hits = bpf_map_lookup_elem(&reload_hits_total, &key);

	// No NULL check: the verifier refuses the load.
	return *hits > 0;
}
#endif

char LICENSE[] SEC("license") = "GPL";
