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
pub mod pci_ids;
pub mod procstat;
pub mod refresh;
pub mod tracefs;

use std::sync::Arc;

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
