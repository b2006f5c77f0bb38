/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * Small CO-RE helpers shared by the tracing programs (bio_*, oom_kills,
 * page_cache, fsync, ...). Kept apart from exporter.bpf.h, which holds the
 * map and histogram conventions every program uses.
 */
#ifndef EBPF_EXPORTER_TRACING_BPF_H
#define EBPF_EXPORTER_TRACING_BPF_H

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "exporter.bpf.h"

/* Kernel-internal dev_t (include/linux/kdev_t.h): 12 bits of major above 20
 * bits of minor. Not the user-space or new_encode_dev() layout. */
#define EE_KDEV_MINORBITS 20
#define EE_KDEV_MINORMASK ((1U << EE_KDEV_MINORBITS) - 1)

/* A kernel dev_t (e.g. super_block->s_dev) in the new_encode_dev() layout
 * that the majorminor decoder reads. */
static __always_inline __u32 ee_encode_kdev(__u32 kdev)
{
	return ee_encode_dev(kdev >> EE_KDEV_MINORBITS, kdev & EE_KDEV_MINORMASK);
}

/* The disk of a block request: request->rq_disk before 5.17, then
 * request->q->disk. */
struct request___ee_old {
	struct gendisk *rq_disk;
} __attribute__((preserve_access_index));

static __always_inline struct gendisk *ee_request_disk(struct request *rq)
{
	if (bpf_core_field_exists(((struct request___ee_old *)0)->rq_disk))
		return BPF_CORE_READ((struct request___ee_old *)rq, rq_disk);
	return BPF_CORE_READ(rq, q, disk);
}

/* The encoded device of a block request's disk (the whole disk, as
 * biolatency reports it), 0 if it has none. */
static __always_inline __u32 ee_request_dev(struct request *rq)
{
	struct gendisk *disk = ee_request_disk(rq);

	if (!disk)
		return 0;
	return ee_encode_dev(BPF_CORE_READ(disk, major), BPF_CORE_READ(disk, first_minor));
}

/* A task's scheduler state: task_struct.__state since 5.14 (an unsigned
 * int), task_struct.state before (a long). TASK_RUNNING is 0 in both. */
struct task_struct___ee_pre514 {
	long state;
} __attribute__((preserve_access_index));

static __always_inline long ee_task_state(struct task_struct *task)
{
	if (bpf_core_field_exists(task->__state))
		return BPF_CORE_READ(task, __state);
	return BPF_CORE_READ((struct task_struct___ee_pre514 *)task, state);
}

/* The id of a task's cgroup on the default (v2) hierarchy: the same number
 * bpf_get_current_cgroup_id() returns for current, and the inode number of
 * the cgroup's directory, which the cgroup decoder resolves to a path. */
static __always_inline __u64 ee_task_cgroup_id(struct task_struct *task)
{
	return BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
}

/* Number of base pages in a folio. A large folio has PG_head set in its first
 * flags word and its order in the low byte of _flags_1 (folio_large_order()).
 * The flags word is read at offset 0 of the folio, which is where page->flags
 * has always been, whether it is typed unsigned long (before 6.17) or
 * memdesc_flags_t. Kernels without _flags_1 count every folio as one page. */
static __always_inline __u64 ee_folio_nr_pages(struct folio *folio)
{
	unsigned long flags = 0, flags1 = 0;
	__u32 head_bit;

	if (!bpf_core_field_exists(folio->_flags_1) ||
	    !bpf_core_enum_value_exists(enum pageflags, PG_head))
		return 1;
	head_bit = bpf_core_enum_value(enum pageflags, PG_head);
	if (bpf_probe_read_kernel(&flags, sizeof(flags), folio))
		return 1;
	if (!(flags & (1UL << (head_bit & 63))))
		return 1;
	flags1 = BPF_CORE_READ(folio, _flags_1);
	return 1ULL << (flags1 & 0x3f);
}

/* Key of the per-disk, per-operation histograms (bio_size, biolatency):
 * device (ee_encode_dev), REQ_OP, then the bucket, which the configs'
 * labels describe as size 4, size 1 with padding 3, and size 8. */
struct ee_disk_op_key {
	u32 dev;
	u8 op;
	u64 bucket;
};

#define EE_MAX_DISKS 64
#define EE_REQ_OPS 8 /* distinct REQ_OP values seen in practice */

/* A histogram map keyed by ee_disk_op_key, sized for every bucket (and the
 * sum) of every disk and operation. */
#define EE_DISK_OP_HIST(name, max_bucket)                                      \
	struct {                                                               \
		__uint(type, BPF_MAP_TYPE_HASH);                               \
		__uint(max_entries, ((max_bucket) + 2) * EE_MAX_DISKS * EE_REQ_OPS); \
		__type(key, struct ee_disk_op_key);                            \
		__type(value, u64);                                            \
	} name SEC(".maps")

#endif /* EBPF_EXPORTER_TRACING_BPF_H */
