// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Programs for the kernel-side overhead benchmark (benches/overhead.rs).
 *
 * Every variant exists twice: on the syscall tracepoint
 * syscalls/sys_enter_getpid (tracefs-backed, fires for getpid only) and on
 * the raw tracepoint sys_enter (fires for every syscall, so it filters on the
 * syscall number first). The harness loads and attaches one program at a
 * time and times a getpid() loop, so each program's cost per event is the
 * difference to the loop with nothing attached.
 *
 * The counters use the shipped helpers from exporter.bpf.h, so the numbers
 * are what a shipped program pays per event for the same work. */
#include <vmlinux.h>
#include <bpf/bpf_tracing.h>
#include "exporter.bpf.h"

#if defined(__TARGET_ARCH_x86)
#define NR_GETPID 39
#elif defined(__TARGET_ARCH_arm64)
#define NR_GETPID 172
#else
#error "unknown architecture: add its __NR_getpid"
#endif

#define HIST_MAX_BUCKET 26

/* Simple key: the calling process's id. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EE_MAX_ENTRIES_SMALL);
	__type(key, u32);
	__type(value, u64);
} ovh_simple SEC(".maps");

/* Complex key, like the reference exporter's benchmark: command name, pid
 * and a number that varies per call (spreading the lookups over up to 1024
 * entries per process), with explicit padding so the key has no holes. */
struct complex_key {
	char comm[TASK_COMM_LEN];
	u32 pid;
	u32 pad;
	u64 x;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EE_MAX_ENTRIES * 2);
	__type(key, struct complex_key);
	__type(value, u64);
} ovh_complex SEC(".maps");

/* exp2 histogram with one label: the shipped layout, bucket last. */
struct hist_key {
	u32 x;
	u32 pad;
	u64 bucket;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EE_MAX_ENTRIES);
	__type(key, struct hist_key);
	__type(value, u64);
} ovh_hist SEC(".maps");

static __always_inline u32 tgid(void)
{
	return bpf_get_current_pid_tgid() >> 32;
}

static __always_inline void count_simple(void)
{
	u32 key = tgid();

	ee_map_add(&ovh_simple, &key, 1);
}

static __always_inline void count_complex(void)
{
	struct complex_key key = {};

	bpf_get_current_comm(&key.comm, sizeof(key.comm));
	key.pid = tgid();
	key.x = bpf_ktime_get_ns() & 1023;
	ee_map_add(&ovh_complex, &key, 1);
}

static __always_inline void record_hist(void)
{
	struct hist_key key;

	__builtin_memset(&key, 0, sizeof(key));
	key.x = tgid();
	ee_hist_exp2(&ovh_hist, key, bpf_ktime_get_ns() & 0xffff, HIST_MAX_BUCKET);
}

/* --- tracepoint/syscalls/sys_enter_getpid ------------------------------ */

SEC("tracepoint/syscalls/sys_enter_getpid")
int tp_empty(struct trace_event_raw_sys_enter *ctx)
{
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int tp_simple(struct trace_event_raw_sys_enter *ctx)
{
	count_simple();
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int tp_complex(struct trace_event_raw_sys_enter *ctx)
{
	count_complex();
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int tp_hist(struct trace_event_raw_sys_enter *ctx)
{
	record_hist();
	return 0;
}

/* The contention pair: every CPU counts the same key (the syscall number),
 * once in a shared map with atomic adds (how `syscalls` counted before),
 * once in a per-CPU map (ee_percpu_add, how it counts now). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EE_MAX_ENTRIES_SMALL);
	__type(key, u64);
	__type(value, u64);
} ovh_shared SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, EE_MAX_ENTRIES_SMALL);
	__type(key, u64);
	__type(value, u64);
} ovh_percpu SEC(".maps");

/* --- raw_tp/sys_enter: every syscall, filtered to getpid ---------------- */

SEC("raw_tp/sys_enter")
int BPF_PROG(raw_empty, struct pt_regs *regs, long id)
{
	return 0;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(raw_simple, struct pt_regs *regs, long id)
{
	if (id != NR_GETPID)
		return 0;
	count_simple();
	return 0;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(raw_complex, struct pt_regs *regs, long id)
{
	if (id != NR_GETPID)
		return 0;
	count_complex();
	return 0;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(raw_hist, struct pt_regs *regs, long id)
{
	if (id != NR_GETPID)
		return 0;
	record_hist();
	return 0;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(raw_shared, struct pt_regs *regs, long id)
{
	u64 key = id;

	if (id != NR_GETPID)
		return 0;
	ee_map_add(&ovh_shared, &key, 1);
	return 0;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(raw_percpu, struct pt_regs *regs, long id)
{
	u64 key = id;

	if (id != NR_GETPID)
		return 0;
	ee_percpu_add(&ovh_percpu, &key, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

/* --- one latency pair on tracefs tracepoints ----------------------------
 * Wakeup to switch-in, paired by pid through an LRU hash (so that a start
 * whose end never comes ages out), into an exp2 histogram with no other
 * label: the hand-written job a latency probe on the same tracepoints,
 * matched on the same pid fields, is measured against. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__uint(max_entries, EE_MAX_ENTRIES);
	__type(key, u32);
	__type(value, u64);
} ovh_pair_start SEC(".maps");

struct pair_key {
	u64 bucket;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HIST_MAX_BUCKET + 2);
	__type(key, struct pair_key);
	__type(value, u64);
} ovh_pair_hist SEC(".maps");

SEC("tracepoint/sched/sched_wakeup")
int tp_pair_wakeup(struct trace_event_raw_sched_wakeup_template *ctx)
{
	u32 pid = ctx->pid;
	u64 ts = bpf_ktime_get_ns();

	ee_map_put(&ovh_pair_start, &pid, &ts, BPF_ANY);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int tp_pair_switch(struct trace_event_raw_sched_switch *ctx)
{
	struct pair_key key = {};
	u32 pid = ctx->next_pid;
	u64 *tsp;
	u64 delta_us;

	tsp = bpf_map_lookup_elem(&ovh_pair_start, &pid);
	if (!tsp)
		return 0;
	delta_us = (bpf_ktime_get_ns() - *tsp) / 1000;
	bpf_map_delete_elem(&ovh_pair_start, &pid);
	ee_hist_exp2(&ovh_pair_hist, key, delta_us, HIST_MAX_BUCKET);
	return 0;
}
