//! Where collectors write their samples. Metrics define what a sample is
//! (a family, a label set, a value); encoders decide how it is spelled, by
//! implementing [`Sink`]. So metrics never depend on an exposition format,
//! and a new format is one more `Sink`.

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    Untyped,
}

/// Samples stream into a sink family by family, with label sets rendered
/// once (by [`render_labels`]) and reused across scrapes.
pub trait Sink {
    /// Starts a family; the samples that follow belong to it.
    fn family(&mut self, name: &str, help: &str, kind: Kind);
    /// A counter or gauge sample; `extra` appends one more label pair.
    fn sample_u64(&mut self, labels: &str, extra: Option<(&str, &str)>, value: u64);
    fn sample_f64(&mut self, labels: &str, extra: Option<(&str, &str)>, value: f64);
    /// One histogram: `buckets` holds (upper bound, cumulative count) in
    /// increasing order, without +Inf, which is `count`.
    fn histogram(
        &mut self,
        labels: &str,
        extra: Option<(&str, &str)>,
        buckets: &[(f64, u64)],
        count: u64,
        sum: f64,
    );
}

/// Appends `value` to `out` escaped for a label value. Both text formats
/// escape the same three characters.
pub fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Renders `name="value",…` for label names and values, escaped: a label
/// set's identity, which the key cache stores and sinks copy verbatim.
pub fn render_labels<'a>(names: impl IntoIterator<Item = &'a str>, values: &[String]) -> String {
    let mut out = String::new();
    for (i, (n, v)) in names.into_iter().zip(values).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(n);
        out.push_str("=\"");
        escape_label_value(&mut out, v);
        out.push('"');
    }
    out
}
