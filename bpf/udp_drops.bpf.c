// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* UDP datagrams dropped because they could not be queued on the receiving
 * socket (full receive buffer: ENOMEM; memory limits: ENOBUFS), by local
 * port, family and error. udp:udp_fail_queue_rcv_skb fires for IPv4 and IPv6
 * sockets; tp_btf reads only the (rc, sk) arguments every kernel has had,
 * not the skb that 6.10 added.
 *
 * Drops happen on servers' bound ports, a small set; the LRU bound keeps a
 * crowd of client ephemeral ports from growing the map without limit. */
#include <vmlinux.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "exporter.bpf.h"

struct udp_drop_key {
	u16 local_port; /* host order */
	u16 family;
	u32 error;      /* errno, positive */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, EE_MAX_ENTRIES_SMALL);
	__type(key, struct udp_drop_key);
	__type(value, u64);
} udp_drops_total SEC(".maps");

SEC("tp_btf/udp_fail_queue_rcv_skb")
int BPF_PROG(udp_fail_queue_rcv_skb, int rc, struct sock *sk)
{
	struct udp_drop_key key = {};

	key.error = rc < 0 ? -rc : rc;
	if (sk) {
		key.local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
		key.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	}
	ee_map_add(&udp_drops_total, &key, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
