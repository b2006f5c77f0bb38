//! Coalesces concurrent scrapes: a request that arrives while a scrape of
//! the same format is in flight waits for that scrape and shares its result,
//! instead of starting another read of every map. Ten Prometheus replicas
//! scraping at once cost one map read, and a result is never older than the
//! scrape a request found running.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex};

use bytes::Bytes;
use tokio::sync::watch;

use crate::encode::Format;
use crate::exporter::Exporter;

type Flight = watch::Receiver<Option<Result<Bytes, String>>>;

#[derive(Clone)]
pub struct Coalescer {
    exporter: Arc<StdMutex<Exporter>>,
    /// The scrape in flight per format, which late arrivals join.
    flights: Arc<StdMutex<HashMap<Format, Flight>>>,
}

impl Coalescer {
    pub fn new(exporter: Exporter) -> Self {
        Self {
            exporter: Arc::new(StdMutex::new(exporter)),
            flights: Arc::new(StdMutex::new(HashMap::new())),
        }
    }

    /// The result of a scrape in `format` that was running or started when
    /// this was called.
    pub async fn scrape(&self, format: Format) -> Result<Bytes, String> {
        let mut flight = {
            let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
            match flights.get(&format) {
                Some(rx) => rx.clone(),
                None => {
                    let (tx, rx) = watch::channel(None);
                    flights.insert(format, rx.clone());
                    self.lead(format, tx);
                    rx
                }
            }
        };
        loop {
            if let Some(result) = flight.borrow_and_update().clone() {
                return result;
            }
            if flight.changed().await.is_err() {
                return Err("scrape was abandoned".into());
            }
        }
    }

    /// Runs the scrape on a blocking thread (map reads are syscalls). It
    /// finishes even if the request that started it goes away, so requests
    /// that joined it still get their answer.
    fn lead(&self, format: Format, tx: watch::Sender<Option<Result<Bytes, String>>>) {
        let exporter = Arc::clone(&self.exporter);
        let flights = Arc::clone(&self.flights);
        tokio::task::spawn_blocking(move || {
            let result = match exporter.lock() {
                Ok(mut e) => Ok(Bytes::from(e.scrape(format))),
                Err(_) => Err("scrape failed: an earlier scrape panicked".to_string()),
            };
            // Leave the flight before publishing, so a request arriving from
            // now on starts a fresh scrape rather than reusing this one.
            flights
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&format);
            let _ = tx.send(Some(result));
        });
    }

    /// Runs `f` with the exporter locked (shutdown, tests).
    pub async fn with_exporter<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Exporter) -> T + Send + 'static,
    ) -> T {
        let exporter = Arc::clone(&self.exporter);
        tokio::task::spawn_blocking(move || {
            let mut e = exporter.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut e)
        })
        .await
        .expect("exporter task does not panic")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_share_one_scrape() {
        let exporter = Exporter::new(Vec::new(), Vec::new());
        let c = Coalescer::new(exporter);
        // Hold the exporter so the first scrape stays in flight while the
        // others arrive.
        let gate = Arc::clone(&c.exporter);
        let held = std::thread::spawn(move || {
            let _g = gate.lock();
            std::thread::sleep(std::time::Duration::from_millis(300));
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        let handles: Vec<_> = (0..10)
            .map(|_| {
                let c = c.clone();
                tokio::spawn(async move { c.scrape(Format::Text).await })
            })
            .collect();
        let mut bodies = Vec::new();
        for h in handles {
            bodies.push(h.await.expect("task").expect("scrape"));
        }
        let _ = held.join();
        // Every request got the very same buffer: one scrape served all.
        assert!(bodies.windows(2).all(|w| w[0].as_ptr() == w[1].as_ptr()));
        let next = c.scrape(Format::Text).await.expect("scrape");
        assert_ne!(
            next.as_ptr(),
            bodies[0].as_ptr(),
            "a later request scrapes afresh"
        );
    }
}
