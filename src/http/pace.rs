//! Keeps a streamed scrape from running far ahead of its clients.
//!
//! A scrape renders its exposition faster than a socket may take it: at a
//! million series the text is tens of megabytes, and every chunk sent but
//! not yet written out is held in memory. Unpaced, a client reading at
//! 5 MB/s raised the exporter's peak RSS by 18 MB, and even a client on
//! loopback left a few megabytes queued at times. So the scrape's thread
//! waits whenever every client of its flight has more than `AHEAD` bytes
//! queued: it runs at the pace of its fastest client, and memory queued for
//! that client stays under `AHEAD` plus a chunk.
//!
//! A client that takes nothing for a while (`Pace::stall_after`) no longer
//! holds the scrape: its response is ended, so a stuck reader can neither
//! hold the exporter nor the chunks. A client slower than another of its
//! flight is not waited for; it is sent chunks as they come, as before.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::lock;

/// Bytes a client may have queued before the scrape waits for it: four
/// text chunks, a fraction of a millisecond of writing on loopback.
pub const AHEAD: usize = 1024 * 1024;

/// How long the scrape waits for a client that takes nothing: Prometheus
/// gives up on a scrape after 10 seconds unless told otherwise.
pub const STALL_AFTER: Duration = Duration::from_secs(10);

/// Wakes are also checked this often, in case one came between a check
/// and the wait.
const RECHECK: Duration = Duration::from_millis(50);

/// What one flight's clients and its scrape share: where the scrape waits,
/// and what tells it clients made progress.
pub struct Pace {
    lock: Mutex<()>,
    room: Condvar,
    waiting: AtomicBool,
    /// Bytes taken by any client so far.
    taken: AtomicU64,
    stall_after: Duration,
}

impl Pace {
    pub fn new(stall_after: Duration) -> Arc<Self> {
        Arc::new(Self {
            lock: Mutex::new(()),
            room: Condvar::new(),
            waiting: AtomicBool::new(false),
            taken: AtomicU64::new(0),
            stall_after,
        })
    }

    /// Waits until some backlog in `clients` is at most `AHEAD` (or none is
    /// left). `false` when clients took nothing for `stall_after`.
    pub fn wait_for_room(&self, clients: &[Arc<Backlog>]) -> bool {
        let room = || clients.is_empty() || clients.iter().any(|c| c.bytes() <= AHEAD);
        if room() {
            return true;
        }
        let mut guard = lock(&self.lock);
        self.waiting.store(true, SeqCst);
        let (mut taken, mut since) = (self.taken.load(SeqCst), Instant::now());
        let ok = loop {
            if room() {
                break true;
            }
            let now = self.taken.load(SeqCst);
            if now != taken {
                (taken, since) = (now, Instant::now());
            } else if since.elapsed() >= self.stall_after {
                break false;
            }
            guard = match self.room.wait_timeout(guard, RECHECK) {
                Ok((g, _)) => g,
                Err(poisoned) => poisoned.into_inner().0,
            };
        };
        self.waiting.store(false, SeqCst);
        ok
    }

    pub fn stall_after(&self) -> Duration {
        self.stall_after
    }

    fn wake(&self) {
        if self.waiting.load(SeqCst) {
            // Taking the lock orders this after the waiter's check: it is
            // either before the check (which sees the room) or in the wait.
            let _g = lock(&self.lock);
            self.room.notify_all();
        }
    }
}

/// One client's bytes sent but not yet taken: added to by the flight,
/// taken from by the client's body as it hands chunks to the connection.
pub struct Backlog {
    bytes: AtomicUsize,
    /// The client is gone: it holds nothing and is not waited for.
    closed: AtomicBool,
    pace: Arc<Pace>,
}

impl Backlog {
    pub fn new(pace: &Arc<Pace>) -> Arc<Self> {
        Arc::new(Self {
            bytes: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            pace: Arc::clone(pace),
        })
    }

    pub fn bytes(&self) -> usize {
        if self.closed.load(SeqCst) {
            0
        } else {
            self.bytes.load(SeqCst)
        }
    }

    pub fn sent(&self, n: usize) {
        self.bytes.fetch_add(n, SeqCst);
    }

    pub fn taken(&self, n: usize) {
        let before = self.bytes.fetch_sub(n, SeqCst);
        self.pace.taken.fetch_add(n as u64, SeqCst);
        if before.saturating_sub(n) <= AHEAD {
            self.pace.wake();
        }
    }

    /// The client went away.
    pub fn close(&self) {
        self.closed.store(true, SeqCst);
        self.pace.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_ends_when_a_client_takes_enough() {
        let pace = Pace::new(Duration::from_secs(30));
        let (fast, slow) = (Backlog::new(&pace), Backlog::new(&pace));
        fast.sent(3 * AHEAD);
        slow.sent(3 * AHEAD);
        let clients = [Arc::clone(&fast), Arc::clone(&slow)];
        let taker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            fast.taken(2 * AHEAD);
        });
        let t = Instant::now();
        assert!(pace.wait_for_room(&clients));
        assert!(t.elapsed() >= Duration::from_millis(100));
        assert!(t.elapsed() < Duration::from_secs(5), "woken, not timed out");
        let _ = taker.join();
        assert_eq!(clients[0].bytes(), AHEAD);
        assert_eq!(clients[1].bytes(), 3 * AHEAD);
    }

    #[test]
    fn a_client_that_takes_nothing_stalls_the_wait_and_one_that_left_does_not() {
        let pace = Pace::new(Duration::from_millis(200));
        let stuck = Backlog::new(&pace);
        stuck.sent(2 * AHEAD);
        let t = Instant::now();
        assert!(!pace.wait_for_room(&[Arc::clone(&stuck)]));
        assert!(t.elapsed() >= Duration::from_millis(200));
        // Trickling keeps the wait going past the stall time.
        let trickle = Arc::clone(&stuck);
        let taker = std::thread::spawn(move || {
            for _ in 0..8 {
                std::thread::sleep(Duration::from_millis(100));
                trickle.taken(AHEAD / 8);
            }
        });
        let t = Instant::now();
        assert!(pace.wait_for_room(&[Arc::clone(&stuck)]));
        assert!(t.elapsed() >= Duration::from_millis(700), "waited it out");
        let _ = taker.join();
        stuck.sent(AHEAD);
        stuck.close();
        assert_eq!(stuck.bytes(), 0);
        assert!(pace.wait_for_room(&[stuck]));
        assert!(pace.wait_for_room(&[]), "no clients, nothing to wait for");
    }
}
