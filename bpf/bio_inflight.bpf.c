// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Block requests in flight at the driver, per disk, as a gauge: +1 when a
 * request is issued, -1 when it completes or is requeued.
 *
 * Every +1 is paired with an entry in `issued`, and only the program that
 * deletes that entry applies the -1, so the gauge cannot drift below the
 * truth or underflow:
 *   - a completion or requeue without a recorded issue (tracing started
 *     mid-flight, the map was full at issue) changes nothing;
 *   - if the map is full at issue, the request is simply not counted.
 * `issued` is a plain HASH, not an LRU: evicting an in-flight entry would
 * leak its +1 forever. A request whose completion is never seen (a device
 * torn down mid-flight) stays counted only until its struct request, which
 * the block layer preallocates per tag and reuses, is issued and completed
 * again: the re-issue finds the entry and the next completion clears it. */
#include <vmlinux.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "exporter.bpf.h"
#include "exporter_tracing.bpf.h"

#define MAX_DISKS 256
/* Preallocated requests across all disks: hw queues x queue depth, plus the
 * I/O scheduler's tags. 16k covers e.g. 4 NVMe drives with 4 x 1023 tags. */
#define MAX_REQUESTS 16384

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_DISKS);
	__type(key, u32);
	__type(value, u64);
} bio_inflight_requests SEC(".maps");

/* Requests counted in the gauge, with the disk they were counted under. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_REQUESTS);
	__type(key, struct request *);
	__type(value, u32);
} issued SEC(".maps");

static __always_inline void inflight_dec(u32 dev)
{
	u64 *slot = bpf_map_lookup_elem(&bio_inflight_requests, &dev);

	if (slot && *slot > 0)
		__sync_fetch_and_add(slot, -1);
}

SEC("raw_tp/block_rq_issue")
int BPF_PROG(bio_inflight_issue, struct request *rq)
{
	u32 dev = ee_request_dev(rq);
	u32 *seen;

	seen = bpf_map_lookup_elem(&issued, &rq);
	if (seen) {
		/* Issued again without a completion we saw: still one request. */
		if (*seen != dev) {
			inflight_dec(*seen);
			*seen = dev;
			ee_map_add(&bio_inflight_requests, &dev, 1);
		}
		return 0;
	}
	if (ee_map_put(&issued, &rq, &dev, BPF_NOEXIST))
		return 0; /* full, or another CPU just recorded it */
	ee_map_add(&bio_inflight_requests, &dev, 1);
	return 0;
}

static __always_inline void request_done(struct request *rq)
{
	u32 *seen, dev;

	seen = bpf_map_lookup_elem(&issued, &rq);
	if (!seen)
		return;
	dev = *seen;
	/* Only the caller whose delete succeeds decrements. */
	if (bpf_map_delete_elem(&issued, &rq))
		return;
	inflight_dec(dev);
}

SEC("raw_tp/block_rq_complete")
int BPF_PROG(bio_inflight_complete, struct request *rq, int error, unsigned int nr_bytes)
{
	request_done(rq);
	return 0;
}

SEC("raw_tp/block_rq_requeue")
int BPF_PROG(bio_inflight_requeue, struct request *rq)
{
	request_done(rq);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
