//! `string`: bytes up to the first NUL.

use super::registry::{Entry, Guess};
use super::{DecodeError, Decoded, Decoder};

pub const ENTRY: Entry = Entry {
    name: "string",
    options: &[],
    pure: true,
    reads: &[],
    ours: false,
    input: "bytes",
    output: "text up to the first NUL (must be UTF-8)",
    guess: Guess::NONE,
    build: |_, _| Ok(Box::new(Str)),
};

pub struct Str;

impl Decoder for Str {
    fn decode(&self, input: &[u8]) -> Result<Decoded, DecodeError> {
        let end = input.iter().position(|&b| b == 0).unwrap_or(input.len());
        let text = &input[..end];
        // Label values must be UTF-8. Replacing bad bytes would merge distinct
        // keys into one series without anyone noticing, so it is an error.
        match std::str::from_utf8(text) {
            Ok(_) => Ok(Decoded::Value(text.to_vec())),
            Err(e) => Err(DecodeError::Invalid(format!(
                "string is not valid UTF-8: {e}"
            ))),
        }
    }

    /// The text, NUL-padded to the member: one byte short of it at most,
    /// so that C's string functions find the end.
    fn encode(&self, output: &[u8], width: usize) -> Option<Result<Vec<u8>, DecodeError>> {
        if output.len() >= width || output.contains(&0) {
            return Some(Err(DecodeError::Invalid(format!(
                "{:?} does not fit in {width} bytes with its NUL",
                String::from_utf8_lossy(output)
            ))));
        }
        let mut out = output.to_vec();
        out.resize(width, 0);
        Some(Ok(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_at_first_nul() {
        assert_eq!(
            Str.decode(b"bash\0\0junk"),
            Ok(Decoded::Value(b"bash".to_vec()))
        );
        assert_eq!(Str.decode(b"full"), Ok(Decoded::Value(b"full".to_vec())));
        assert_eq!(Str.decode(b"\0abc"), Ok(Decoded::Value(Vec::new())));
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        assert!(matches!(
            Str.decode(&[b'a', 0xff, b'b', 0]),
            Err(DecodeError::Invalid(_))
        ));
        // Bytes after the NUL are never looked at.
        assert_eq!(
            Str.decode(&[b'a', 0, 0xff]),
            Ok(Decoded::Value(b"a".to_vec()))
        );
    }
}
