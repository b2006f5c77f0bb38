// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Time a network device's driver takes to accept a packet: from
 * net:net_dev_start_xmit to net:net_dev_xmit, i.e. the ndo_start_xmit call,
 * in nanoseconds, by interface index (the ifname decoder names it; ifindexes
 * are per network namespace, so e.g. every namespace's lo counts as lo).
 *
 * Both tracepoints fire for every transmitted packet, so this is a per-packet
 * cost. tp_btf avoids building tracefs records. A driver may transmit on a
 * nested device (tunnels), so the start time is keyed by skb pointer rather
 * than kept in one per-CPU slot; the two events of one packet run on the same
 * CPU, so the LRU keeps per-CPU lists (BPF_F_NO_COMMON_LRU) and packets whose
 * xmit event never comes cannot fill it. */
#include <vmlinux.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "exporter.bpf.h"

#define MAX_BUCKET 30 /* 2^30 ns: about a second */
#define MAX_IFACES 256

struct xmit_latency_key {
	u32 ifindex;
	u32 bucket;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, (MAX_BUCKET + 2) * MAX_IFACES);
	__type(key, struct xmit_latency_key);
	__type(value, u64);
} netdev_xmit_latency_seconds SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__uint(max_entries, EE_MAX_ENTRIES);
	__type(key, u64);
	__type(value, u64);
} xmit_start SEC(".maps");

SEC("tp_btf/net_dev_start_xmit")
int BPF_PROG(netdev_start_xmit, const struct sk_buff *skb)
{
	u64 key = (u64)skb, ts = bpf_ktime_get_ns();

	ee_map_put(&xmit_start, &key, &ts, BPF_ANY);
	return 0;
}

SEC("tp_btf/net_dev_xmit")
int BPF_PROG(netdev_xmit, struct sk_buff *skb, int rc, struct net_device *dev)
{
	struct xmit_latency_key key = {};
	u64 skbp = (u64)skb, *tsp, delta_ns;

	tsp = bpf_map_lookup_elem(&xmit_start, &skbp);
	if (!tsp)
		return 0;
	delta_ns = bpf_ktime_get_ns() - *tsp;
	bpf_map_delete_elem(&xmit_start, &skbp);

	key.ifindex = BPF_CORE_READ(dev, ifindex);
	ee_hist_exp2(&netdev_xmit_latency_seconds, key, delta_ns, MAX_BUCKET);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
