//! `pci_vendor`, `pci_device`, `pci_class`, `pci_subclass`: decimal ids
//! (chain `uint` first) to names from `pci.ids`, with the reference's inputs
//! and texts:
//! - `pci_vendor`: the vendor id (`32902` → `Intel Corporation`);
//! - `pci_device`: `vendor << 16 | device`;
//! - `pci_class`: the class byte;
//! - `pci_subclass`: `class << 8 | subclass`.
//!
//! Misses are plain values, not `unknown`: the database is read once, so a
//! miss cannot heal and re-decoding it every scrape would gain nothing.

use std::sync::Arc;

use super::registry::{Entry, Guess};
use super::{parse_decimal, DecodeError, Decoded, Decoder};
use crate::host::pci_ids::PciDb;
use crate::host::{Host, HostTable};

pub const VENDOR: Entry = Entry {
    name: "pci_vendor",
    options: &[],
    pure: true,
    reads: &[HostTable::PciIds],
    ours: false,
    input: "decimal vendor id",
    output: "vendor name from `pci.ids`",
    guess: Guess::NONE,
    build: |_, host| Ok(Box::new(Pci::new(PciKind::Vendor, host.clone()))),
};

pub const DEVICE: Entry = Entry {
    name: "pci_device",
    input: "decimal `vendor << 16 \\| device`",
    output: "device name from `pci.ids`",
    build: |_, host| Ok(Box::new(Pci::new(PciKind::Device, host.clone()))),
    ..VENDOR
};

pub const CLASS: Entry = Entry {
    name: "pci_class",
    input: "decimal class byte",
    output: "class name from `pci.ids`",
    build: |_, host| Ok(Box::new(Pci::new(PciKind::Class, host.clone()))),
    ..VENDOR
};

pub const SUBCLASS: Entry = Entry {
    name: "pci_subclass",
    input: "decimal `class << 8 \\| subclass`",
    output: "subclass name from `pci.ids`",
    build: |_, host| Ok(Box::new(Pci::new(PciKind::Subclass, host.clone()))),
    ..VENDOR
};

/// The reference's label when no database exists.
pub const MISSING_DB: &str = "missing pci.ids db";

#[derive(Clone, Copy, Debug)]
pub enum PciKind {
    Vendor,
    Device,
    Class,
    Subclass,
}

pub struct Pci {
    kind: PciKind,
    host: Arc<Host>,
}

impl Pci {
    pub fn new(kind: PciKind, host: Arc<Host>) -> Self {
        Self { kind, host }
    }
}

impl Decoder for Pci {
    fn decode(&self, input: &[u8]) -> Result<Decoded, DecodeError> {
        let num = parse_decimal(input)?;
        let text = match self.host.pci_ids.db() {
            Some(db) => name(db, self.kind, num),
            None => MISSING_DB.to_string(),
        };
        Ok(Decoded::Value(text.into_bytes()))
    }
}

/// Lookups use the file's zero-padded ids. The miss texts keep the
/// reference's `%02x`/`%04x` formatting so they read the same as its labels.
fn name(db: &PciDb, kind: PciKind, num: u64) -> String {
    let found = |name: Option<&String>, miss: String| name.cloned().unwrap_or(miss);
    match kind {
        PciKind::Vendor => found(
            u16::try_from(num).ok().and_then(|v| db.vendors.get(&v)),
            format!("unknown pci vendor: 0x{num:02x}"),
        ),
        PciKind::Device => found(
            u32::try_from(num).ok().and_then(|d| db.devices.get(&d)),
            format!("unknown pci device: 0x{num:04x}"),
        ),
        PciKind::Class => found(
            u8::try_from(num)
                .ok()
                .and_then(|c| db.classes.get(&c))
                .map(|c| &c.name),
            format!("unknown pci class: 0x{num:02x}"),
        ),
        PciKind::Subclass => {
            let (class_id, sub_id) = (num >> 8, num & 0xff);
            let class = u8::try_from(class_id).ok().and_then(|c| db.classes.get(&c));
            match class {
                Some(class) => found(
                    class.subclasses.get(&(sub_id as u8)),
                    format!("unknown pci subclass: 0x{sub_id:02x} (class 0x{class_id:02x})"),
                ),
                None => format!("unknown pci class: 0x{class_id:02x}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::pci_ids::tests::FIXTURE;
    use crate::host::pci_ids::{PciIds, DEFAULT_PATHS};
    use std::io::Write;
    use std::path::PathBuf;

    fn host(ids: PciIds) -> Arc<Host> {
        Arc::new(Host {
            pci_ids: ids,
            ..Host::default()
        })
    }

    fn decoder(kind: PciKind, host: &Arc<Host>) -> impl Fn(&str) -> String {
        let d = Pci::new(kind, host.clone());
        move |input| match d.decode(input.as_bytes()) {
            Ok(Decoded::Value(v)) => String::from_utf8(v).expect("utf8"),
            other => panic!("{input}: {other:?}"),
        }
    }

    #[test]
    fn fixture_names_and_reference_miss_texts() {
        let mut f = tempfile::NamedTempFile::new().expect("tempfile");
        f.write_all(FIXTURE.as_bytes()).expect("write");
        let ids = host(PciIds::with_paths(vec![
            "/nonexistent/pci.ids".into(),
            f.path().to_path_buf(),
        ]));
        let vendor = decoder(PciKind::Vendor, &ids);
        assert_eq!(vendor("32902"), "Intel Corporation");
        assert_eq!(
            vendor("3601"),
            "Compaq Computer Corporation",
            "0x0e11, zero-padded"
        );
        assert_eq!(vendor("48879"), "unknown pci vendor: 0xbeef");
        assert_eq!(vendor("1"), "unknown pci vendor: 0x01");
        let device = decoder(PciKind::Device, &ids);
        assert_eq!(
            device("2156269568"),
            "82542 Gigabit Ethernet Controller (Fiber)"
        );
        assert_eq!(device("3735928559"), "unknown pci device: 0xdeadbeef");
        let class = decoder(PciKind::Class, &ids);
        assert_eq!(class("1"), "Mass storage controller");
        assert_eq!(class("253"), "unknown pci class: 0xfd");
        let subclass = decoder(PciKind::Subclass, &ids);
        assert_eq!(subclass("264"), "Non-Volatile memory controller");
        assert_eq!(subclass("512"), "Ethernet controller");
        assert_eq!(subclass("267"), "unknown pci subclass: 0x0b (class 0x01)");
        assert_eq!(subclass("64768"), "unknown pci class: 0xfd");

        let d = Pci::new(PciKind::Vendor, ids);
        assert!(d.decode(b"0x8086").is_err());
        assert!(d.decode(&[0xff, 0xfe]).is_err());
        assert!(
            d.decode(&32902u32.to_ne_bytes()).is_err(),
            "raw, not decimal"
        );
    }

    #[test]
    fn real_database_matches_the_reference_tests() {
        let paths: Vec<PathBuf> = DEFAULT_PATHS.iter().map(PathBuf::from).collect();
        assert!(
            paths.iter().any(|p| p.exists()),
            "no pci.ids installed in {DEFAULT_PATHS:?}: scripts/setup.sh installs it"
        );
        let ids = host(PciIds::with_paths(paths));
        let vendor = decoder(PciKind::Vendor, &ids);
        assert_eq!(vendor("32902"), "Intel Corporation");
        assert_eq!(vendor("4318"), "NVIDIA Corporation");
        let device = decoder(PciKind::Device, &ids);
        assert_eq!(
            device("2156269568"),
            "82542 Gigabit Ethernet Controller (Fiber)"
        );
        let class = decoder(PciKind::Class, &ids);
        assert_eq!(class("2"), "Network controller");
        assert_eq!(class("12"), "Serial bus controller");
        let subclass = decoder(PciKind::Subclass, &ids);
        assert_eq!(subclass("3075"), "USB controller");
        assert_eq!(subclass("1540"), "PCI bridge");
        assert_eq!(subclass("3"), "unknown pci subclass: 0x03 (class 0x00)");
    }

    #[test]
    fn missing_database_reads_like_the_reference() {
        let ids = host(PciIds::with_paths(vec!["/nonexistent/pci.ids".into()]));
        for kind in [
            PciKind::Vendor,
            PciKind::Device,
            PciKind::Class,
            PciKind::Subclass,
        ] {
            assert_eq!(decoder(kind, &ids)("1"), MISSING_DB);
        }
    }
}
