//! Writes metric families in the Prometheus text format (0.0.4) or
//! OpenMetrics 1.0 text, straight into one reusable buffer.

use super::float::write_go_float;
use crate::metrics::sink::{escape_label_value, Kind, Sink};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Prometheus text exposition format 0.0.4.
    Text,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The type name a family's `# TYPE` line gives.
fn type_name(kind: Kind, format: Format) -> &'static str {
    match (kind, format) {
        (Kind::Counter, _) => "counter",
        (Kind::Gauge, _) => "gauge",
        (Kind::Histogram, _) => "histogram",
        (Kind::Untyped, Format::Text) => "untyped",
        (Kind::Untyped, Format::OpenMetrics) => "unknown",
    }
}

pub struct TextWriter {
    pub format: Format,
    buf: String,
    /// The sample name of the current family (OpenMetrics counters get `_total`).
    sample_name: String,
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
    }

    /// Appends text another encoder produced (already in this format).
    pub fn raw(&mut self, text: &str) {
        self.buf.push_str(text);
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Ends the exposition (`# EOF` for OpenMetrics) and returns the text.
    pub fn finish(mut self) -> String {
        if self.format == Format::OpenMetrics {
            self.buf.push_str("# EOF\n");
        }
        self.buf
    }
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
    }

    /// Writes `name{labels,extra,le} ` up to the value.
    /// A counter or gauge sample with an integer value. `labels` is
    /// pre-rendered (`render_labels`); `extra` appends one more label.
    fn sample_u64(&mut self, labels: &str, extra: Option<(&str, &str)>, value: u64) {
        self.open_sample("", labels, extra, None);
        self.buf.push_str(itoa::Buffer::new().format(value));
        self.buf.push('\n');
    }

    fn sample_f64(&mut self, labels: &str, extra: Option<(&str, &str)>, value: f64) {
        self.open_sample("", labels, extra, None);
        write_go_float(&mut self.buf, value);
        self.buf.push('\n');
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::sink::render_labels;

    #[test]
    fn counter_names_follow_each_format() {
        let mut w = TextWriter::new(Format::Text);
        w.family("ebpf_exporter_x_total", "X \\ things\nmore", Kind::Counter);
        w.sample_u64("a=\"1\"", Some(("cpu", "0")), 5);
        let t = w.finish();
        assert_eq!(
            t,
            "# HELP ebpf_exporter_x_total X \\\\ things\\nmore\n# TYPE ebpf_exporter_x_total counter\nebpf_exporter_x_total{a=\"1\",cpu=\"0\"} 5\n"
        );

        let mut w = TextWriter::new(Format::OpenMetrics);
        w.family("ebpf_exporter_x_total", "X", Kind::Counter);
        w.sample_u64("", None, 5);
        assert_eq!(
            w.finish(),
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
            w.finish(),
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
}
