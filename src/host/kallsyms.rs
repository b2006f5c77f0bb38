//! The kernel symbol table from `/proc/kallsyms`, shared by the `ksym` and
//! `kstack` decoders and by `kaddrs`.
//!
//! It is loaded on first use rather than at start-up, because most configs
//! never decode a kernel address and the file is large (100k+ lines). Modules
//! and BPF programs add symbols later, so a miss reloads it, but at most once
//! per interval: an address that never resolves must not cost a 10 MB read per
//! row per scrape.

use std::path::PathBuf;
use std::time::Duration;

use super::refresh::Refreshing;

/// Long enough that a stream of unresolvable addresses costs little, short
/// enough that a freshly loaded module's symbols show within a scrape or two.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(10);

pub struct Kallsyms {
    table: Refreshing<SymTable>,
}

/// Sorted by address; where several symbols share an address the preferred
/// one (text over data, then file order) comes first. Names live in one
/// arena so the table costs a few MB rather than one allocation per symbol.
#[derive(Default)]
pub struct SymTable {
    entries: Vec<Entry>,
    names: String,
    /// Lines whose address reads as zero: kptr_restrict hides addresses
    /// from readers without CAP_SYSLOG.
    hidden: usize,
}

#[derive(Clone, Copy)]
struct Entry {
    addr: u64,
    start: u32,
    len: u32,
}

impl Default for Kallsyms {
    fn default() -> Self {
        Self::with_path("/proc/kallsyms", RELOAD_INTERVAL)
    }
}

impl Kallsyms {
    pub fn with_path(path: impl Into<PathBuf>, reload_interval: Duration) -> Self {
        let path = path.into();
        let what = format!("kallsyms ({})", path.display());
        let warned = std::sync::atomic::AtomicBool::new(false);
        Self {
            table: Refreshing::new(what, reload_interval, None, move || {
                let table = SymTable::parse(&std::fs::read_to_string(&path)?);
                if table.entries.is_empty()
                    && !warned.swap(true, std::sync::atomic::Ordering::Relaxed)
                {
                    log::warn!(
                        "kallsyms: no symbol addresses in {} (not root, or kernel.kptr_restrict \
                         hides them); ksym and kstack labels will read unknown",
                        path.display()
                    );
                }
                Ok(table)
            }),
        }
    }

    /// The symbol starting exactly at `addr`.
    pub fn exact(&self, addr: u64) -> Option<String> {
        self.table
            .with(|t| t.exact(addr).map(str::to_owned), Option::is_some)
    }

    /// For each address, the nearest symbol at or below it (a return address
    /// inside a function names that function), `None` below the lowest one.
    pub fn nearest(&self, addrs: &[u64]) -> Vec<Option<String>> {
        self.table.with(
            |t| {
                addrs
                    .iter()
                    .map(|&a| t.nearest(a).map(str::to_owned))
                    .collect::<Vec<_>>()
            },
            |found| found.iter().all(Option::is_some),
        )
    }

    /// The address of each symbol in `names`, for `kaddrs`; `Err` lists
    /// the ones not found.
    pub fn addresses(
        &self,
        names: &[String],
    ) -> Result<std::collections::HashMap<String, u64>, AddressError> {
        let table = self.table.current();
        let mut found = std::collections::HashMap::new();
        let mut missing = Vec::new();
        for name in names {
            match table.address_of(name) {
                Some(addr) => {
                    found.insert(name.clone(), addr);
                }
                None => missing.push(name.as_str()),
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        if table.entries.is_empty() && table.hidden > 0 {
            return Err(AddressError::Hidden);
        }
        Err(AddressError::NotFound(
            missing.into_iter().map(str::to_string).collect(),
        ))
    }
}

/// Why `kaddrs` symbols have no address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressError {
    /// kernel.kptr_restrict shows this process only zeros.
    Hidden,
    NotFound(Vec<String>),
}

impl std::fmt::Display for AddressError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Hidden => f.write_str(
                "/proc/kallsyms shows zero addresses: run as root or with CAP_SYSLOG (kernel.kptr_restrict hides them)",
            ),
            Self::NotFound(names) => write!(
                f,
                "symbols not found in /proc/kallsyms: {}",
                names.join(", ")
            ),
        }
    }
}

impl std::error::Error for AddressError {}

impl SymTable {
    /// Parses `ADDR TYPE NAME[\t[MODULE]]` lines. Zero addresses (hidden by
    /// kptr_restrict) are skipped: they would make every lookup hit garbage.
    pub fn parse(text: &str) -> Self {
        let mut hidden = 0;
        let mut raw: Vec<(u64, bool, &str)> = text
            .lines()
            .filter_map(|line| {
                let mut f = line.split_ascii_whitespace();
                let addr = u64::from_str_radix(f.next()?, 16).ok()?;
                let kind = f.next()?;
                let name = f.next()?;
                let text = matches!(kind, "t" | "T" | "w" | "W");
                if addr == 0 {
                    hidden += 1;
                }
                (addr != 0).then_some((addr, text, name))
            })
            .collect();
        // Stable: equal keys keep file order.
        raw.sort_by_key(|&(addr, text, _)| (addr, !text));
        let mut table = SymTable {
            entries: Vec::with_capacity(raw.len()),
            names: String::with_capacity(raw.iter().map(|r| r.2.len()).sum()),
            hidden,
        };
        for (addr, _, name) in raw {
            let (Ok(start), Ok(len)) =
                (u32::try_from(table.names.len()), u32::try_from(name.len()))
            else {
                break;
            };
            table.names.push_str(name);
            table.entries.push(Entry { addr, start, len });
        }
        table
    }

    fn name(&self, e: &Entry) -> &str {
        let start = e.start as usize;
        self.names.get(start..start + e.len as usize).unwrap_or("")
    }

    /// The preferred symbol at exactly `addr`: the first of its group.
    fn exact(&self, addr: u64) -> Option<&str> {
        let i = self.entries.partition_point(|e| e.addr < addr);
        self.entries
            .get(i)
            .filter(|e| e.addr == addr)
            .map(|e| self.name(e))
    }

    fn nearest(&self, addr: u64) -> Option<&str> {
        let above = self.entries.partition_point(|e| e.addr <= addr);
        let below = self.entries.get(above.checked_sub(1)?)?.addr;
        self.exact(below)
    }

    /// The lowest address of a symbol called `name` (static functions can
    /// share a name; any one of them is as good as another for `kaddrs`).
    fn address_of(&self, name: &str) -> Option<u64> {
        self.entries
            .iter()
            .find(|e| self.name(e) == name)
            .map(|e| e.addr)
    }
}

/// The real table's address of `name`, for tests of the decoders.
#[cfg(test)]
/// Panics, rather than letting a test pass untested, when the addresses are
/// hidden: the test suite runs as root, where they never are.
pub(crate) fn real_symbol(names: &[&str]) -> (String, u64) {
    let text = std::fs::read_to_string("/proc/kallsyms").expect("read /proc/kallsyms");
    let table = SymTable::parse(&text);
    names
        .iter()
        .find_map(|want| table.address_of(want).map(|a| (want.to_string(), a)))
        .unwrap_or_else(|| {
            panic!("none of {names:?} has an address in /proc/kallsyms: run the tests as root")
        })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    pub(crate) const FIXTURE: &str = "0000000000000004 T one\n\
        0000000000000006 T two\n\
        0000000000000006 d two_data\n\
        00000000000000aa t three\t[mod]\n\
        0000000000000000 T hidden\n\
        garbage line\n";

    /// A host whose kallsyms is `kallsyms`, for decoder tests.
    pub(crate) fn host(kallsyms: Kallsyms) -> std::sync::Arc<crate::host::Host> {
        std::sync::Arc::new(crate::host::Host {
            kallsyms,
            ..Default::default()
        })
    }

    pub(crate) fn fixture(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("tempfile");
        f.write_all(text.as_bytes()).expect("write");
        f
    }

    #[test]
    fn exact_and_nearest_lookups() {
        let f = fixture(FIXTURE);
        let k = Kallsyms::with_path(f.path(), RELOAD_INTERVAL);
        assert_eq!(k.exact(4).as_deref(), Some("one"));
        assert_eq!(k.exact(6).as_deref(), Some("two"), "text wins a tie");
        assert_eq!(k.exact(0xaa).as_deref(), Some("three"), "module dropped");
        assert_eq!(k.exact(5), None);
        assert_eq!(
            k.nearest(&[3, 4, 5, 0xa9, 0xab, u64::MAX]),
            vec![
                None,
                Some("one".into()),
                Some("one".into()),
                Some("two".into()),
                Some("three".into()),
                Some("three".into())
            ]
        );
    }

    #[test]
    fn miss_reloads_only_after_the_interval() {
        let mut f = fixture(FIXTURE);
        let k = Kallsyms::with_path(f.path(), Duration::from_millis(100));
        assert_eq!(k.exact(2), None);
        f.write_all(b"0000000000000002 T zero\n").expect("append");
        assert_eq!(k.exact(2), None, "rate-limited");
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(k.exact(2).as_deref(), Some("zero"), "reloaded");
    }

    #[test]
    fn missing_file_is_empty_not_fatal() {
        let k = Kallsyms::with_path("/nonexistent/kallsyms", RELOAD_INTERVAL);
        assert_eq!(k.exact(4), None);
        assert_eq!(k.nearest(&[4, 5]), vec![None, None]);
    }

    #[test]
    fn addresses_for_kaddrs() {
        let f = fixture(FIXTURE);
        let k = Kallsyms::with_path(f.path(), RELOAD_INTERVAL);
        let found = k
            .addresses(&["two_data".into(), "three".into()])
            .expect("found");
        assert_eq!((found["two_data"], found["three"]), (6, 0xaa));
        let err = k.addresses(&["nope".into()]).expect_err("missing");
        assert_eq!(err, AddressError::NotFound(vec!["nope".into()]));
        assert_eq!(err.to_string(), "symbols not found in /proc/kallsyms: nope");
        let hidden = fixture("0000000000000000 T a\n0000000000000000 T b\n");
        let k = Kallsyms::with_path(hidden.path(), RELOAD_INTERVAL);
        let err = k.addresses(&["a".into()]).expect_err("hidden");
        assert_eq!(err, AddressError::Hidden);
    }
}
