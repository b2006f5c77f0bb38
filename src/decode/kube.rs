//! `kube_namespace`, `kube_pod`, `kube_container`: a cgroup path (chain
//! `uint`, `cgroup` first) to the Kubernetes workload in it, from the
//! kubelet's cgroup naming and log directories ([`crate::host::kubernetes`]),
//! with no API access. A cgroup outside any pod gives an empty value (the
//! label is absent in Prometheus). A pod or container not found yet gives
//! `unknown_pod:<uid>`, `unknown_container:<id12>` or `unknown` (namespace),
//! which heal when the kubelet's directories show them.

use std::sync::Arc;

use super::registry::{Entry, Guess};
use super::{DecodeError, Decoded, Decoder};
use crate::host::kubernetes::parse_cgroup;
use crate::host::{Host, HostTable};

const FROM_KUBELET: &str = "the Kubernetes workload, from the kubelet's cgroup names (systemd and \
cgroupfs drivers; containerd, CRI-O, docker) and its `/var/log/pods` and `/var/log/containers` \
names (`--kubernetes.log-dir`), with no API access; empty outside pods; `unknown` until the \
kubelet's directories show the pod, then healed";

pub const NAMESPACE: Entry = Entry {
    name: "kube_namespace",
    options: &[],
    pure: false,
    reads: &[HostTable::KubeletLogs],
    ours: true,
    input: "cgroup path (after `uint`, `cgroup`)",
    output: FROM_KUBELET,
    guess: Guess::NONE,
    build: |_, host| Ok(Box::new(Kube::new(Part::Namespace, host.clone()))),
};

pub const POD: Entry = Entry {
    name: "kube_pod",
    output:
        "the pod's name, as `kube_namespace` finds it; `unknown_pod:<uid>` until the kubelet's \
directories show it, then healed",
    build: |_, host| Ok(Box::new(Kube::new(Part::Pod, host.clone()))),
    ..NAMESPACE
};

pub const CONTAINER: Entry = Entry {
    name: "kube_container",
    output: "the container's name, as `kube_namespace` finds it; `unknown_container:<id12>` until \
the kubelet's directories show it, then healed",
    build: |_, host| Ok(Box::new(Kube::new(Part::Container, host.clone()))),
    ..NAMESPACE
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Namespace,
    Pod,
    Container,
}

pub struct Kube {
    part: Part,
    host: Arc<Host>,
}

impl Kube {
    pub fn new(part: Part, host: Arc<Host>) -> Self {
        Self { part, host }
    }
}

impl Decoder for Kube {
    fn decode(&self, input: &[u8]) -> Result<Decoded, DecodeError> {
        let path = std::str::from_utf8(input)
            .map_err(|_| DecodeError::Invalid("a cgroup path must be UTF-8".into()))?;
        let Some(w) = parse_cgroup(path) else {
            return Ok(Decoded::Value(Vec::new()));
        };
        let k = &self.host.kubernetes;
        if let Some(id) = &w.container_id {
            if let Some(c) = k.container(id) {
                return Ok(Decoded::Value(
                    match self.part {
                        Part::Namespace => c.namespace,
                        Part::Pod => c.pod,
                        Part::Container => c.container,
                    }
                    .into_bytes(),
                ));
            }
        }
        let pod = k.pod(&w.pod_uid);
        Ok(match (self.part, pod) {
            (Part::Namespace, Some(p)) => Decoded::Value(p.namespace.into_bytes()),
            (Part::Pod, Some(p)) => Decoded::Value(p.pod.into_bytes()),
            (Part::Namespace, None) => Decoded::Unknown(b"unknown".to_vec()),
            (Part::Pod, None) => {
                Decoded::Unknown(format!("unknown_pod:{}", w.pod_uid).into_bytes())
            }
            (Part::Container, _) => match &w.container_id {
                // The pod's own cgroup, holding its containers.
                None => Decoded::Value(Vec::new()),
                Some(id) => Decoded::Unknown(
                    format!("unknown_container:{}", &id[..12.min(id.len())]).into_bytes(),
                ),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
    const ID: &str = "3b5f7e9d1c2a4b6d8e0f1a3c5e7b9d2f4a6c8e0b1d3f5a7c9e2b4d6f8a0c1e3b";

    fn decode(host: &Arc<Host>, part: Part, path: &str) -> Decoded {
        Kube::new(part, host.clone())
            .decode(path.as_bytes())
            .expect("decodes")
    }

    #[test]
    fn names_unknowns_that_heal_and_plain_hosts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = Host::with_kubelet_logs(dir.path().to_path_buf());
        let path = format!(
            "/sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{ID}.scope",
            UID.replace('-', "_")
        );
        assert_eq!(
            decode(&host, Part::Namespace, &path),
            Decoded::Unknown(b"unknown".to_vec())
        );
        assert_eq!(
            decode(&host, Part::Pod, &path),
            Decoded::Unknown(format!("unknown_pod:{UID}").into_bytes())
        );
        assert_eq!(
            decode(&host, Part::Container, &path),
            Decoded::Unknown(b"unknown_container:3b5f7e9d1c2a".to_vec())
        );
        assert_eq!(
            decode(&host, Part::Pod, "/system.slice/ssh.service"),
            Decoded::Value(Vec::new())
        );
        // The pod appears; its names are read on the next miss.
        std::fs::create_dir_all(dir.path().join(format!("pods/shop_cart-5c9f_{UID}/app")))
            .expect("mkdir");
        std::fs::create_dir_all(dir.path().join("containers")).expect("mkdir");
        std::fs::write(
            dir.path()
                .join(format!("containers/cart-5c9f_shop_app-{ID}.log")),
            "",
        )
        .expect("write");
        std::thread::sleep(
            crate::host::kubernetes::RELOAD_INTERVAL + std::time::Duration::from_millis(50),
        );
        assert_eq!(
            decode(&host, Part::Namespace, &path),
            Decoded::Value(b"shop".to_vec())
        );
        assert_eq!(
            decode(&host, Part::Pod, &path),
            Decoded::Value(b"cart-5c9f".to_vec())
        );
        assert_eq!(
            decode(&host, Part::Container, &path),
            Decoded::Value(b"app".to_vec())
        );
    }
}
