/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * The errno values libbpf's usdt.bpf.h returns, so that including it does
 * not reach for the build machine's kernel headers (<linux/errno.h> pulls
 * in <asm/errno.h>, which a BPF target has no directory for). The values
 * are the kernel's, the same on every architecture.
 */
#ifndef EBPF_EXPORTER_LINUX_ERRNO_H
#define EBPF_EXPORTER_LINUX_ERRNO_H

#define ENOENT 2
#define ESRCH 3
#define EINVAL 22

#endif
