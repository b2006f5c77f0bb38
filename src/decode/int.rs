//! `int`: 1, 2, 4 or 8 bytes to signed decimal text, for members such as
//! stack ids, where a negative value is an error code (`-EFAULT`) that
//! `uint` would show as 4294967282.

use super::registry::{Entry, Guess, Opt};
use super::uint::read_uint;
use super::{DecodeError, Decoded, Decoder};
use crate::config::model::{ByteOrder, DecoderSpec};

pub const ENTRY: Entry = Entry {
    name: "int",
    options: &[Opt::ByteOrder],
    pure: true,
    reads: &[],
    ours: true,
    input: "1, 2, 4 or 8 bytes",
    output: "signed decimal (two's complement); `byte_order: big` reads network order",
    guess: Guess::NONE,
    build: |spec, _| Ok(Box::new(Int::from_spec(spec))),
};

pub struct Int {
    order: ByteOrder,
}

impl Int {
    pub fn from_spec(spec: &DecoderSpec) -> Self {
        Self {
            order: spec.byte_order.unwrap_or_default(),
        }
    }

    fn value(&self, input: &[u8]) -> Result<i64, DecodeError> {
        let raw = read_uint(input, self.order)?;
        // Sign-extend from the input's width.
        let bits = input.len() * 8;
        let shift = 64 - bits as u32;
        Ok(((raw << shift) as i64) >> shift)
    }
}

impl Decoder for Int {
    fn decode(&self, input: &[u8]) -> Result<Decoded, DecodeError> {
        Ok(Decoded::Value(self.value(input)?.to_string().into_bytes()))
    }

    fn one_to_one(&self) -> bool {
        true
    }

    fn decode_into(&self, input: &[u8], out: &mut String) -> Result<(), DecodeError> {
        out.push_str(itoa::Buffer::new().format(self.value(input)?));
        Ok(())
    }

    fn encode(&self, output: &[u8], width: usize) -> Option<Result<Vec<u8>, DecodeError>> {
        Some(
            super::parse_integer(output).and_then(|v| super::int_bytes(v, width, true, self.order)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(order: ByteOrder, input: &[u8]) -> Result<Decoded, DecodeError> {
        Int { order }.decode(input)
    }

    #[test]
    fn sign_extends_every_width() {
        let host = ByteOrder::Host;
        let text = |s: &str| Ok(Decoded::Value(s.as_bytes().to_vec()));
        assert_eq!(int(host, &[0xff]), text("-1"));
        assert_eq!(int(host, &[0x7f]), text("127"));
        assert_eq!(int(host, &(-14i32).to_ne_bytes()), text("-14"));
        assert_eq!(int(host, &(-300i16).to_ne_bytes()), text("-300"));
        assert_eq!(
            int(host, &i64::MIN.to_ne_bytes()),
            text("-9223372036854775808")
        );
        assert_eq!(int(host, &42u64.to_ne_bytes()), text("42"));
        assert_eq!(int(ByteOrder::Big, &[0xff, 0xfe]), text("-2"));
        assert!(int(host, &[1, 2, 3]).is_err());
    }
}
