//! `syscall`: a syscall number (decimal text) to its name on the host arch.

use super::tables::syscall_name;
use super::{parse_decimal, DecodeError, Decoded, Decoder};

pub struct Syscall;

impl Decoder for Syscall {
    fn decode(&self, input: &[u8]) -> Result<Decoded, DecodeError> {
        let nr = parse_decimal(input)?;
        Ok(match syscall_name(nr) {
            Some(name) => Decoded::Value(name.as_bytes().to_vec()),
            None => Decoded::Value(format!("unknown_syscall:{nr}").into_bytes()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_known_numbers() {
        assert_eq!(Syscall.decode(b"1"), Ok(Decoded::Value(b"write".to_vec())));
        assert_eq!(
            Syscall.decode(b"99999"),
            Ok(Decoded::Value(b"unknown_syscall:99999".to_vec()))
        );
        assert!(Syscall.decode(b"abc").is_err());
    }
}
