//! `hex`: raw bytes to lowercase hex.

use super::registry::{Entry, Guess};
use super::{DecodeError, Decoded, Decoder};

pub const ENTRY: Entry = Entry {
    name: "hex",
    options: &[],
    pure: true,
    reads: &[],
    ours: false,
    input: "bytes",
    output: "lowercase hex",
    guess: Guess::NONE,
    build: |_, _| Ok(Box::new(Hex)),
};

pub struct Hex;

impl Decoder for Hex {
    fn decode(&self, input: &[u8]) -> Result<Decoded, DecodeError> {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = Vec::with_capacity(input.len() * 2);
        for b in input {
            out.push(DIGITS[(b >> 4) as usize]);
            out.push(DIGITS[(b & 0xf) as usize]);
        }
        Ok(Decoded::Value(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercase_two_digits_per_byte() {
        assert_eq!(
            Hex.decode(&[0x00, 0xab, 0x0f]),
            Ok(Decoded::Value(b"00ab0f".to_vec()))
        );
        assert_eq!(Hex.decode(&[]), Ok(Decoded::Value(Vec::new())));
    }
}
