//! Bounds open connections. Without a bound, anyone who can reach the port
//! can hold idle connections until the fd limit is reached, and then no
//! scrape gets in, authenticated or not.
//!
//! At the bound, a new connection is not refused: the oldest connection
//! that is not serving a request is closed to make room. Idle floods then
//! only churn among themselves, while a scraper's fresh connection (the
//! newest) is served. Only when every connection is busy with a request is
//! the new one closed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

pub struct Connections {
    max: usize,
    table: Mutex<Table>,
    /// Connections closed to make room, and new ones turned away: for logs
    /// and self-metrics.
    pub evicted: AtomicU64,
    pub refused: AtomicU64,
    /// Connections chosen to make room whose fds are not closed yet: their
    /// tasks close them when next scheduled, so a fast flood of new
    /// connections could otherwise outrun the closing, and the fd limit.
    closing: AtomicUsize,
    closed: Notify,
}

/// Evicted connections allowed to be still closing before the accept loop
/// waits for them: the fd reserve covers this many.
pub const MAX_CLOSING: usize = 32;

#[derive(Default)]
struct Table {
    next_id: u64,
    /// By id, which is also age: the first idle entry is the oldest.
    open: BTreeMap<u64, Entry>,
}

struct Entry {
    busy: bool,
    close: Arc<Notify>,
}

/// One admitted connection; leaving the table when dropped.
pub struct Slot {
    id: u64,
    conns: Arc<Connections>,
    /// Woken when this connection is chosen to make room.
    pub close: Arc<Notify>,
}

impl Connections {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            table: Mutex::new(Table::default()),
            evicted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            closing: AtomicUsize::new(0),
            closed: Notify::new(),
        })
    }

    /// Waits until few enough evicted connections are still closing, so
    /// that accepting another cannot run the process out of fds.
    pub async fn room_to_accept(&self) {
        loop {
            let closed = self.closed.notified();
            if self.closing.load(Ordering::SeqCst) < MAX_CLOSING {
                return;
            }
            closed.await;
        }
    }

    pub fn max(&self) -> usize {
        self.max
    }

    pub fn open(&self) -> usize {
        self.lock().open.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        super::lock(&self.table)
    }

    /// Admits a new connection, closing the oldest idle one if the table is
    /// full; `None` if every open connection is serving a request.
    pub fn admit(self: &Arc<Self>) -> Option<Slot> {
        let mut table = self.lock();
        if table.open.len() >= self.max {
            let oldest_idle = table.open.iter().find(|(_, e)| !e.busy).map(|(&id, _)| id);
            match oldest_idle.and_then(|id| table.open.remove(&id)) {
                Some(victim) => {
                    self.closing.fetch_add(1, Ordering::SeqCst);
                    victim.close.notify_one();
                    self.evicted.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            }
        }
        let id = table.next_id;
        table.next_id += 1;
        let close = Arc::new(Notify::new());
        table.open.insert(
            id,
            Entry {
                busy: false,
                close: close.clone(),
            },
        );
        Some(Slot {
            id,
            conns: self.clone(),
            close,
        })
    }
}

impl Slot {
    /// Marks the connection busy until the guard is dropped, so that it is
    /// not closed mid-request to make room.
    pub fn busy(&self) -> BusyGuard<'_> {
        self.set_busy(true);
        BusyGuard(self)
    }

    fn set_busy(&self, busy: bool) {
        if let Some(e) = self.conns.lock().open.get_mut(&self.id) {
            e.busy = busy;
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Not in the table any more: it was evicted, and is closed now.
        if self.conns.lock().open.remove(&self.id).is_none() {
            self.conns.closing.fetch_sub(1, Ordering::SeqCst);
            self.conns.closed.notify_waiters();
        }
    }
}

pub struct BusyGuard<'a>(&'a Slot);

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        self.0.set_busy(false);
    }
}

/// How many connections can be served under the process's fd limit, after
/// the fds already open (maps, programs, links) and a reserve for files
/// opened while serving.
pub fn fit_to_fd_limit(wanted: usize, soft_limit: u64, open_fds: usize) -> usize {
    const RESERVE: u64 = 64;
    let room = soft_limit.saturating_sub(open_fds as u64 + RESERVE);
    wanted.min(room as usize).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepting_waits_while_too_many_evicted_connections_are_still_open() {
        let conns = Connections::new(1);
        let mut victims = vec![conns.admit().expect("room")];
        // Each new connection evicts the previous one, which stays open
        // (its task has not run yet) until dropped here.
        for _ in 0..MAX_CLOSING {
            victims.push(conns.admit().expect("evicts"));
        }
        assert_eq!(conns.closing.load(Ordering::SeqCst), MAX_CLOSING);
        let waiting =
            tokio::time::timeout(std::time::Duration::from_millis(50), conns.room_to_accept())
                .await;
        assert!(waiting.is_err(), "the accept loop waits");
        // The newest is the one admitted; the others are the evicted.
        let newest = victims.pop();
        victims.clear();
        assert_eq!(conns.closing.load(Ordering::SeqCst), 0);
        tokio::time::timeout(std::time::Duration::from_millis(50), conns.room_to_accept())
            .await
            .expect("room again once they are closed");
        drop(newest);
    }

    #[tokio::test]
    async fn the_oldest_idle_connection_makes_room() {
        let conns = Connections::new(3);
        let a = conns.admit().expect("room");
        let b = conns.admit().expect("room");
        let _c = conns.admit().expect("room");
        let busy_a = a.busy();
        // Full: `a` is busy, so `b`, the oldest idle one, is closed.
        let d = conns.admit().expect("b makes room");
        assert_eq!(conns.open(), 3);
        assert_eq!(conns.evicted.load(Ordering::Relaxed), 1);
        // `b` was told to close; its notification is waiting for it.
        let woken = tokio::time::timeout(std::time::Duration::from_millis(50), b.close.notified());
        assert!(woken.await.is_ok(), "b's close was signalled");
        drop(b);
        assert_eq!(conns.open(), 3, "b had already left the table");
        let _busy_c = _c.busy();
        let _busy_d = d.busy();
        assert!(conns.admit().is_none(), "all busy: the new one is refused");
        assert_eq!(conns.refused.load(Ordering::Relaxed), 1);
        drop(busy_a);
        assert!(conns.admit().is_some(), "a is idle again and makes room");
    }

    #[test]
    fn limit_fits_the_fd_budget() {
        assert_eq!(fit_to_fd_limit(512, 1024, 100), 512);
        assert_eq!(fit_to_fd_limit(2000, 1024, 100), 860);
        assert_eq!(fit_to_fd_limit(512, 100, 100), 1);
    }
}
