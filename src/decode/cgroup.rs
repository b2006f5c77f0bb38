//! `cgroup`: a cgroup id in decimal (chain `uint` first) to the cgroup's
//! directory, the full path the reference prints
//! (`/sys/fs/cgroup/system.slice/ssh.service`). The table behind it is the
//! process's one cgroup monitor ([`crate::host::cgroups`]).

use std::sync::Arc;

use super::registry::{Entry, Guess};
use super::{parse_decimal, DecodeError, Decoded, Decoder};
use crate::host::cgroups::CgroupMonitor;
use crate::host::HostTable;

pub const ENTRY: Entry = Entry {
    name: "cgroup",
    options: &[],
    pure: false,
    reads: &[HostTable::CgroupTree],
    ours: false,
    input: "decimal cgroup id",
    output: "cgroup path",
    guess: Guess {
        members: &["cgroup", "cgroup_id", "cgid", "cgroupid", "cg_id"],
        suffixes: &[],
        sizes: &[],
        after_uint: true,
    },
    build: |_, host| Ok(Box::new(Cgroup::new(host.cgroups.clone()))),
};

pub struct Cgroup {
    monitor: Arc<CgroupMonitor>,
}

impl Cgroup {
    pub fn new(monitor: Arc<CgroupMonitor>) -> Self {
        Self { monitor }
    }
}

impl Decoder for Cgroup {
    fn decode(&self, input: &[u8]) -> Result<Decoded, DecodeError> {
        let id = parse_decimal(input)?;
        Ok(match self.monitor.resolve_any(id) {
            Some((path, false)) => Decoded::Value(path.into_bytes()),
            Some((path, true)) => Decoded::Gone(path.into_bytes()),
            None => {
                let text = format!("unknown_cgroup_id:{id}").into_bytes();
                match self.monitor.exists(id) {
                    // Removed before the monitor saw it: exported once
                    // more, then forgotten like any removed cgroup.
                    Some(false) => Decoded::Vanished(text),
                    // Unknown, not Value: a cgroup created a moment ago
                    // heals.
                    Some(true) | None => Decoded::Unknown(text),
                }
            }
        })
    }

    fn changes(&self) -> u64 {
        self.monitor.removals()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::cgroups::{host_cgroup2_mount, RESCAN_INTERVAL};
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn ids_decode_to_paths_or_the_unknown_form() {
        let mount = host_cgroup2_mount().expect("a cgroup2 filesystem is mounted");
        let d = Cgroup::new(Arc::new(CgroupMonitor::default()));
        let root = std::fs::metadata(&mount).expect("stat mount").ino();
        assert_eq!(
            d.decode(root.to_string().as_bytes()),
            Ok(Decoded::Value(mount.to_string_lossy().as_bytes().to_vec()))
        );
        assert_eq!(
            d.decode(b"18446744073709551615"),
            Ok(Decoded::Vanished(
                b"unknown_cgroup_id:18446744073709551615".to_vec()
            )),
            "no cgroup has this id: the kernel says so"
        );
    }

    /// A cgroup removed before the monitor ever walked the tree is gone,
    /// not unknown: an exporter restarted after the removal, or a cgroup
    /// that lived between two walks, must not leave an `unknown` series
    /// behind for ever.
    #[test]
    fn a_cgroup_removed_before_the_monitor_saw_it_is_gone() {
        let mount = host_cgroup2_mount().expect("a cgroup2 filesystem is mounted");
        let dir = mount.join(format!("ee-cgdec-gone-{}", std::process::id()));
        std::fs::create_dir(&dir).expect("create cgroup");
        let id = std::fs::metadata(&dir).expect("stat cgroup").ino();
        std::fs::remove_dir(&dir).expect("remove cgroup");
        // Polling, and never walked yet: only the kernel can tell.
        let monitor = Arc::new(CgroupMonitor::new(None, RESCAN_INTERVAL));
        assert_eq!(monitor.exists(id), Some(false));
        let root = std::fs::metadata(&mount).expect("stat mount").ino();
        assert_eq!(monitor.exists(root), Some(true));
        let d = Cgroup::new(monitor);
        assert_eq!(
            d.decode(id.to_string().as_bytes()),
            Ok(Decoded::Vanished(
                format!("unknown_cgroup_id:{id}").into_bytes()
            ))
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        let d = Cgroup::new(Arc::new(CgroupMonitor::new(
            Some("/nonexistent".into()),
            RESCAN_INTERVAL,
        )));
        assert!(d.decode(b"abc").is_err());
        assert!(d.decode(&[0xff, 0xfe]).is_err());
        assert!(d.decode(&7u64.to_ne_bytes()).is_err(), "raw, not decimal");
        assert_eq!(
            d.decode(b"7"),
            Ok(Decoded::Unknown(b"unknown_cgroup_id:7".to_vec()))
        );
    }
}
