//! Label decoders: they turn the bytes of one BPF map key field into the
//! string a Prometheus label carries.
//!
//! Each decoder is one small file behind the [`Decoder`] trait, with its
//! registry entry (name, options, purity, host tables), listed in
//! [`registry`]. Decoders chain: the first gets the raw key bytes, each
//! later one gets the previous output, as in the reference exporter.

pub mod cgroup;
pub mod chain;
pub mod dname;
pub mod errno;
pub mod hex;
pub mod ifname;
pub mod inet_ip;
pub mod int;
pub mod kstack;
pub mod ksym;
pub mod kube;
pub mod majorminor;
pub mod pci;
pub mod regexp;
pub mod registry;
pub mod static_map;
pub mod string;
pub mod syscall;
pub mod systemd_unit;
pub mod tables;
pub mod uid;
pub mod uint;

pub use chain::{LabelDecoder, RowDecoder};
pub use registry::build_decoder;

/// What one decoder made of its input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A value, handed to the next decoder or used as the label.
    Value(Vec<u8>),
    /// A stand-in for something not known yet (`unknown:…`): used like a
    /// value, but a row holding one is cached only briefly, so that it heals
    /// once the thing appears (a disk plugged in, a cgroup created).
    Unknown(Vec<u8>),
    /// The whole row is to be left out of the metric (a `regexp` miss).
    Drop,
}

/// Input a decoder cannot make sense of. The row is skipped for this scrape
/// and counted in `ebpf_exporter_decoder_errors_total`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("expected {expected} bytes, got {got}")]
    Size { expected: &'static str, got: usize },
    #[error("{0}")]
    Invalid(String),
}

/// One decoding step. Implementations keep any caches behind interior
/// mutability, because one decoder instance serves every row of a map.
/// What else the exporter knows of a decoder is in its registry entry.
pub trait Decoder: Send + Sync {
    fn decode(&self, input: &[u8]) -> Result<Decoded, DecodeError>;
}

/// Reads the native-endian integer of `N` bytes at the start of `input`.
/// Longer input is accepted and its tail ignored, as the reference does for
/// device numbers, interface indexes and addresses.
pub(crate) fn read_prefix<const N: usize>(
    input: &[u8],
    expected: &'static str,
) -> Result<[u8; N], DecodeError> {
    input
        .get(..N)
        .and_then(|b| b.try_into().ok())
        .ok_or(DecodeError::Size {
            expected,
            got: input.len(),
        })
}

/// Parses the decimal text a previous decoder (usually `uint`) produced.
pub(crate) fn parse_decimal(input: &[u8]) -> Result<u64, DecodeError> {
    std::str::from_utf8(input)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .ok_or_else(|| {
            DecodeError::Invalid(format!(
                "expected a decimal number (chain `uint` before this decoder), got {:?}",
                String::from_utf8_lossy(input)
            ))
        })
}

/// Reads a `number name` snapshot of scripts/data/ (comments start with
/// `#`), which the table tests compare the decoders with.
#[cfg(test)]
pub(crate) fn snapshot_table(text: &str) -> std::collections::HashMap<u64, &str> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (nr, name) = l.split_once(' ')?;
            Some((nr.parse().ok()?, name))
        })
        .collect()
}
