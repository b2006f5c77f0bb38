// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * The exporter's own map reader: a BPF map-element iterator that writes
 * every entry of the map it is attached to as its raw key bytes followed by
 * its raw value bytes (for per-CPU maps, every possible CPU's value, each
 * rounded up to 8 bytes, as BPF_MAP_LOOKUP_BATCH lays them out). Reading the
 * iterator's fd in large chunks then costs one read() per ~32 KiB of entries,
 * with no per-entry copy into a kernel batch buffer.
 *
 * The sizes are set in .rodata before load: the verifier needs them as
 * constants to check the accesses, and the kernel refuses to attach a
 * program whose accesses exceed a map's key or value size, so one loaded
 * program serves every map with the same two sizes.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

const volatile __u32 key_size = 1;
const volatile __u32 value_size = 1;

SEC("iter/bpf_map_elem")
int dump_entries(struct bpf_iter__bpf_map_elem *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	void *key = ctx->key;
	void *value = ctx->value;

	/* Called once more with no element at the end of the map. */
	if (!key || !value)
		return 0;
	bpf_seq_write(seq, key, key_size);
	bpf_seq_write(seq, value, value_size);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
