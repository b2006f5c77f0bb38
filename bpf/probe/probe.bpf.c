// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * The generic probe behind `probe:` metrics: a config names a hook, the
 * fields that form the key, filters and what to aggregate, and the exporter
 * writes that, resolved to offsets and sizes, into the `spec` of one of the
 * slots below before load. The spec is read-only data, which the verifier
 * reads as constants: every branch a spec does not take is pruned, so a
 * probe runs the code a hand-written program for its job would, plus one
 * helper call per field it reads from the event's record.
 *
 * Each slot is a program and its maps: a per-CPU one for counts, sums and
 * histograms, a shared one for gauges. Programs of unused slots are not
 * loaded, and their maps (and the map a slot does not use) keep one entry. The key is the fields' bytes laid
 * end to end (at most EE_PROBE_LABEL_MAX), with a histogram's u32 bucket
 * after them; the exporter sets each map's key size to the key's length.
 */
#include <vmlinux.h>
#include "exporter.bpf.h"
#include <bpf/usdt.bpf.h>

/* Labels take up to 64 bytes, and a histogram's bucket follows them. */
#define EE_PROBE_LABEL_MAX 64
#define EE_PROBE_KEY_MAX (EE_PROBE_LABEL_MAX + 8)
#define EE_PROBE_FIELDS 8
#define EE_PROBE_FILTERS 4
/* Fields that match a start to its end (a tid, a request pointer) */
#define EE_PROBE_MATCH 2

/* Where a field's bytes come from. */
enum ee_probe_source {
	EE_PROBE_NONE = 0,
	/* `size` bytes at `offset` in the tracepoint's record */
	EE_PROBE_RECORD = 1,
	/* a __data_loc string of the record: its u32 locator at `offset` */
	EE_PROBE_RECORD_STR = 2,
	EE_PROBE_PID = 3,
	EE_PROBE_TID = 4,
	EE_PROBE_COMM = 5,
	EE_PROBE_CGROUP = 6,
	EE_PROBE_CPU = 7,
	EE_PROBE_UID = 8,
	EE_PROBE_CONST = 9,
	/* argument `offset / 8` of a raw_tp, tp_btf, fentry or fexit program
	 * (fexit's return value is the argument after the last)
	 * (their context is the arguments, each widened to a u64) */
	EE_PROBE_ARG = 10,
	/* a member reached from a pointer argument: the pointer at each hop's
	 * offset is followed, and the last hop's offset holds the value */
	EE_PROBE_ARG_PATH = 11,
	/* a char array member reached as ARG_PATH: `size` bytes of text */
	EE_PROBE_ARG_TEXT = 12,
	/* USDT argument number `offset`, as libbpf's USDT support reads it */
	EE_PROBE_USDT_ARG = 13,
	/* text at a user-space pointer: a uprobe's argument at `offset` in
	 * its registers, or (USDT_STR) USDT argument number `offset` */
	EE_PROBE_USER_STR = 14,
	EE_PROBE_USDT_STR = 15,
	/* ARG, loaded from the context directly rather than through a
	 * helper: for a raw_tp's arguments, a kprobe's or uprobe's
	 * registers, and a BTF-typed hook's integer arguments (its pointer
	 * arguments would load as typed pointers) */
	EE_PROBE_ARG_CTX = 16,
};

#define EE_PROBE_HOPS 4

/* What a probe adds up. */
enum ee_probe_value {
	EE_PROBE_COUNT = 0,
	EE_PROBE_SUM = 1,
	EE_PROBE_LAST = 2,
	EE_PROBE_EXP2 = 3,
	EE_PROBE_LINEAR = 4,
	/* nanoseconds from the slot's start hook, bucketed exp2 */
	EE_PROBE_LATENCY_EXP2 = 5,
	EE_PROBE_LATENCY_LINEAR = 6,
};

enum ee_probe_op {
	EE_PROBE_EQ = 1,
	EE_PROBE_NE = 2,
	EE_PROBE_LT = 3,
	EE_PROBE_GT = 4,
	EE_PROBE_LE = 5,
	EE_PROBE_GE = 6,
	/* any of the operand's bits set */
	EE_PROBE_MASK = 7,
	/* text (a command name, a string field) equal to `text`, or not:
	 * the first `text_len` bytes, its NUL included, are compared */
	EE_PROBE_TEXT_EQ = 8,
	EE_PROBE_TEXT_NE = 9,
};

#define EE_PROBE_TEXT_MAX 16

struct ee_probe_field {
	enum ee_probe_source source;
	__u32 offset;
	/* bytes: 1, 2, 4 or 8 for integers; up to the key's room for text */
	__u32 size;
	__u32 key_offset;
	__u32 is_signed;
	__u32 nhops;
	__u64 constant;
	__u32 hops[EE_PROBE_HOPS];
};

struct ee_probe_filter {
	struct ee_probe_field field;
	enum ee_probe_op op;
	__u32 text_len;
	__u64 operand;
	char text[EE_PROBE_TEXT_MAX];
};

struct ee_probe_spec {
	__u32 nfields;
	__u32 nfilters;
	enum ee_probe_value value_kind;
	__u32 bucket_max;
	__u64 bucket_step;
	__u32 bucket_offset;
	/* counts and sums go to the slot's per-CPU map: no atomic, and no
	 * cache line shared between CPUs (gauges keep the shared one) */
	__u32 percpu;
	struct ee_probe_field value;
	struct ee_probe_field fields[EE_PROBE_FIELDS];
	struct ee_probe_filter filters[EE_PROBE_FILTERS];
	/* Latency: the start hook's match fields and the end hook's, each
	 * at key_offset 8 * i of the in-flight key; the labels (fields) and
	 * filters are the start hook's; nanoseconds are divided by
	 * latency_div before bucketing. */
	__u32 nmatch;
	/* events count only from cgroups in `cgroups`, which the exporter
	 * keeps filled from the config's regexps (its cgroup_id_map) */
	__u32 cgroup_filter;
	__u64 latency_div;
	struct ee_probe_field start_match[EE_PROBE_MATCH];
	struct ee_probe_field end_match[EE_PROBE_MATCH];
	/* Both sides match on a task (tid, or a task_struct pointer argument
	 * of a BTF-typed hook): the start is kept in the task's own storage,
	 * not the in-flight hash, and nothing needs deleting at the end. */
	__u32 task_pairing;
	__u32 pad3;
};

/* The cgroups a `cgroup_filter` spec counts in, kept by the exporter. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u64);
	__type(value, __u64);
} cgroups SEC(".maps");

/* What a start hook leaves for its end: when, and the key's labels. */
struct ee_probe_inflight {
	__u64 ts;
	__u64 key[EE_PROBE_KEY_MAX / 8];
};

/* An integer field, sign-extended where it is signed. */
/* The address an ARG_PATH field's value is at: the argument, then each
 * hop's pointer but the last followed (read safely: a NULL or stale
 * pointer gives zeroes, never a fault). */
static __always_inline void *ee_probe_path(void *ctx, const volatile struct ee_probe_field *f)
{
	__u64 p = 0;
	int i;

	bpf_probe_read_kernel(&p, 8, ctx + f->offset);
#pragma unroll
	for (i = 0; i < EE_PROBE_HOPS - 1; i++) {
		if (i + 1 < f->nhops) {
			__u64 next = 0;

			bpf_probe_read_kernel(&next, 8, (void *)(p + f->hops[i]));
			p = next;
		}
	}
	if (f->nhops >= 1 && f->nhops <= EE_PROBE_HOPS)
		return (void *)(p + f->hops[(f->nhops - 1) & (EE_PROBE_HOPS - 1)]);
	return (void *)p;
}

/* The context's u64 at a constant offset, as one load: the verifier
 * takes context loads only at an offset fixed in the instruction, so each
 * offset has its own; all but the spec's are pruned. Covers every
 * argument a hook has (12) and x86's pt_regs up to `di`. */
#define EE_CTX_LOAD(off)                                                       \
	case off:                                                              \
		asm volatile("%0 = *(u64 *)(%1 + " #off ")" : "=r"(v) : "r"(ctx)); \
		break;

static __always_inline __u64 ee_probe_ctx_u64(void *ctx, __u32 offset)
{
	__u64 v = 0;

	switch (offset) {
	EE_CTX_LOAD(0) EE_CTX_LOAD(8) EE_CTX_LOAD(16) EE_CTX_LOAD(24)
	EE_CTX_LOAD(32) EE_CTX_LOAD(40) EE_CTX_LOAD(48) EE_CTX_LOAD(56)
	EE_CTX_LOAD(64) EE_CTX_LOAD(72) EE_CTX_LOAD(80) EE_CTX_LOAD(88)
	EE_CTX_LOAD(96) EE_CTX_LOAD(104) EE_CTX_LOAD(112)
	default:
		break;
	}
	return v;
}

/* A register-wide value cut to the field's width and sign. */
static __always_inline __u64 ee_probe_narrow(const volatile struct ee_probe_field *f, __u64 v)
{
	if (f->size == 1)
		return f->is_signed ? (__u64)(__s64)(__s8)v : (__u8)v;
	if (f->size == 2)
		return f->is_signed ? (__u64)(__s64)(__s16)v : (__u16)v;
	if (f->size == 4)
		return f->is_signed ? (__u64)(__s64)(__s32)v : (__u32)v;
	return v;
}

static __always_inline __u64 ee_probe_int(void *ctx, const volatile struct ee_probe_field *f)
{
	__u64 pid_tgid;
	void *at;

	switch (f->source) {
	case EE_PROBE_RECORD:
		at = ctx + f->offset;
		break;
	case EE_PROBE_ARG: {
		__u64 v = 0;

		/* the widened argument of a BTF-typed hook, or a register of
		 * a kprobe's or a uprobe's pt_regs */
		bpf_probe_read_kernel(&v, 8, ctx + f->offset);
		return ee_probe_narrow(f, v);
	}
	case EE_PROBE_ARG_CTX:
		return ee_probe_narrow(f, ee_probe_ctx_u64(ctx, f->offset));
	case EE_PROBE_USDT_ARG: {
		long v = 0;

		bpf_usdt_arg(ctx, f->offset, &v);
		return ee_probe_narrow(f, v);
	}
	case EE_PROBE_ARG_PATH:
		at = ee_probe_path(ctx, f);
		break;
	case EE_PROBE_PID:
		pid_tgid = bpf_get_current_pid_tgid();
		return pid_tgid >> 32;
	case EE_PROBE_TID:
		pid_tgid = bpf_get_current_pid_tgid();
		return (__u32)pid_tgid;
	case EE_PROBE_CGROUP:
		return bpf_get_current_cgroup_id();
	case EE_PROBE_CPU:
		return bpf_get_smp_processor_id();
	case EE_PROBE_UID:
		return (__u32)bpf_get_current_uid_gid();
	case EE_PROBE_CONST:
		return f->constant;
	default:
		return 0;
	}
	if (f->size == 1) {
		__u8 v = 0;

		bpf_probe_read_kernel(&v, 1, at);
		return f->is_signed ? (__u64)(__s64)(__s8)v : v;
	}
	if (f->size == 2) {
		__u16 v = 0;

		bpf_probe_read_kernel(&v, 2, at);
		return f->is_signed ? (__u64)(__s64)(__s16)v : v;
	}
	if (f->size == 4) {
		__u32 v = 0;

		bpf_probe_read_kernel(&v, 4, at);
		return f->is_signed ? (__u64)(__s64)(__s32)v : v;
	}
	{
		__u64 v = 0;

		bpf_probe_read_kernel(&v, 8, at);
		return v;
	}
}

/* Writes a key field at its place in the key. */
static __always_inline void ee_probe_put(void *ctx, __u8 *key, const volatile struct ee_probe_field *f)
{
	__u32 at = f->key_offset;
	__u32 size = f->size;
	__u64 v;

	if (at >= EE_PROBE_KEY_MAX || size > EE_PROBE_KEY_MAX - at)
		return;
	switch (f->source) {
	case EE_PROBE_COMM:
		bpf_get_current_comm(key + at, size);
		return;
	case EE_PROBE_RECORD_STR: {
		__u32 loc = 0;

		bpf_probe_read_kernel(&loc, 4, ctx + f->offset);
		bpf_probe_read_kernel_str(key + at, size, ctx + (loc & 0xffff));
		return;
	}
	case EE_PROBE_RECORD:
		if (size != 1 && size != 2 && size != 4 && size != 8) {
			bpf_probe_read_kernel(key + at, size, ctx + f->offset);
			return;
		}
		break;
	case EE_PROBE_ARG_TEXT:
		bpf_probe_read_kernel(key + at, size, ee_probe_path(ctx, f));
		return;
	case EE_PROBE_USER_STR: {
		__u64 p = 0;

		bpf_probe_read_kernel(&p, 8, ctx + f->offset);
		bpf_probe_read_user_str(key + at, size, (void *)p);
		return;
	}
	case EE_PROBE_USDT_STR: {
		long p = 0;

		bpf_usdt_arg(ctx, f->offset, &p);
		bpf_probe_read_user_str(key + at, size, (void *)p);
		return;
	}
	default:
		break;
	}
	v = ee_probe_int(ctx, f);
	if (size == 1)
		*(__u8 *)(key + at) = v;
	else if (size == 2)
		*(__u16 *)(key + at) = v;
	else if (size == 4)
		*(__u32 *)(key + at) = v;
	else
		*(__u64 *)(key + at) = v;
}

static __always_inline int ee_probe_passes(void *ctx, const volatile struct ee_probe_filter *f)
{
	__u64 v, o = f->operand;
	int s = f->field.is_signed;

	if (f->op == EE_PROBE_TEXT_EQ || f->op == EE_PROBE_TEXT_NE) {
		__u64 buf[EE_PROBE_KEY_MAX / 8] = {};
		__u8 *text = (__u8 *)buf;
		int i, equal = 1;

		ee_probe_put(ctx, text, &f->field);
#pragma unroll
		for (i = 0; i < EE_PROBE_TEXT_MAX; i++) {
			if (i < f->text_len && text[i] != (__u8)f->text[i])
				equal = 0;
		}
		return f->op == EE_PROBE_TEXT_EQ ? equal : !equal;
	}
	v = ee_probe_int(ctx, &f->field);
	switch (f->op) {
	case EE_PROBE_EQ:
		return v == o;
	case EE_PROBE_NE:
		return v != o;
	case EE_PROBE_LT:
		return s ? (__s64)v < (__s64)o : v < o;
	case EE_PROBE_GT:
		return s ? (__s64)v > (__s64)o : v > o;
	case EE_PROBE_LE:
		return s ? (__s64)v <= (__s64)o : v <= o;
	case EE_PROBE_GE:
		return s ? (__s64)v >= (__s64)o : v >= o;
	case EE_PROBE_MASK:
		return (v & o) != 0;
	default:
		return 1;
	}
}

static __always_inline void ee_probe_add(const volatile struct ee_probe_spec *spec, void *values,
					 const void *key, __u64 delta)
{
	if (spec->percpu)
		ee_percpu_add(values, key, delta);
	else
		ee_map_add(values, key, delta);
}

/* The in-flight key: the match fields, each in its own u64. */
static __always_inline void ee_probe_match(void *ctx, __u64 *match,
					   const volatile struct ee_probe_field *fields, __u32 n)
{
	int i;

#pragma unroll
	for (i = 0; i < EE_PROBE_MATCH; i++) {
		if (i < n)
			match[i] = ee_probe_int(ctx, &fields[i]);
	}
}

/* A latency slot's start hook: files the time and the labels, keyed by
 * the match fields. The map is an LRU: starts whose end never comes (a
 * thread killed in the middle) age out instead of filling it. */
/* The task a task-paired side names. */
static __always_inline struct task_struct *ee_probe_task(void *ctx,
							 const volatile struct ee_probe_field *f)
{
	if (f->source == EE_PROBE_TID)
		return bpf_get_current_task_btf();
	return (struct task_struct *)ee_probe_ctx_u64(ctx, f->offset);
}

static __always_inline int ee_probe_in_cgroups(const volatile struct ee_probe_spec *spec)
{
	__u64 id;

	if (!spec->cgroup_filter)
		return 1;
	id = bpf_get_current_cgroup_id();
	return bpf_map_lookup_elem(&cgroups, &id) != NULL;
}

/*
 * The two bodies below are subprograms, not inlined: the object holds one
 * copy, where inlining put one in each of its 112 programs (8 MB of object
 * in the binary). The verifier checks a static subprogram at each call
 * with the caller's registers, so `spec` is still a pointer into frozen
 * read-only data there, its members constants, and the unused paths are
 * still pruned.
 */
static __noinline int ee_probe_start(void *ctx, const volatile struct ee_probe_spec *spec,
				     void *pairing)
{
	struct ee_probe_inflight v = {};
	__u64 match[EE_PROBE_MATCH] = {};
	int i;

	if (!ee_probe_in_cgroups(spec))
		return 0;
#pragma unroll
	for (i = 0; i < EE_PROBE_FILTERS; i++) {
		if (i < spec->nfilters && !ee_probe_passes(ctx, &spec->filters[i]))
			return 0;
	}
#pragma unroll
	for (i = 0; i < EE_PROBE_FIELDS; i++) {
		if (i < spec->nfields)
			ee_probe_put(ctx, (__u8 *)v.key, &spec->fields[i]);
	}
	if (spec->task_pairing) {
		struct ee_probe_inflight *stored;

		stored = bpf_task_storage_get(pairing, ee_probe_task(ctx, &spec->start_match[0]), 0,
					      BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (!stored)
			return 0;
		v.ts = bpf_ktime_get_ns();
		*stored = v;
		return 0;
	}
	ee_probe_match(ctx, match, spec->start_match, spec->nmatch);
	v.ts = bpf_ktime_get_ns();
	ee_map_put(pairing, match, &v, BPF_ANY);
	return 0;
}

/* `values` is the slot's per-CPU map or its shared one, as the spec says;
 * `pairing` its in-flight hash or its task storage (a BPF call takes at
 * most five arguments). */
static __noinline int ee_probe_run(void *ctx, const volatile struct ee_probe_spec *spec,
				   void *values, void *pairing)
{
	__u64 keybuf[EE_PROBE_KEY_MAX / 8] = {};
	__u8 *key = (__u8 *)keybuf;
	__u64 value = 1;
	__u32 bucket, at;
	int i;

	if (spec->task_pairing) {
		struct ee_probe_inflight *v;

		v = bpf_task_storage_get(pairing, ee_probe_task(ctx, &spec->end_match[0]), 0, 0);
		if (!v || !v->ts)
			return 0;
		value = bpf_ktime_get_ns() - v->ts;
		v->ts = 0;
		if (spec->latency_div > 1)
			value /= spec->latency_div;
#pragma unroll
		for (i = 0; i < EE_PROBE_KEY_MAX / 8; i++)
			keybuf[i] = v->key[i];
	} else if (spec->value_kind == EE_PROBE_LATENCY_EXP2 ||
		   spec->value_kind == EE_PROBE_LATENCY_LINEAR) {
		__u64 match[EE_PROBE_MATCH] = {};
		struct ee_probe_inflight *v;

		ee_probe_match(ctx, match, spec->end_match, spec->nmatch);
		v = bpf_map_lookup_elem(pairing, match);
		if (!v)
			return 0;
		value = bpf_ktime_get_ns() - v->ts;
		if (spec->latency_div > 1)
			value /= spec->latency_div;
#pragma unroll
		for (i = 0; i < EE_PROBE_KEY_MAX / 8; i++)
			keybuf[i] = v->key[i];
		bpf_map_delete_elem(pairing, match);
	} else {
		if (!ee_probe_in_cgroups(spec))
			return 0;
#pragma unroll
		for (i = 0; i < EE_PROBE_FILTERS; i++) {
			if (i < spec->nfilters && !ee_probe_passes(ctx, &spec->filters[i]))
				return 0;
		}
#pragma unroll
		for (i = 0; i < EE_PROBE_FIELDS; i++) {
			if (i < spec->nfields)
				ee_probe_put(ctx, key, &spec->fields[i]);
		}
		if (spec->value_kind != EE_PROBE_COUNT)
			value = ee_probe_int(ctx, &spec->value);
	}
	switch (spec->value_kind) {
	case EE_PROBE_SUM:
		ee_probe_add(spec, values, key, value);
		return 0;
	case EE_PROBE_LAST:
		ee_map_set(values, key, value);
		return 0;
	case EE_PROBE_EXP2:
	case EE_PROBE_LINEAR:
	case EE_PROBE_LATENCY_EXP2:
	case EE_PROBE_LATENCY_LINEAR:
		at = spec->bucket_offset;
		if (at > EE_PROBE_KEY_MAX - 4)
			return 0;
		if (spec->value_kind == EE_PROBE_EXP2 || spec->value_kind == EE_PROBE_LATENCY_EXP2)
			bucket = ee_bucket_exp2(value, spec->bucket_max);
		else
			bucket = ee_bucket_linear(value, spec->bucket_step ? spec->bucket_step : 1,
						  spec->bucket_max);
		*(__u32 *)(key + at) = bucket;
		ee_probe_add(spec, values, key, 1);
		/* the sum, under bucket max + 1, as the shared helpers keep it */
		*(__u32 *)(key + at) = spec->bucket_max + 1;
		ee_probe_add(spec, values, key,
			     (spec->value_kind == EE_PROBE_LINEAR ||
			      spec->value_kind == EE_PROBE_LATENCY_LINEAR) && spec->bucket_step ?
				     value / spec->bucket_step :
				     value);
		return 0;
	default:
		ee_probe_add(spec, values, key, 1);
		return 0;
	}
}

/* A slot's two programs for one kind of hook: the one that counts (or
 * ends a latency), and a latency's start. */
#define EE_PROBE_PROGS(sec, run, start, n)                                     \
	SEC(sec)                                                               \
	int run(void *ctx)                                                     \
	{                                                                      \
		/* constants: the verifier follows one side of each */     \
		return ee_probe_run(ctx, &spec##n,                             \
				    spec##n.percpu ? (void *)&percpu##n        \
						   : (void *)&counts##n,       \
				    spec##n.task_pairing ? (void *)&tasks##n   \
							 : (void *)&inflight##n); \
	}                                                                      \
	SEC(sec)                                                               \
	int start(void *ctx)                                                   \
	{                                                                      \
		return ee_probe_start(ctx, &spec##n,                           \
				      spec##n.task_pairing ? (void *)&tasks##n \
							   : (void *)&inflight##n); \
	}

#define EE_PROBE_SLOT(n)                                                       \
	const volatile struct ee_probe_spec spec##n = {};                      \
	struct {                                                               \
		__uint(type, BPF_MAP_TYPE_HASH);                               \
		__uint(max_entries, 1);                                        \
		__uint(key_size, EE_PROBE_KEY_MAX);                            \
		__uint(value_size, sizeof(__u64));                             \
	} counts##n SEC(".maps");                                              \
	struct {                                                               \
		__uint(type, BPF_MAP_TYPE_PERCPU_HASH);                        \
		__uint(max_entries, 1);                                        \
		__uint(key_size, EE_PROBE_KEY_MAX);                            \
		__uint(value_size, sizeof(__u64));                             \
	} percpu##n SEC(".maps");                                              \
	struct {                                                               \
		__uint(type, BPF_MAP_TYPE_LRU_HASH);                           \
		__uint(map_flags, BPF_F_NO_COMMON_LRU);                        \
		__uint(max_entries, 1);                                        \
		__uint(key_size, EE_PROBE_MATCH * sizeof(__u64));              \
		__uint(value_size, sizeof(struct ee_probe_inflight));          \
	} inflight##n SEC(".maps");                                            \
	struct {                                                               \
		__uint(type, BPF_MAP_TYPE_TASK_STORAGE);                       \
		__uint(map_flags, BPF_F_NO_PREALLOC);                          \
		__type(key, int);                                              \
		__type(value, struct ee_probe_inflight);                       \
	} tasks##n SEC(".maps");                                               \
	EE_PROBE_PROGS("tracepoint", tracepoint##n, start##n, n)                \
	EE_PROBE_PROGS("raw_tp", raw_tp##n, raw_start##n, n)                   \
	EE_PROBE_PROGS("tp_btf", tp_btf##n, btf_start##n, n)                   \
	EE_PROBE_PROGS("fentry", fentry##n, fentry_start##n, n)                \
	EE_PROBE_PROGS("fexit", fexit##n, fexit_start##n, n)                   \
	EE_PROBE_PROGS("kprobe", kprobe##n, kprobe_start##n, n)                 \
	EE_PROBE_PROGS("usdt", usdt##n, usdt_start##n, n)

EE_PROBE_SLOT(0)
EE_PROBE_SLOT(1)
EE_PROBE_SLOT(2)
EE_PROBE_SLOT(3)
EE_PROBE_SLOT(4)
EE_PROBE_SLOT(5)
EE_PROBE_SLOT(6)
EE_PROBE_SLOT(7)

char LICENSE[] SEC("license") = "GPL";
