// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* TCP state transitions, by old and new state. The sock:inet_sock_set_state
 * record (stable since 4.16) carries the protocol, so other protocols that
 * share the tracepoint (SCTP, MPTCP's own socket) are filtered out cheaply.
 * At most 12 x 12 keys. */
#include <vmlinux.h>
#include <bpf/bpf_core_read.h>
#include "exporter.bpf.h"

struct state_key {
	u8 old_state;
	u8 new_state;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct state_key);
	__type(value, u64);
} tcp_state_transitions_total SEC(".maps");

SEC("tracepoint/sock/inet_sock_set_state")
int tcp_set_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	struct state_key key;

	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	key.old_state = ctx->oldstate;
	key.new_state = ctx->newstate;
	ee_map_add(&tcp_state_transitions_total, &key, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
