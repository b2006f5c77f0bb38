//! `uint`: 1, 2, 4 or 8 bytes to decimal text.

use super::registry::{Entry, Guess, Opt};
use super::{DecodeError, Decoded, Decoder};
use crate::config::model::{ByteOrder, DecoderSpec};

pub const ENTRY: Entry = Entry {
    name: "uint",
    options: &[Opt::ByteOrder],
    pure: true,
    reads: &[],
    ours: false,
    input: "1, 2, 4 or 8 bytes",
    output: "decimal; `byte_order: big` (ours) reads network order",
    guess: Guess::NONE,
    build: |spec, _| Ok(Box::new(Uint::from_spec(spec))),
};

pub struct Uint {
    order: ByteOrder,
}

impl Uint {
    pub fn from_spec(spec: &DecoderSpec) -> Self {
        Self {
            order: spec.byte_order.unwrap_or_default(),
        }
    }
}

impl Decoder for Uint {
    fn decode(&self, input: &[u8]) -> Result<Decoded, DecodeError> {
        let value = read_uint(input, self.order)?;
        Ok(Decoded::Value(value.to_string().into_bytes()))
    }

    fn one_to_one(&self) -> bool {
        true
    }

    fn decode_into(&self, input: &[u8], out: &mut String) -> Result<(), DecodeError> {
        out.push_str(itoa::Buffer::new().format(read_uint(input, self.order)?));
        Ok(())
    }

    fn encode(&self, output: &[u8], width: usize) -> Option<Result<Vec<u8>, DecodeError>> {
        Some(
            super::parse_integer(output)
                .and_then(|v| super::int_bytes(v, width, false, self.order)),
        )
    }
}

/// Reads an unsigned integer of 1, 2, 4 or 8 bytes in the given order.
pub fn read_uint(input: &[u8], order: ByteOrder) -> Result<u64, DecodeError> {
    let mut buf = [0u8; 8];
    let n = input.len();
    if !matches!(n, 1 | 2 | 4 | 8) {
        return Err(DecodeError::Size {
            expected: "1, 2, 4 or 8",
            got: n,
        });
    }
    let big = match order {
        ByteOrder::Big => true,
        ByteOrder::Little => false,
        ByteOrder::Host => cfg!(target_endian = "big"),
    };
    if big {
        buf[8 - n..].copy_from_slice(input);
        Ok(u64::from_be_bytes(buf))
    } else {
        buf[..n].copy_from_slice(input);
        Ok(u64::from_le_bytes(buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uint(order: ByteOrder, input: &[u8]) -> Result<Decoded, DecodeError> {
        Uint { order }.decode(input)
    }

    #[test]
    fn decodes_every_width_in_host_order() {
        let host = ByteOrder::Host;
        assert_eq!(uint(host, &[7]), Ok(Decoded::Value(b"7".to_vec())));
        assert_eq!(
            uint(host, &513u16.to_ne_bytes()),
            Ok(Decoded::Value(b"513".to_vec()))
        );
        assert_eq!(
            uint(host, &70000u32.to_ne_bytes()),
            Ok(Decoded::Value(b"70000".to_vec()))
        );
        assert_eq!(
            uint(host, &u64::MAX.to_ne_bytes()),
            Ok(Decoded::Value(b"18446744073709551615".to_vec()))
        );
    }

    #[test]
    fn big_endian_reads_network_order_ports() {
        assert_eq!(
            uint(ByteOrder::Big, &[0x1f, 0x90]),
            Ok(Decoded::Value(b"8080".to_vec()))
        );
        assert_eq!(
            uint(ByteOrder::Little, &[0x90, 0x1f]),
            Ok(Decoded::Value(b"8080".to_vec()))
        );
    }

    #[test]
    fn rejects_odd_sizes() {
        for n in [0usize, 3, 5, 16] {
            assert!(
                matches!(uint(ByteOrder::Host, &vec![0; n]), Err(DecodeError::Size { got, .. }) if got == n)
            );
        }
    }
}
