// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* TCP retransmitted segments by family, local/remote address and port.
 * tp_btf hands over the struct sock itself, so the addresses are read with
 * CO-RE from any kernel since 5.5 rather than from a tracefs record whose
 * layout has changed between versions (6.x added `err`).
 *
 * A key per connection can be many keys, so the map is an LRU: when it is
 * full the least recently retransmitting connection is evicted (its series
 * disappears) instead of new connections going uncounted. */
#include <vmlinux.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "exporter.bpf.h"
#include "exporter_net.bpf.h"

/* Key: struct ee_sk_endpoints, 38 bytes with no padding:
 * saddr[16] daddr[16] sport dport family. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, EE_MAX_ENTRIES);
	__type(key, struct ee_sk_endpoints);
	__type(value, u64);
} tcp_retransmits_total SEC(".maps");

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tcp_retransmit, const struct sock *sk)
{
	struct ee_sk_endpoints key = {};

	if (ee_sk_endpoints(sk, &key))
		return 0;
	ee_map_add(&tcp_retransmits_total, &key, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
