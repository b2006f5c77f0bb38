//! A table read from a host file and reloaded when it may be out of date.
//!
//! Every host lookup has the same problem: the file (kallsyms, partitions,
//! the interface list) changes rarely, lookups are per key and per scrape,
//! and a key that never resolves must not cost a file read each time. So a
//! miss reloads the table, but at most once per `min_interval`, and a table
//! older than `max_age` is reloaded even on hits, so that renames show.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Loader<T> = Box<dyn Fn() -> std::io::Result<T> + Send + Sync>;

pub struct Refreshing<T> {
    /// For log lines: `kallsyms (/proc/kallsyms)`.
    what: String,
    min_interval: Duration,
    max_age: Option<Duration>,
    load: Loader<T>,
    state: Mutex<State<T>>,
}

struct State<T> {
    table: Option<Arc<T>>,
    loaded_at: Option<Instant>,
    /// One warning per run of failures, not one per reload.
    warned: bool,
}

impl<T: Default> Refreshing<T> {
    pub fn new(
        what: impl Into<String>,
        min_interval: Duration,
        max_age: Option<Duration>,
        load: impl Fn() -> std::io::Result<T> + Send + Sync + 'static,
    ) -> Self {
        Self {
            what: what.into(),
            min_interval,
            max_age,
            load: Box::new(load),
            state: Mutex::new(State {
                table: None,
                loaded_at: None,
                warned: false,
            }),
        }
    }

    /// Runs `find` on the table; when `complete` says the answer is
    /// incomplete (a miss) and the table may be stale, reloads and runs it
    /// again. The table is loaded on first use.
    pub fn with<R>(&self, find: impl Fn(&T) -> R, complete: impl Fn(&R) -> bool) -> R {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let age = state.loaded_at.map(|t| t.elapsed());
        let expired = match (age, self.max_age) {
            (None, _) => true,
            (Some(age), Some(max)) => age >= max,
            (Some(_), None) => false,
        };
        if !expired {
            // A table that never loaded answers as an empty one: a file that
            // cannot be read is retried on the same schedule as a miss.
            let found = match &state.table {
                Some(table) => find(table),
                None => find(&T::default()),
            };
            let may_reload = age.is_some_and(|a| a >= self.min_interval);
            if complete(&found) || !may_reload {
                return found;
            }
        }
        self.reload(&mut state);
        match &state.table {
            Some(table) => find(table),
            None => find(&T::default()),
        }
    }

    /// The table as loaded now, loading it if it never was.
    pub fn current(&self) -> Arc<T> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.table.is_none() {
            self.reload(&mut state);
        }
        state.table.clone().unwrap_or_default()
    }

    fn reload(&self, state: &mut State<T>) {
        state.loaded_at = Some(Instant::now());
        match (self.load)() {
            Ok(table) => {
                state.table = Some(Arc::new(table));
                state.warned = false;
            }
            Err(e) => {
                if !state.warned {
                    state.warned = true;
                    log::warn!(
                        "{}: {e}; lookups read unknown until it can be read",
                        self.what
                    );
                }
                // Keep the last good table: a transient read error should
                // not turn every label unknown.
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn counting(
        min: Duration,
        max_age: Option<Duration>,
    ) -> (Arc<AtomicU32>, Refreshing<Vec<u32>>) {
        let loads = Arc::new(AtomicU32::new(0));
        let l = Arc::clone(&loads);
        let table = Refreshing::new("test", min, max_age, move || {
            // Each load knows one more number: 0, then 0 and 1, ...
            let n = l.fetch_add(1, Ordering::SeqCst);
            Ok((0..=n).collect())
        });
        (loads, table)
    }

    fn has(t: &Refreshing<Vec<u32>>, n: u32) -> bool {
        t.with(|v| v.contains(&n), |found| *found)
    }

    #[test]
    fn misses_reload_at_most_once_per_interval() {
        let (loads, t) = counting(Duration::from_millis(100), None);
        assert!(has(&t, 0));
        assert_eq!(loads.load(Ordering::SeqCst), 1, "loaded on first use");
        assert!(!has(&t, 1), "a miss right after loading does not reload");
        assert!(!has(&t, 1));
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        std::thread::sleep(Duration::from_millis(120));
        assert!(has(&t, 1), "a miss after the interval reloads");
        assert_eq!(loads.load(Ordering::SeqCst), 2);
        assert!(has(&t, 0), "hits never reload");
        assert_eq!(loads.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn old_tables_reload_even_on_hits() {
        let (loads, t) = counting(Duration::from_secs(60), Some(Duration::from_millis(50)));
        assert!(has(&t, 0));
        std::thread::sleep(Duration::from_millis(70));
        assert!(has(&t, 0));
        assert_eq!(loads.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn an_unreadable_file_is_retried_at_most_once_per_interval() {
        let calls = Arc::new(AtomicU32::new(0));
        let c = Arc::clone(&calls);
        let t: Refreshing<Vec<u32>> =
            Refreshing::new("missing", Duration::from_secs(3600), None, move || {
                c.fetch_add(1, Ordering::SeqCst);
                Err(std::io::Error::other("no such file"))
            });
        for _ in 0..100 {
            assert!(!has(&t, 1));
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "one read, not one per lookup"
        );
    }

    #[test]
    fn a_failed_reload_keeps_the_last_good_table() {
        let calls = Arc::new(AtomicU32::new(0));
        let c = Arc::clone(&calls);
        let t: Refreshing<Vec<u32>> =
            Refreshing::new("flaky", Duration::ZERO, None, move || {
                match c.fetch_add(1, Ordering::SeqCst) {
                    0 => Ok(vec![7]),
                    _ => Err(std::io::Error::other("gone")),
                }
            });
        assert!(has(&t, 7));
        assert!(!has(&t, 8), "miss reloads, the load fails");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(has(&t, 7), "old table still answers");
    }
}
