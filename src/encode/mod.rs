//! Exposition formats. Metric families stream straight into one output
//! buffer, with no per-sample objects: at 100k series the `prometheus`
//! crate's protobuf model costs more than reading the maps. Every format is
//! a [`Sink`]; [`Writer`] is whichever one a scrape asked for.

pub mod chunks;
pub mod float;
pub mod protobuf;
pub mod text;

pub use chunks::ChunkPool;
pub use protobuf::ProtobufWriter;
pub use text::TextWriter;

use std::sync::Arc;

use crate::metrics::sink::{Kind, Sink};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Prometheus text exposition format 0.0.4.
    Text,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
    /// Prometheus protobuf, length-delimited `MetricFamily` messages.
    Protobuf,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Protobuf => {
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
            }
        }
    }
}

/// Takes full chunks of a streamed exposition.
pub type Spill = Box<dyn FnMut(Vec<u8>) + Send>;

/// A writer of the format a scrape asked for. An enum rather than a boxed
/// trait object: collectors call it once per sample.
pub enum Writer {
    Text(TextWriter),
    Protobuf(ProtobufWriter),
}

impl Writer {
    /// With room for `capacity` bytes, which a scrape takes from the last.
    pub fn new(format: Format, capacity: usize) -> Self {
        match format {
            Format::Protobuf => {
                Writer::Protobuf(ProtobufWriter::with_buffer(Vec::with_capacity(capacity)))
            }
            text => Writer::Text(TextWriter::with_buffer(
                text,
                String::with_capacity(capacity),
            )),
        }
    }

    /// Hands the output over in chunks of about the pool's chunk size, in
    /// the pool's buffers, as it is written.
    pub fn spilling(self, pool: Arc<ChunkPool>, spill: Spill) -> Self {
        match self {
            Writer::Text(w) => Writer::Text(w.spilling(pool, spill)),
            Writer::Protobuf(w) => Writer::Protobuf(w.spilling(pool, spill)),
        }
    }

    /// Bytes handed to the spill so far.
    pub fn spilled(&self) -> usize {
        match self {
            Writer::Text(w) => w.spilled(),
            Writer::Protobuf(w) => w.spilled(),
        }
    }

    /// Ends the exposition and returns what was not spilled.
    pub fn finish(self) -> Vec<u8> {
        match self {
            Writer::Text(w) => w.finish(),
            Writer::Protobuf(w) => w.finish(),
        }
    }
}

impl Sink for Writer {
    fn family(&mut self, name: &str, help: &str, kind: Kind) {
        match self {
            Writer::Text(w) => w.family(name, help, kind),
            Writer::Protobuf(w) => w.family(name, help, kind),
        }
    }

    fn sample_u64(&mut self, labels: &str, extra: Option<(&str, &str)>, value: u64) {
        match self {
            Writer::Text(w) => w.sample_u64(labels, extra, value),
            Writer::Protobuf(w) => w.sample_u64(labels, extra, value),
        }
    }

    fn sample_f64(&mut self, labels: &str, extra: Option<(&str, &str)>, value: f64) {
        match self {
            Writer::Text(w) => w.sample_f64(labels, extra, value),
            Writer::Protobuf(w) => w.sample_f64(labels, extra, value),
        }
    }

    fn histogram(
        &mut self,
        labels: &str,
        extra: Option<(&str, &str)>,
        buckets: &[(f64, u64)],
        count: u64,
        sum: f64,
    ) {
        match self {
            Writer::Text(w) => w.histogram(labels, extra, buckets, count, sum),
            Writer::Protobuf(w) => w.histogram(labels, extra, buckets, count, sum),
        }
    }
}
