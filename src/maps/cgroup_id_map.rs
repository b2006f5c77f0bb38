//! `cgroup_id_map:` keeps a BPF map filled with the ids of the cgroups
//! whose paths match the config's regexps, so programs can filter events by
//! cgroup. The cgroups come from the process's one cgroup monitor: the map
//! is filled before the config's metrics are served, then brought up to
//! date each time the monitor sees the tree change.

use crate::worker::{OnDrop, Worker};
use std::collections::HashSet;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::time::Duration;

use libbpf_rs::{MapCore, MapFlags, MapHandle, MapType};
use regex::Regex;

use crate::config::model::{CgroupIdMap, CgroupIdMapType};
use crate::host::cgroups::{CgroupMonitor, CgroupPaths};

/// How long the sync thread waits for a change before checking whether
/// its config was stopped.
const WAKE: Duration = Duration::from_millis(500);

/// One config's cgroup id map.
pub struct CgroupIdMapSync {
    pub config: String,
    map_name: String,
    handle: MapHandle,
    kind: CgroupIdMapType,
    regexps: Vec<Regex>,
    /// Ids currently in the map (for `hash`), so removals are exact.
    present: HashSet<u64>,
}

/// The kernel's map type number: libbpf-rs 0.27 has no name for
/// CGRP_STORAGE (32) and reports it as `Unknown`.
fn raw_map_type(handle: &MapHandle) -> Option<u32> {
    // SAFETY: bpf_map_info is plain old data; zero is a valid start.
    let mut info: libbpf_sys::bpf_map_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libbpf_sys::bpf_map_info>() as u32;
    // SAFETY: info and len are valid for writes for the call; the kernel
    // fills at most `len` bytes.
    let rc = unsafe {
        libbpf_sys::bpf_map_get_info_by_fd(
            handle.as_fd().as_raw_fd(),
            &mut info as *mut _,
            &mut len,
        )
    };
    (rc == 0).then_some(info.type_)
}

impl CgroupIdMapSync {
    /// Checks the map against the declared type; `Err` says what is wrong.
    pub fn new(config: &str, spec: &CgroupIdMap, handle: MapHandle) -> Result<Self, String> {
        let regexps = spec
            .regexps
            .iter()
            .map(|r| Regex::new(r).map_err(|e| format!("bad regexp {r:?}: {e}")))
            .collect::<Result<_, _>>()?;
        let map_type = handle.map_type();
        match spec.map_type {
            CgroupIdMapType::Hash => {
                if !matches!(map_type, MapType::Hash | MapType::LruHash) || handle.key_size() != 8 {
                    return Err(format!(
                        "map {:?} must be a HASH or LRU_HASH with u64 keys for type hash (it is {map_type:?} with {}-byte keys)",
                        spec.name,
                        handle.key_size()
                    ));
                }
            }
            CgroupIdMapType::CgrpStorage => {
                let raw = raw_map_type(&handle);
                if raw != Some(libbpf_sys::BPF_MAP_TYPE_CGRP_STORAGE) {
                    return Err(format!(
                        "map {:?} is {map_type:?} (type {}), not CGRP_STORAGE",
                        spec.name,
                        raw.map_or("unknown".to_string(), |t| t.to_string())
                    ));
                }
            }
        }
        Ok(Self {
            config: config.to_string(),
            map_name: spec.name.clone(),
            handle,
            kind: spec.map_type,
            regexps,
            present: HashSet::new(),
        })
    }

    fn matches(&self, path: &str) -> bool {
        self.regexps.iter().any(|r| r.is_match(path))
    }

    /// Brings the map in line with `cgroups` (id → path).
    pub fn sync(&mut self, cgroups: &CgroupPaths) {
        let wanted: HashSet<u64> = cgroups
            .iter()
            .filter(|(_, path)| self.matches(path))
            .map(|(id, _)| *id)
            .collect();
        let value_size = self.handle.value_size() as usize;
        let mut one = vec![0u8; value_size];
        one[..value_size.min(8)].copy_from_slice(&1u64.to_ne_bytes()[..value_size.min(8)]);
        for id in wanted.difference(&self.present) {
            let result = match self.kind {
                CgroupIdMapType::Hash => self.handle.update(&id.to_ne_bytes(), &one, MapFlags::ANY),
                CgroupIdMapType::CgrpStorage => match std::fs::File::open(&cgroups[id]) {
                    // Cgroup storage is keyed by an fd of the cgroup's directory.
                    Ok(dir) => self.handle.update(
                        &dir.as_fd().as_raw_fd().to_ne_bytes(),
                        &one,
                        MapFlags::ANY,
                    ),
                    Err(_) => continue, // removed since the walk
                },
            };
            if let Err(e) = result {
                log::warn!(
                    "{}: cgroup_id_map {}: adding cgroup {id}: {e}",
                    self.config,
                    self.map_name
                );
            }
        }
        if self.kind == CgroupIdMapType::Hash {
            for id in self.present.difference(&wanted) {
                let _ = self.handle.delete(&id.to_ne_bytes());
            }
        }
        // Cgroup storage dies with its cgroup, so only additions matter there.
        self.present = wanted;
    }

    /// Fills the map now, then keeps it current on a thread of its own
    /// until the returned task is dropped (with its config).
    pub fn start(mut self, monitor: Arc<CgroupMonitor>) -> std::io::Result<CgroupIdMapTask> {
        let subscription = monitor.subscribe();
        let (mut seen, paths) = monitor.snapshot();
        self.sync(&paths);
        let name = format!("cgroup-id-{}", self.map_name);
        // Not joined on drop: the thread holds only its map handle and a
        // subscription, and sees the stop within one wake.
        let worker = Worker::spawn(name, OnDrop::Detach, move |stop| {
            let _subscription = subscription;
            while !stop.is_set() {
                let now = monitor.wait_for_change(seen, WAKE);
                if now != seen {
                    let (generation, paths) = monitor.snapshot();
                    seen = generation;
                    self.sync(&paths);
                }
            }
        })?;
        Ok(CgroupIdMapTask { _worker: worker })
    }
}

/// A running sync; dropping it stops the thread.
pub struct CgroupIdMapTask {
    _worker: Worker,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn spec(yaml: &str) -> CgroupIdMap {
        serde_yaml::from_str(yaml).expect("spec parses")
    }

    /// Needs root, like every test that touches the kernel.
    fn hash_map() -> MapHandle {
        let opts = libbpf_sys::bpf_map_create_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_map_create_opts>() as _,
            ..Default::default()
        };
        MapHandle::create(MapType::Hash, Some("ee_cgmap_test"), 8, 8, 16, &opts)
            .expect("create a hash map (root)")
    }

    #[test]
    fn adds_matching_ids_and_removes_gone_ones() {
        let mut sync =
            CgroupIdMapSync::new("t", &spec("{name: m, regexps: ['/keep-']}"), hash_map())
                .expect("valid");
        let present = |s: &CgroupIdMapSync, id: u64| {
            s.handle
                .lookup(&id.to_ne_bytes(), MapFlags::ANY)
                .ok()
                .flatten()
        };
        let mut tree = HashMap::from([
            (7, "/sys/fs/cgroup/keep-a".to_string()),
            (8, "/sys/fs/cgroup/other".to_string()),
        ]);
        sync.sync(&tree);
        assert_eq!(present(&sync, 7), Some(1u64.to_ne_bytes().to_vec()));
        assert_eq!(present(&sync, 8), None, "no match, not added");
        tree.remove(&7);
        tree.insert(9, "/sys/fs/cgroup/x/keep-b".to_string());
        sync.sync(&tree);
        assert_eq!(
            present(&sync, 7),
            None,
            "removed cgroup deleted from the map"
        );
        assert_eq!(present(&sync, 9), Some(1u64.to_ne_bytes().to_vec()));
    }

    #[test]
    fn type_defaults_to_hash_and_mismatches_are_refused() {
        assert_eq!(
            spec("{name: m, regexps: [x]}").map_type,
            CgroupIdMapType::Hash
        );
        let storage = spec("{name: m, type: cgrp_storage, regexps: [x]}");
        let err = CgroupIdMapSync::new("t", &storage, hash_map())
            .err()
            .expect("a hash map is not cgroup storage");
        assert_eq!(err, "map \"m\" is Hash (type 1), not CGRP_STORAGE");
    }

    #[test]
    fn cgroup_storage_maps_are_recognised() {
        // libbpf-rs cannot name the type, so the map is made with libbpf,
        // and local storage maps need BTF for their key and value.
        // SAFETY: btf__new_empty returns an owned BTF object or NULL; the
        // add/load calls get that valid pointer and static strings.
        let (btf, int_id) = unsafe {
            let btf = libbpf_sys::btf__new_empty();
            assert!(!btf.is_null(), "btf__new_empty");
            let int_id = libbpf_sys::btf__add_int(
                btf,
                c"int".as_ptr(),
                4,
                libbpf_sys::BTF_INT_SIGNED as i32,
            );
            let long_id = libbpf_sys::btf__add_int(btf, c"long".as_ptr(), 8, 0);
            assert!(int_id > 0 && long_id > 0, "btf__add_int");
            assert_eq!(libbpf_sys::btf__load_into_kernel(btf), 0, "load BTF (root)");
            (btf, (int_id as u32, long_id as u32))
        };
        let opts = libbpf_sys::bpf_map_create_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_map_create_opts>() as _,
            map_flags: libbpf_sys::BPF_F_NO_PREALLOC,
            // SAFETY: btf is the valid, loaded BTF object from above.
            btf_fd: unsafe { libbpf_sys::btf__fd(btf) } as u32,
            btf_key_type_id: int_id.0,
            btf_value_type_id: int_id.1,
            ..Default::default()
        };
        // SAFETY: a valid name and opts for the call; the returned fd is
        // owned (and closed) by `owned` below.
        let fd = unsafe {
            libbpf_sys::bpf_map_create(
                libbpf_sys::BPF_MAP_TYPE_CGRP_STORAGE,
                c"ee_cgstor_test".as_ptr(),
                4,
                8,
                0,
                &opts,
            )
        };
        assert!(
            fd >= 0,
            "create a CGRP_STORAGE map (root): {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: fd was just returned to us and nothing else owns it.
        let owned = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        let handle = MapHandle::from_map_id(map_id(owned.as_fd())).expect("map by id");
        // SAFETY: btf came from btf__new_empty and is freed once.
        unsafe { libbpf_sys::btf__free(btf) };
        let storage = spec("{name: m, type: cgrp_storage, regexps: [x]}");
        assert!(CgroupIdMapSync::new("t", &storage, handle).is_ok());
    }

    fn map_id(fd: std::os::fd::BorrowedFd<'_>) -> u32 {
        // SAFETY: as in raw_map_type.
        let mut info: libbpf_sys::bpf_map_info = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libbpf_sys::bpf_map_info>() as u32;
        // SAFETY: info and len are valid for writes for the call.
        let rc = unsafe { libbpf_sys::bpf_map_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) };
        assert_eq!(rc, 0);
        info.id
    }
}
