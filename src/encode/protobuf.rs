//! The Prometheus protobuf exposition
//! (`application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily;
//! encoding=delimited`): each family one length-prefixed `MetricFamily`
//! message of Prometheus's `metrics.proto`.
//!
//! Written straight from the wire format, as the text formats are written,
//! with no message objects per sample: a family's body is built in one
//! reused buffer and handed over whole, since its length comes before it. A
//! streamed scrape spills at family ends, so one family is the most this
//! format holds at once (the text formats spill at line ends).

use std::sync::Arc;

use super::chunks::{ChunkPool, Spiller};
use super::Spill;
use crate::metrics::sink::{Kind, Sink};

/// Field numbers of `metrics.proto`.
mod field {
    // MetricFamily
    pub const NAME: u32 = 1;
    pub const HELP: u32 = 2;
    pub const TYPE: u32 = 3;
    pub const METRIC: u32 = 4;
    // Metric
    pub const LABEL: u32 = 1;
    pub const GAUGE: u32 = 2;
    pub const COUNTER: u32 = 3;
    pub const UNTYPED: u32 = 5;
    pub const HISTOGRAM: u32 = 7;
    // LabelPair
    pub const LABEL_NAME: u32 = 1;
    pub const LABEL_VALUE: u32 = 2;
    // Counter, Gauge, Untyped
    pub const VALUE: u32 = 1;
    // Histogram
    pub const SAMPLE_COUNT: u32 = 1;
    pub const SAMPLE_SUM: u32 = 2;
    pub const BUCKET: u32 = 3;
    // Bucket
    pub const CUMULATIVE_COUNT: u32 = 1;
    pub const UPPER_BOUND: u32 = 2;
}

/// `MetricType` of `metrics.proto`.
fn metric_type(kind: Kind) -> u64 {
    match kind {
        Kind::Counter => 0,
        Kind::Gauge => 1,
        Kind::Untyped => 3,
        Kind::Histogram => 4,
    }
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, (u64::from(field) << 3) | u64::from(wire));
}

fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    tag(out, field, 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn double_field(out: &mut Vec<u8>, field: u32, v: f64) {
    tag(out, field, 1);
    out.extend_from_slice(&v.to_le_bytes());
}

fn varint_field(out: &mut Vec<u8>, field: u32, v: u64) {
    tag(out, field, 0);
    varint(out, v);
}

/// A label pair message.
fn label_pair(out: &mut Vec<u8>, scratch: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    scratch.clear();
    bytes_field(scratch, field::LABEL_NAME, name);
    bytes_field(scratch, field::LABEL_VALUE, value);
    bytes_field(out, field::LABEL, scratch);
}

/// Writes the label pairs of a rendered label set (`render_labels`:
/// `name="value",…`, values escaped as the text formats escape them), the
/// form the key cache keeps every label set in.
fn rendered_labels(out: &mut Vec<u8>, scratch: &mut Vec<u8>, value: &mut Vec<u8>, labels: &str) {
    let mut rest = labels.as_bytes();
    while let Some(eq) = rest.iter().position(|&b| b == b'=') {
        let name = &rest[..eq];
        // `="`, then the escaped value up to the unescaped closing quote.
        let mut i = eq + 2;
        value.clear();
        while let Some(&b) = rest.get(i) {
            match b {
                b'"' => break,
                b'\\' => {
                    match rest.get(i + 1) {
                        Some(b'n') => value.push(b'\n'),
                        Some(&c) => value.push(c),
                        None => {}
                    }
                    i += 2;
                }
                _ => {
                    value.push(b);
                    i += 1;
                }
            }
        }
        label_pair(out, scratch, name, value);
        // Past the closing quote and the comma.
        rest = rest.get(i + 2..).unwrap_or_default();
    }
}

pub struct ProtobufWriter {
    /// Finished families, length-prefixed.
    buf: Vec<u8>,
    /// The open family's body.
    family: Vec<u8>,
    kind: Option<Kind>,
    /// One metric's message, then a label pair's.
    metric: Vec<u8>,
    pair: Vec<u8>,
    value: Vec<u8>,
    spiller: Spiller,
}

impl ProtobufWriter {
    pub fn with_buffer(mut buf: Vec<u8>) -> Self {
        buf.clear();
        Self {
            buf,
            family: Vec::new(),
            kind: None,
            metric: Vec::new(),
            pair: Vec::new(),
            value: Vec::new(),
            spiller: Spiller::default(),
        }
    }

    /// Streams: at each family end past the pool's chunk size, the bytes so
    /// far go to `spill` and the writer carries on in a buffer from `pool`.
    pub fn spilling(mut self, pool: Arc<ChunkPool>, spill: Spill) -> Self {
        let (spiller, first) = Spiller::new(pool, spill, std::mem::take(&mut self.buf));
        self.spiller = spiller;
        self.buf = first;
        self
    }

    /// Ends the open family: its body goes out behind its length.
    fn close_family(&mut self) {
        if self.kind.take().is_none() {
            return;
        }
        varint(&mut self.buf, self.family.len() as u64);
        self.buf.extend_from_slice(&self.family);
        self.family.clear();
    }

    /// Hands the finished families over once they pass the chunk size.
    /// Only between families: `finish` returns the last one, as the text
    /// writer returns its last lines.
    fn maybe_spill(&mut self) {
        if self.spiller.due(self.buf.len()) {
            let full = std::mem::take(&mut self.buf);
            self.buf = self.spiller.hand_over(full);
        }
    }

    /// Starts a metric message with its labels.
    fn open_metric(&mut self, labels: &str, extra: Option<(&str, &str)>) {
        self.metric.clear();
        rendered_labels(&mut self.metric, &mut self.pair, &mut self.value, labels);
        if let Some((name, value)) = extra {
            label_pair(
                &mut self.metric,
                &mut self.pair,
                name.as_bytes(),
                value.as_bytes(),
            );
        }
    }

    /// Ends the metric message, into the family.
    fn close_metric(&mut self) {
        bytes_field(&mut self.family, field::METRIC, &self.metric);
    }

    fn value(&mut self, value: f64) {
        let f = match self.kind {
            Some(Kind::Counter) => field::COUNTER,
            Some(Kind::Gauge) => field::GAUGE,
            _ => field::UNTYPED,
        };
        self.pair.clear();
        double_field(&mut self.pair, field::VALUE, value);
        bytes_field(&mut self.metric, f, &self.pair);
    }

    pub fn spilled(&self) -> usize {
        self.spiller.spilled()
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.close_family();
        self.buf
    }
}

impl Sink for ProtobufWriter {
    /// `name` is the metric's configured name, as the text format 0.0.4
    /// spells it: a counter keeps its `_total`.
    fn family(&mut self, name: &str, help: &str, kind: Kind) {
        self.close_family();
        self.maybe_spill();
        bytes_field(&mut self.family, field::NAME, name.as_bytes());
        bytes_field(&mut self.family, field::HELP, help.as_bytes());
        varint_field(&mut self.family, field::TYPE, metric_type(kind));
        self.kind = Some(kind);
    }

    fn sample_u64(&mut self, labels: &str, extra: Option<(&str, &str)>, value: u64) {
        self.sample_f64(labels, extra, value as f64);
    }

    fn sample_f64(&mut self, labels: &str, extra: Option<(&str, &str)>, value: f64) {
        self.open_metric(labels, extra);
        self.value(value);
        self.close_metric();
    }

    /// Buckets without +Inf, which the format leaves to `sample_count`.
    fn histogram(
        &mut self,
        labels: &str,
        extra: Option<(&str, &str)>,
        buckets: &[(f64, u64)],
        count: u64,
        sum: f64,
    ) {
        self.open_metric(labels, extra);
        // The histogram message, built in `value` (the label buffers are
        // free by now), each bucket in `pair`.
        let mut h = std::mem::take(&mut self.value);
        h.clear();
        varint_field(&mut h, field::SAMPLE_COUNT, count);
        double_field(&mut h, field::SAMPLE_SUM, sum);
        for (bound, cumulative) in buckets {
            self.pair.clear();
            varint_field(&mut self.pair, field::CUMULATIVE_COUNT, *cumulative);
            double_field(&mut self.pair, field::UPPER_BOUND, *bound);
            bytes_field(&mut h, field::BUCKET, &self.pair);
        }
        bytes_field(&mut self.metric, field::HISTOGRAM, &h);
        self.value = h;
        self.close_metric();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::proto::{MetricFamily, MetricType};
    use protobuf::Message;

    /// The length-delimited messages of an exposition, parsed with the
    /// `prometheus` crate's generated code.
    fn parse(mut bytes: &[u8]) -> Vec<MetricFamily> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let mut stream = protobuf::CodedInputStream::from_bytes(bytes);
            let len = stream.read_raw_varint64().expect("length") as usize;
            let at = stream.pos() as usize;
            out.push(MetricFamily::parse_from_bytes(&bytes[at..at + len]).expect("a family"));
            bytes = &bytes[at + len..];
        }
        out
    }

    #[test]
    fn families_parse_as_prometheus_reads_them() {
        let mut w = ProtobufWriter::with_buffer(Vec::new());
        w.family("ebpf_exporter_x_total", "X \\ things", Kind::Counter);
        w.sample_u64("a=\"1\",b=\"q\\\"u\\\\o\\nte\"", Some(("cpu", "0")), 5);
        w.sample_u64("", None, 7);
        w.family("g", "G", Kind::Gauge);
        w.sample_f64("k=\"v\"", None, 0.25);
        w.family("h_seconds", "H", Kind::Histogram);
        w.histogram("dev=\"sda\"", None, &[(1e-6, 1), (2e-6, 3)], 4, 0.5);
        w.family("u", "U", Kind::Untyped);
        w.sample_f64("", None, f64::NAN);
        let families = parse(&w.finish());
        assert_eq!(families.len(), 4);

        let c = &families[0];
        assert_eq!(c.name(), "ebpf_exporter_x_total");
        assert_eq!(c.help(), "X \\ things");
        assert_eq!(c.get_field_type(), MetricType::COUNTER);
        let m = &c.get_metric()[0];
        let labels: Vec<(&str, &str)> = m
            .get_label()
            .iter()
            .map(|l| (l.name(), l.value()))
            .collect();
        assert_eq!(labels, [("a", "1"), ("b", "q\"u\\o\nte"), ("cpu", "0")]);
        assert_eq!(m.get_counter().value(), 5.0);
        assert!(c.get_metric()[1].get_label().is_empty());
        assert_eq!(c.get_metric()[1].get_counter().value(), 7.0);

        assert_eq!(families[1].get_field_type(), MetricType::GAUGE);
        assert_eq!(families[1].get_metric()[0].get_gauge().value(), 0.25);

        let h = families[2].get_metric()[0].get_histogram();
        assert_eq!((h.get_sample_count(), h.get_sample_sum()), (4, 0.5));
        let buckets: Vec<(u64, f64)> = h
            .get_bucket()
            .iter()
            .map(|b| (b.cumulative_count(), b.upper_bound()))
            .collect();
        assert_eq!(buckets, [(1, 1e-6), (3, 2e-6)]);

        assert_eq!(families[3].get_field_type(), MetricType::UNTYPED);
        assert!(families[3].get_metric()[0].untyped.value().is_nan());
    }

    #[test]
    fn a_spilled_exposition_is_byte_identical_and_cut_at_family_ends() {
        let write = |w: &mut ProtobufWriter| {
            for f in 0..20 {
                w.family(&format!("f{f}_total"), "F", Kind::Counter);
                for i in 0..500u64 {
                    w.sample_u64(&format!("k=\"{i}\""), None, i);
                }
            }
        };
        let mut whole = ProtobufWriter::with_buffer(Vec::new());
        write(&mut whole);
        let whole = whole.finish();
        let chunks = Arc::new(std::sync::Mutex::new(Vec::<Vec<u8>>::new()));
        let sink = Arc::clone(&chunks);
        let mut w = ProtobufWriter::with_buffer(Vec::new()).spilling(
            ChunkPool::new(4096, 2),
            Box::new(move |c| sink.lock().expect("chunks").push(c)),
        );
        write(&mut w);
        let spilled = w.spilled();
        let tail = w.finish();
        let chunks = chunks.lock().expect("chunks").clone();
        assert!(chunks.len() > 5, "{} chunks", chunks.len());
        assert_eq!(spilled, chunks.iter().map(Vec::len).sum::<usize>());
        for c in &chunks {
            // Parsing panics on a cut message.
            assert!(!parse(c).is_empty(), "each chunk holds whole families");
        }
        assert_eq!([chunks.concat(), tail].concat(), whole);
        assert_eq!(parse(&whole).len(), 20);
    }
}
