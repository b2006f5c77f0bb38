// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Block I/O latency from issue to completion, by disk and operation.
 * The block_rq_* raw tracepoints pass the struct request, so the start time
 * is keyed by request pointer; ee_request_dev() handles the move of the disk
 * from request->rq_disk to request->q->disk in 5.17. */
#include <vmlinux.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "exporter.bpf.h"
#include "exporter_tracing.bpf.h"

#define MAX_BUCKET 27 /* 2^27 us: about two minutes */
EE_DISK_OP_HIST(bio_latency_seconds, MAX_BUCKET);

/* LRU, so requests that never complete (a device removed mid-flight) age out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, EE_MAX_ENTRIES);
	__type(key, struct request *);
	__type(value, u64);
} start SEC(".maps");

SEC("raw_tp/block_rq_issue")
int BPF_PROG(bio_issue, struct request *rq)
{
	u64 ts = bpf_ktime_get_ns();

	ee_map_put(&start, &rq, &ts, BPF_ANY);
	return 0;
}

SEC("raw_tp/block_rq_complete")
int BPF_PROG(bio_complete, struct request *rq, int error, unsigned int nr_bytes)
{
	struct ee_disk_op_key key = {};
	u64 *tsp, delta_us;

	tsp = bpf_map_lookup_elem(&start, &rq);
	if (!tsp)
		return 0;
	delta_us = (bpf_ktime_get_ns() - *tsp) / 1000;
	bpf_map_delete_elem(&start, &rq);

	key.dev = ee_request_dev(rq);
	key.op = BPF_CORE_READ(rq, cmd_flags) & 0xff; /* REQ_OP_MASK: read, write, flush, discard, ... */
	ee_hist_exp2(&bio_latency_seconds, key, delta_us, MAX_BUCKET);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
