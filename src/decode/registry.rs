//! Builds decoders by name. Adding a decoder is one file plus one line here.

use std::sync::Arc;

use super::Decoder;
use crate::config::model::DecoderSpec;

/// Resources shared by all decoders of the process: system tables that are
/// costly to load and worth loading once (kallsyms, cgroup paths, pci.ids).
/// Each loads on first use, so configs that never need one pay nothing.
#[derive(Default)]
pub struct DecoderEnv {
    pub kallsyms: Arc<super::kallsyms::Kallsyms>,
    pub cgroups: Arc<super::cgroup::CgroupTable>,
    pub pci_ids: Arc<super::pci_ids::PciIds>,
}

impl DecoderEnv {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
}

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
    "majorminor",
    "pci_class",
    "pci_device",
    "pci_subclass",
    "pci_vendor",
    "regexp",
    "static_map",
    "string",
    "syscall",
    "uint",
];

pub fn build_decoder(
    spec: &DecoderSpec,
    env: &Arc<DecoderEnv>,
) -> Result<Box<dyn Decoder>, BuildError> {
    use super::pci::{Pci, PciKind};
    let decoder: Box<dyn Decoder> = match spec.name.as_str() {
        "cgroup" => Box::new(super::cgroup::Cgroup::new(env.cgroups.clone())),
        "dname" => Box::new(super::dname::Dname),
        "errno" => Box::new(super::errno::Errno),
        "hex" => Box::new(super::hex::Hex),
        "ifname" => Box::new(super::ifname::IfName::default()),
        "inet_ip" => Box::new(super::inet_ip::InetIp),
        "kstack" => Box::new(super::kstack::Kstack::new(env.kallsyms.clone())),
        "ksym" => Box::new(super::ksym::Ksym::new(env.kallsyms.clone())),
        "majorminor" => Box::new(super::majorminor::MajorMinor::new()),
        "pci_class" => Box::new(Pci::new(PciKind::Class, env.pci_ids.clone())),
        "pci_device" => Box::new(Pci::new(PciKind::Device, env.pci_ids.clone())),
        "pci_subclass" => Box::new(Pci::new(PciKind::Subclass, env.pci_ids.clone())),
        "pci_vendor" => Box::new(Pci::new(PciKind::Vendor, env.pci_ids.clone())),
        "regexp" => Box::new(super::regexp::Regexp::from_spec(spec)?),
        "static_map" => Box::new(super::static_map::StaticMap::from_spec(spec)?),
        "string" => Box::new(super::string::Str),
        "syscall" => Box::new(super::syscall::Syscall),
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
