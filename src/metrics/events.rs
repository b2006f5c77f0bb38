//! Event-driven counters (`perf_event_array: true`): each record a program
//! sends through a PERF_EVENT_ARRAY map is decoded by the metric's labels
//! and adds one to that label set.
//!
//! A record that fails to decode is skipped and counted; the metric keeps
//! counting every other record (the reference drops the metric instead).
//! Counts are cleared every `flush_interval`, as in the reference, so label
//! sets that stop occurring do not accumulate forever.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libbpf_rs::{MapHandle, PerfBufferBuilder};

use super::collector::{Collected, Collector, MetricId};
use super::sink::{render_labels, Kind, Sink};
use crate::decode::chain::Row;
use crate::decode::RowDecoder;
use crate::worker::{OnDrop, StartError, Worker};

/// The reference's default.
pub const DEFAULT_FLUSH: Duration = Duration::from_secs(3600);
const POLL: Duration = Duration::from_millis(200);

#[derive(Default)]
struct Counts {
    by_labels: HashMap<String, u64>,
    decode_errors: u64,
    lost: u64,
    flushed_at: Option<Instant>,
}

pub struct EventCounter {
    id: MetricId,
    counts: Arc<Mutex<Counts>>,
    /// Not joined on drop: the thread holds only the map handle and its
    /// counts, and sees the stop within one poll.
    _worker: Worker,
}

impl EventCounter {
    /// Starts reading `handle` (a PERF_EVENT_ARRAY) on its own thread.
    pub fn start(
        id: MetricId,
        handle: MapHandle,
        rows: RowDecoder,
        flush: Duration,
    ) -> Result<Self, StartError<String>> {
        let counts = Arc::new(Mutex::new(Counts::default()));
        let label_names: Vec<String> = rows.label_names().map(str::to_string).collect();
        let (c, metric) = (Arc::clone(&counts), id.name.clone());
        // The buffer is built on the reading thread, so its callbacks can
        // own what they touch.
        let name = format!("perf-{}", id.map_name);
        let worker = Worker::start(name, OnDrop::Detach, move |stop, ready| {
            let sample_counts = Arc::clone(&c);
            let lost_counts = Arc::clone(&c);
            let built = PerfBufferBuilder::new(&handle)
                // libbpf calls these from C: a panic must not unwind
                // into it (that aborts the process), so it is caught
                // and the record dropped.
                .sample_cb(move |_cpu, data: &[u8]| {
                    let counted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        count_record(&sample_counts, &rows, &label_names, data)
                    }));
                    if counted.is_err() {
                        log::error!(
                            "a perf event record could not be counted: its decoding panicked"
                        );
                    }
                })
                .lost_cb(move |_cpu, n| {
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        if let Ok(mut c) = lost_counts.lock() {
                            c.lost += n;
                        }
                    }));
                })
                .build();
            let buffer = match built {
                Ok(b) => b,
                Err(e) => return ready.fail(format!("opening the perf buffer: {e}")),
            };
            ready.ok();
            while !stop.is_set() {
                // On the timer, not on the next record: a label set
                // that stops occurring is dropped on schedule. Records
                // arrive only inside poll(), so checking before each
                // poll is the only check needed.
                if let Ok(mut counts) = c.lock() {
                    counts.flush_if_due(Instant::now(), flush);
                }
                if let Err(e) = buffer.poll(POLL) {
                    if !matches!(e.kind(), libbpf_rs::ErrorKind::Interrupted) {
                        log::warn!("{metric}: polling the perf buffer: {e}");
                        std::thread::sleep(POLL);
                    }
                }
            }
        })?;
        Ok(Self {
            id,
            counts,
            _worker: worker,
        })
    }
}

impl Collector for EventCounter {
    fn id(&self) -> &MetricId {
        &self.id
    }

    fn collect(&mut self, out: &mut dyn Sink) -> Collected {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let decode_errors = std::mem::take(&mut c.decode_errors);
        let lost = std::mem::take(&mut c.lost);
        if lost > 0 {
            log::warn!("{}: {lost} perf records lost (buffer full)", self.id.name);
        }
        let series = c.by_labels.len();
        if series > 0 {
            out.family(&self.id.name, &self.id.help, Kind::Counter);
            for (labels, n) in &c.by_labels {
                out.sample_u64(labels, None, *n);
            }
        }
        Collected {
            series,
            decode_errors,
            map: None,
            events_lost: Some(lost),
            series_limited: 0,
            gone_deleted: 0,
            stale_deleted: 0,
        }
    }
}

impl Counts {
    fn flush_if_due(&mut self, now: Instant, flush: Duration) {
        match self.flushed_at {
            Some(t) if now.duration_since(t) >= flush => {
                self.by_labels.clear();
                self.flushed_at = Some(now);
            }
            None => self.flushed_at = Some(now),
            _ => {}
        }
    }
}

fn count_record(counts: &Mutex<Counts>, rows: &RowDecoder, names: &[String], data: &[u8]) {
    // The perf ring pads records to 8 bytes: decode the bytes the labels
    // describe and ignore the tail.
    let key = data.get(..rows.key_size()).unwrap_or(data);
    let decoded = rows.decode(key);
    let Ok(mut c) = counts.lock() else { return };
    match decoded {
        Ok(Row::Labels { values, .. }) => {
            *c.by_labels
                .entry(render_labels(names.iter().map(String::as_str), &values))
                .or_default() += 1;
        }
        Ok(Row::Drop) => {}
        Err(e) => {
            log::debug!("perf record {data:02x?}: {e}");
            c.decode_errors += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_clear_when_the_interval_has_passed() {
        let mut c = Counts::default();
        let t0 = Instant::now();
        c.flush_if_due(t0, Duration::from_secs(10));
        c.by_labels.insert("a=\"1\"".into(), 3);
        c.flush_if_due(t0 + Duration::from_secs(9), Duration::from_secs(10));
        assert_eq!(c.by_labels.len(), 1, "not yet due");
        c.flush_if_due(t0 + Duration::from_secs(10), Duration::from_secs(10));
        assert!(c.by_labels.is_empty(), "due: cleared");
    }
}
