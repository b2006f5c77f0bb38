// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Packets and bytes received on lo, by L3 protocol and IP protocol, counted
 * by an XDP program that passes everything. SEC("xdp/<ifname>") is the
 * reference exporter's convention: the exporter attaches the program to that
 * interface by name. Edit the section name to watch another interface.
 *
 * The maps are per-CPU, so the per-packet update touches no shared cache
 * line; the exporter sums the CPUs. Keys are bounded: 4 L3 classes x 256
 * protocol numbers. One VLAN tag is skipped; IPv6 extension headers are not
 * walked, so `protocol` is the first next-header value (0 = hop-by-hop,
 * 44 = fragment). Bytes are the frame length from the Ethernet header on. */
#include <vmlinux.h>
#include <bpf/bpf_endian.h>
#include "exporter.bpf.h"
#include "exporter_net.bpf.h"

struct xdp_key {
	u16 ethertype; /* ETH_P_IP, ETH_P_IPV6, ETH_P_ARP, or 0 for any other */
	u8 protocol;   /* IP protocol / IPv6 next header; 0 when not IP */
	u8 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, EE_MAX_ENTRIES_SMALL);
	__type(key, struct xdp_key);
	__type(value, u64);
} xdp_packets_total SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, EE_MAX_ENTRIES_SMALL);
	__type(key, struct xdp_key);
	__type(value, u64);
} xdp_bytes_total SEC(".maps");

SEC("xdp/lo")
int xdp_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct xdp_key key = {};
	struct ethhdr *eth = data;
	void *l3;
	u16 proto;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	proto = bpf_ntohs(eth->h_proto);
	l3 = eth + 1;
	if (proto == ETH_P_8021Q || proto == ETH_P_8021AD) {
		struct vlan_hdr *vlan = l3;

		if ((void *)(vlan + 1) > data_end)
			return XDP_PASS;
		proto = bpf_ntohs(vlan->h_vlan_encapsulated_proto);
		l3 = vlan + 1;
	}

	if (proto == ETH_P_IP) {
		struct iphdr *ip = l3;

		if ((void *)(ip + 1) > data_end)
			return XDP_PASS;
		key.protocol = ip->protocol;
	} else if (proto == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = l3;

		if ((void *)(ip6 + 1) > data_end)
			return XDP_PASS;
		key.protocol = ip6->nexthdr;
	} else if (proto != ETH_P_ARP) {
		proto = 0;
	}
	key.ethertype = proto;

	ee_map_add(&xdp_packets_total, &key, 1);
	ee_map_add(&xdp_bytes_total, &key, data_end - data);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
