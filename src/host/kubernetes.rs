//! Workload names from what a Kubernetes node already has, with no API
//! access: pod UIDs and container ids come from the kubelet's cgroup names,
//! and names from the kubelet's log directories:
//! `<logs>/pods/<namespace>_<pod>_<uid>/` and
//! `<logs>/containers/<pod>_<namespace>_<container>-<id>.log`. Namespace,
//! pod and container names are DNS labels, so `_` never occurs in them and
//! splits those names unambiguously.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::refresh::Refreshing;

/// A pod or container created after the last read resolves on its first
/// miss after this.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(1);
/// Names are re-read this often even without misses (pods are deleted and
/// their UIDs never reused, so this bounds memory, not correctness).
pub const MAX_AGE: Duration = Duration::from_secs(60);

/// Where the kubelet writes logs on every distribution.
pub const DEFAULT_LOG_DIR: &str = "/var/log";

/// What a cgroup path says about the workload in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// With dashes, as the API spells it.
    pub pod_uid: String,
    /// The container runtime's id (64 hex digits), if the cgroup is a
    /// container's, not the pod's own.
    pub container_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodName {
    pub namespace: String,
    pub pod: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerName {
    pub namespace: String,
    pub pod: String,
    pub container: String,
}

#[derive(Default)]
pub struct Names {
    pods: HashMap<String, PodName>,
    containers: HashMap<String, ContainerName>,
}

pub struct Kubernetes {
    table: Refreshing<Names>,
}

impl Default for Kubernetes {
    fn default() -> Self {
        Self::new(PathBuf::from(DEFAULT_LOG_DIR))
    }
}

impl Kubernetes {
    pub fn new(log_dir: PathBuf) -> Self {
        let what = format!("kubelet log directories ({})", log_dir.display());
        Self {
            table: Refreshing::new(what, RELOAD_INTERVAL, Some(MAX_AGE), move || {
                Ok(read_names(&log_dir))
            }),
        }
    }

    pub fn pod(&self, uid: &str) -> Option<PodName> {
        self.table
            .with(|n| n.pods.get(uid).cloned(), Option::is_some)
    }

    pub fn container(&self, id: &str) -> Option<ContainerName> {
        self.table
            .with(|n| n.containers.get(id).cloned(), Option::is_some)
    }
}

fn read_names(dir: &Path) -> Names {
    let mut names = Names::default();
    let list = |sub: &str| -> Vec<String> {
        std::fs::read_dir(dir.join(sub))
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    for entry in list("pods") {
        let mut parts = entry.splitn(3, '_');
        if let (Some(ns), Some(pod), Some(uid)) = (parts.next(), parts.next(), parts.next()) {
            names.pods.insert(
                uid.to_string(),
                PodName {
                    namespace: ns.to_string(),
                    pod: pod.to_string(),
                },
            );
        }
    }
    for entry in list("containers") {
        let Some(stem) = entry.strip_suffix(".log") else {
            continue;
        };
        let Some((rest, id)) = stem.rsplit_once('-') else {
            continue;
        };
        let mut parts = rest.splitn(3, '_');
        if let (Some(pod), Some(ns), Some(container)) = (parts.next(), parts.next(), parts.next()) {
            names.containers.insert(
                id.to_string(),
                ContainerName {
                    namespace: ns.to_string(),
                    pod: pod.to_string(),
                    container: container.to_string(),
                },
            );
        }
    }
    names
}

/// The pod UID and container id in a kubelet cgroup path, for the systemd
/// driver (`kubepods-burstable-pod<uid_with_underscores>.slice`,
/// `cri-containerd-<id>.scope`, `crio-<id>.scope`, `docker-<id>.scope`)
/// and the cgroupfs driver (`/kubepods/burstable/pod<uid>/<id>`). `None`
/// for a cgroup outside any pod.
pub fn parse_cgroup(path: &str) -> Option<Workload> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let kube = parts.iter().position(|p| p.starts_with("kubepods"))?;
    let mut uid = None;
    let mut rest = parts[kube..].iter();
    for part in rest.by_ref() {
        if let Some(found) = pod_uid(part) {
            uid = Some(found);
            break;
        }
    }
    let uid = uid?;
    let container_id = rest.next().and_then(|c| container_id(c));
    Some(Workload {
        pod_uid: uid,
        container_id,
    })
}

fn pod_uid(part: &str) -> Option<String> {
    let name = part.strip_suffix(".slice").unwrap_or(part);
    let at = name.rfind("pod")?;
    let uid = &name[at + 3..];
    let uid = uid.replace('_', "-");
    let ok = uid.len() == 36 && uid.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    ok.then_some(uid)
}

fn container_id(part: &str) -> Option<String> {
    let name = part.strip_suffix(".scope").unwrap_or(part);
    let id = name.rsplit(['-', ':']).next().unwrap_or(name);
    let ok = id.len() >= 12 && id.chars().all(|c| c.is_ascii_hexdigit());
    ok.then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
    const ID: &str = "3b5f7e9d1c2a4b6d8e0f1a3c5e7b9d2f4a6c8e0b1d3f5a7c9e2b4d6f8a0c1e3b";

    #[test]
    fn kubelet_cgroup_names_for_both_drivers_and_every_runtime() {
        let systemd_uid = UID.replace('-', "_");
        for (path, container) in [
            (format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{systemd_uid}.slice/cri-containerd-{ID}.scope"), Some(ID)),
            (format!("/sys/fs/cgroup/kubepods.slice/kubepods-pod{systemd_uid}.slice/crio-{ID}.scope"), Some(ID)),
            (format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{systemd_uid}.slice/docker-{ID}.scope"), Some(ID)),
            (format!("/kubepods/burstable/pod{UID}/{ID}"), Some(ID)),
            (format!("/kubepods/pod{UID}/{ID}"), Some(ID)),
            (format!("/kubepods/besteffort/pod{UID}"), None),
        ] {
            assert_eq!(
                parse_cgroup(&path),
                Some(Workload {
                    pod_uid: UID.to_string(),
                    container_id: container.map(str::to_string)
                }),
                "{path}"
            );
        }
        for outside in [
            "/system.slice/ssh.service",
            "/",
            "/kubepods.slice",
            "/user.slice/pod-thing",
        ] {
            assert_eq!(parse_cgroup(outside), None, "{outside}");
        }
    }

    #[test]
    fn names_come_from_the_log_directories() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join(format!(
            "pods/kube-system_coredns-7db6d8ff4d-x2x9p_{UID}/coredns"
        )))
        .expect("mkdir");
        std::fs::create_dir_all(dir.path().join("containers")).expect("mkdir");
        std::fs::write(
            dir.path().join(format!(
                "containers/coredns-7db6d8ff4d-x2x9p_kube-system_coredns-{ID}.log"
            )),
            "",
        )
        .expect("write");
        let k = Kubernetes::new(dir.path().to_path_buf());
        assert_eq!(
            k.pod(UID),
            Some(PodName {
                namespace: "kube-system".into(),
                pod: "coredns-7db6d8ff4d-x2x9p".into()
            })
        );
        assert_eq!(
            k.container(ID),
            Some(ContainerName {
                namespace: "kube-system".into(),
                pod: "coredns-7db6d8ff4d-x2x9p".into(),
                container: "coredns".into()
            })
        );
        assert_eq!(k.pod("nope"), None);
    }
}
