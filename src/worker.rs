//! The one owner of a background thread that runs until whatever owns it
//! is dropped: the config watcher, perf and ring buffer readers, and the
//! cgroup_id_map sync. Each had its own stop flag, join and `Drop`; a
//! thread that outlived its config, or a teardown that hung on a join, was
//! one forgotten line away.
//!
//! Used by any stage; depends on none.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

/// Seen by the thread: whether its owner asked it to stop. Loops check it
/// at least every poll interval.
#[derive(Clone)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// What dropping the owner waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDrop {
    /// Wait for the thread to end: it holds something that must be gone
    /// when the owner is (the watcher's reload callback, a reader's queue).
    Join,
    /// Only ask it to stop: it holds nothing but its own map handle, and
    /// sees the flag within one poll, which a teardown need not wait for.
    Detach,
}

/// Why a worker that reports readiness did not start.
#[derive(Debug)]
pub enum StartError<E> {
    /// The thread could not be created.
    Spawn(std::io::Error),
    /// It ended (panicked) before saying whether it was ready.
    Ended,
    /// It said it could not start, and why.
    Failed(E),
}

impl<E: std::fmt::Display> std::fmt::Display for StartError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Spawn(e) => write!(f, "starting its thread: {e}"),
            Self::Ended => f.write_str("its thread ended before it started"),
            Self::Failed(e) => e.fmt(f),
        }
    }
}

impl<E: std::fmt::Debug + std::fmt::Display> std::error::Error for StartError<E> {}

/// How the thread tells `Worker::start` it is ready, or why it is not.
pub struct Ready<E>(mpsc::Sender<Result<(), E>>);

impl<E> Ready<E> {
    pub fn ok(self) {
        let _ = self.0.send(Ok(()));
    }

    pub fn fail(self, e: E) {
        let _ = self.0.send(Err(e));
    }
}

pub struct Worker {
    stop: StopFlag,
    thread: Option<JoinHandle<()>>,
    on_drop: OnDrop,
}

impl Worker {
    /// Runs `body` on a thread named `name` until the worker is dropped.
    pub fn spawn(
        name: impl Into<String>,
        on_drop: OnDrop,
        body: impl FnOnce(StopFlag) + Send + 'static,
    ) -> std::io::Result<Self> {
        let stop = StopFlag(Arc::new(AtomicBool::new(false)));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || body(flag))?;
        Ok(Self {
            stop,
            thread: Some(thread),
            on_drop,
        })
    }

    /// Like `spawn`, for a body that first sets up what it reads (on its
    /// own thread, so that callbacks can own what they touch) and says
    /// through `Ready` whether it could: this returns once it has.
    pub fn start<E: Send + 'static>(
        name: impl Into<String>,
        on_drop: OnDrop,
        body: impl FnOnce(StopFlag, Ready<E>) + Send + 'static,
    ) -> Result<Self, StartError<E>> {
        let (tx, rx) = mpsc::channel();
        let worker = Self::spawn(name, on_drop, move |stop| body(stop, Ready(tx)))
            .map_err(StartError::Spawn)?;
        match rx.recv() {
            Ok(Ok(())) => Ok(worker),
            Ok(Err(e)) => Err(StartError::Failed(e)),
            Err(_) => Err(StartError::Ended),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.0.store(true, Ordering::Release);
        let Some(thread) = self.thread.take() else {
            return;
        };
        // Joining itself would deadlock: a worker dropped on its own thread
        // (its body owning its owner) only asks.
        if self.on_drop == OnDrop::Join && thread.thread().id() != std::thread::current().id() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn dropping_stops_and_joins() {
        let (tx, rx) = mpsc::channel();
        let worker = Worker::spawn("test-worker", OnDrop::Join, move |stop| {
            while !stop.is_set() {
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = tx.send(());
        })
        .expect("spawned");
        drop(worker);
        // Joined: the thread has already sent before drop returned.
        assert_eq!(rx.try_recv(), Ok(()));
    }

    #[test]
    fn detached_workers_are_asked_and_not_waited_for() {
        let (tx, rx) = mpsc::channel();
        let worker = Worker::spawn("test-worker", OnDrop::Detach, move |stop| {
            while !stop.is_set() {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = tx.send(());
        })
        .expect("spawned");
        let began = Instant::now();
        drop(worker);
        assert!(began.elapsed() < Duration::from_millis(40));
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(()));
    }

    #[test]
    fn start_reports_readiness_failure_and_panics() {
        let ok = Worker::start::<String>("ready", OnDrop::Join, |stop, ready| {
            ready.ok();
            while !stop.is_set() {
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        assert!(ok.is_ok());
        let failed = Worker::start("fails", OnDrop::Join, |_, ready| ready.fail("no buffer"));
        assert!(matches!(failed, Err(StartError::Failed("no buffer"))));
        let ended =
            Worker::start::<String>("panics", OnDrop::Join, |_, _| panic!("set-up panicked"));
        assert!(matches!(ended, Err(StartError::Ended)));
        assert_eq!(
            ended.err().map(|e| e.to_string()).as_deref(),
            Some("its thread ended before it started")
        );
    }
}
