// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Block request sizes, by disk and operation, as they are issued to the
 * driver. The block_rq_issue raw tracepoint passes the struct request, whose
 * __data_len is the request's size in bytes (0 for a flush). */
#include <vmlinux.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "exporter.bpf.h"
#include "exporter_tracing.bpf.h"

#define MAX_BUCKET 26 /* 2^26 bytes: 64 MiB, above any max_hw_sectors_kb */
EE_DISK_OP_HIST(bio_size_bytes, MAX_BUCKET);

SEC("raw_tp/block_rq_issue")
int BPF_PROG(bio_size_issue, struct request *rq)
{
	struct ee_disk_op_key key;

	__builtin_memset(&key, 0, sizeof(key));
	key.dev = ee_request_dev(rq);
	key.op = BPF_CORE_READ(rq, cmd_flags) & 0xff; /* REQ_OP_MASK */
	ee_hist_exp2(&bio_size_bytes, key, BPF_CORE_READ(rq, __data_len), MAX_BUCKET);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
