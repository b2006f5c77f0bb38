// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* TCP active connect latency: from the SYN being sent (state SYN_SENT) to
 * ESTABLISHED, in microseconds, from sock:inet_sock_set_state. Connects that
 * leave SYN_SENT for any other state (refused, timed out, aborted) are
 * recorded under result="failed", with the time it took to fail.
 *
 * Start times are keyed by socket pointer in an LRU map, so sockets freed
 * without a final transition cannot fill it. */
#include <vmlinux.h>
#include <bpf/bpf_core_read.h>
#include "exporter.bpf.h"

#define MAX_BUCKET 27 /* 2^27 us: about two minutes, past the SYN retry limit */

#define RESULT_ESTABLISHED 0
#define RESULT_FAILED 1

struct connect_latency_key {
	u32 result;
	u32 bucket;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, (MAX_BUCKET + 2) * 2);
	__type(key, struct connect_latency_key);
	__type(value, u64);
} tcp_connect_latency_seconds SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, EE_MAX_ENTRIES);
	__type(key, u64);
	__type(value, u64);
} syn_sent_at SEC(".maps");

SEC("tracepoint/sock/inet_sock_set_state")
int tcp_connect_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	struct connect_latency_key key = {};
	u64 sk = (u64)ctx->skaddr, *tsp, delta_us, ts;

	if (ctx->protocol != IPPROTO_TCP)
		return 0;

	if (ctx->newstate == TCP_SYN_SENT) {
		ts = bpf_ktime_get_ns();
		ee_map_put(&syn_sent_at, &sk, &ts, BPF_ANY);
		return 0;
	}
	if (ctx->oldstate != TCP_SYN_SENT)
		return 0;

	tsp = bpf_map_lookup_elem(&syn_sent_at, &sk);
	if (!tsp)
		return 0;
	delta_us = (bpf_ktime_get_ns() - *tsp) / 1000;
	bpf_map_delete_elem(&syn_sent_at, &sk);

	key.result = ctx->newstate == TCP_ESTABLISHED ? RESULT_ESTABLISHED : RESULT_FAILED;
	ee_hist_exp2(&tcp_connect_latency_seconds, key, delta_us, MAX_BUCKET);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
