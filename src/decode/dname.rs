//! `dname`: a DNS name in wire format (length-prefixed labels) to dotted
//! text, `\x07example\x03com\x00` to `example.com`. Usually chained after
//! `string`, which already cut the name at its terminating zero.

use super::registry::{Entry, Guess};
use super::{DecodeError, Decoded, Decoder};

/// Label lengths above 63 are compression pointers or reserved label types,
/// which a name copied out of a packet by a BPF program cannot follow.
const MAX_LABEL: usize = 63;

pub const ENTRY: Entry = Entry {
    name: "dname",
    options: &[],
    pure: true,
    reads: &[],
    ours: false,
    input: "DNS wire format",
    output: "dotted name",
    guess: Guess::NONE,
    build: |_, _| Ok(Box::new(Dname)),
};

pub struct Dname;

impl Decoder for Dname {
    fn decode(&self, input: &[u8]) -> Result<Decoded, DecodeError> {
        let mut labels: Vec<&[u8]> = Vec::new();
        let mut rest = input;
        while let Some((&len, tail)) = rest.split_first() {
            let len = usize::from(len);
            if len == 0 {
                break;
            }
            if len > MAX_LABEL {
                return Err(invalid(input, format!("label length {len} is over 63")));
            }
            let label = tail.get(..len).ok_or_else(|| {
                invalid(
                    input,
                    format!(
                        "label of {len} bytes runs past the end ({} left)",
                        tail.len()
                    ),
                )
            })?;
            labels.push(label);
            rest = &tail[len..];
        }
        if labels.is_empty() {
            // The root, as the reference writes it.
            return Ok(Decoded::Value(b".".to_vec()));
        }
        let name = labels.join(&b'.');
        if std::str::from_utf8(&name).is_err() {
            return Err(invalid(input, "name is not valid UTF-8".into()));
        }
        Ok(Decoded::Value(name))
    }
}

fn invalid(input: &[u8], why: String) -> DecodeError {
    DecodeError::Invalid(format!(
        "dname: {why} in {:?}",
        input.escape_ascii().to_string()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(input: &[u8]) -> Result<String, DecodeError> {
        match Dname.decode(input)? {
            Decoded::Value(v) => Ok(String::from_utf8(v).expect("utf8")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn decodes_names_like_the_reference() {
        assert_eq!(name(b"").as_deref(), Ok("."));
        assert_eq!(name(b"\0").as_deref(), Ok("."));
        assert_eq!(name(b"\x03com").as_deref(), Ok("com"));
        assert_eq!(name(b"\x07example\x03com").as_deref(), Ok("example.com"));
        // Raw wire format: the terminator ends it; the buffer's tail is ignored.
        assert_eq!(
            name(b"\x07example\x03com\0\0\0\x05junk").as_deref(),
            Ok("example.com")
        );
    }

    #[test]
    fn malformed_names_are_errors() {
        assert!(name(b"\x05com").is_err(), "runs past the end");
        assert!(name(b"\x03com\x02a").is_err(), "second label runs past");
        assert!(name(b"\xc0\x0c").is_err(), "compression pointer");
        assert!(name(b"\x02\xff\xfe").is_err(), "invalid UTF-8");
    }
}
