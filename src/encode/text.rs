//! Writes metric families in the Prometheus text format (0.0.4) or
//! OpenMetrics 1.0 text, straight into one reusable buffer.

use std::sync::Arc;

use super::chunks::{ChunkPool, Spiller};
use super::float::write_go_float;
use super::{Format, Spill};
use crate::metrics::sink::{escape_label_value, Kind, Sink};

/// The type name a family's `# TYPE` line gives.
fn type_name(kind: Kind, format: Format) -> &'static str {
    match (kind, format) {
        (Kind::Counter, _) => "counter",
        (Kind::Gauge, _) => "gauge",
        (Kind::Histogram, _) => "histogram",
        (Kind::Untyped, Format::OpenMetrics) => "unknown",
        (Kind::Untyped, _) => "untyped",
    }
}

pub struct TextWriter {
    pub format: Format,
    buf: String,
    /// The sample name of the current family (OpenMetrics counters get `_total`).
    sample_name: String,
    /// When set, the buffer is handed over at the first line end past
    /// `spill_at` bytes, so a large exposition never exists whole.
    spiller: Spiller,
}

impl TextWriter {
    pub fn new(format: Format) -> Self {
        Self::with_buffer(format, String::new())
    }

    /// Reuses `buf`'s allocation from an earlier scrape.
    pub fn with_buffer(format: Format, mut buf: String) -> Self {
        buf.clear();
        Self {
            format,
            buf,
            sample_name: String::new(),
            spiller: Spiller::default(),
        }
    }

    /// Streams: every time the buffer passes the pool's chunk size, at a
    /// line end, its text so far goes to `spill` and the writer carries on
    /// in a buffer from `pool`. `finish` returns only what was not spilled.
    pub fn spilling(mut self, pool: Arc<ChunkPool>, spill: Spill) -> Self {
        let current = std::mem::take(&mut self.buf).into_bytes();
        let (spiller, first) = Spiller::new(pool, spill, current);
        self.spiller = spiller;
        self.buf = text_buffer(first);
        self
    }

    /// Called after each complete line.
    fn line_done(&mut self) {
        if self.spiller.due(self.buf.len()) {
            let full = std::mem::take(&mut self.buf).into_bytes();
            self.buf = text_buffer(self.spiller.hand_over(full));
        }
    }

    fn open_sample(
        &mut self,
        suffix: &str,
        labels: &str,
        extra: Option<(&str, &str)>,
        le: Option<&str>,
    ) {
        self.buf.push_str(&self.sample_name);
        self.buf.push_str(suffix);
        if labels.is_empty() && extra.is_none() && le.is_none() {
            self.buf.push(' ');
            return;
        }
        self.buf.push('{');
        self.buf.push_str(labels);
        let mut first = labels.is_empty();
        for (k, v) in extra.into_iter().chain(le.map(|v| ("le", v))) {
            if !first {
                self.buf.push(',');
            }
            first = false;
            self.buf.push_str(k);
            self.buf.push_str("=\"");
            escape_label_value(&mut self.buf, v);
            self.buf.push('"');
        }
        self.buf.push_str("} ");
    }

    fn bucket_line(&mut self, labels: &str, extra: Option<(&str, &str)>, le: &str, value: u64) {
        self.open_sample("_bucket", labels, extra, Some(le));
        self.buf.push_str(itoa::Buffer::new().format(value));
        self.buf.push('\n');
        self.line_done();
    }

    /// Appends text another encoder produced (already in this format).
    pub fn raw(&mut self, text: &str) {
        self.buf.push_str(text);
        if text.ends_with('\n') {
            self.line_done();
        }
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Bytes handed to the spill so far.
    pub fn spilled(&self) -> usize {
        self.spiller.spilled()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Ends the exposition (`# EOF` for OpenMetrics) and returns the text.
    pub fn finish(mut self) -> Vec<u8> {
        if self.format == Format::OpenMetrics {
            self.buf.push_str("# EOF\n");
        }
        self.buf.into_bytes()
    }
}

/// A pooled buffer as text: it comes back empty, which is valid UTF-8, so
/// only its allocation carries over.
fn text_buffer(mut bytes: Vec<u8>) -> String {
    bytes.clear();
    String::from_utf8(bytes).unwrap_or_default()
}

impl Sink for TextWriter {
    /// Starts a family. `name` is the metric's configured name; in
    /// OpenMetrics a counter family drops a trailing `_total` and its samples
    /// carry it, as the spec requires.
    fn family(&mut self, name: &str, help: &str, kind: Kind) {
        let family = match (self.format, kind) {
            (Format::OpenMetrics, Kind::Counter) => name.strip_suffix("_total").unwrap_or(name),
            _ => name,
        };
        self.sample_name.clear();
        self.sample_name.push_str(family);
        if self.format == Format::OpenMetrics && kind == Kind::Counter {
            self.sample_name.push_str("_total");
        }
        self.buf.push_str("# HELP ");
        self.buf.push_str(family);
        self.buf.push(' ');
        for c in help.chars() {
            match c {
                '\\' => self.buf.push_str("\\\\"),
                '\n' => self.buf.push_str("\\n"),
                '"' if self.format == Format::OpenMetrics => self.buf.push_str("\\\""),
                c => self.buf.push(c),
            }
        }
        self.buf.push_str("\n# TYPE ");
        self.buf.push_str(family);
        self.buf.push(' ');
        self.buf.push_str(type_name(kind, self.format));
        self.buf.push('\n');
        self.line_done();
    }

    /// Writes `name{labels,extra,le} ` up to the value.
    /// A counter or gauge sample with an integer value. `labels` is
    /// pre-rendered (`render_labels`); `extra` appends one more label.
    fn sample_u64(&mut self, labels: &str, extra: Option<(&str, &str)>, value: u64) {
        self.open_sample("", labels, extra, None);
        self.buf.push_str(itoa::Buffer::new().format(value));
        self.buf.push('\n');
        self.line_done();
    }

    fn sample_f64(&mut self, labels: &str, extra: Option<(&str, &str)>, value: f64) {
        self.open_sample("", labels, extra, None);
        write_go_float(&mut self.buf, value);
        self.buf.push('\n');
        self.line_done();
    }

    /// One histogram: `buckets` holds (upper bound, cumulative count) in
    /// increasing order, without +Inf, which is `count`.
    fn histogram(
        &mut self,
        labels: &str,
        extra: Option<(&str, &str)>,
        buckets: &[(f64, u64)],
        count: u64,
        sum: f64,
    ) {
        let mut le = String::new();
        for (bound, cumulative) in buckets {
            le.clear();
            write_go_float(&mut le, *bound);
            self.bucket_line(labels, extra, &le, *cumulative);
        }
        self.bucket_line(labels, extra, "+Inf", count);
        self.open_sample("_sum", labels, extra, None);
        write_go_float(&mut self.buf, sum);
        self.buf.push('\n');
        self.open_sample("_count", labels, extra, None);
        self.buf.push_str(itoa::Buffer::new().format(count));
        self.buf.push('\n');
        self.line_done();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::sink::render_labels;

    fn text(w: TextWriter) -> String {
        String::from_utf8(w.finish()).expect("UTF-8")
    }

    #[test]
    fn counter_names_follow_each_format() {
        let mut w = TextWriter::new(Format::Text);
        w.family("ebpf_exporter_x_total", "X \\ things\nmore", Kind::Counter);
        w.sample_u64("a=\"1\"", Some(("cpu", "0")), 5);
        let t = text(w);
        assert_eq!(
            t,
            "# HELP ebpf_exporter_x_total X \\\\ things\\nmore\n# TYPE ebpf_exporter_x_total counter\nebpf_exporter_x_total{a=\"1\",cpu=\"0\"} 5\n"
        );

        let mut w = TextWriter::new(Format::OpenMetrics);
        w.family("ebpf_exporter_x_total", "X", Kind::Counter);
        w.sample_u64("", None, 5);
        assert_eq!(
            text(w),
            "# HELP ebpf_exporter_x X\n# TYPE ebpf_exporter_x counter\nebpf_exporter_x_total 5\n# EOF\n"
        );
    }

    #[test]
    fn histogram_lines() {
        let mut w = TextWriter::new(Format::Text);
        w.family("h_seconds", "H", Kind::Histogram);
        w.histogram("dev=\"sda\"", None, &[(1e-6, 1), (2e-6, 3)], 4, 0.5);
        w.histogram("", None, &[(1.0, 0)], 0, 0.0);
        assert_eq!(
            text(w),
            "# HELP h_seconds H\n# TYPE h_seconds histogram\n\
             h_seconds_bucket{dev=\"sda\",le=\"1e-06\"} 1\n\
             h_seconds_bucket{dev=\"sda\",le=\"2e-06\"} 3\n\
             h_seconds_bucket{dev=\"sda\",le=\"+Inf\"} 4\n\
             h_seconds_sum{dev=\"sda\"} 0.5\n\
             h_seconds_count{dev=\"sda\"} 4\n\
             h_seconds_bucket{le=\"1\"} 0\n\
             h_seconds_bucket{le=\"+Inf\"} 0\n\
             h_seconds_sum 0\n\
             h_seconds_count 0\n"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let s = render_labels(["a", "b"], &["x\"y".to_string(), "p\\q\nr".to_string()]);
        assert_eq!(s, "a=\"x\\\"y\",b=\"p\\\\q\\nr\"");
    }

    /// Writes a few families of every sample kind into `w`.
    fn exposition(w: &mut TextWriter) {
        for f in 0..5 {
            w.family(&format!("f{f}_total"), "F", Kind::Counter);
            for i in 0..2000u64 {
                w.sample_u64(&format!("k=\"{i}\""), Some(("cpu", "1")), i * 7);
            }
            w.family(&format!("g{f}"), "G", Kind::Gauge);
            w.sample_f64("", None, 0.25 * f as f64);
            w.family(&format!("h{f}_seconds"), "H", Kind::Histogram);
            for i in 0..300u64 {
                w.histogram(
                    &format!("d=\"{i}\""),
                    None,
                    &[(1e-3, i), (2e-3, 2 * i)],
                    3 * i,
                    1.5,
                );
            }
        }
    }

    #[test]
    fn a_spilled_exposition_is_byte_identical_and_cut_at_line_ends() {
        for format in [Format::Text, Format::OpenMetrics] {
            let mut whole = TextWriter::new(format);
            exposition(&mut whole);
            let whole = whole.finish();

            let chunks = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Vec<u8>>::new()));
            let sink = std::sync::Arc::clone(&chunks);
            let mut w = TextWriter::new(format).spilling(
                ChunkPool::new(4096, 2),
                Box::new(move |c| sink.lock().expect("chunks").push(c)),
            );
            exposition(&mut w);
            let spilled = w.spilled();
            let tail = w.finish();
            let chunks = chunks.lock().expect("chunks").clone();
            assert!(chunks.len() > 50, "{} chunks", chunks.len());
            for c in &chunks {
                assert!(
                    c.len() >= 4096 && c.ends_with(b"\n"),
                    "cut at a line end past the mark"
                );
            }
            assert_eq!(spilled, chunks.iter().map(Vec::len).sum::<usize>());
            let joined: Vec<u8> = [chunks.concat(), tail].concat();
            assert!(
                joined == whole,
                "{format:?}: streamed text differs from whole text"
            );
        }
    }
}
