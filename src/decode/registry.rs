//! Builds decoders by name. Adding a decoder is one file plus one line here.

use std::sync::Arc;

use super::tables::Names;
use super::Decoder;
use crate::config::model::{DecoderSpec, NameTable};
use crate::host::Host;

/// A decoder spec that cannot become a decoder: an unknown name or bad options.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("decoder `{name}`: {reason}")]
pub struct BuildError {
    pub name: String,
    pub reason: String,
}

impl BuildError {
    pub fn new(spec: &DecoderSpec, reason: impl Into<String>) -> Self {
        Self {
            name: spec.name.clone(),
            reason: reason.into(),
        }
    }
}

/// Every decoder name this build knows, for error messages and docs.
pub const NAMES: &[&str] = &[
    "cgroup",
    "dname",
    "errno",
    "hex",
    "ifname",
    "inet_ip",
    "kstack",
    "ksym",
    "kube_container",
    "kube_namespace",
    "kube_pod",
    "majorminor",
    "pci_class",
    "pci_device",
    "pci_subclass",
    "pci_vendor",
    "regexp",
    "static_map",
    "string",
    "syscall",
    "systemd_unit",
    "uint",
];

pub fn build_decoder(spec: &DecoderSpec, host: &Arc<Host>) -> Result<Box<dyn Decoder>, BuildError> {
    use super::kube::{Kube, Part};
    use super::pci::{Pci, PciKind};
    if spec.names.is_some() && !matches!(spec.name.as_str(), "syscall" | "errno") {
        return Err(BuildError::new(
            spec,
            "`names` applies only to the syscall and errno decoders",
        ));
    }
    let names = match spec.names.unwrap_or_default() {
        NameTable::Reference => Names::Reference,
        NameTable::Kernel => Names::Kernel,
    };
    let decoder: Box<dyn Decoder> = match spec.name.as_str() {
        "cgroup" => Box::new(super::cgroup::Cgroup::new(host.cgroups.clone())),
        "dname" => Box::new(super::dname::Dname),
        "errno" => Box::new(super::errno::Errno(names)),
        "hex" => Box::new(super::hex::Hex),
        "ifname" => Box::new(super::ifname::IfName::new(host.clone())),
        "inet_ip" => Box::new(super::inet_ip::InetIp),
        "kstack" => Box::new(super::kstack::Kstack::new(host.clone())),
        "ksym" => Box::new(super::ksym::Ksym::new(host.clone())),
        "kube_container" => Box::new(Kube::new(Part::Container, host.clone())),
        "kube_namespace" => Box::new(Kube::new(Part::Namespace, host.clone())),
        "kube_pod" => Box::new(Kube::new(Part::Pod, host.clone())),
        "majorminor" => Box::new(super::majorminor::MajorMinor::new(host.clone())),
        "pci_class" => Box::new(Pci::new(PciKind::Class, host.clone())),
        "pci_device" => Box::new(Pci::new(PciKind::Device, host.clone())),
        "pci_subclass" => Box::new(Pci::new(PciKind::Subclass, host.clone())),
        "pci_vendor" => Box::new(Pci::new(PciKind::Vendor, host.clone())),
        "regexp" => Box::new(super::regexp::Regexp::from_spec(spec)?),
        "static_map" => Box::new(super::static_map::StaticMap::from_spec(spec)?),
        "string" => Box::new(super::string::Str),
        "syscall" => Box::new(super::syscall::Syscall(names)),
        "systemd_unit" => Box::new(super::systemd_unit::SystemdUnit),
        "uint" => Box::new(super::uint::Uint::from_spec(spec)),
        other => {
            return Err(BuildError::new(
                spec,
                format!(
                    "unknown decoder {other:?}; known decoders: {}",
                    NAMES.join(", ")
                ),
            ))
        }
    };
    Ok(decoder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_is_refused_on_other_decoders() {
        let spec: DecoderSpec = serde_yaml::from_str("{name: uint, names: kernel}").expect("spec");
        let e = build_decoder(&spec, &Host::new()).err().expect("refused");
        assert_eq!(
            e.to_string(),
            "decoder `uint`: `names` applies only to the syscall and errno decoders"
        );
        let spec: DecoderSpec =
            serde_yaml::from_str("{name: syscall, names: kernel}").expect("spec");
        assert!(build_decoder(&spec, &Host::new()).is_ok());
    }
}
