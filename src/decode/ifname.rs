//! `ifname`: a raw u32 interface index to the interface's name (`eth0`).

use std::sync::Arc;

use super::registry::{Entry, Guess};
use super::{read_prefix, DecodeError, Decoded, Decoder};
use crate::host::Host;
use crate::host::HostTable;

pub const ENTRY: Entry = Entry {
    name: "ifname",
    options: &[],
    pure: false,
    reads: &[HostTable::Interfaces],
    ours: false,
    input: "u32 ifindex",
    output: "interface name",
    guess: Guess {
        members: &["ifidx"],
        suffixes: &["ifindex"],
        sizes: &[],
        after_uint: false,
    },
    build: |_, host| Ok(Box::new(IfName::new(host.clone()))),
};

pub struct IfName {
    host: Arc<Host>,
}

impl IfName {
    pub fn new(host: Arc<Host>) -> Self {
        Self { host }
    }
}

impl Decoder for IfName {
    fn decode(&self, input: &[u8]) -> Result<Decoded, DecodeError> {
        // The reference reads the first 4 bytes and ignores any more.
        let index = u32::from_ne_bytes(read_prefix::<4>(input, "4 or more")?);
        Ok(match self.host.interfaces.name(index) {
            Some(name) => Decoded::Value(name.into_bytes()),
            None => Decoded::Unknown(format!("unknown:{index}").into_bytes()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_missing_index() {
        let d = IfName::new(Host::new());
        assert_eq!(
            d.decode(&1u32.to_ne_bytes()),
            Ok(Decoded::Value(b"lo".to_vec()))
        );
        assert_eq!(
            d.decode(&[1, 0, 0, 0, 9, 9]),
            Ok(Decoded::Value(b"lo".to_vec())),
            "tail ignored"
        );
        let absent = 0x7fff_fff0u32;
        assert_eq!(
            d.decode(&absent.to_ne_bytes()),
            Ok(Decoded::Unknown(format!("unknown:{absent}").into_bytes()))
        );
        assert_eq!(
            d.decode(&0u32.to_ne_bytes()),
            Ok(Decoded::Unknown(b"unknown:0".to_vec()))
        );
        assert!(matches!(
            d.decode(&[1, 0]),
            Err(DecodeError::Size { got: 2, .. })
        ));
    }
}
