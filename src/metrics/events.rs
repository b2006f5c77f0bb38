//! Event-driven counters (`perf_event_array: true`): each record a program
//! sends through a PERF_EVENT_ARRAY map is decoded by the metric's labels
//! and adds one to that label set.
//!
//! A record that fails to decode is skipped and counted; the metric keeps
//! counting every other record (the reference drops the metric instead).
//! Counts are cleared every `flush_interval`, as in the reference, so label
//! sets that stop occurring do not accumulate forever.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libbpf_rs::{MapHandle, PerfBufferBuilder};

use crate::decode::chain::Row;
use crate::decode::RowDecoder;
use crate::encode::text::{render_labels, Kind, TextWriter};

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
    pub name: String,
    pub help: String,
    pub map_name: String,
    counts: Arc<Mutex<Counts>>,
    stop: Arc<AtomicBool>,
}

impl EventCounter {
    /// Starts reading `handle` (a PERF_EVENT_ARRAY) on its own thread.
    pub fn start(
        name: String,
        help: String,
        map_name: String,
        handle: MapHandle,
        rows: RowDecoder,
        flush: Duration,
    ) -> Result<Self, String> {
        let counts = Arc::new(Mutex::new(Counts::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let label_names: Vec<String> = rows.label_names().map(str::to_string).collect();
        let (c, s, metric) = (Arc::clone(&counts), Arc::clone(&stop), name.clone());
        // The buffer is built on the reading thread, so its callbacks can
        // own what they touch; the first error comes back over a channel.
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name(format!("perf-{map_name}"))
            .spawn(move || {
                let sample_counts = Arc::clone(&c);
                let lost_counts = Arc::clone(&c);
                let built = PerfBufferBuilder::new(&handle)
                    .sample_cb(move |_cpu, data: &[u8]| {
                        count_record(&sample_counts, &rows, &label_names, data, flush)
                    })
                    .lost_cb(move |_cpu, n| {
                        if let Ok(mut c) = lost_counts.lock() {
                            c.lost += n;
                        }
                    })
                    .build();
                let buffer = match built {
                    Ok(b) => {
                        let _ = ready_tx.send(Ok(()));
                        b
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("opening the perf buffer: {e}")));
                        return;
                    }
                };
                while !s.load(Ordering::Relaxed) {
                    if let Err(e) = buffer.poll(POLL) {
                        if !matches!(e.kind(), libbpf_rs::ErrorKind::Interrupted) {
                            log::warn!("{metric}: polling the perf buffer: {e}");
                            std::thread::sleep(POLL);
                        }
                    }
                }
            })
            .map_err(|e| format!("starting the perf reader thread: {e}"))?;
        ready_rx
            .recv()
            .map_err(|_| "the perf reader thread ended before it started".to_string())??;
        Ok(Self {
            name,
            help,
            map_name,
            counts,
            stop,
        })
    }

    /// Writes the counts; returns (series, decode errors since last call).
    pub fn collect(&self, out: &mut TextWriter) -> (usize, u64) {
        let Ok(mut c) = self.counts.lock() else {
            return (0, 0);
        };
        let errors = std::mem::take(&mut c.decode_errors);
        if c.lost > 0 {
            log::warn!("{}: {} perf records lost (buffer full)", self.name, c.lost);
            c.lost = 0;
        }
        if c.by_labels.is_empty() {
            return (0, errors);
        }
        out.family(&self.name, &self.help, Kind::Counter);
        for (labels, n) in &c.by_labels {
            out.sample_u64(labels, None, *n);
        }
        (c.by_labels.len(), errors)
    }
}

impl Drop for EventCounter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn count_record(
    counts: &Mutex<Counts>,
    rows: &RowDecoder,
    names: &[String],
    data: &[u8],
    flush: Duration,
) {
    // The perf ring pads records to 8 bytes: decode the bytes the labels
    // describe and ignore the tail.
    let key = data.get(..rows.key_size()).unwrap_or(data);
    let decoded = rows.decode(key);
    let Ok(mut c) = counts.lock() else { return };
    let now = Instant::now();
    match c.flushed_at {
        Some(t) if now.duration_since(t) >= flush => {
            c.by_labels.clear();
            c.flushed_at = Some(now);
        }
        None => c.flushed_at = Some(now),
        _ => {}
    }
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

/// Parses a Go-style duration (`30s`, `1m`, `1h30m`, `500ms`), the form
/// the reference's `flush_interval` takes.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration such as 30s, 1m or 1h30m");
    let mut total = 0f64;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += value * scale;
        rest = &rest[unit_end..];
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("5d").is_err());
    }
}
