//! `errno`: an errno number (decimal text) to its name, such as `EPIPE`,
//! as Go's `unix.ErrnoName` (the reference) gives it unless `names: kernel`.

use super::registry::{Entry, Guess, Opt};
use super::tables::{errno_name, Names};
use super::{parse_decimal, DecodeError, Decoded, Decoder};

pub const ENTRY: Entry = Entry {
    name: "errno",
    options: &[Opt::Names],
    pure: true,
    reads: &[],
    ours: false,
    input: "decimal",
    output: "errno name such as `EPIPE`. By default Go's names, as the reference prints them (95 is `ENOTSUP`, 512 and up `unknown:N`); `names: kernel` gives uapi names (`EOPNOTSUPP`) and the kernel-internal codes (`ERESTARTSYS`)",
    guess: Guess { members: &["errno", "err", "error"], suffixes: &[], sizes: &[], after_uint: true },
    build: |spec, _| Ok(Box::new(Errno(super::registry::names_of(spec)))),
};

pub struct Errno(pub Names);

impl Decoder for Errno {
    fn decode(&self, input: &[u8]) -> Result<Decoded, DecodeError> {
        let n = parse_decimal(input)?;
        Ok(match errno_name(n, self.0) {
            Some(name) => Decoded::Value(name.as_bytes().to_vec()),
            None => Decoded::Value(format!("unknown:{n}").into_bytes()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(names: Names, n: u64) -> String {
        match Errno(names).decode(n.to_string().as_bytes()) {
            Ok(Decoded::Value(v)) => String::from_utf8(v).expect("utf-8"),
            other => panic!("{n}: {other:?}"),
        }
    }

    #[test]
    fn reference_names_match_the_snapshot_for_every_number() {
        let snapshot = include_str!("../../scripts/data/reference-errno.txt");
        let expected = crate::decode::snapshot_table(snapshot);
        assert_eq!(expected.len(), 131);
        for n in 0..1024 {
            let want = expected
                .get(&n)
                .map_or_else(|| format!("unknown:{n}"), |e| e.to_string());
            assert_eq!(decode(Names::Reference, n), want, "{n}");
        }
        assert_eq!(decode(Names::Reference, 95), "ENOTSUP");
        assert_eq!(decode(Names::Kernel, 95), "EOPNOTSUPP");
        assert_eq!(decode(Names::Reference, 512), "unknown:512");
        assert_eq!(decode(Names::Kernel, 512), "ERESTARTSYS");
    }

    #[test]
    fn names_known_numbers() {
        assert_eq!(decode(Names::Reference, 2), "ENOENT");
        assert_eq!(decode(Names::Kernel, 4000), "unknown:4000");
        assert!(Errno(Names::Reference).decode(b"").is_err());
    }
}
