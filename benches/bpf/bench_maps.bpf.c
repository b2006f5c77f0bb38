// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Large maps for the scrape benchmark, and a BPF_PROG_TEST_RUN program that
 * fills them inside the kernel. Map names stay under the kernel's 15-byte
 * limit so the bench can find them by id. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include "exporter.bpf.h"

#define HASH_KEYS 100000
#define HIST_SETS 1000
#define HIST_BUCKETS 32
#define LRU_LIVE 50000

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HASH_KEYS);
	__type(key, u32);
	__type(value, u64);
} bh_total SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, HASH_KEYS);
	__type(key, u32);
	__type(value, u64);
} bp_total SEC(".maps");

struct hist_key {
	u32 set;
	u32 bucket;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HIST_SETS * (HIST_BUCKETS + 1));
	__type(key, struct hist_key);
	__type(value, u64);
} bhist_seconds SEC(".maps");

/* 1M capacity, partly filled: cost should follow live entries. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1000000);
	__type(key, u64);
	__type(value, u64);
} blru_total SEC(".maps");

static long fill_one(u32 i, void *ctx)
{
	u64 v = i + 1, k64 = i;
	struct hist_key hk;

	bpf_map_update_elem(&bh_total, &i, &v, BPF_ANY);
	bpf_map_update_elem(&bp_total, &i, &v, BPF_ANY);
	if (i < HIST_SETS * (HIST_BUCKETS + 1)) {
		hk.set = i / (HIST_BUCKETS + 1);
		hk.bucket = i % (HIST_BUCKETS + 1);
		bpf_map_update_elem(&bhist_seconds, &hk, &v, BPF_ANY);
	}
	if (i < LRU_LIVE)
		bpf_map_update_elem(&blru_total, &k64, &v, BPF_ANY);
	return 0;
}

SEC("syscall")
int fill_maps(void *ctx)
{
	bpf_loop(HASH_KEYS, fill_one, NULL, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
