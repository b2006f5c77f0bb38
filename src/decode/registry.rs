//! The decoders this build knows, one [`Entry`] each: its name, the options
//! it takes, whether its output follows from its input alone, the host
//! tables it reads while serving, what it does (for `ebpf-exporter
//! decoders` and the README's table), and how to build it.
//!
//! Everything else asks here: building a chain, refusing an option a
//! decoder does not take, the privileges kept after the capability drop,
//! `describe`'s guesses. Adding a decoder is its file, which defines its
//! `ENTRY`, plus one line in [`DECODERS`].

use std::sync::Arc;

use super::Decoder;
use crate::config::model::{DecoderSpec, NameTable};
use crate::host::{Host, HostTable};

/// A decoder option: a key of a decoder's YAML besides `name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opt {
    StaticMap,
    AllowUnknown,
    Regexps,
    ByteOrder,
    Names,
}

impl Opt {
    const ALL: [Opt; 5] = [
        Opt::StaticMap,
        Opt::AllowUnknown,
        Opt::Regexps,
        Opt::ByteOrder,
        Opt::Names,
    ];

    /// The option's YAML key.
    pub const fn key(self) -> &'static str {
        match self {
            Opt::StaticMap => "static_map",
            Opt::AllowUnknown => "allow_unknown",
            Opt::Regexps => "regexps",
            Opt::ByteOrder => "byte_order",
            Opt::Names => "names",
        }
    }

    fn given(self, spec: &DecoderSpec) -> bool {
        match self {
            Opt::StaticMap => spec.static_map.is_some(),
            Opt::AllowUnknown => spec.allow_unknown.is_some(),
            Opt::Regexps => spec.regexps.is_some(),
            Opt::ByteOrder => spec.byte_order.is_some(),
            Opt::Names => spec.names.is_some(),
        }
    }
}

/// When `describe` suggests a decoder for a key member: by the member's
/// name (exactly, or by its ending) and size.
pub struct Guess {
    pub members: &'static [&'static str],
    pub suffixes: &'static [&'static str],
    /// Sizes in bytes it suits; any size when empty.
    pub sizes: &'static [usize],
    /// Whether it reads the decimal text `uint` makes, not the raw bytes.
    pub after_uint: bool,
}

impl Guess {
    pub const NONE: Guess = Guess {
        members: &[],
        suffixes: &[],
        sizes: &[],
        after_uint: false,
    };

    /// Whether a member called `name` (lowercase) of `size` bytes suits.
    pub fn suits(&self, name: &str, size: usize) -> bool {
        (self.members.contains(&name) || self.suffixes.iter().any(|s| name.ends_with(s)))
            && (self.sizes.is_empty() || self.sizes.contains(&size))
    }
}

/// How an entry builds its decoder from the config's spec; `Err` says what
/// is wrong with an option's value.
pub type Build = fn(&DecoderSpec, &Arc<Host>) -> Result<Box<dyn Decoder>, String>;

/// One decoder: everything the exporter knows of it.
pub struct Entry {
    pub name: &'static str,
    /// The options it takes; any other is refused.
    pub options: &'static [Opt],
    /// Whether its output follows from its input bytes alone and can never
    /// change for them: keys whose labels only such decoders make are
    /// never decoded again while they stay in the map. Decoders that look
    /// things up on the host are not, because what they name can change.
    pub pure: bool,
    /// The host tables it reads while serving.
    pub reads: &'static [HostTable],
    /// Not in the reference exporter.
    pub ours: bool,
    /// What it takes, and what it makes of it, for the README's table.
    pub input: &'static str,
    pub output: &'static str,
    /// Which key members `describe` suggests it for.
    pub guess: Guess,
    pub build: Build,
}

/// Every decoder, in the order the README lists them.
pub static DECODERS: &[&Entry] = &[
    &super::uint::ENTRY,
    &super::int::ENTRY,
    &super::string::ENTRY,
    &super::hex::ENTRY,
    &super::static_map::ENTRY,
    &super::regexp::ENTRY,
    &super::syscall::ENTRY,
    &super::errno::ENTRY,
    &super::majorminor::ENTRY,
    &super::majorminor::KDEV,
    &super::inet_ip::ENTRY,
    &super::ksym::ENTRY,
    &super::kstack::ENTRY,
    &super::ifname::ENTRY,
    &super::pid::ENTRY,
    &super::cgroup::ENTRY,
    &super::kube::NAMESPACE,
    &super::kube::POD,
    &super::kube::CONTAINER,
    &super::systemd_unit::ENTRY,
    &super::uid::ENTRY,
    &super::dname::ENTRY,
    &super::pci::VENDOR,
    &super::pci::DEVICE,
    &super::pci::CLASS,
    &super::pci::SUBCLASS,
];

/// The decoder `describe` suggests for an integer key member called `name`
/// (lowercase) of `size` bytes, if one suits.
pub fn guess(name: &str, size: usize) -> Option<&'static Entry> {
    DECODERS.iter().copied().find(|e| e.guess.suits(name, size))
}

/// The entry of the decoder called `name`.
pub fn entry(name: &str) -> Option<&'static Entry> {
    DECODERS.iter().copied().find(|e| e.name == name)
}

/// A decoder spec that cannot become a decoder: an unknown name, an option
/// it does not take, or a bad option value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("decoder `{name}`: {reason}")]
pub struct BuildError {
    pub name: String,
    /// The option at fault, if one is: where the error points in the YAML.
    pub option: Option<&'static str>,
    pub reason: String,
}

impl BuildError {
    pub fn new(spec: &DecoderSpec, reason: impl Into<String>) -> Self {
        Self {
            name: spec.name.clone(),
            option: None,
            reason: reason.into(),
        }
    }
}

/// A decoder, with what its entry says of it.
pub struct Built {
    pub decoder: Box<dyn Decoder>,
    pub pure: bool,
}

/// Builds the decoder `spec` names, refusing options it does not take.
pub fn build_decoder(spec: &DecoderSpec, host: &Arc<Host>) -> Result<Built, BuildError> {
    let Some(entry) = entry(&spec.name) else {
        let known: Vec<&str> = DECODERS.iter().map(|e| e.name).collect();
        return Err(BuildError::new(
            spec,
            format!(
                "unknown decoder {:?}; known decoders: {}",
                spec.name,
                known.join(", ")
            ),
        ));
    };
    if let Some(extra) = Opt::ALL
        .iter()
        .find(|o| o.given(spec) && !entry.options.contains(o))
    {
        let takes: Vec<&str> = entry.options.iter().map(|o| o.key()).collect();
        return Err(BuildError {
            name: spec.name.clone(),
            option: Some(extra.key()),
            reason: format!(
                "takes no `{}` option ({})",
                extra.key(),
                if takes.is_empty() {
                    "it takes none".to_string()
                } else {
                    format!("it takes {}", takes.join(", "))
                }
            ),
        });
    }
    let decoder = (entry.build)(spec, host).map_err(|reason| BuildError::new(spec, reason))?;
    Ok(Built {
        decoder,
        pure: entry.pure,
    })
}

/// The names table `syscall` and `errno` read, from their `names` option.
pub(super) fn names_of(spec: &DecoderSpec) -> super::tables::Names {
    match spec.names.unwrap_or_default() {
        NameTable::Reference => super::tables::Names::Reference,
        NameTable::Kernel => super::tables::Names::Kernel,
    }
}

/// The README's decoder table, from the entries.
pub fn markdown_table() -> String {
    let mut out = String::from("| decoder | input | output | options |\n|---|---|---|---|\n");
    for e in DECODERS {
        let ours = if e.ours { " (ours)" } else { "" };
        let options: Vec<String> = e.options.iter().map(|o| format!("`{}`", o.key())).collect();
        out.push_str(&format!(
            "| `{}`{ours} | {} | {} | {} |\n",
            e.name,
            e.input,
            e.output,
            if options.is_empty() {
                "–".to_string()
            } else {
                options.join(", ")
            }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> DecoderSpec {
        serde_yaml::from_str(yaml).expect("spec")
    }

    fn refused(yaml: &str) -> BuildError {
        build_decoder(&spec(yaml), &Host::new())
            .err()
            .expect("refused")
    }

    #[test]
    fn options_a_decoder_does_not_take_are_refused_with_the_option() {
        let e = refused("{name: uint, names: kernel}");
        assert_eq!(e.option, Some("names"));
        assert_eq!(
            e.to_string(),
            "decoder `uint`: takes no `names` option (it takes byte_order)"
        );
        let e = refused("{name: uint, regexps: ['x']}");
        assert_eq!(e.option, Some("regexps"));
        let e = refused("{name: hex, allow_unknown: false}");
        assert_eq!(
            e.to_string(),
            "decoder `hex`: takes no `allow_unknown` option (it takes none)"
        );
        assert!(build_decoder(&spec("{name: syscall, names: kernel}"), &Host::new()).is_ok());
        assert!(build_decoder(
            &spec("{name: static_map, static_map: {1: a}, allow_unknown: true}"),
            &Host::new()
        )
        .is_ok());
    }

    #[test]
    fn unknown_names_list_every_decoder() {
        let e = refused("{name: sycsall}");
        assert_eq!(e.option, None);
        assert!(e
            .reason
            .starts_with("unknown decoder \"sycsall\"; known decoders: uint, int, string"));
        assert!(e.reason.contains("uid"));
    }

    #[test]
    fn every_entry_is_listed_once_and_builds_with_no_options_where_it_needs_none() {
        let mut names: Vec<&str> = DECODERS.iter().map(|e| e.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DECODERS.len(), "a name is listed twice");
        for e in DECODERS {
            let built = build_decoder(&spec(&format!("{{name: {}}}", e.name)), &Host::new());
            match e.name {
                // These need their option.
                "static_map" | "regexp" => assert!(built.is_err(), "{}", e.name),
                _ => assert_eq!(built.map(|b| b.pure).ok(), Some(e.pure), "{}", e.name),
            }
        }
    }
}
