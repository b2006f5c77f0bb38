// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Counts system calls by number, and failed ones by number and errno.
 * raw_syscalls tracepoints fire for every syscall on every arch, and their
 * raw form costs less than the tracefs-backed one. The per-syscall counts
 * are per-CPU: every CPU hits the same hot keys (read, futex), and a shared
 * counter's cache line would bounce between them on every call. Errors are
 * rare enough to share one map (and a per-CPU copy of its 10240 entries per
 * CPU would cost far more memory). */
#include <vmlinux.h>
#include <bpf/bpf_tracing.h>
#include "exporter.bpf.h"

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

SEC("raw_tp/sys_enter")
int BPF_PROG(syscalls_enter, struct pt_regs *regs, long id)
{
	u64 key = id;

	ee_percpu_add(&syscalls_total, &key, 1);
	return 0;
}

/* The syscall number is not an argument of sys_exit, so it is read from the
 * saved registers, whose layout differs per architecture. */
static __always_inline long syscall_nr(struct pt_regs *regs)
{
#if defined(__TARGET_ARCH_x86)
	return BPF_CORE_READ(regs, orig_ax);
#elif defined(__TARGET_ARCH_arm64)
	return BPF_CORE_READ((struct user_pt_regs *)regs, regs[8]);
#else
	return -1;
#endif
}

SEC("raw_tp/sys_exit")
int BPF_PROG(syscalls_exit, struct pt_regs *regs, long ret)
{
	struct error_key key;
	long nr;

	if (ret >= 0 || ret < -4095)
		return 0;
	nr = syscall_nr(regs);
	if (nr < 0)
		return 0;
	key.syscall = nr;
	key.errno = -ret;
	ee_map_add(&syscall_errors_total, &key, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
