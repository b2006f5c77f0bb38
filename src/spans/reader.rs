//! Reads one span config's ring buffer on its own thread and queues each
//! record as a span. Stops when dropped.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use libbpf_rs::{MapHandle, RingBufferBuilder};

use crate::worker::{OnDrop, StartError, Worker};

use super::export::{Queued, SpanQueue};
use super::record::{from_labels, to_span_data};
use super::SpanCounts;
use crate::decode::chain::Row;
use crate::decode::RowDecoder;

const POLL: Duration = Duration::from_millis(200);

/// Reads its ring buffer until dropped; dropping waits for the thread, so
/// no span of a stopped config is queued after.
pub struct SpanReader {
    _worker: Worker,
}

/// What a reader needs to know about its span config.
pub struct SpanSource {
    pub config: String,
    pub name: String,
    pub service: Arc<str>,
    pub rows: RowDecoder,
}

impl SpanReader {
    /// Starts reading `handle` (a RINGBUF map).
    pub fn start(
        source: SpanSource,
        handle: MapHandle,
        queue: SpanQueue,
        counts: Arc<SpanCounts>,
    ) -> Result<Self, StartError<String>> {
        let name = format!("spans-{}", source.name);
        let worker = Worker::start(name, OnDrop::Join, move |stop, ready| {
            let names: Vec<String> = source.rows.label_names().map(str::to_string).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let mut ids = IdSource::new();
            let on_record = |data: &[u8]| -> i32 {
                // libbpf calls this from C: a panic must not unwind into it.
                let queued = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    decode(&source, &names, data, &mut ids)
                }));
                match queued {
                    Ok(Some(span)) => queue.push(Queued {
                        service: source.service.clone(),
                        span,
                        counts: counts.clone(),
                    }),
                    Ok(None) | Err(_) => {
                        counts.decode_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                0
            };
            let mut builder = RingBufferBuilder::new();
            if let Err(e) = builder.add(&handle, on_record) {
                return ready.fail(format!("opening the ring buffer: {e}"));
            }
            let ring = match builder.build() {
                Ok(r) => r,
                Err(e) => return ready.fail(format!("opening the ring buffer: {e}")),
            };
            ready.ok();
            while !stop.is_set() {
                if let Err(e) = ring.poll(POLL) {
                    if !matches!(e.kind(), libbpf_rs::ErrorKind::Interrupted) {
                        log::warn!("spans {}: polling the ring buffer: {e}", source.name);
                        std::thread::sleep(POLL);
                    }
                }
            }
        })?;
        Ok(Self { _worker: worker })
    }
}

/// A record to a span, or `None` (counted) if it does not decode. Records
/// may be longer than the labels describe (the ring buffer pads them), and
/// only the described bytes are read, as in the reference.
fn decode(
    source: &SpanSource,
    names: &[&str],
    data: &[u8],
    ids: &mut IdSource,
) -> Option<opentelemetry_sdk::trace::SpanData> {
    let key = data.get(..source.rows.key_size())?;
    let values = match source.rows.decode(key) {
        Ok(Row::Labels { values, .. }) => values,
        Ok(Row::Drop) => return None,
        Err(e) => {
            log::debug!("spans {}: {e}", source.name);
            return None;
        }
    };
    let record = match from_labels(&source.name, names, &values) {
        Ok(r) => r,
        Err(e) => {
            log::debug!("spans {}: {e}", source.name);
            return None;
        }
    };
    Some(to_span_data(record, &source.config, || ids.next()))
}

/// Ids for spans whose record leaves them at zero: unique, non-zero, not
/// guessable across restarts (seeded from the process's random hasher).
struct IdSource {
    state: u64,
}

impl IdSource {
    fn new() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(std::process::id() as u64);
        Self {
            state: h.finish() | 1,
        }
    }

    /// splitmix64: a full-period sequence, never 0 after mixing in practice.
    fn next(&mut self) -> u64 {
        loop {
            self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            if z != 0 {
                return z;
            }
        }
    }
}
