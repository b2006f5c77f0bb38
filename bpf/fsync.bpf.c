// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* ext4 fsync/fdatasync latency, by the filesystem's device: from entering
 * ext4_sync_file() to leaving it, matched per thread. The device is the
 * superblock's kernel dev_t (20 minor bits), re-encoded for majorminor;
 * it names the partition or whole disk the filesystem lives on. */
#include <vmlinux.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "exporter.bpf.h"
#include "exporter_tracing.bpf.h"

#define MAX_BUCKET 26 /* 2^26 us: about a minute */
#define MAX_FILESYSTEMS 64

struct fsync_key {
	u32 dev;
	u64 bucket;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, (MAX_BUCKET + 2) * MAX_FILESYSTEMS);
	__type(key, struct fsync_key);
	__type(value, u64);
} ext4_fsync_latency_seconds SEC(".maps");

/* Start time per thread. LRU, so a missed exit cannot fill it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, EE_MAX_ENTRIES);
	__type(key, u32);
	__type(value, u64);
} fsync_start SEC(".maps");

SEC("tp_btf/ext4_sync_file_enter")
int BPF_PROG(ext4_fsync_enter, struct file *file, int datasync)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	u64 ts = bpf_ktime_get_ns();

	ee_map_put(&fsync_start, &tid, &ts, BPF_ANY);
	return 0;
}

SEC("tp_btf/ext4_sync_file_exit")
int BPF_PROG(ext4_fsync_exit, struct inode *inode, int ret)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct fsync_key key;
	u64 *tsp, delta_us;

	tsp = bpf_map_lookup_elem(&fsync_start, &tid);
	if (!tsp)
		return 0;
	delta_us = (bpf_ktime_get_ns() - *tsp) / 1000;
	bpf_map_delete_elem(&fsync_start, &tid);

	__builtin_memset(&key, 0, sizeof(key));
	key.dev = ee_encode_kdev(BPF_CORE_READ(inode, i_sb, s_dev));
	ee_hist_exp2(&ext4_fsync_latency_seconds, key, delta_us, MAX_BUCKET);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
