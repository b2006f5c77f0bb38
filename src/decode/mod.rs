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
pub mod pid;
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
    /// The name of something that existed and is gone (a removed
    /// cgroup): used like a value, once more, and the row's key is one the
    /// map can forget (`delete_gone`).
    Gone(Vec<u8>),
    /// A stand-in for something that no longer exists and whose name was
    /// never learned (a cgroup removed before the exporter saw it):
    /// unknown and gone at once, so it folds with `fold_unknown` and is
    /// forgotten with `delete_gone`.
    Vanished(Vec<u8>),
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

    /// The input that decodes to `output`, for map entries written from
    /// label text (`maps.NAME.entries`). `width` is the key member's size,
    /// which decoders of raw bytes fill exactly. `None`: this decoder's
    /// output does not say its input (a cgroup path whose id is not known
    /// before the cgroup exists, a hash), so it cannot be reversed.
    fn encode(&self, _output: &[u8], _width: usize) -> Option<Result<Vec<u8>, DecodeError>> {
        None
    }

    /// Whether different inputs always give different outputs, and the
    /// output depends on the input alone, as text that needs no escaping
    /// (a number): a key decoded only by such decoders, with every byte in
    /// some label, is its own label set, so its row can be written as it
    /// is read, with no cache and no sums (`RowDecoder::distinct`).
    fn one_to_one(&self) -> bool {
        false
    }

    /// Appends what `decode` gives for `input`, without allocating where
    /// the decoder can: the direct path's per-entry decode.
    fn decode_into(&self, input: &[u8], out: &mut String) -> Result<(), DecodeError> {
        match self.decode(input)? {
            Decoded::Value(v) | Decoded::Unknown(v) | Decoded::Gone(v) | Decoded::Vanished(v) => {
                out.push_str(&String::from_utf8_lossy(&v));
            }
            Decoded::Drop => {}
        }
        Ok(())
    }

    /// A count that moves whenever rows this decoder gave before may have
    /// changed meaning (a cgroup removed): cached rows are then decoded
    /// again. Decoders whose answers only appear, never go, keep 0.
    fn changes(&self) -> u64 {
        0
    }
}

/// Parses label text as the integer it spells: decimal, or `0x` hex.
pub(crate) fn parse_integer(output: &[u8]) -> Result<i128, DecodeError> {
    let text = std::str::from_utf8(output).unwrap_or("").trim();
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => i128::from_str_radix(hex, 16),
        None => text.parse::<i128>(),
    };
    parsed.map_err(|_| DecodeError::Invalid(format!("{text:?} is not an integer")))
}

/// `value` as `width` bytes in `order`, refused when it does not fit.
pub(crate) fn int_bytes(
    value: i128,
    width: usize,
    signed: bool,
    order: crate::config::model::ByteOrder,
) -> Result<Vec<u8>, DecodeError> {
    if !matches!(width, 1 | 2 | 4 | 8) {
        return Err(DecodeError::Size {
            expected: "1, 2, 4 or 8",
            got: width,
        });
    }
    let bits = width as u32 * 8;
    let (min, max) = if signed {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    } else {
        (0, (1i128 << bits) - 1)
    };
    if value < min || value > max {
        return Err(DecodeError::Invalid(format!(
            "{value} does not fit in {width} byte(s){}",
            if signed { ", signed" } else { "" }
        )));
    }
    let le = (value as u64).to_le_bytes();
    let mut out = le[..width].to_vec();
    let big = match order {
        crate::config::model::ByteOrder::Big => true,
        crate::config::model::ByteOrder::Little => false,
        crate::config::model::ByteOrder::Host => cfg!(target_endian = "big"),
    };
    if big {
        out.reverse();
    }
    Ok(out)
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

#[cfg(test)]
mod reverse_tests {
    use super::*;
    use crate::config::model::ByteOrder;

    fn back_and_forth(d: &dyn Decoder, bytes: &[u8]) {
        let Ok(Decoded::Value(text)) = d.decode(bytes) else {
            panic!("decodes {bytes:?}");
        };
        let again = d.encode(&text, bytes.len());
        assert_eq!(
            again,
            Some(Ok(bytes.to_vec())),
            "{:?}",
            String::from_utf8_lossy(&text)
        );
    }

    /// Each reversible decoder's `encode` gives back the bytes its
    /// `decode` read, at every width it takes.
    #[test]
    fn encode_inverts_decode() {
        let uint = uint::Uint::from_spec(&serde_yaml::from_str("name: uint").unwrap());
        for bytes in [
            &[7u8][..],
            &513u16.to_ne_bytes(),
            &70000u32.to_ne_bytes(),
            &u64::MAX.to_ne_bytes(),
        ] {
            back_and_forth(&uint, bytes);
        }
        let big =
            uint::Uint::from_spec(&serde_yaml::from_str("{name: uint, byte_order: big}").unwrap());
        back_and_forth(&big, &8080u16.to_be_bytes());
        let int = int::Int::from_spec(&serde_yaml::from_str("name: int").unwrap());
        for bytes in [
            &(-14i8).to_ne_bytes()[..],
            &(-2i32).to_ne_bytes(),
            &i64::MIN.to_ne_bytes(),
        ] {
            back_and_forth(&int, bytes);
        }
        back_and_forth(&hex::Hex, &[0xde, 0xad, 0x00, 0x01]);
        let mut comm = b"nginx".to_vec();
        comm.resize(16, 0);
        back_and_forth(&string::Str, &comm);
        let kernel = syscall::Syscall(tables::Names::Kernel);
        assert_eq!(kernel.encode(b"getpid", 4), Some(Ok(b"39".to_vec())));
        assert_eq!(kernel.encode(b"exit_group", 4), Some(Ok(b"231".to_vec())));
    }

    #[test]
    fn what_does_not_fit_is_refused() {
        let uint = uint::Uint::from_spec(&serde_yaml::from_str("name: uint").unwrap());
        assert!(matches!(uint.encode(b"256", 1), Some(Err(_))));
        assert!(matches!(uint.encode(b"-1", 4), Some(Err(_))));
        assert!(matches!(uint.encode(b"twelve", 4), Some(Err(_))));
        assert_eq!(
            uint.encode(b"0x10", 2),
            Some(Ok(16u16.to_ne_bytes().to_vec()))
        );
        let int = int::Int::from_spec(&serde_yaml::from_str("name: int").unwrap());
        assert!(matches!(int.encode(b"128", 1), Some(Err(_))));
        assert!(matches!(
            string::Str.encode(b"sixteen-bytes-xx", 16),
            Some(Err(_))
        ));
        assert!(matches!(hex::Hex.encode(b"abc", 2), Some(Err(_))));
        assert_eq!(int_bytes(1, 2, false, ByteOrder::Big), Ok(vec![0, 1]));
    }
}
