//! `uid`: a user id in decimal (chain `uint` first) to the user's name from
//! `/etc/passwd`, the table behind it ([`crate::host::passwd`]). A uid with
//! no entry gives `unknown_uid:<uid>`, which heals once the user is added.

use std::sync::Arc;

use super::registry::{Entry, Guess};
use super::{parse_decimal, DecodeError, Decoded, Decoder};
use crate::host::{Host, HostTable};

pub const ENTRY: Entry = Entry {
    name: "uid",
    options: &[],
    pure: false,
    reads: &[HostTable::Passwd],
    ours: true,
    input: "decimal user id",
    output: "user name from `/etc/passwd`, else `unknown_uid:<uid>`",
    guess: Guess {
        members: &["uid", "euid", "ruid", "user_id"],
        suffixes: &[],
        sizes: &[4],
        after_uint: true,
    },
    build: |_, host| Ok(Box::new(Uid::new(host.clone()))),
};

pub struct Uid {
    host: Arc<Host>,
}

impl Uid {
    pub fn new(host: Arc<Host>) -> Self {
        Self { host }
    }
}

impl Decoder for Uid {
    fn decode(&self, input: &[u8]) -> Result<Decoded, DecodeError> {
        let id = parse_decimal(input)?;
        let uid = u32::try_from(id)
            .map_err(|_| DecodeError::Invalid(format!("uid {id} does not fit 32 bits")))?;
        Ok(match self.host.passwd.name(uid) {
            Some(name) => Decoded::Value(name.into_bytes()),
            // Unknown, not Value: a user added a moment ago heals.
            None => Decoded::Unknown(format!("unknown_uid:{uid}").into_bytes()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_decode_to_names_or_the_unknown_form() {
        let d = Uid::new(Host::new());
        // Every Linux system has root as uid 0.
        assert_eq!(d.decode(b"0"), Ok(Decoded::Value(b"root".to_vec())));
        assert_eq!(
            d.decode(b"4000000000"),
            Ok(Decoded::Unknown(b"unknown_uid:4000000000".to_vec()))
        );
        assert!(d.decode(b"4294967296").is_err());
        assert!(d.decode(b"x").is_err());
    }
}
