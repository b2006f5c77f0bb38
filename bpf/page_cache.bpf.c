// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Page cache activity, in base pages: pages added (reads, readahead, first
 * writes), removed (truncation, eviction by reclaim), and dirtied by writes;
 * plus how often a task had to wait for a folio still under writeback (a
 * write or truncate stalled behind I/O). The typed tracepoints pass the
 * folio, whose size is read with CO-RE, since page cache folios are large on
 * filesystems that support it (a 4 MiB write can dirty ten folios).
 * These fire per folio on hot paths, so they count into per-CPU arrays.
 * Kernels before folios (5.10) pass a struct page to the add and delete
 * tracepoints, which ee_folio_nr_pages() counts as one page, and name the
 * other two writeback_dirty_page and wait_on_page_writeback: the programs
 * for those are the config's programs.one_of alternatives. */
#include <vmlinux.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "exporter.bpf.h"
#include "exporter_tracing.bpf.h"

#define PERCPU_COUNTER(name)                                                   \
	struct {                                                               \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);                       \
		__uint(max_entries, 1);                                        \
		__type(key, u32);                                              \
		__type(value, u64);                                            \
	} name SEC(".maps")

PERCPU_COUNTER(page_cache_added_pages_total);
PERCPU_COUNTER(page_cache_removed_pages_total);
PERCPU_COUNTER(page_cache_dirtied_pages_total);
PERCPU_COUNTER(page_cache_writeback_waits_total);

static __always_inline void count(void *map, u64 n)
{
	u32 zero = 0;

	ee_map_add(map, &zero, n);
}

SEC("tp_btf/mm_filemap_add_to_page_cache")
int BPF_PROG(page_cache_add, struct folio *folio)
{
	count(&page_cache_added_pages_total, ee_folio_nr_pages(folio));
	return 0;
}

SEC("tp_btf/mm_filemap_delete_from_page_cache")
int BPF_PROG(page_cache_delete, struct folio *folio)
{
	count(&page_cache_removed_pages_total, ee_folio_nr_pages(folio));
	return 0;
}

SEC("tp_btf/writeback_dirty_folio")
int BPF_PROG(page_cache_dirty, struct folio *folio, struct address_space *mapping)
{
	count(&page_cache_dirtied_pages_total, ee_folio_nr_pages(folio));
	return 0;
}

SEC("tp_btf/writeback_dirty_page")
int BPF_PROG(page_cache_dirty_page, struct page *page, struct address_space *mapping)
{
	count(&page_cache_dirtied_pages_total, 1);
	return 0;
}

SEC("tp_btf/folio_wait_writeback")
int BPF_PROG(page_cache_wait_writeback, struct folio *folio, struct address_space *mapping)
{
	count(&page_cache_writeback_waits_total, 1);
	return 0;
}

SEC("tp_btf/wait_on_page_writeback")
int BPF_PROG(page_cache_wait_page, struct page *page, struct address_space *mapping)
{
	count(&page_cache_writeback_waits_total, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
