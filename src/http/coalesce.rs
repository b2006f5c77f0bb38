//! Coalesces concurrent scrapes: a request that arrives while a scrape of
//! the same format is in flight waits for that scrape and shares its result,
//! instead of starting another read of every map. Ten Prometheus replicas
//! scraping at once cost one map read, and a result is never older than the
//! scrape a request found running.

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;

use super::lock;
use crate::encode::Format;
use crate::exporter::Exporter;

/// What the coalescer serialises access to: the exporter, or a stand-in in
/// tests.
pub trait Source: Send + 'static {
    fn scrape(&mut self, format: Format) -> String;
    /// Detaches every program (shutdown).
    fn detach_all(&mut self);
}

impl Source for Exporter {
    fn scrape(&mut self, format: Format) -> String {
        Exporter::scrape(self, format)
    }
    fn detach_all(&mut self) {
        Exporter::detach_all(self)
    }
}

/// What a flight produces: the body, gzipped when the flight is for gzip.
type Outcome = Option<Result<Bytes, ScrapeError>>;
type Flight = watch::Receiver<Outcome>;

/// A flight is per format and encoding, so that compression runs once per
/// coalesced scrape, on the scrape's blocking thread.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Variant {
    pub format: Format,
    pub gzip: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScrapeError {
    /// The scrape panicked; the message is the panic's.
    Panicked(String),
    /// The scrape's thread went away without an answer.
    Abandoned,
}

impl fmt::Display for ScrapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Panicked(why) => write!(f, "scrape failed: {why}"),
            Self::Abandoned => write!(f, "scrape failed: its worker stopped without an answer"),
        }
    }
}

/// Whether scraping works, as `/healthz` reports it.
#[derive(Default)]
struct Health {
    last_error: Option<ScrapeError>,
    running_since: Option<Instant>,
}

/// A scrape running longer than this makes `/healthz` fail.
const STUCK_AFTER: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct Coalescer {
    exporter: Arc<StdMutex<dyn Source>>,
    /// The scrape in flight per variant, which late arrivals join.
    flights: Arc<StdMutex<HashMap<Variant, Flight>>>,
    health: Arc<StdMutex<Health>>,
}

impl Coalescer {
    pub fn new(exporter: impl Source) -> Self {
        Self::shared(Arc::new(StdMutex::new(exporter)))
    }

    /// Serialises scrapes of a source that others (the reloader) also
    /// lock between scrapes.
    pub fn shared<S: Source>(exporter: Arc<StdMutex<S>>) -> Self {
        Self {
            exporter,
            flights: Arc::new(StdMutex::new(HashMap::new())),
            health: Arc::new(StdMutex::new(Health::default())),
        }
    }

    /// The result of a scrape of `variant` that was running or started when
    /// this was called.
    pub async fn scrape(&self, variant: Variant) -> Result<Bytes, ScrapeError> {
        let mut flight = {
            let mut flights = lock(&self.flights);
            match flights.get(&variant) {
                Some(rx) => rx.clone(),
                None => {
                    let (tx, rx) = watch::channel(None);
                    flights.insert(variant, rx.clone());
                    self.lead(variant, tx);
                    rx
                }
            }
        };
        loop {
            if let Some(result) = flight.borrow_and_update().clone() {
                return result;
            }
            if flight.changed().await.is_err() {
                return Err(ScrapeError::Abandoned);
            }
        }
    }

    /// `Ok` if the last scrape worked and none is stuck; else why not.
    pub fn health(&self) -> Result<(), String> {
        let h = lock(&self.health);
        if let Some(since) = h.running_since {
            let running = since.elapsed();
            if running > STUCK_AFTER {
                return Err(format!(
                    "a scrape has been running for {}s",
                    running.as_secs()
                ));
            }
        }
        match &h.last_error {
            Some(e) => Err(format!("the last {e}")),
            None => Ok(()),
        }
    }

    /// Runs the scrape on a blocking thread (map reads are syscalls). It
    /// finishes even if the request that started it goes away, so requests
    /// that joined it still get their answer.
    fn lead(&self, variant: Variant, tx: watch::Sender<Outcome>) {
        let exporter = Arc::clone(&self.exporter);
        let health = Arc::clone(&self.health);
        // Leaves the flight and answers its waiters however the thread ends:
        // a flight left behind would be joined by every later request.
        let mut guard = FlightGuard {
            flights: Arc::clone(&self.flights),
            variant,
            tx: Some(tx),
        };
        let spawned = tokio::task::spawn_blocking(move || {
            lock(&health).running_since.get_or_insert_with(Instant::now);
            // The guard is taken outside catch_unwind, so a panic is caught
            // before it unwinds past the guard: the lock is not poisoned.
            let mut source = lock(&exporter);
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                let body = source.scrape(variant.format);
                if variant.gzip {
                    gzip(body.as_bytes())
                } else {
                    Bytes::from(body)
                }
            }))
            .map_err(|panic| ScrapeError::Panicked(panic_message(panic.as_ref())));
            drop(source);
            {
                let mut h = lock(&health);
                h.running_since = None;
                h.last_error = result.as_ref().err().cloned();
            }
            if let Err(e) = &result {
                log::error!("{e}");
            }
            guard.finish(result);
        });
        // A runtime shutting down drops the task unrun; its guard answers.
        drop(spawned);
    }

    /// Detaches every program, after any scrape in flight (shutdown).
    pub async fn detach_all(&self) {
        let exporter = Arc::clone(&self.exporter);
        let _ = tokio::task::spawn_blocking(move || lock(&exporter).detach_all()).await;
    }
}

struct FlightGuard {
    flights: Arc<StdMutex<HashMap<Variant, Flight>>>,
    variant: Variant,
    tx: Option<watch::Sender<Outcome>>,
}

impl FlightGuard {
    fn finish(&mut self, result: Result<Bytes, ScrapeError>) {
        // Leave the flight before publishing, so a request arriving from
        // now on starts a fresh scrape rather than reusing this one.
        lock(&self.flights).remove(&self.variant);
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Some(result));
        }
    }
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        if self.tx.is_some() {
            self.finish(Err(ScrapeError::Abandoned));
        }
    }
}

fn gzip(body: &[u8]) -> Bytes {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(body);
    Bytes::from(enc.finish().unwrap_or_default())
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: Variant = Variant {
        format: Format::Text,
        gzip: false,
    };

    /// `n` requests for `variant` started together; their bodies in order.
    async fn scrape_at_once(c: &Coalescer, variant: Variant, n: usize) -> Vec<Bytes> {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let c = c.clone();
                tokio::spawn(async move { c.scrape(variant).await })
            })
            .collect();
        let mut bodies = Vec::new();
        for h in handles {
            bodies.push(h.await.expect("task").expect("scrape"));
        }
        bodies
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_share_one_scrape() {
        let exporter = Exporter::new(Default::default());
        let c = Coalescer::new(exporter);
        // Hold the exporter so the first scrape stays in flight while the
        // others arrive.
        let gate = Arc::clone(&c.exporter);
        let held = std::thread::spawn(move || {
            let _g = gate.lock();
            std::thread::sleep(std::time::Duration::from_millis(300));
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        let bodies = scrape_at_once(&c, TEXT, 10).await;
        let _ = held.join();
        // Every request got the very same buffer: one scrape served all.
        assert!(bodies.windows(2).all(|w| w[0].as_ptr() == w[1].as_ptr()));
        let next = c.scrape(TEXT).await.expect("scrape");
        assert_ne!(
            next.as_ptr(),
            bodies[0].as_ptr(),
            "a later request scrapes afresh"
        );
    }

    /// Panics on the scrapes it is told to, counting every scrape.
    struct Flaky {
        scrapes: Arc<std::sync::atomic::AtomicUsize>,
        panic_on: usize,
    }

    impl Source for Flaky {
        fn scrape(&mut self, _: Format) -> String {
            let n = self
                .scrapes
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if n == self.panic_on {
                panic!("collector broke");
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            "a_total 1\n".repeat(1000)
        }
        fn detach_all(&mut self) {}
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_scrape_fails_once_and_the_next_is_healthy() {
        let scrapes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let c = Coalescer::new(Flaky {
            scrapes: scrapes.clone(),
            panic_on: 0,
        });
        assert_eq!(c.health(), Ok(()));
        assert_eq!(
            c.scrape(TEXT).await,
            Err(ScrapeError::Panicked("collector broke".into()))
        );
        assert_eq!(
            c.health(),
            Err("the last scrape failed: collector broke".into())
        );
        assert!(
            !c.exporter.is_poisoned(),
            "the lock was not held by the panic's unwinding"
        );
        let body = c.scrape(TEXT).await.expect("the next scrape works");
        assert_eq!(body.len(), 10 * 1000);
        assert_eq!(c.health(), Ok(()));
        assert!(lock(&c.flights).is_empty(), "no flight is left behind");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn gzip_runs_once_per_coalesced_scrape() {
        let scrapes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let c = Coalescer::new(Flaky {
            scrapes: scrapes.clone(),
            panic_on: usize::MAX,
        });
        let gz = Variant {
            format: Format::Text,
            gzip: true,
        };
        let bodies = scrape_at_once(&c, gz, 8).await;
        assert_eq!(scrapes.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(
            bodies.windows(2).all(|w| w[0].as_ptr() == w[1].as_ptr()),
            "one compressed buffer"
        );
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bodies[0][..]), &mut text)
            .expect("valid gzip");
        assert_eq!(text, "a_total 1\n".repeat(1000));
    }
}
