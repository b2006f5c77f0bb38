//! The reload thread: every trigger (SIGHUP, `POST /-/reload`, the config
//! watcher) asks it for a reload, and requests that arrive while one runs
//! are answered together by the next one. That next one is needed: a file
//! may have changed after the running reload read it.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::reload::{log_outcome, Loader, Outcome};
use super::Exporter;

/// Called around each reload, for readiness notification.
pub struct Hooks {
    pub starting: Box<dyn Fn() + Send>,
    pub finished: Box<dyn Fn(&Outcome) + Send>,
}

#[derive(Default)]
struct Queue {
    requested: bool,
    /// Why, for the log: the triggers coalesced into the next reload.
    triggers: Vec<&'static str>,
    waiters: Vec<oneshot::Sender<Arc<Outcome>>>,
    stop: bool,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
}

/// Asks for reloads; cheap to clone.
#[derive(Clone)]
pub struct ReloadHandle(Arc<Shared>);

impl ReloadHandle {
    /// Asks for a reload and returns at once.
    pub fn request(&self, trigger: &'static str) {
        self.enqueue(trigger, None);
    }

    /// Asks for a reload; the receiver gets the outcome of the reload that
    /// read the configs after this call.
    pub fn request_and_wait(&self, trigger: &'static str) -> oneshot::Receiver<Arc<Outcome>> {
        let (tx, rx) = oneshot::channel();
        self.enqueue(trigger, Some(tx));
        rx
    }

    fn enqueue(&self, trigger: &'static str, waiter: Option<oneshot::Sender<Arc<Outcome>>>) {
        let mut q = self.0.queue.lock().unwrap_or_else(PoisonError::into_inner);
        q.requested = true;
        if !q.triggers.contains(&trigger) {
            q.triggers.push(trigger);
        }
        q.waiters.extend(waiter);
        self.0.wake.notify_one();
    }
}

/// The running reload thread; `stop` ends it after any reload in flight.
pub struct Reloader {
    handle: ReloadHandle,
    thread: Option<JoinHandle<Loader>>,
}

impl Reloader {
    pub fn spawn(
        mut loader: Loader,
        exporter: Arc<Mutex<Exporter>>,
        hooks: Hooks,
    ) -> std::io::Result<Self> {
        let handle = ReloadHandle(Arc::new(Shared::default()));
        let shared = Arc::clone(&handle.0);
        let thread = std::thread::Builder::new()
            .name("reloader".into())
            .spawn(move || {
                while let Some((triggers, waiters)) = next(&shared) {
                    (hooks.starting)();
                    let outcome =
                        std::panic::catch_unwind(AssertUnwindSafe(|| loader.load(&exporter, true)))
                            .unwrap_or_else(|_| {
                                Outcome::failed(
                            "the reload panicked; the configs running before it keep running"
                                .into(),
                        )
                            });
                    log_outcome(&format!("reload ({})", triggers.join(", ")), &outcome);
                    (hooks.finished)(&outcome);
                    let outcome = Arc::new(outcome);
                    for w in waiters {
                        let _ = w.send(Arc::clone(&outcome));
                    }
                }
                loader
            })?;
        Ok(Self {
            handle,
            thread: Some(thread),
        })
    }

    pub fn handle(&self) -> ReloadHandle {
        self.handle.clone()
    }

    /// Stops taking requests, waits for a reload in flight, and hands the
    /// loader back (its span queue flushes when it drops).
    pub fn stop(mut self) -> Option<Loader> {
        {
            let mut q = self
                .handle
                .0
                .queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            q.stop = true;
            self.handle.0.wake.notify_one();
        }
        self.thread.take().and_then(|t| t.join().ok())
    }
}

type Batch = (Vec<&'static str>, Vec<oneshot::Sender<Arc<Outcome>>>);

/// Waits for requests; takes every request made so far.
fn next(shared: &Shared) -> Option<Batch> {
    let mut q = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
    while !q.requested && !q.stop {
        q = shared.wake.wait(q).unwrap_or_else(PoisonError::into_inner);
    }
    if q.stop {
        return None;
    }
    q.requested = false;
    Some((
        std::mem::take(&mut q.triggers),
        std::mem::take(&mut q.waiters),
    ))
}
