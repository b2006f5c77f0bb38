//! `cgroup`: a cgroup id in decimal (chain `uint` first) to the cgroup's
//! directory, the full path the reference prints
//! (`/sys/fs/cgroup/system.slice/ssh.service`).
//!
//! A cgroup v2 id (`bpf_get_current_cgroup_id`) is the inode number of the
//! cgroup's directory in the cgroup2 filesystem, so the table is built by
//! walking that mount and reading each directory's inode. The mount is found
//! in mountinfo, because on hybrid hosts `/sys/fs/cgroup` is a tmpfs of v1
//! hierarchies, whose inodes would collide with v2 ids, and cgroup2 sits at
//! `/sys/fs/cgroup/unified`.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{parse_decimal, DecodeError, Decoded, Decoder};

/// A cgroup created after the last walk resolves on its first miss after
/// this; an id that never resolves costs at most one walk per interval.
pub const RESCAN_INTERVAL: Duration = Duration::from_secs(1);

/// id → path for every live cgroup, shared by all configs through
/// [`super::DecoderEnv`]. Each walk rebuilds it, so dead cgroups drop out.
pub struct CgroupTable {
    /// Fixed by tests; otherwise found in mountinfo at each walk until found.
    mount: Option<PathBuf>,
    rescan_interval: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    mount: Option<PathBuf>,
    paths: HashMap<u64, String>,
    scanned_at: Option<Instant>,
    warned: bool,
}

impl Default for CgroupTable {
    fn default() -> Self {
        Self {
            mount: None,
            rescan_interval: RESCAN_INTERVAL,
            state: Mutex::new(State::default()),
        }
    }
}

impl CgroupTable {
    /// A table over the host's cgroup2 mount, rescanning at most once per
    /// `rescan_interval`.
    pub fn with_interval(rescan_interval: Duration) -> Self {
        Self {
            rescan_interval,
            ..Self::default()
        }
    }

    /// A table over a given cgroup2 mount point.
    pub fn with_mount(mount: impl Into<PathBuf>, rescan_interval: Duration) -> Self {
        Self {
            mount: Some(mount.into()),
            rescan_interval,
            state: Mutex::new(State::default()),
        }
    }

    /// The path of the live cgroup with this id, walking the tree again if
    /// it is not known and the last walk is older than the interval.
    pub fn resolve(&self, id: u64) -> Option<String> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(path) = state.paths.get(&id) {
            return Some(path.clone());
        }
        let stale = state
            .scanned_at
            .is_none_or(|t| t.elapsed() >= self.rescan_interval);
        if stale {
            self.rescan(&mut state);
        }
        state.paths.get(&id).cloned()
    }

    fn rescan(&self, state: &mut State) {
        state.scanned_at = Some(Instant::now());
        if state.mount.is_none() {
            state.mount = match &self.mount {
                Some(m) => Some(m.clone()),
                None => host_cgroup2_mount(),
            };
        }
        let Some(mount) = state.mount.clone() else {
            if !state.warned {
                state.warned = true;
                log::warn!("cgroup: no cgroup2 filesystem in /proc/self/mountinfo; cgroup labels will read unknown_cgroup_id");
            }
            return;
        };
        match walk(&mount) {
            Ok(paths) => state.paths = paths,
            Err(e) => {
                if !state.warned {
                    state.warned = true;
                    log::warn!("cgroup: walking {}: {e}", mount.display());
                }
                state.paths.clear();
            }
        }
    }
}

/// This host's cgroup2 mount, from /proc/self/mountinfo.
pub fn host_cgroup2_mount() -> Option<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .ok()
        .and_then(|text| cgroup2_mount(&text))
}

/// The cgroup2 mount point: `/sys/fs/cgroup` or `/sys/fs/cgroup/unified`
/// if present, else the first cgroup2 mount of the whole hierarchy.
fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    let mounts: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| {
            // id parent dev root mountpoint options [optional...] - fstype source super
            let (left, right) = line.split_once(" - ")?;
            let fields: Vec<&str> = left.split(' ').collect();
            let fstype = right.split(' ').next()?;
            let (root, mountpoint) = (fields.get(3)?, fields.get(4)?);
            (fstype == "cgroup2" && *root == "/").then(|| PathBuf::from(unescape(mountpoint)))
        })
        .collect();
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .iter()
        .find_map(|want| mounts.iter().find(|m| m.as_path() == Path::new(want)))
        .or(mounts.first())
        .cloned()
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        match octal {
            Some(b) => {
                out.push(b);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every directory under `mount` on the same filesystem, by inode. Entries
/// vanishing mid-walk (a cgroup removed) are skipped, not errors.
pub fn walk(mount: &Path) -> std::io::Result<HashMap<u64, String>> {
    let root = std::fs::symlink_metadata(mount)?;
    let mut paths = HashMap::new();
    paths.insert(root.ino(), mount.to_string_lossy().into_owned());
    let mut pending = vec![mount.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.dev() != root.dev() {
                continue;
            }
            paths.insert(meta.ino(), path.to_string_lossy().into_owned());
            pending.push(path);
        }
    }
    Ok(paths)
}

pub struct Cgroup {
    table: Arc<CgroupTable>,
}

impl Cgroup {
    pub fn new(table: Arc<CgroupTable>) -> Self {
        Self { table }
    }
}

impl Decoder for Cgroup {
    fn decode(&self, input: &[u8]) -> Result<Decoded, DecodeError> {
        let id = parse_decimal(input)?;
        Ok(match self.table.resolve(id) {
            Some(path) => Decoded::Value(path.into_bytes()),
            None => Decoded::Unknown(format!("unknown_cgroup_id:{id}").into_bytes()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
30 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:29 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu
32 30 0:30 / /sys/fs/cgroup/unified rw,relatime shared:10 - cgroup2 cgroup2 rw
";

    #[test]
    fn finds_the_cgroup2_mount() {
        assert_eq!(
            cgroup2_mount(HYBRID),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let pure =
            "29 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n\
                    40 29 0:26 /x /mnt/x rw - cgroup2 cgroup2 rw\n";
        assert_eq!(cgroup2_mount(pure), Some(PathBuf::from("/sys/fs/cgroup")));
        let odd = "29 23 0:26 / /run/my\\040cg rw - cgroup2 none rw\n";
        assert_eq!(cgroup2_mount(odd), Some(PathBuf::from("/run/my cg")));
        assert_eq!(
            cgroup2_mount("30 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"),
            None
        );
    }

    fn decode(d: &Cgroup, id: u64) -> Decoded {
        d.decode(id.to_string().as_bytes()).expect("decodes")
    }

    #[test]
    fn created_cgroup_resolves_and_removed_one_is_forgotten() {
        let Some(mount) = std::fs::read_to_string("/proc/self/mountinfo")
            .ok()
            .and_then(|t| cgroup2_mount(&t))
        else {
            eprintln!("skipped: no cgroup2 mount");
            return;
        };
        let interval = Duration::from_millis(200);
        let d = Cgroup::new(Arc::new(CgroupTable::with_interval(interval)));
        let root_ino = std::fs::metadata(&mount).expect("stat mount").ino();
        assert_eq!(
            decode(&d, root_ino),
            Decoded::Value(mount.to_string_lossy().as_bytes().to_vec())
        );

        let dir = mount.join(format!("ee-test-{}", std::process::id()));
        if let Err(e) = std::fs::create_dir(&dir) {
            eprintln!("skipped: cannot create {}: {e}", dir.display());
            return;
        }
        let id = std::fs::metadata(&dir).map(|m| m.ino());
        let path = dir.to_string_lossy().into_owned();
        let created = id.map(|id| {
            let first = decode(&d, id);
            std::thread::sleep(interval + Duration::from_millis(50));
            (id, first, decode(&d, id))
        });
        let _ = std::fs::remove_dir(&dir);
        let (id, first, healed) = created.expect("stat new cgroup");
        assert_eq!(
            first,
            Decoded::Unknown(format!("unknown_cgroup_id:{id}").into_bytes()),
            "walked moments ago: rate-limited"
        );
        assert_eq!(healed, Decoded::Value(path.into_bytes()));

        // Kept until a miss walks the tree again, then gone.
        assert_eq!(decode(&d, id), healed);
        std::thread::sleep(interval + Duration::from_millis(50));
        assert_eq!(
            decode(&d, u64::MAX),
            Decoded::Unknown(format!("unknown_cgroup_id:{}", u64::MAX).into_bytes()),
            "a miss triggers the walk"
        );
        assert_eq!(
            decode(&d, id),
            Decoded::Unknown(format!("unknown_cgroup_id:{id}").into_bytes())
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        let d = Cgroup::new(Arc::new(CgroupTable::with_mount(
            "/nonexistent",
            RESCAN_INTERVAL,
        )));
        assert!(d.decode(b"abc").is_err());
        assert!(d.decode(&[0xff, 0xfe]).is_err());
        assert!(d.decode(&7u64.to_ne_bytes()).is_err(), "raw, not decimal");
        assert_eq!(
            decode(&d, 7),
            Decoded::Unknown(b"unknown_cgroup_id:7".to_vec())
        );
    }
}
