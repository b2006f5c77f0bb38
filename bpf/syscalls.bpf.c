// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Counts system calls by number, and failed ones by number and errno.
 *
 * One program, at sys_exit, does both: a syscall costs one program run, not
 * two. The number comes from the saved registers (orig_ax), which a
 * BTF-typed program reads with a plain load, and the return value is the
 * tracepoint's own argument. Counting calls at their exit counts what
 * counting them at entry did, with two differences, both mended here:
 *   - a new task's first return from clone(), fork() or vfork() (ret 0)
 *     is a second exit of the one call, which its parent's return counts;
 *   - exit() and exit_group() never return, so they are counted when the
 *     task that made them exits (sched_process_exit, with orig_ax still
 *     naming the call).
 *
 * The per-syscall counts are a per-CPU array indexed by the number: the
 * verifier inlines an array lookup, where a hash costs a hash and a bucket
 * walk per call (about 10 ns here, a third of the program), and every CPU
 * adds to its own copy of the hot indices (read, futex) instead of
 * bouncing one cache line between them. The config leaves the indices
 * that never counted out of the exposition (omit_zero), so the series are
 * those of the calls made, as a hash of them would give. Numbers past the
 * array (x86-64 has about 460; x32 calls set bit 30) are not counted.
 * Errors are rare enough to share one hash map (and a per-CPU copy of its
 * 10240 entries per CPU would cost far more memory). */
#include <vmlinux.h>
#include <bpf/bpf_tracing.h>
#include "exporter.bpf.h"

/* x86-64's numbers for the calls above (only x86-64 has a vmlinux.h). */
#define NR_CLONE 56
#define NR_FORK 57
#define NR_VFORK 58
#define NR_EXIT 60
#define NR_EXIT_GROUP 231
#define NR_CLONE3 435

#define MAX_SYSCALLS 512

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_SYSCALLS);
	__type(key, u32);
	__type(value, u64);
} syscalls_total SEC(".maps");

/* Adds one to this CPU's count of call `nr`. */
static __always_inline void count_call(u64 nr)
{
	u32 index = nr;
	u64 *count;

	if (nr >= MAX_SYSCALLS)
		return;
	count = bpf_map_lookup_elem(&syscalls_total, &index);
	if (count)
		*count += 1;
}

struct error_key {
	u32 syscall;
	u32 errno;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EE_MAX_ENTRIES);
	__type(key, struct error_key);
	__type(value, u64);
} syscall_errors_total SEC(".maps");

SEC("tp_btf/sys_exit")
int BPF_PROG(syscalls_exit, struct pt_regs *regs, long ret)
{
	struct error_key err;
	u64 nr = regs->orig_ax;

	/* not a syscall (a kernel thread's first return to user space) */
	if ((long)nr < 0)
		return 0;
	if (ret == 0 &&
	    (nr == NR_CLONE || nr == NR_CLONE3 || nr == NR_FORK || nr == NR_VFORK))
		return 0;
	count_call(nr);
	if (ret >= 0 || ret < -4095)
		return 0;
	err.syscall = nr;
	err.errno = -ret;
	ee_map_add(&syscall_errors_total, &err, 1);
	return 0;
}

/* The registers a task saved when it entered the kernel. */
static __always_inline struct pt_regs *saved_regs(struct task_struct *task)
{
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_task_pt_regs))
		return (struct pt_regs *)bpf_task_pt_regs(task);
	/* Before 5.15, x86-64's task_pt_regs() by hand: they sit at the top of
	 * the task's 16 KiB kernel stack. */
	return (struct pt_regs *)((u64)BPF_CORE_READ(task, stack) + 16384) - 1;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(syscalls_exit_task, struct task_struct *task)
{
	struct pt_regs *regs = saved_regs(task);
	u64 nr;

	if (!regs)
		return 0;
	nr = BPF_CORE_READ(regs, orig_ax);
	if (nr == NR_EXIT || nr == NR_EXIT_GROUP)
		count_call(nr);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
