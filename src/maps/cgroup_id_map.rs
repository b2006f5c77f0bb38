//! `cgroup_id_map:` keeps a BPF map filled with the ids of the cgroups
//! whose paths match the config's regexps, so programs can filter events by
//! cgroup. Cgroups come and go, so the map is brought up to date from a
//! walk of the cgroup2 tree on start-up and then once a second.

use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use libbpf_rs::{MapCore, MapFlags, MapHandle, MapType};
use regex::Regex;

use crate::config::model::{CgroupIdMap, CgroupIdMapType};
use crate::decode::cgroup::{host_cgroup2_mount, walk};

pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);

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
                if map_type != MapType::CGrpStorage {
                    return Err(format!(
                        "map {:?} is {map_type:?}, not CGRP_STORAGE",
                        spec.name
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
    pub fn sync(&mut self, cgroups: &HashMap<u64, String>) {
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
}

/// Keeps every config's cgroup id map up to date until the process exits.
pub fn spawn_sync(mut maps: Vec<CgroupIdMapSync>) {
    if maps.is_empty() {
        return;
    }
    let Some(mount) = host_cgroup2_mount() else {
        log::warn!("cgroup_id_map: no cgroup2 filesystem is mounted; the maps stay empty");
        return;
    };
    let sync_all = move |maps: &mut Vec<CgroupIdMapSync>| match walk(&mount) {
        Ok(cgroups) => maps.iter_mut().for_each(|m| m.sync(&cgroups)),
        Err(e) => log::warn!("cgroup_id_map: walking {}: {e}", mount.display()),
    };
    // The first fill happens before start-up returns, so programs filter
    // correctly from their first event.
    sync_all(&mut maps);
    let spawned = std::thread::Builder::new()
        .name("cgroup-id-map".into())
        .spawn(move || loop {
            std::thread::sleep(SYNC_INTERVAL);
            sync_all(&mut maps);
        });
    if let Err(e) = spawned {
        log::warn!(
            "cgroup_id_map: cannot start the sync thread ({e}); maps will not follow new cgroups"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(present(&sync, 9).is_some());
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
        assert!(err.contains("not CGRP_STORAGE"), "{err}");
    }
}
