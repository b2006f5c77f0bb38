// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* TCP resets sent and received, by direction and the socket's TCP state.
 * Ports and addresses are left out on purpose: a port scan or a crowd of
 * clients would turn them into unbounded series. The key space here is
 * 2 directions x 13 states.
 *
 * tp_btf takes only the arguments every kernel since 5.5 passes (the
 * sk_rst_reason argument of 6.10+ is not read), so one object fits all. */
#include <vmlinux.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "exporter.bpf.h"

#define DIRECTION_SENT 0
#define DIRECTION_RECEIVED 1

struct reset_key {
	u8 direction;
	u8 state; /* TCP_ESTABLISHED..TCP_NEW_SYN_RECV, 0 when no socket */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct reset_key);
	__type(value, u64);
} tcp_resets_total SEC(".maps");

static __always_inline void count_reset(const struct sock *sk, u8 direction)
{
	struct reset_key key = { .direction = direction };

	/* skc_state lives in sock_common, valid for full, request and
	 * timewait sockets alike. */
	if (sk)
		key.state = BPF_CORE_READ(sk, __sk_common.skc_state);
	ee_map_add(&tcp_resets_total, &key, 1);
}

/* sk is NULL when the RST answers a segment no socket owns (a closed port). */
SEC("tp_btf/tcp_send_reset")
int BPF_PROG(tcp_send_reset, const struct sock *sk)
{
	count_reset(sk, DIRECTION_SENT);
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(tcp_receive_reset, struct sock *sk)
{
	count_reset(sk, DIRECTION_RECEIVED);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
