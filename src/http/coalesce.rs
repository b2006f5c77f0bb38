//! Coalesces concurrent scrapes: a request that arrives while a scrape of
//! the same format is in flight joins that scrape and shares its result,
//! instead of starting another read of every map. Ten Prometheus replicas
//! scraping at once cost one map read, and a result is never older than the
//! scrape a request found running.
//!
//! A scrape streams: the exporter hands over its text in chunks as it
//! renders it (gzipped chunk by chunk on the scrape's thread, once per
//! flight), and every client of the flight is sent each chunk, shared, not
//! copied. A flight keeps the chunks sent so far for requests that join
//! late, up to `RETAIN` bytes; past that it stops taking joiners (a later
//! request starts the next scrape) and drops chunks as its clients take
//! them, so a million-series exposition never sits in memory whole; nor
//! does the scrape run further ahead of its fastest client than
//! `pace::AHEAD` (see `pace`). A small exposition arrives as one chunk and
//! is answered with a Content-Length, and a scrape failing before its first
//! chunk is a 500; one failing later ends the response early, which
//! Prometheus counts as a failed scrape.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex as StdMutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

use super::lock;
use super::pace::{Backlog, Pace, STALL_AFTER};
use crate::encode::{ChunkPool, Format, Spill};
use crate::exporter::Exporter;

/// Chunk size of a streamed scrape.
const CHUNK: usize = 256 * 1024;
/// Chunk buffers kept between scrapes, at most (4 MiB). A scrape keeps
/// only as many as it had in use at once: 2 at 10k series, 13 at 100k,
/// where keeping 4 instead left 9 to be faulted in anew every scrape (4.5%
/// more CPU in the `builds` bench, for the same peak RSS).
const KEEP_CHUNKS: usize = 16;
/// Bytes a flight keeps for late joiners before it stops taking them: a
/// whole exposition of up to about 50k series in text (far more gzipped),
/// or the first 15 ms of a million-series scrape, when replicas scraping
/// together have long joined. At 8 MiB this was 8 MB of a million-series
/// scrape's peak RSS, an eighth of what its series cost.
const RETAIN: usize = 2 * 1024 * 1024;

/// What the coalescer serialises access to: the exporter, or a stand-in in
/// tests.
pub trait Source: Send + 'static {
    fn scrape(&mut self, format: Format) -> Vec<u8>;
    /// Like `scrape`, handing over chunks of about the pool's chunk size to
    /// `spill` as they are rendered, in buffers from the pool, and
    /// returning the rest.
    fn scrape_streaming(
        &mut self,
        format: Format,
        _pool: &Arc<ChunkPool>,
        _spill: Spill,
    ) -> Vec<u8> {
        self.scrape(format)
    }
    /// Detaches every program (shutdown).
    fn detach_all(&mut self);
}

impl Source for Exporter {
    fn scrape(&mut self, format: Format) -> Vec<u8> {
        Exporter::scrape(self, format)
    }
    fn scrape_streaming(&mut self, format: Format, pool: &Arc<ChunkPool>, spill: Spill) -> Vec<u8> {
        Exporter::scrape_streaming(self, format, Some((Arc::clone(pool), spill)))
    }
    fn detach_all(&mut self) {
        Exporter::detach_all(self)
    }
}

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

impl std::error::Error for ScrapeError {}

/// What a flight sends each of its clients.
#[derive(Clone)]
enum Event {
    Chunk(Bytes),
    /// The final chunk: one message, so a client that wakes up to it
    /// knows the body is whole.
    Last(Bytes),
    Done,
    Failed(ScrapeError),
}

/// One flight's clients, and what it keeps for late joiners.
struct Broadcast {
    /// Every chunk sent so far, while the flight takes joiners.
    retained: Option<Vec<Bytes>>,
    retained_bytes: usize,
    clients: Vec<Client>,
    pace: Arc<Pace>,
}

/// Where a flight sends one client's chunks, and how many it holds.
struct Client {
    tx: mpsc::UnboundedSender<Event>,
    backlog: Arc<Backlog>,
}

impl Client {
    /// Whether the client is still there to be sent to.
    fn send(&self, event: Event) -> bool {
        if let Event::Chunk(chunk) = &event {
            self.backlog.sent(chunk.len());
        }
        self.tx.send(event).is_ok()
    }
}

/// A client's end of its flight: closing its backlog however it goes, so
/// the scrape never waits for a client that left.
struct Inbox {
    rx: mpsc::UnboundedReceiver<Event>,
    backlog: Arc<Backlog>,
}

impl Drop for Inbox {
    fn drop(&mut self) {
        self.backlog.close();
    }
}

type Flight = Arc<StdMutex<Broadcast>>;
type Flights = Arc<StdMutex<HashMap<Variant, Flight>>>;

/// A scrape's answer.
pub enum Scraped {
    /// The whole body, which came as one chunk.
    Whole(Bytes),
    /// The first chunks, and the rest as they come.
    Streaming(ChunkBody),
}

#[cfg(test)]
impl Scraped {
    /// The whole body, waiting for the rest of a stream.
    pub async fn collect(self) -> Result<Bytes, ScrapeError> {
        match self {
            Scraped::Whole(b) => Ok(b),
            Scraped::Streaming(mut body) => {
                let mut all = Vec::new();
                while let Some(frame) =
                    std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
                {
                    if let Ok(data) = frame?.into_data() {
                        all.extend_from_slice(&data);
                    }
                }
                Ok(Bytes::from(all))
            }
        }
    }
}

/// The body of a streamed scrape: chunks as the flight sends them.
pub struct ChunkBody {
    pending: VecDeque<Bytes>,
    inbox: Inbox,
    done: bool,
}

impl ChunkBody {
    /// Hands `chunk` to the connection: it no longer counts as queued.
    fn give(&self, chunk: Bytes) -> Poll<Option<Result<Frame<Bytes>, ScrapeError>>> {
        self.inbox.backlog.taken(chunk.len());
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }
}

impl Body for ChunkBody {
    type Data = Bytes;
    type Error = ScrapeError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ScrapeError>>> {
        if let Some(chunk) = self.pending.pop_front() {
            return self.give(chunk);
        }
        if self.done {
            return Poll::Ready(None);
        }
        match self.inbox.rx.poll_recv(cx) {
            Poll::Ready(Some(Event::Chunk(chunk))) => self.give(chunk),
            Poll::Ready(Some(Event::Last(chunk))) => {
                self.done = true;
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Poll::Ready(Some(Event::Done)) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Event::Failed(e))) => {
                self.done = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(Some(Err(ScrapeError::Abandoned)))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.pending.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
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
    flights: Flights,
    health: Arc<StdMutex<Health>>,
    chunks: Arc<ChunkPool>,
    /// How long a flight waits for clients that take nothing.
    stall_after: Duration,
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
            chunks: ChunkPool::new(CHUNK, KEEP_CHUNKS),
            stall_after: STALL_AFTER,
        }
    }

    #[cfg(test)]
    fn stalling_after(mut self, stall_after: Duration) -> Self {
        self.stall_after = stall_after;
        self
    }

    /// The result of a scrape of `variant` that was running and still
    /// taking joiners, or was started when this was called.
    pub async fn scrape(&self, variant: Variant) -> Result<Scraped, ScrapeError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut inbox = {
            let mut flights = lock(&self.flights);
            match flights.get(&variant) {
                Some(flight) => {
                    let mut b = lock(flight);
                    let client = Client {
                        tx,
                        backlog: Backlog::new(&b.pace),
                    };
                    for chunk in b.retained.iter().flatten() {
                        client.send(Event::Chunk(chunk.clone()));
                    }
                    let backlog = Arc::clone(&client.backlog);
                    b.clients.push(client);
                    Inbox { rx, backlog }
                }
                None => {
                    let pace = Pace::new(self.stall_after);
                    let backlog = Backlog::new(&pace);
                    let flight = Arc::new(StdMutex::new(Broadcast {
                        retained: Some(Vec::new()),
                        retained_bytes: 0,
                        clients: vec![Client {
                            tx,
                            backlog: Arc::clone(&backlog),
                        }],
                        pace,
                    }));
                    flights.insert(variant, Arc::clone(&flight));
                    self.lead(variant, flight);
                    Inbox { rx, backlog }
                }
            }
        };
        let first = match inbox.rx.recv().await {
            None => return Err(ScrapeError::Abandoned),
            Some(Event::Failed(e)) => return Err(e),
            Some(Event::Done) => return Ok(Scraped::Whole(Bytes::new())),
            Some(Event::Last(chunk)) => return Ok(Scraped::Whole(chunk)),
            Some(Event::Chunk(chunk)) => chunk,
        };
        let mut pending = VecDeque::from([first]);
        loop {
            match inbox.rx.try_recv() {
                Ok(Event::Chunk(chunk)) => pending.push_back(chunk),
                Ok(Event::Last(chunk)) => {
                    pending.push_back(chunk);
                    return Ok(Scraped::Streaming(ChunkBody {
                        pending,
                        inbox,
                        done: true,
                    }));
                }
                Ok(Event::Done) => {
                    return Ok(Scraped::Streaming(ChunkBody {
                        pending,
                        inbox,
                        done: true,
                    }))
                }
                Ok(Event::Failed(e)) => return Err(e),
                Err(mpsc::error::TryRecvError::Disconnected) => return Err(ScrapeError::Abandoned),
                Err(mpsc::error::TryRecvError::Empty) => {
                    return Ok(Scraped::Streaming(ChunkBody {
                        pending,
                        inbox,
                        done: false,
                    }))
                }
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
    fn lead(&self, variant: Variant, flight: Flight) {
        let exporter = Arc::clone(&self.exporter);
        let health = Arc::clone(&self.health);
        // Leaves the flight and answers its clients however the thread
        // ends: a flight left behind would be joined by every later request.
        let pool = Arc::clone(&self.chunks);
        let stream = Arc::new(StdMutex::new(Stream {
            flights: Arc::clone(&self.flights),
            pool: Arc::clone(&pool),
            variant,
            flight: Some(flight),
            gzip: variant
                .gzip
                .then(|| flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast())),
        }));
        let spawned = tokio::task::spawn_blocking(move || {
            lock(&health).running_since.get_or_insert_with(Instant::now);
            // The guard is taken outside catch_unwind, so a panic is caught
            // before it unwinds past the guard: the lock is not poisoned.
            let mut source = lock(&exporter);
            let spill_to = Arc::clone(&stream);
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                let spill: Spill = Box::new(move |chunk: Vec<u8>| lock(&spill_to).push(chunk));
                source.scrape_streaming(variant.format, &pool, spill)
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
            lock(&stream).finish(result);
        });
        // A runtime shutting down drops the task unrun; the stream's drop
        // answers.
        drop(spawned);
    }

    /// Detaches every program, after any scrape in flight (shutdown).
    pub async fn detach_all(&self) {
        let exporter = Arc::clone(&self.exporter);
        let _ = tokio::task::spawn_blocking(move || lock(&exporter).detach_all()).await;
    }
}

/// The sending side of one flight, on its scrape's thread.
struct Stream {
    flights: Flights,
    variant: Variant,
    /// `None` once finished.
    flight: Option<Flight>,
    gzip: Option<flate2::write::GzEncoder<Vec<u8>>>,
    pool: Arc<ChunkPool>,
}

impl Stream {
    /// Takes a chunk of the exposition: compresses it for gzip flights,
    /// and sends what there is to send.
    fn push(&mut self, text: Vec<u8>) {
        let chunk = match &mut self.gzip {
            None => self.pool.share(text),
            Some(enc) => {
                // Writing to a Vec cannot fail.
                let _ = enc.write_all(&text);
                self.pool.give(text);
                Bytes::from(std::mem::take(enc.get_mut()))
            }
        };
        self.send(chunk);
    }

    fn send(&mut self, chunk: Bytes) {
        let Some(flight) = &self.flight else { return };
        if chunk.is_empty() {
            return;
        }
        let (stop_taking_joiners, pace, backlogs) = {
            let mut b = lock(flight);
            b.clients.retain(|c| c.send(Event::Chunk(chunk.clone())));
            let len = chunk.len();
            if let Some(kept) = &mut b.retained {
                kept.push(chunk);
            }
            b.retained_bytes += len;
            let backlogs: Vec<Arc<Backlog>> =
                b.clients.iter().map(|c| Arc::clone(&c.backlog)).collect();
            let stop = b.retained.is_some() && b.retained_bytes > RETAIN;
            (stop, Arc::clone(&b.pace), backlogs)
        };
        if stop_taking_joiners {
            self.leave();
            lock(flight).retained = None;
        }
        if !pace.wait_for_room(&backlogs) {
            // Every client is far behind and none took anything for a
            // while: end their responses rather than hold the scrape.
            let mut b = lock(flight);
            let before = b.clients.len();
            b.clients
                .retain(|c| c.backlog.bytes() <= super::pace::AHEAD);
            let ended = before - b.clients.len();
            if ended > 0 {
                log::warn!(
                    "ended {ended} scrape response(s) whose client took nothing for {:?}",
                    pace.stall_after()
                );
            }
        }
    }

    /// Takes this flight out of the map, so a request arriving from now on
    /// starts a fresh scrape.
    fn leave(&self) {
        let Some(flight) = &self.flight else { return };
        let mut flights = lock(&self.flights);
        if flights
            .get(&self.variant)
            .is_some_and(|f| Arc::ptr_eq(f, flight))
        {
            flights.remove(&self.variant);
        }
    }

    fn finish(&mut self, result: Result<Vec<u8>, ScrapeError>) {
        let end = match result {
            Ok(tail) => {
                // The tail and the gzip trailer go as one chunk, so a small
                // exposition is one buffer, gzipped or not.
                let last = match self.gzip.take() {
                    None => self.pool.share(tail),
                    Some(mut enc) => {
                        let _ = enc.write_all(&tail);
                        self.pool.give(tail);
                        Bytes::from(enc.finish().unwrap_or_default())
                    }
                };
                if last.is_empty() {
                    Event::Done
                } else {
                    Event::Last(last)
                }
            }
            Err(e) => Event::Failed(e),
        };
        self.leave();
        if let Some(flight) = self.flight.take() {
            let mut b = lock(&flight);
            b.retained = None;
            for client in b.clients.drain(..) {
                client.send(end.clone());
            }
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        if self.flight.is_some() {
            self.finish(Err(ScrapeError::Abandoned));
        }
    }
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

    async fn whole(c: &Coalescer, variant: Variant) -> Result<Bytes, ScrapeError> {
        c.scrape(variant).await?.collect().await
    }

    /// `n` requests for `variant` started together; their bodies in order.
    async fn scrape_at_once(c: &Coalescer, variant: Variant, n: usize) -> Vec<Bytes> {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let c = c.clone();
                tokio::spawn(async move { c.scrape(variant).await?.collect().await })
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
        let next = whole(&c, TEXT).await.expect("scrape");
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
        fn scrape(&mut self, _: Format) -> Vec<u8> {
            let n = self
                .scrapes
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if n == self.panic_on {
                panic!("collector broke");
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            "a_total 1\n".repeat(1000).into_bytes()
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
            whole(&c, TEXT).await,
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
        let body = whole(&c, TEXT).await.expect("the next scrape works");
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

    /// Streams `chunks` chunks of `size` bytes ("a_total 1\n" lines), `gap`
    /// apart, then a tail; panics after `panic_after` chunks if set.
    struct Streamer {
        scrapes: Arc<std::sync::atomic::AtomicUsize>,
        chunks: usize,
        size: usize,
        gap: Duration,
        panic_after: Option<usize>,
    }

    const LINE: &str = "a_total 1\n";

    impl Streamer {
        fn expected(&self) -> String {
            LINE.repeat(self.size / LINE.len() * self.chunks) + "tail 1\n"
        }
    }

    impl Source for Streamer {
        fn scrape(&mut self, _: Format) -> Vec<u8> {
            unreachable!("the coalescer streams")
        }
        fn scrape_streaming(&mut self, _: Format, _: &Arc<ChunkPool>, mut spill: Spill) -> Vec<u8> {
            self.scrapes
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            for i in 0..self.chunks {
                if self.panic_after == Some(i) {
                    panic!("broke mid-stream");
                }
                spill(LINE.repeat(self.size / LINE.len()).into_bytes());
                std::thread::sleep(self.gap);
            }
            b"tail 1\n".to_vec()
        }
        fn detach_all(&mut self) {}
    }

    fn streamer(
        chunks: usize,
        size: usize,
        gap_ms: u64,
    ) -> (Streamer, Arc<std::sync::atomic::AtomicUsize>) {
        let scrapes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        (
            Streamer {
                scrapes: scrapes.clone(),
                chunks,
                size,
                gap: Duration::from_millis(gap_ms),
                panic_after: None,
            },
            scrapes,
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_streamed_scrape_arrives_whole_and_late_joiners_get_all_of_it() {
        let (source, scrapes) = streamer(8, 100_000, 20);
        let want = source.expected();
        let c = Coalescer::new(source);
        let first = {
            let c = c.clone();
            tokio::spawn(async move { whole(&c, TEXT).await })
        };
        // Join after a few chunks were sent: still under RETAIN.
        tokio::time::sleep(Duration::from_millis(70)).await;
        let late = whole(&c, TEXT).await.expect("late joiner");
        let first = first.await.expect("task").expect("first");
        assert_eq!(
            scrapes.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "one scrape"
        );
        assert_eq!(first.len(), want.len());
        assert!(first == want.as_bytes() && late == want.as_bytes());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn past_retain_a_flight_takes_no_joiners_and_keeps_nothing() {
        // 12 chunks of 1 MB: the flight stops retaining after 3.
        let (source, scrapes) = streamer(12, 1_000_000, 10);
        let want = source.expected();
        let c = Coalescer::new(source);
        let Scraped::Streaming(body) = c.scrape(TEXT).await.expect("scrape") else {
            panic!("12 MB streams");
        };
        let first = tokio::spawn(Scraped::Streaming(body).collect());
        tokio::time::sleep(Duration::from_millis(110)).await;
        assert!(
            lock(&c.flights).is_empty(),
            "past RETAIN the flight left the map"
        );
        let second = whole(&c, TEXT).await.expect("second");
        assert_eq!(first.await.expect("task").expect("first"), want.as_bytes());
        assert_eq!(second, want.as_bytes());
        assert_eq!(
            scrapes.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "the later request started its own scrape"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn gzip_streams_one_valid_stream() {
        let (source, _) = streamer(6, 300_000, 0);
        let want = source.expected();
        let c = Coalescer::new(source);
        let gz = Variant {
            format: Format::Text,
            gzip: true,
        };
        let body = whole(&c, gz).await.expect("scrape");
        assert!(
            body.len() < want.len() / 20,
            "compressed: {} bytes",
            body.len()
        );
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut text)
            .expect("valid gzip");
        assert_eq!(text, want);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_mid_stream_ends_the_body_with_the_error() {
        let (mut source, _) = streamer(6, 300_000, 5);
        source.panic_after = Some(3);
        let c = Coalescer::new(source);
        let scraped = c.scrape(TEXT).await.expect("chunks came before the panic");
        assert!(matches!(scraped, Scraped::Streaming(_)));
        assert_eq!(
            scraped.collect().await,
            Err(ScrapeError::Panicked("broke mid-stream".into()))
        );
        assert!(lock(&c.flights).is_empty(), "no flight is left behind");
        assert!(!c.exporter.is_poisoned());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_scrape_runs_no_further_ahead_of_its_client_than_pace_allows() {
        // 40 chunks of 256 KiB: 10 MiB the scrape could render at once.
        let (source, scrapes) = streamer(40, CHUNK, 0);
        let want = source.expected();
        let c = Coalescer::new(source);
        let Scraped::Streaming(body) = c.scrape(TEXT).await.expect("scrape") else {
            panic!("10 MiB streams");
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        let queued = body.inbox.backlog.bytes();
        assert!(
            queued <= crate::http::pace::AHEAD + CHUNK,
            "{queued} bytes queued for a client that took nothing yet"
        );
        assert!(queued > crate::http::pace::AHEAD, "the scrape got that far");
        assert_eq!(
            Scraped::Streaming(body).collect().await.expect("body"),
            want.as_bytes()
        );
        assert_eq!(scrapes.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_takes_nothing_is_cut_off_and_the_next_scrape_runs() {
        let (source, scrapes) = streamer(40, CHUNK, 0);
        let want = source.expected();
        let c = Coalescer::new(source).stalling_after(Duration::from_millis(200));
        let Scraped::Streaming(stuck) = c.scrape(TEXT).await.expect("scrape") else {
            panic!("10 MiB streams");
        };
        // The scrape ends without the stuck client reading a byte.
        let t = Instant::now();
        while c.health().is_ok() && lock(&c.health).running_since.is_some() {
            assert!(t.elapsed() < Duration::from_secs(10), "the scrape ended");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(stuck.inbox.backlog.bytes() <= crate::http::pace::AHEAD + CHUNK);
        assert_eq!(
            Scraped::Streaming(stuck).collect().await,
            Err(ScrapeError::Abandoned)
        );
        let next = whole(&c, TEXT).await.expect("the next scrape");
        assert_eq!(next, want.as_bytes());
        assert_eq!(scrapes.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
