//! `majorminor` and `kdev`: a u32 device number to the disk name from
//! `/proc/partitions` (`sda`, `nvme0n1`, `loop3`). `majorminor` takes the
//! `new_encode_dev` layout user space sees (and the reference's programs
//! store); `kdev` takes the kernel's own `dev_t` (`MKDEV`: major above bit
//! 20), which a program stores when it copies `bd_dev`, `disk_devt()` or a
//! block tracepoint's `dev`, as libbpf-tools do.

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
    guess: Guess::NONE,
    build: |_, host| Ok(Box::new(MajorMinor::new(host.clone()))),
};

pub const KDEV: Entry = Entry {
    name: "kdev",
    options: &[],
    pure: false,
    reads: &[HostTable::Partitions],
    ours: true,
    input: "u32 kernel `dev_t` (`MKDEV`)",
    output: "disk name from `/proc/partitions`",
    // What a program copies from the kernel is its own dev_t: the guess
    // for objects nobody here wrote.
    guess: Guess {
        members: &["dev"],
        suffixes: &["_dev"],
        sizes: &[4],
        after_uint: false,
    },
    build: |_, host| {
        Ok(Box::new(MajorMinor {
            host: host.clone(),
            split: split_kdev,
        }))
    },
};

pub struct MajorMinor {
    host: Arc<Host>,
    split: fn(u32) -> (u32, u32),
}

impl MajorMinor {
    pub fn new(host: Arc<Host>) -> Self {
        Self {
            host,
            split: split_dev,
        }
    }
}

/// Splits the kernel's `dev_t`: `MKDEV(major, minor)` is
/// `major << 20 | minor`, with a 20-bit minor.
pub fn split_kdev(dev: u32) -> (u32, u32) {
    (dev >> 20, dev & 0xfffff)
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
        let (major, minor) = (self.split)(u32::from_ne_bytes(raw));
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
    fn splits_the_kernels_dev_t() {
        // vda is 254:0; its MKDEV value is what a program reading bd_dev
        // stores, and what majorminor would misread as 0:65024 and more.
        assert_eq!(split_kdev(254 << 20), (254, 0));
        assert_eq!(split_kdev((259 << 20) | 300), (259, 300));
        assert_eq!(split_kdev((8 << 20) | 0xfffff), (8, 0xfffff));
        assert_ne!(split_dev(254 << 20), (254, 0));
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
