//! Coalesces concurrent scrapes: requests that arrive while a scrape is
//! running wait for the next one to finish, and requests that arrived before
//! a finished scrape started reuse its result. Ten Prometheus replicas
//! scraping at once cost about one map read, never ten.

use std::sync::Arc;

use bytes::Bytes;
use std::time::Instant;

use tokio::sync::Mutex;

use crate::encode::Format;
use crate::exporter::Exporter;

struct Shared {
    exporter: Exporter,
    /// Latest scrape per format: when it started, and its text.
    latest: Vec<(Format, Instant, Bytes)>,
}

#[derive(Clone)]
pub struct Coalescer {
    inner: Arc<Mutex<Shared>>,
}

impl Coalescer {
    pub fn new(exporter: Exporter) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Shared {
                exporter,
                latest: Vec::new(),
            })),
        }
    }

    /// A scrape that started no earlier than this call, in `format`.
    pub async fn scrape(&self, format: Format) -> Result<Bytes, String> {
        let arrived = Instant::now();
        let mut guard = self.inner.clone().lock_owned().await;
        if let Some((_, _, text)) = guard
            .latest
            .iter()
            .find(|(f, started, _)| *f == format && *started >= arrived)
        {
            return Ok(text.clone());
        }
        // Map reads are blocking syscalls: run them off the async workers,
        // holding the lock so the next waiters reuse this result.
        let result = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let text = Bytes::from(guard.exporter.scrape(format));
            guard.latest.retain(|(f, _, _)| *f != format);
            guard.latest.push((format, started, text.clone()));
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
