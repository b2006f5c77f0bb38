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
    "dname",
    "errno",
    "hex",
    "ifname",
    "inet_ip",
    "kstack",
    "ksym",
    "majorminor",
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
    let decoder: Box<dyn Decoder> = match spec.name.as_str() {
        "dname" => Box::new(super::dname::Dname),
        "errno" => Box::new(super::errno::Errno),
        "hex" => Box::new(super::hex::Hex),
        "ifname" => Box::new(super::ifname::IfName::default()),
        "inet_ip" => Box::new(super::inet_ip::InetIp),
        "kstack" => Box::new(super::kstack::Kstack::new(env.kallsyms.clone())),
        "ksym" => Box::new(super::ksym::Ksym::new(env.kallsyms.clone())),
        "majorminor" => Box::new(super::majorminor::MajorMinor::new()),
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
