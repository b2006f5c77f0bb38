//! Host lookups shared by every part of the exporter: the kernel and system
//! tables that labels and attachments are resolved against. Each has one
//! owner here, is loaded on first use and refreshed on its own schedule, so
//! no other module reads these files.
//!
//! This layer depends on nothing else in the crate; everything may use it.

pub mod cgroups;
pub mod cpus;
pub mod files;
pub mod inotify;
pub mod interfaces;
pub mod kallsyms;
pub mod kernel;
pub mod kubernetes;
pub mod partitions;
pub mod passwd;
pub mod pci_ids;
pub mod processes;
pub mod procstat;
pub mod refresh;
pub mod tracefs;

use std::sync::Arc;

/// A host table that decoders, and `cgroup_id_map`, keep reading while the
/// exporter serves. Each says what reading it takes beyond what any process
/// has, so that the capability drop keeps what the running configs read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HostTable {
    /// `/proc/kallsyms`, whose addresses read as zeros without CAP_SYSLOG.
    Kallsyms,
    /// The cgroup tree, whose directories need not be world-readable.
    CgroupTree,
    /// `/proc/partitions`.
    Partitions,
    /// The network interfaces.
    Interfaces,
    /// `pci.ids`.
    PciIds,
    /// The kubelet's `pods/` and `containers/` log directories.
    KubeletLogs,
    /// `/etc/passwd`.
    Passwd,
}

impl HostTable {
    /// What reading this table takes beyond an unprivileged process's due.
    pub const fn privilege(self) -> Option<Privilege> {
        match self {
            HostTable::Kallsyms => Some(Privilege::ReadKernelAddresses),
            HostTable::CgroupTree => Some(Privilege::ReadAnyDirectory),
            HostTable::Partitions
            | HostTable::Interfaces
            | HostTable::PciIds
            | HostTable::KubeletLogs
            | HostTable::Passwd => None,
        }
    }
}

/// A privilege a running config keeps using after the drop; `process`
/// maps each to its capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Privilege {
    /// Real addresses in /proc/kallsyms (CAP_SYSLOG).
    ReadKernelAddresses,
    /// Directories that are not world-readable (CAP_DAC_READ_SEARCH).
    ReadAnyDirectory,
}

/// A set of [`Privilege`]s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Privileges(u8);

impl Privileges {
    const fn bit(p: Privilege) -> u8 {
        match p {
            Privilege::ReadKernelAddresses => 1,
            Privilege::ReadAnyDirectory => 2,
        }
    }

    #[must_use]
    pub const fn with(self, p: Privilege) -> Self {
        Self(self.0 | Self::bit(p))
    }

    /// With what reading `table` takes.
    #[must_use]
    pub const fn reading(self, table: HostTable) -> Self {
        match table.privilege() {
            Some(p) => self.with(p),
            None => self,
        }
    }

    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    pub const fn has(self, p: Privilege) -> bool {
        self.0 & Self::bit(p) != 0
    }
}

/// One instance per process, shared by all configs: a table is read once
/// however many decoders and configs use it.
#[derive(Default)]
pub struct Host {
    pub cgroups: Arc<cgroups::CgroupMonitor>,
    pub kallsyms: kallsyms::Kallsyms,
    pub partitions: partitions::Partitions,
    pub interfaces: interfaces::Interfaces,
    pub pci_ids: pci_ids::PciIds,
    pub kubernetes: kubernetes::Kubernetes,
    pub passwd: passwd::Passwd,
}

impl Host {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// With the kubelet's logs under `log_dir` instead of /var/log.
    pub fn with_kubelet_logs(log_dir: std::path::PathBuf) -> Arc<Self> {
        Arc::new(Self {
            kubernetes: kubernetes::Kubernetes::new(log_dir),
            ..Self::default()
        })
    }
}
