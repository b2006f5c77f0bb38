// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* tcp_retransmits for kernels with kprobes: same map, key and config as
 * bpf/tcp_retransmits.bpf.c, hooked with a kprobe on tcp_retransmit_skb()
 * instead of the tcp_retransmit_skb tracepoint. It counts calls of that
 * function, which tail loss probes bypass (they call __tcp_retransmit_skb),
 * so it can read slightly lower than the tracepoint version.
 *
 * Not built into the exporter: kernels without CONFIG_KPROBES (like the
 * project's test machine) load it but fail to attach it with ENOENT. Build
 * (LIBBPF_INCLUDE: a directory holding libbpf 1.x's bpf/ headers):
 *   clang -g -O2 -target bpf -D__TARGET_ARCH_x86 -Ibpf/include \
 *     -Ibpf/include/x86_64 -I$LIBBPF_INCLUDE -c examples/tcp_retransmits_kprobe.bpf.c \
 *     -o examples/tcp_retransmits_kprobe.bpf.o
 */
#include <vmlinux.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "exporter.bpf.h"
#include "exporter_net.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, EE_MAX_ENTRIES);
	__type(key, struct ee_sk_endpoints);
	__type(value, u64);
} tcp_retransmits_total SEC(".maps");

SEC("kprobe/tcp_retransmit_skb")
int BPF_KPROBE(tcp_retransmit_kprobe, struct sock *sk)
{
	struct ee_sk_endpoints key = {};

	if (ee_sk_endpoints(sk, &key))
		return 0;
	ee_map_add(&tcp_retransmits_total, &key, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
