//! `errno`: an errno number (decimal text) to its name, such as `EPIPE`.

use super::tables::errno_name;
use super::{parse_decimal, DecodeError, Decoded, Decoder};

pub struct Errno;

impl Decoder for Errno {
    fn decode(&self, input: &[u8]) -> Result<Decoded, DecodeError> {
        let n = parse_decimal(input)?;
        Ok(match errno_name(n) {
            Some(name) => Decoded::Value(name.as_bytes().to_vec()),
            None => Decoded::Value(format!("unknown:{n}").into_bytes()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_known_numbers() {
        assert_eq!(Errno.decode(b"2"), Ok(Decoded::Value(b"ENOENT".to_vec())));
        assert_eq!(
            Errno.decode(b"4000"),
            Ok(Decoded::Value(b"unknown:4000".to_vec()))
        );
        assert!(Errno.decode(b"").is_err());
    }
}
