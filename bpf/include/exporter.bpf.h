/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * Helpers shared by every program shipped with ebpf-exporter.
 *
 * The histogram layout matches the reference exporter's convention, so that
 * a config written for it decodes our maps and vice versa:
 *   - a histogram key is a struct whose last member is `bucket`;
 *   - bucket i of an exp2 histogram counts values v with 2^(i-1) < v <= 2^i,
 *     i.e. bucket = ceil(log2(v)), clamped to max_bucket;
 *   - the raw value is also added under bucket max_bucket + 1, which the
 *     exporter reports as the histogram's _sum;
 *   - a map therefore needs (max_bucket + 2) entries per other label set.
 */
#ifndef EBPF_EXPORTER_BPF_H
#define EBPF_EXPORTER_BPF_H

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

/* Sizes maps so kernel memory stays bounded even when label cardinality
 * grows: hash maps refuse inserts when full rather than growing. */
#define EE_MAX_ENTRIES_SMALL 1024
#define EE_MAX_ENTRIES 10240

/* ceil(log2(v)) for v >= 1, 0 for v <= 1. Branch-light so the verifier sees a
 * bounded instruction count. */
static __always_inline __u32 ee_log2_ceil(__u64 v)
{
	__u32 r = 0, shift;

	if (v <= 1)
		return 0;
	v--;
	shift = (v > 0xFFFFFFFFULL) << 5; v >>= shift; r |= shift;
	shift = (v > 0xFFFF) << 4; v >>= shift; r |= shift;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r + 1;
}

/* The exp2 bucket of v: ceil(log2(v)), clamped to max_bucket. */
static __always_inline __u32 ee_bucket_exp2(__u64 v, __u32 max_bucket)
{
	__u32 b = ee_log2_ceil(v);

	return b > max_bucket ? max_bucket : b;
}

/* The linear bucket of v: ceil(v / step), clamped to max_bucket (step > 0). */
static __always_inline __u32 ee_bucket_linear(__u64 v, __u64 step, __u32 max_bucket)
{
	__u64 b = v / step;

	if (v % step)
		b++;
	return b > max_bucket ? max_bucket : (__u32)b;
}

/* Inserts the helpers below could not make, by the id of the map that
 * refused them (a full hash map, an out-of-range array index): the
 * exporter exports them as ebpf_exporter_map_update_failures_total{map},
 * so a full map is never silent. Per-CPU, so counting costs no atomics;
 * its 64 entries cover every map of one object. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} ee_update_failures SEC(".maps");

/* The id of a map, read through BTF (kernel 5.10 and later, for every
 * program type). */
static __always_inline __u32 ee_map_id(void *map)
{
	return ((struct bpf_map *)map)->id;
}

static __always_inline void ee_count_failure(void *map)
{
	__u32 id = ee_map_id(map);
	__u64 one = 1, *n;

	n = bpf_map_lookup_elem(&ee_update_failures, &id);
	if (n)
		*n += 1;
	else
		bpf_map_update_elem(&ee_update_failures, &id, &one, BPF_NOEXIST);
}

/* bpf_map_update_elem for a program's own state (start timestamps and the
 * like): a refused insert loses a sample just as a full metric map does, so
 * it is counted too. -EEXIST under BPF_NOEXIST is an answer, not a failure. */
static __always_inline long ee_map_put(void *map, const void *key, const void *value, __u64 flags)
{
	long err = bpf_map_update_elem(map, key, value, flags);

	if (err && err != -17 /* EEXIST */)
		ee_count_failure(map);
	return err;
}

/* Adds delta to the u64 stored under key, creating the entry on first use.
 * The update with BPF_NOEXIST loses no increments when two CPUs race to
 * create the same key: the loser's insert fails and it re-reads the winner's.
 * An insert that fails for another reason (the map is full) is counted. */
static __always_inline void ee_map_add(void *map, const void *key, __u64 delta)
{
	__u64 *slot, zero = 0;

	slot = bpf_map_lookup_elem(map, key);
	if (!slot) {
		bpf_map_update_elem(map, key, &zero, BPF_NOEXIST);
		slot = bpf_map_lookup_elem(map, key);
		if (!slot) {
			ee_count_failure(map);
			return;
		}
	}
	__sync_fetch_and_add(slot, delta);
}

/* ee_map_add for PERCPU_HASH and PERCPU_ARRAY maps: each CPU adds to its
 * own copy, with no atomic and no cache line shared between CPUs, and the
 * exporter sums the copies at scrape. For the hottest counters, where every
 * CPU hits the same few keys (syscalls): a shared atomic add would bounce
 * one cache line between all of them. A BPF-side insert sets this CPU's copy
 * and zeroes the others, so none is counted twice. */
static __always_inline void ee_percpu_add(void *map, const void *key, __u64 delta)
{
	__u64 *slot;

	slot = bpf_map_lookup_elem(map, key);
	if (!slot) {
		if (bpf_map_update_elem(map, key, &delta, BPF_NOEXIST) == 0)
			return;
		slot = bpf_map_lookup_elem(map, key);
		if (!slot) {
			ee_count_failure(map);
			return;
		}
	}
	*slot += delta;
}

/* Sets the u64 under key, for gauges; a refused update is counted. */
static __always_inline void ee_map_set(void *map, const void *key, __u64 value)
{
	if (bpf_map_update_elem(map, key, &value, BPF_ANY))
		ee_count_failure(map);
}

/* Counts one observation in bucket `bkt` of the histogram under `key` (a
 * struct lvalue with a `bucket` member, which this overwrites), and adds
 * `sum_part` under bucket max_bucket + 1. The bucketing macros below share it. */
#define ee_hist_record(map, key, bkt, sum_part, max_bucket)                   \
	do {                                                                   \
		(key).bucket = (bkt);                                          \
		ee_map_add(map, &(key), 1);                                    \
		(key).bucket = (max_bucket) + 1;                               \
		ee_map_add(map, &(key), (sum_part));                           \
	} while (0)

/* Records value in an exp2 histogram: key must be a struct lvalue with a
 * `bucket` member, which this overwrites. */
#define ee_hist_exp2(map, key, value, max_bucket)                             \
	do {                                                                   \
		__u64 __ee_v = (value);                                        \
		__u32 __ee_b = ee_bucket_exp2(__ee_v, (max_bucket));           \
		ee_hist_record(map, key, __ee_b, __ee_v, max_bucket);          \
	} while (0)

/* Records value in an exp2 histogram with no other labels, held in an ARRAY
 * (whose key must be a plain u32: the kernel rejects BTF for struct keys).
 * Give the array BPF_F_MMAPABLE: the exporter then reads it from a shared
 * mapping instead of by syscall. */
#define ee_hist_exp2_array(map, value, max_bucket)                            \
	do {                                                                   \
		__u64 __ee_v = (value);                                        \
		__u32 __ee_k = ee_bucket_exp2(__ee_v, (max_bucket));           \
		ee_map_add(map, &__ee_k, 1);                                   \
		__ee_k = (max_bucket) + 1;                                     \
		ee_map_add(map, &__ee_k, __ee_v);                              \
	} while (0)

/* Records value in a linear histogram whose bucket i counts values in
 * ((i-1)*step, i*step]; the config's bucket_multiplier should be step in the
 * target unit. The sum is kept in units of step too, so that the same
 * multiplier scales it. */
#define ee_hist_linear(map, key, value, step, max_bucket)                     \
	do {                                                                   \
		__u64 __ee_v = (value) / (step);                               \
		__u32 __ee_b = ee_bucket_linear((value), (step), (max_bucket)); \
		ee_hist_record(map, key, __ee_b, __ee_v, max_bucket);          \
	} while (0)

/* The kernel's new_encode_dev(): the u32 layout the majorminor decoder reads. */
static __always_inline __u32 ee_encode_dev(__u32 major, __u32 minor)
{
	return (minor & 0xff) | (major << 8) | ((minor & ~0xffU) << 12);
}

#endif /* EBPF_EXPORTER_BPF_H */
