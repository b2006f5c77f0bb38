// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Memory allocation stalls: how long a thread spends in direct reclaim
 * (the global one when a zone runs low, or a memory cgroup's one when it hits
 * its limit), and how long memory compaction runs take, by migration mode and
 * by whether an allocating thread ran it directly or kcompactd / a proactive
 * or manual request did. Begin/end pairs are matched per thread. */
#include <vmlinux.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "exporter.bpf.h"

#define MAX_BUCKET 26 /* 2^26 us: about a minute */
#define RECLAIM_DIRECT 0
#define RECLAIM_MEMCG 1
#define RECLAIM_KINDS 2
#define COMPACT_MODES 3 /* enum migrate_mode: async, sync_light, sync */

struct reclaim_key {
	u32 kind;
	u64 bucket;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, (MAX_BUCKET + 2) * RECLAIM_KINDS);
	__type(key, struct reclaim_key);
	__type(value, u64);
} reclaim_latency_seconds SEC(".maps");

struct compaction_key {
	u32 mode;
	u32 direct;
	u64 bucket;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, (MAX_BUCKET + 2) * COMPACT_MODES * 2);
	__type(key, struct compaction_key);
	__type(value, u64);
} compaction_latency_seconds SEC(".maps");

/* Start times per thread. LRU, so a missed end event cannot fill them. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, EE_MAX_ENTRIES);
	__type(key, u32);
	__type(value, u64);
} reclaim_start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, EE_MAX_ENTRIES);
	__type(key, u32);
	__type(value, u64);
} compaction_start SEC(".maps");

static __always_inline void mark_start(void *map)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	u64 ts = bpf_ktime_get_ns();

	ee_map_put(map, &tid, &ts, BPF_ANY);
}

/* Microseconds since this thread's start mark, or -1 if there is none. */
static __always_inline s64 take_start_us(void *map)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	u64 *tsp, delta;

	tsp = bpf_map_lookup_elem(map, &tid);
	if (!tsp)
		return -1;
	delta = (bpf_ktime_get_ns() - *tsp) / 1000;
	bpf_map_delete_elem(map, &tid);
	return delta;
}

static __always_inline void reclaim_end(u32 kind)
{
	struct reclaim_key key;
	s64 us = take_start_us(&reclaim_start);

	if (us < 0)
		return;
	__builtin_memset(&key, 0, sizeof(key));
	key.kind = kind;
	ee_hist_exp2(&reclaim_latency_seconds, key, us, MAX_BUCKET);
}

/* The begin and end hooks of one kind of reclaim: programs
 * <name>_begin and <name>_end on mm_vmscan_<name>_begin/_end. */
#define RECLAIM_HOOKS(name, kind)                                              \
	SEC("raw_tp/mm_vmscan_" #name "_begin")                                \
	int BPF_PROG(name##_begin, int order, gfp_t gfp_flags)                 \
	{                                                                      \
		mark_start(&reclaim_start);                                    \
		return 0;                                                      \
	}                                                                      \
	SEC("raw_tp/mm_vmscan_" #name "_end")                                  \
	int BPF_PROG(name##_end, unsigned long nr_reclaimed)                   \
	{                                                                      \
		reclaim_end(kind);                                             \
		return 0;                                                      \
	}

RECLAIM_HOOKS(direct_reclaim, RECLAIM_DIRECT)
RECLAIM_HOOKS(memcg_reclaim, RECLAIM_MEMCG)

SEC("raw_tp/mm_compaction_begin")
int BPF_PROG(compaction_begin, struct compact_control *cc)
{
	mark_start(&compaction_start);
	return 0;
}

static __always_inline void compaction_end(u32 mode, bool direct)
{
	struct compaction_key key;
	s64 us = take_start_us(&compaction_start);

	if (us < 0)
		return;
	__builtin_memset(&key, 0, sizeof(key));
	key.mode = mode;
	key.direct = direct ? 1 : 0;
	ee_hist_exp2(&compaction_latency_seconds, key, us, MAX_BUCKET);
}

/* Where the tracepoint passes the compact_control. Its fields are loaded
 * directly through the typed argument, which the verifier allows only where
 * it is that pointer: older kernels (5.10) pass pfns and a sync flag
 * instead, and there the fexit program below runs (programs.one_of). */
SEC("tp_btf/mm_compaction_end")
int BPF_PROG(compaction_end_tp, struct compact_control *cc)
{
	compaction_end(cc->mode, cc->direct_compaction);
	return 0;
}

/* compact_zone() runs one compaction of a zone, the span the tracepoints
 * bracket, and takes the compact_control on every kernel. */
SEC("fexit/compact_zone")
int BPF_PROG(compaction_end_fexit, struct compact_control *cc)
{
	compaction_end(BPF_CORE_READ(cc, mode), BPF_CORE_READ(cc, direct_compaction));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
