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
 * The per-syscall counts are per-CPU: every CPU hits the same hot keys
 * (read, futex), and a shared counter's cache line would bounce between
 * them on every call. Errors are rare enough to share one map (and a
 * per-CPU copy of its 10240 entries per CPU would cost far more memory). */
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

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, EE_MAX_ENTRIES_SMALL);
	__type(key, u64);
	__type(value, u64);
} syscalls_total SEC(".maps");

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
	ee_percpu_add(&syscalls_total, &nr, 1);
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
		ee_percpu_add(&syscalls_total, &nr, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
