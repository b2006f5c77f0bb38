//! The one table of BPF map types: each type's number and name as the
//! kernel has them, the release that brought it, and what the exporter
//! does with its maps (whether metrics read them, whether values come per
//! CPU, and which read methods they allow). Loading, binding, reading,
//! `describe` and error messages all ask here.

use crate::host::kernel::Version;

/// One map type.
#[derive(Debug, PartialEq, Eq)]
pub struct MapTypeInfo {
    /// `enum bpf_map_type`.
    pub id: u32,
    pub name: &'static str,
    pub since: Version,
    /// Metrics read its entries: keys to labels, values to numbers.
    pub metric: bool,
    /// Values come once per possible CPU.
    pub per_cpu: bool,
    /// The kernel has a map-element iterator for it (read method
    /// `iterator`).
    pub iterable: bool,
    /// Maps of it created with BPF_F_MMAPABLE can be mapped into memory
    /// (read method `mmap`).
    pub mmapable: bool,
}

#[allow(clippy::too_many_arguments)]
const fn t(
    id: u32,
    name: &'static str,
    since: (u32, u32),
    metric: bool,
    per_cpu: bool,
    iterable: bool,
    mmapable: bool,
) -> MapTypeInfo {
    MapTypeInfo {
        id,
        name,
        since: Version::new(since.0, since.1),
        metric,
        per_cpu,
        iterable,
        mmapable,
    }
}

/// Every type of `enum bpf_map_type`, by number, with the mainline release
/// that added it: id, name, since, metric, per_cpu, iterable, mmapable.
pub const MAP_TYPES: &[MapTypeInfo] = &[
    t(1, "HASH", (3, 19), true, false, true, false),
    t(2, "ARRAY", (3, 19), true, false, true, true),
    t(3, "PROG_ARRAY", (4, 2), false, false, false, false),
    t(4, "PERF_EVENT_ARRAY", (4, 3), false, false, false, false),
    t(5, "PERCPU_HASH", (4, 6), true, true, true, false),
    t(6, "PERCPU_ARRAY", (4, 6), true, true, true, false),
    t(7, "STACK_TRACE", (4, 6), false, false, false, false),
    t(8, "CGROUP_ARRAY", (4, 8), false, false, false, false),
    t(9, "LRU_HASH", (4, 10), true, false, true, false),
    t(10, "LRU_PERCPU_HASH", (4, 10), true, true, true, false),
    t(11, "LPM_TRIE", (4, 11), false, false, false, false),
    t(12, "ARRAY_OF_MAPS", (4, 12), false, false, false, false),
    t(13, "HASH_OF_MAPS", (4, 12), false, false, false, false),
    t(14, "DEVMAP", (4, 14), false, false, false, false),
    t(15, "SOCKMAP", (4, 14), false, false, false, false),
    t(16, "CPUMAP", (4, 15), false, false, false, false),
    t(17, "XSKMAP", (4, 18), false, false, false, false),
    t(18, "SOCKHASH", (4, 18), false, false, false, false),
    t(19, "CGROUP_STORAGE", (4, 19), false, false, false, false),
    t(
        20,
        "REUSEPORT_SOCKARRAY",
        (4, 19),
        false,
        false,
        false,
        false,
    ),
    t(
        21,
        "PERCPU_CGROUP_STORAGE",
        (4, 20),
        false,
        true,
        false,
        false,
    ),
    t(22, "QUEUE", (4, 20), false, false, false, false),
    t(23, "STACK", (4, 20), false, false, false, false),
    t(24, "SK_STORAGE", (5, 2), false, false, false, false),
    t(25, "DEVMAP_HASH", (5, 4), false, false, false, false),
    t(26, "STRUCT_OPS", (5, 6), false, false, false, false),
    t(27, "RINGBUF", (5, 8), false, false, false, false),
    t(28, "INODE_STORAGE", (5, 10), false, false, false, false),
    t(29, "TASK_STORAGE", (5, 11), false, false, false, false),
    t(30, "BLOOM_FILTER", (5, 16), false, false, false, false),
    t(31, "USER_RINGBUF", (6, 1), false, false, false, false),
    t(32, "CGRP_STORAGE", (6, 2), false, false, false, false),
    t(33, "ARENA", (6, 9), false, false, false, true),
];

/// The table's row for map type `id`.
pub fn info(id: u32) -> Option<&'static MapTypeInfo> {
    MAP_TYPES.iter().find(|t| t.id == id)
}

/// The row for a libbpf-rs map type (which calls the types it has no name
/// for `Unknown`: use the raw number where it matters).
pub fn of(map_type: libbpf_rs::MapType) -> Option<&'static MapTypeInfo> {
    info(u32::from(map_type))
}

/// Whether metrics read maps of this type.
pub fn is_metric(map_type: libbpf_rs::MapType) -> bool {
    of(map_type).is_some_and(|t| t.metric)
}

/// The types metrics read, by name, for messages.
pub fn metric_names() -> Vec<&'static str> {
    MAP_TYPES
        .iter()
        .filter(|t| t.metric)
        .map(|t| t.name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_numbered_as_the_kernel_numbers_them() {
        for (i, t) in MAP_TYPES.iter().enumerate() {
            assert_eq!(t.id as usize, i + 1, "{}", t.name);
        }
        assert_eq!(
            info(libbpf_sys::BPF_MAP_TYPE_TASK_STORAGE).map(|t| t.name),
            Some("TASK_STORAGE")
        );
        assert_eq!(
            info(libbpf_sys::BPF_MAP_TYPE_CGRP_STORAGE).map(|t| t.since),
            Some(Version::new(6, 2))
        );
        assert_eq!(
            info(libbpf_sys::BPF_MAP_TYPE_RINGBUF).map(|t| t.since),
            Some(Version::new(5, 8))
        );
    }

    #[test]
    fn libbpf_rs_agrees_on_what_is_per_cpu() {
        use libbpf_rs::MapType;
        for t in MAP_TYPES {
            let theirs = MapType::from(t.id);
            if theirs != MapType::Unknown {
                assert_eq!(theirs.is_percpu(), t.per_cpu, "{}", t.name);
            }
        }
        assert_eq!(
            metric_names(),
            [
                "HASH",
                "ARRAY",
                "PERCPU_HASH",
                "PERCPU_ARRAY",
                "LRU_HASH",
                "LRU_PERCPU_HASH"
            ]
        );
        assert!(is_metric(MapType::LruPercpuHash) && !is_metric(MapType::RingBuf));
    }
}
