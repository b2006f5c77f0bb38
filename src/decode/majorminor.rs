//! `majorminor`: a u32 device number in the kernel's `new_encode_dev` layout
//! to the disk name from `/proc/partitions` (`sda`, `nvme0n1`, `loop3`).

use std::sync::Arc;

use super::registry::{Entry, Guess};
use super::{read_prefix, DecodeError, Decoded, Decoder};
use crate::host::Host;
use crate::host::HostTable;

pub const ENTRY: Entry = Entry {
    name: "majorminor",
    options: &[],
    pure: false,
    reads: &[HostTable::Partitions],
    ours: false,
    input: "u32 `new_encode_dev`",
    output: "disk name from `/proc/partitions`",
    guess: Guess {
        members: &["dev"],
        suffixes: &["_dev"],
        sizes: &[],
        after_uint: false,
    },
    build: |_, host| Ok(Box::new(MajorMinor::new(host.clone()))),
};

pub struct MajorMinor {
    host: Arc<Host>,
}

impl MajorMinor {
    pub fn new(host: Arc<Host>) -> Self {
        Self { host }
    }
}

/// Splits a `new_encode_dev` value: minor's low 8 bits sit at 0..8, major at
/// 8..20, minor's high bits from 20 up (glibc's `gnu_dev_major/minor`).
pub fn split_dev(dev: u32) -> (u32, u32) {
    let major = (dev >> 8) & 0xfff;
    let minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
    (major, minor)
}

impl Decoder for MajorMinor {
    fn decode(&self, input: &[u8]) -> Result<Decoded, DecodeError> {
        let raw = read_prefix::<4>(input, "4 or more")?;
        let (major, minor) = split_dev(u32::from_ne_bytes(raw));
        Ok(match self.host.partitions.name(major, minor) {
            Some(name) => Decoded::Value(name.into_bytes()),
            None => Decoded::Unknown(format!("unknown:{major}:{minor}").into_bytes()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::partitions::Partitions;
    use std::io::Write;

    fn encode(major: u32, minor: u32) -> [u8; 4] {
        ((minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)).to_ne_bytes()
    }

    #[test]
    fn splits_new_encode_dev_layout() {
        assert_eq!(split_dev(u32::from_ne_bytes(encode(8, 0))), (8, 0));
        assert_eq!(split_dev(u32::from_ne_bytes(encode(259, 300))), (259, 300));
        assert_eq!(split_dev(u32::from_ne_bytes(encode(7, 3))), (7, 3));
    }

    #[test]
    fn names_from_partitions() {
        let mut f = tempfile::NamedTempFile::new().expect("tempfile");
        writeln!(
            f,
            "major minor  #blocks  name\n\n   8        0  1000 sda\n 259  300 10 nvme0n1p1"
        )
        .expect("write");
        let host = Arc::new(Host {
            partitions: Partitions::with_path(f.path()),
            ..Host::default()
        });
        let d = MajorMinor::new(host);
        assert_eq!(d.decode(&encode(8, 0)), Ok(Decoded::Value(b"sda".to_vec())));
        assert_eq!(
            d.decode(&encode(259, 300)),
            Ok(Decoded::Value(b"nvme0n1p1".to_vec()))
        );
        assert_eq!(
            d.decode(&encode(7, 9)),
            Ok(Decoded::Unknown(b"unknown:7:9".to_vec()))
        );
        assert!(d.decode(&[1, 2]).is_err());
    }
}
