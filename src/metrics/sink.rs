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
/// as [`render_labels`] writes them.
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

/// The separator of `join_values`: escaping never leaves a raw newline in a
/// value, so it cannot be part of one.
const VALUE_SEPARATOR: char = '\n';

/// A label set's values alone, escaped and joined: what the key cache
/// keeps per label set, since the names are the metric's and the same on
/// every row. `names` bounds the values kept, as `render_labels` does.
pub fn join_values(names: usize, values: &[String]) -> String {
    let mut out = String::new();
    for (i, v) in values.iter().take(names).enumerate() {
        if i > 0 {
            out.push(VALUE_SEPARATOR);
        }
        escape_label_value(&mut out, v);
    }
    out
}

/// Writes `name="value",…` into `out` from names and values joined by
/// `join_values` for as many names: the same text `render_labels` gives.
/// This runs for every row of every scrape through the key cache, so the
/// last value is taken whole rather than searched for a separator it
/// cannot hold.
pub fn expand_values<S: AsRef<str>>(names: &[S], joined: &str, out: &mut String) {
    out.clear();
    let mut rest = Some(joined);
    for (i, n) in names.iter().enumerate() {
        let Some(values) = rest else { break };
        let at = if i + 1 == names.len() {
            None
        } else {
            values.bytes().position(|b| b == VALUE_SEPARATOR as u8)
        };
        let (v, after) = match at {
            Some(at) => (&values[..at], Some(&values[at + 1..])),
            None => (values, None),
        };
        rest = after;
        if i > 0 {
            out.push(',');
        }
        out.push_str(n.as_ref());
        out.push_str("=\"");
        out.push_str(v);
        out.push('"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_values_expand_to_the_rendered_label_set() {
        let names = ["a", "b", "c"];
        for values in [
            vec!["x\"y".to_string(), "p\\q\nr".into(), "".into()],
            vec!["".into(), "".into(), "".into()],
            vec!["only".into()],
            vec!["1".into(), "2".into(), "3".into(), "past the names".into()],
        ] {
            let mut out = String::from("left over");
            expand_values(&names, &join_values(names.len(), &values), &mut out);
            assert_eq!(out, render_labels(names, &values), "{values:?}");
        }
        let mut out = String::new();
        expand_values::<&str>(&[], &join_values(0, &[]), &mut out);
        assert_eq!(out, "");
    }
}
