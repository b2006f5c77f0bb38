//! `inet_ip`: 4 or 16 raw bytes in network order to IPv4 or IPv6 text, as
//! Go's `net.IP.String` writes them, so labels match the reference's.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::registry::{Entry, Guess};
use super::{DecodeError, Decoded, Decoder};

pub const ENTRY: Entry = Entry {
    name: "inet_ip",
    options: &[],
    pure: true,
    reads: &[],
    ours: false,
    input: "4 or 16 bytes",
    output: "IPv4 or IPv6 text",
    guess: Guess {
        members: &["ip", "saddr", "daddr", "src", "dst", "ip4", "ip6"],
        suffixes: &["addr"],
        sizes: &[4, 16],
        after_uint: false,
    },
    build: |_, _| Ok(Box::new(InetIp)),
};

pub struct InetIp;

impl Decoder for InetIp {
    fn decode(&self, input: &[u8]) -> Result<Decoded, DecodeError> {
        let text = if let Ok(v4) = <[u8; 4]>::try_from(input) {
            Ipv4Addr::from(v4).to_string()
        } else if let Ok(v6) = <[u8; 16]>::try_from(input) {
            let v6 = Ipv6Addr::from(v6);
            // Go prints an IPv4-mapped address as plain IPv4; Rust would
            // write `::ffff:1.2.3.4`. Otherwise both follow RFC 5952.
            match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => v6.to_string(),
            }
        } else {
            return Err(DecodeError::Size {
                expected: "4 or 16",
                got: input.len(),
            });
        };
        Ok(Decoded::Value(text.into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(input: &[u8]) -> String {
        match InetIp.decode(input) {
            Ok(Decoded::Value(v)) => String::from_utf8(v).expect("utf8"),
            other => panic!("{other:?}"),
        }
    }

    fn v6(groups: [u16; 8]) -> [u8; 16] {
        Ipv6Addr::from(groups).octets()
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(ip(&[1, 2, 3, 4]), "1.2.3.4");
        // The reference's own test case.
        assert_eq!(
            ip(&v6([0x2400, 0xcb00, 4, 0x1024, 0, 0, 0xa29e, 0xfd8f])),
            "2400:cb00:4:1024::a29e:fd8f"
        );
        assert_eq!(ip(&v6([0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304])), "1.2.3.4");
        assert_eq!(ip(&v6([0; 8])), "::");
        assert_eq!(ip(&v6([0, 0, 0, 0, 0, 0, 0, 1])), "::1");
        // IPv4-compatible (not mapped) stays IPv6 in Go too.
        assert_eq!(ip(&v6([0, 0, 0, 0, 0, 0, 0x0102, 0x0304])), "::102:304");
        // A single zero group is not compressed; the first longest run is.
        assert_eq!(ip(&v6([1, 0, 2, 3, 4, 5, 6, 7])), "1:0:2:3:4:5:6:7");
        assert_eq!(ip(&v6([1, 0, 0, 2, 0, 0, 3, 4])), "1::2:0:0:3:4");
        assert_eq!(ip(&v6([1, 0, 0, 2, 0, 0, 0, 4])), "1:0:0:2::4");
        assert_eq!(
            ip(&v6([0xfe80, 0, 0, 0, 0xabcd, 0, 0, 0])),
            "fe80::abcd:0:0:0"
        );
    }

    #[test]
    fn other_sizes_are_errors() {
        for n in [0, 3, 5, 8, 15, 17] {
            assert!(
                matches!(InetIp.decode(&vec![0; n]), Err(DecodeError::Size { got, .. }) if got == n),
                "{n}"
            );
        }
    }
}
