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

const DIGITS: &[u8; 16] = b"0123456789abcdef";

impl Decoder for Hex {
    fn decode(&self, input: &[u8]) -> Result<Decoded, DecodeError> {
        let mut out = Vec::with_capacity(input.len() * 2);
        for b in input {
            out.push(DIGITS[(b >> 4) as usize]);
            out.push(DIGITS[(b & 0xf) as usize]);
        }
        Ok(Decoded::Value(out))
    }

    fn one_to_one(&self) -> bool {
        true
    }

    fn decode_into(&self, input: &[u8], out: &mut String) -> Result<(), DecodeError> {
        for b in input {
            out.push(DIGITS[(b >> 4) as usize] as char);
            out.push(DIGITS[(b & 0xf) as usize] as char);
        }
        Ok(())
    }

    fn encode(&self, output: &[u8], width: usize) -> Option<Result<Vec<u8>, DecodeError>> {
        let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        let bytes: Option<Vec<u8>> = output
            .chunks(2)
            .map(|p| match p {
                [h, l] => Some(digit(*h)? << 4 | digit(*l)?),
                _ => None,
            })
            .collect();
        Some(match bytes {
            Some(b) if b.len() == width => Ok(b),
            _ => Err(DecodeError::Invalid(format!(
                "{:?} is not {width} bytes in hex ({} digits)",
                String::from_utf8_lossy(output),
                width * 2
            ))),
        })
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
