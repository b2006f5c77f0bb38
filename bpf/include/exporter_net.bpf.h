/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * Networking helpers shared by the programs shipped with ebpf-exporter.
 *
 * Addresses in metric keys are always 16 bytes, in network byte order, with
 * IPv4 stored IPv4-mapped (::ffff:a.b.c.d). The `inet_ip` decoder prints such
 * an address as plain `a.b.c.d` (it follows Go's net.IP.String(), as the
 * reference does), so one metric carries both families and an operator sees
 * `10.0.0.1` for IPv4, not `::ffff:10.0.0.1`.
 *
 * Ports in keys are u16 in host byte order: the swap is done here with
 * bpf_ntohs so that configs need only the plain `uint` decoder.
 */
#ifndef EBPF_EXPORTER_NET_BPF_H
#define EBPF_EXPORTER_NET_BPF_H

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

/* #defines that vmlinux.h cannot carry (it holds only types and enums). */
#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif
#ifndef ETH_P_IP
#define ETH_P_IP 0x0800
#endif
#ifndef ETH_P_IPV6
#define ETH_P_IPV6 0x86DD
#endif
#ifndef ETH_P_ARP
#define ETH_P_ARP 0x0806
#endif
#ifndef ETH_P_8021Q
#define ETH_P_8021Q 0x8100
#endif
#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

/* Writes the IPv4 address addr (network order) as ::ffff:addr into out. */
static __always_inline void ee_ipv4_mapped(__u8 out[16], __be32 addr)
{
	__builtin_memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	__builtin_memcpy(&out[12], &addr, 4);
}

/* The endpoints of a socket as seen from this host. */
struct ee_sk_endpoints {
	__u8 saddr[16]; /* local address */
	__u8 daddr[16]; /* remote address */
	__u16 sport;    /* local port, host order */
	__u16 dport;    /* remote port, host order */
	__u16 family;   /* AF_INET or AF_INET6 */
};

/* Fills e from a struct sock (any pointer, read with CO-RE probe reads).
 * Returns 0, or -1 for a family other than IPv4/IPv6. */
static __always_inline int ee_sk_endpoints(const struct sock *sk, struct ee_sk_endpoints *e)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	if (family == AF_INET) {
		ee_ipv4_mapped(e->saddr, BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr));
		ee_ipv4_mapped(e->daddr, BPF_CORE_READ(sk, __sk_common.skc_daddr));
	} else if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&e->saddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&e->daddr, sk, __sk_common.skc_v6_daddr);
	} else {
		return -1;
	}
	e->family = family;
	e->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	e->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	return 0;
}

#endif /* EBPF_EXPORTER_NET_BPF_H */
