// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Successful execs by command name. sched_process_exec fires after the new
 * image is set up, so current's comm is already the new program's name
 * (the file name, cut to 15 characters). The config's regexps fold version
 * suffixes (python3.11 -> python) and keep every other name as it is. */
#include <vmlinux.h>
#include <bpf/bpf_tracing.h>
#include "exporter.bpf.h"

#define COMM_LEN 16
/* Distinct command names. LRU, so a stream of one-off names (generated
 * scripts, random temp binaries) evicts old rare names instead of stopping
 * the count of new ones. */
#define MAX_COMMANDS 4096

struct comm_key {
	char comm[COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_COMMANDS);
	__type(key, struct comm_key);
	__type(value, u64);
} execs_total SEC(".maps");

SEC("tp_btf/sched_process_exec")
int BPF_PROG(exec_done, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct comm_key key;

	__builtin_memset(&key, 0, sizeof(key));
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	ee_map_add(&execs_total, &key, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
