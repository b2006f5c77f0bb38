//! Coalesces concurrent scrapes: requests that arrive while a scrape is
//! running wait for the next one to finish, and requests that arrived before
//! a finished scrape started reuse its result. Ten Prometheus replicas
//! scraping at once cost about one map read, never ten.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use std::time::Instant;

use tokio::sync::Mutex;

use crate::encode::Format;
use crate::exporter::Exporter;

struct Shared {
    exporter: Exporter,
    /// Latest scrape per format: when it started, and its text. Only
    /// requests already queued can reuse it, so it is dropped once none are
    /// waiting: a large exposition is not kept alive between scrapes.
    latest: Vec<(Format, Instant, Bytes)>,
}

#[derive(Clone)]
pub struct Coalescer {
    inner: Arc<Mutex<Shared>>,
    waiting: Arc<AtomicUsize>,
}

impl Coalescer {
    pub fn new(exporter: Exporter) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Shared {
                exporter,
                latest: Vec::new(),
            })),
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A scrape that started no earlier than this call, in `format`.
    pub async fn scrape(&self, format: Format) -> Result<Bytes, String> {
        let arrived = Instant::now();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut guard = self.inner.clone().lock_owned().await;
        let others_waiting = self.waiting.fetch_sub(1, Ordering::SeqCst) > 1;
        let reusable = guard
            .latest
            .iter()
            .find(|(f, started, _)| *f == format && *started >= arrived)
            .map(|(_, _, text)| text.clone());
        if let Some(text) = reusable {
            if !others_waiting {
                guard.latest.clear();
            }
            return Ok(text);
        }
        guard.latest.clear();
        let waiting = Arc::clone(&self.waiting);
        // Map reads are blocking syscalls: run them off the async workers,
        // holding the lock so the next waiters reuse this result.
        let result = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let text = Bytes::from(guard.exporter.scrape(format));
            if waiting.load(Ordering::SeqCst) > 0 {
                guard.latest.push((format, started, text.clone()));
            }
            text
        })
        .await;
        result.map_err(|e| format!("scrape failed: {e}"))
    }

    /// Runs `f` with the exporter locked (shutdown, tests).
    pub async fn with_exporter<T>(&self, f: impl FnOnce(&mut Exporter) -> T) -> T {
        let mut guard = self.inner.lock().await;
        f(&mut guard.exporter)
    }
}
