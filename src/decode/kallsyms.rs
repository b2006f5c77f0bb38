//! The kernel symbol table from `/proc/kallsyms`, shared by `ksym` and
//! `kstack` through [`super::DecoderEnv`].
//!
//! It is loaded on first use rather than at start-up, because most configs
//! never decode a kernel address and the file is large (100k+ lines). Modules
//! and BPF programs add symbols later, so a miss reloads it, but at most once
//! per interval: an address that never resolves must not cost a 10 MB read per
//! row per scrape.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Long enough that a stream of unresolvable addresses costs little, short
/// enough that a freshly loaded module's symbols show within a scrape or two.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(10);

pub struct Kallsyms {
    path: PathBuf,
    reload_interval: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    table: SymTable,
    loaded_at: Option<Instant>,
    warned_empty: bool,
}

/// Sorted by address, one entry per address; names live in one arena so the
/// table costs a few MB rather than one allocation per symbol.
#[derive(Default)]
struct SymTable {
    entries: Vec<Entry>,
    names: String,
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
        Self {
            path: path.into(),
            reload_interval,
            state: Mutex::new(State::default()),
        }
    }

    /// The symbol starting exactly at `addr`.
    pub fn exact(&self, addr: u64) -> Option<String> {
        self.resolve(&[addr], SymTable::exact)
            .into_iter()
            .next()
            .flatten()
    }

    /// For each address, the nearest symbol at or below it (a return address
    /// inside a function names that function), `None` below the lowest one.
    pub fn nearest(&self, addrs: &[u64]) -> Vec<Option<String>> {
        self.resolve(addrs, SymTable::nearest)
    }

    fn resolve(
        &self,
        addrs: &[u64],
        find: fn(&SymTable, u64) -> Option<&str>,
    ) -> Vec<Option<String>> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let lookup = |t: &SymTable| -> Vec<Option<String>> {
            addrs
                .iter()
                .map(|&a| find(t, a).map(str::to_owned))
                .collect()
        };
        let mut found = if state.loaded_at.is_some() {
            lookup(&state.table)
        } else {
            Vec::new()
        };
        let complete = state.loaded_at.is_some() && found.iter().all(Option::is_some);
        let stale = state
            .loaded_at
            .is_none_or(|t| t.elapsed() >= self.reload_interval);
        if !complete && stale {
            self.reload(&mut state);
            found = lookup(&state.table);
        }
        found.resize(addrs.len(), None);
        found
    }

    fn reload(&self, state: &mut State) {
        state.loaded_at = Some(Instant::now());
        match std::fs::read_to_string(&self.path) {
            Ok(text) => state.table = SymTable::parse(&text),
            Err(e) => log::warn!("kallsyms: reading {}: {e}", self.path.display()),
        }
        if state.table.entries.is_empty() && !state.warned_empty {
            state.warned_empty = true;
            log::warn!(
                "kallsyms: no symbol addresses in {} (not root, or kernel.kptr_restrict hides them); \
                 ksym and kstack labels will read unknown",
                self.path.display()
            );
        }
    }
}

impl SymTable {
    /// Parses `ADDR TYPE NAME[\t[MODULE]]` lines. Zero addresses (hidden by
    /// kptr_restrict) are skipped: they would make every lookup hit garbage.
    /// Where several symbols share an address, a text symbol wins over data,
    /// then the first listed, so the choice does not depend on sort order.
    fn parse(text: &str) -> Self {
        let mut raw: Vec<(u64, bool, &str)> = text
            .lines()
            .filter_map(|line| {
                let mut f = line.split_ascii_whitespace();
                let addr = u64::from_str_radix(f.next()?, 16).ok()?;
                let kind = f.next()?;
                let name = f.next()?;
                let text = matches!(kind, "t" | "T" | "w" | "W");
                (addr != 0).then_some((addr, text, name))
            })
            .collect();
        // Stable: equal keys keep file order.
        raw.sort_by_key(|&(addr, text, _)| (addr, !text));
        raw.dedup_by_key(|&mut (addr, _, _)| addr);
        let mut table = SymTable {
            entries: Vec::with_capacity(raw.len()),
            names: String::with_capacity(raw.iter().map(|r| r.2.len()).sum()),
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

    fn exact(&self, addr: u64) -> Option<&str> {
        let i = self.entries.binary_search_by_key(&addr, |e| e.addr).ok()?;
        self.entries.get(i).map(|e| self.name(e))
    }

    fn nearest(&self, addr: u64) -> Option<&str> {
        let above = self.entries.partition_point(|e| e.addr <= addr);
        let i = above.checked_sub(1)?;
        self.entries.get(i).map(|e| self.name(e))
    }
}

/// The real table's address of `name`, for tests of the decoders.
#[cfg(test)]
pub(crate) fn real_symbol(names: &[&str]) -> Option<(String, u64)> {
    let text = std::fs::read_to_string("/proc/kallsyms").ok()?;
    let table = SymTable::parse(&text);
    names.iter().find_map(|want| {
        table
            .entries
            .iter()
            .find(|e| table.name(e) == *want)
            .map(|e| (want.to_string(), e.addr))
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
}
