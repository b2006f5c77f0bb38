//! The `pci.ids` database, parsed once on first use and shared by the
//! `pci_*` decoders through [`super::Host`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Where distributions install it: Debian's `pci.ids` package, then
/// hwdata (Fedora, Arch), as the reference's pcidb library searches.
pub const DEFAULT_PATHS: &[&str] = &[
    "/usr/share/misc/pci.ids",
    "/usr/share/hwdata/pci.ids",
    "/usr/share/pci.ids",
];

pub struct PciIds {
    paths: Vec<PathBuf>,
    db: OnceLock<Option<PciDb>>,
}

#[derive(Default, Debug)]
pub struct PciDb {
    pub vendors: HashMap<u16, String>,
    /// Keyed by `vendor << 16 | device`, the reference's input for `pci_device`.
    pub devices: HashMap<u32, String>,
    pub classes: HashMap<u8, PciClass>,
}

#[derive(Default, Debug)]
pub struct PciClass {
    pub name: String,
    pub subclasses: HashMap<u8, String>,
}

impl Default for PciIds {
    fn default() -> Self {
        Self::with_paths(DEFAULT_PATHS.iter().map(PathBuf::from).collect())
    }
}

impl PciIds {
    /// The first readable file of `paths` is used.
    pub fn with_paths(paths: Vec<PathBuf>) -> Self {
        Self {
            paths,
            db: OnceLock::new(),
        }
    }

    /// The database, or `None` when no file could be read: logged once
    /// here, never per key.
    pub fn db(&self) -> Option<&PciDb> {
        self.db
            .get_or_init(|| {
                for path in &self.paths {
                    match std::fs::read(path) {
                        Ok(bytes) => return Some(parse(&String::from_utf8_lossy(&bytes))),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => log::warn!("pci.ids: reading {}: {e}", path.display()),
                    }
                }
                log::warn!(
                    "pci.ids: no database at {}; pci_* labels will read \"missing pci.ids db\" \
                     (install the pci.ids or hwdata package)",
                    self.paths
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                None
            })
            .as_ref()
    }
}

/// Parses the file's two sections: vendors with tab-indented devices (and
/// double-tabbed subsystems, unused), then `C xx` classes with tab-indented
/// subclasses (and double-tabbed programming interfaces, unused). Lines that
/// do not fit are skipped rather than failing the whole database.
pub fn parse(text: &str) -> PciDb {
    let mut db = PciDb::default();
    let mut vendor: Option<u16> = None;
    let mut class: Option<u8> = None;
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("C ") {
            vendor = None;
            class = id_and_name(rest).and_then(|(id, name)| {
                let id = hex(id, 2)? as u8;
                db.classes.insert(
                    id,
                    PciClass {
                        name: name.to_string(),
                        subclasses: HashMap::new(),
                    },
                );
                Some(id)
            });
        } else if line.starts_with("\t\t") {
            continue;
        } else if let Some(rest) = line.strip_prefix('\t') {
            let Some((id, name)) = id_and_name(rest) else {
                continue;
            };
            if let Some(v) = vendor {
                if let Some(d) = hex(id, 4) {
                    db.devices
                        .insert(u32::from(v) << 16 | u32::from(d), name.to_string());
                }
            } else if let Some(c) = class.and_then(|c| db.classes.get_mut(&c)) {
                if let Some(s) = hex(id, 2) {
                    c.subclasses.insert(s as u8, name.to_string());
                }
            }
        } else {
            class = None;
            vendor = id_and_name(line).and_then(|(id, name)| {
                let id = hex(id, 4)?;
                db.vendors.insert(id, name.to_string());
                Some(id)
            });
        }
    }
    db
}

/// An id of exactly `digits` hex digits, as the file writes them.
fn hex(id: &str, digits: usize) -> Option<u16> {
    if id.len() != digits {
        return None;
    }
    u16::from_str_radix(id, 16).ok()
}

/// `8086  Intel Corporation` → (`8086`, `Intel Corporation`).
fn id_and_name(s: &str) -> Option<(&str, &str)> {
    let (id, name) = s.split_once(' ')?;
    Some((id, name.trim()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const FIXTURE: &str = "\
# comment
0e11  Compaq Computer Corporation
\t0001  PCI to EISA Bridge
8086  Intel Corporation
\t1000  82542 Gigabit Ethernet Controller (Fiber)
\t\t0e11 b0df  Gigabit Server Adapter (PRO/1000 F)
\tzzzz  not hex
bad vendor line

C 01  Mass storage controller
\t08  Non-Volatile memory controller
\t\t02  NVM Express
C 02  Network controller
\t00  Ethernet controller
";

    #[test]
    fn parses_vendors_devices_classes() {
        let db = parse(FIXTURE);
        assert_eq!(
            db.vendors.get(&0x8086).map(String::as_str),
            Some("Intel Corporation")
        );
        assert_eq!(db.vendors.len(), 2);
        assert_eq!(
            db.devices.get(&0x8086_1000).map(String::as_str),
            Some("82542 Gigabit Ethernet Controller (Fiber)")
        );
        assert_eq!(db.devices.len(), 2, "subsystems are not devices");
        let storage = db.classes.get(&1).expect("class 01");
        assert_eq!(storage.name, "Mass storage controller");
        assert_eq!(
            storage.subclasses.get(&8).map(String::as_str),
            Some("Non-Volatile memory controller")
        );
        assert_eq!(storage.subclasses.len(), 1, "prog-ifs are not subclasses");
    }

    #[test]
    fn missing_file_is_none() {
        let ids = PciIds::with_paths(vec!["/nonexistent/pci.ids".into()]);
        assert!(ids.db().is_none());
        assert!(ids.db().is_none(), "asked again, still none, logged once");
    }
}
