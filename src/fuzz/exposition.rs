//! A strict parser for what the encoders write, and the generator of what
//! they are given, for round-trip checks. Strict means: anything the two
//! formats do not allow (an unknown escape, a trailing comma, a missing
//! `# EOF`, a sample outside its family) is an error, so an encoder bug
//! cannot hide behind a lenient reader.

use crate::encode::Format;
use crate::metrics::sink::Kind;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(u64),
    Float(f64),
    Histogram {
        buckets: Vec<(f64, u64)>,
        count: u64,
        sum: f64,
    },
}

#[derive(Debug, Clone)]
pub struct Sample {
    pub labels: Vec<(String, String)>,
    pub value: Value,
}

#[derive(Debug, Clone)]
pub struct Family {
    pub name: String,
    pub help: String,
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

/// Consumes bytes as the fuzzer gives them; runs out into zeros.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |v, _| v << 8 | self.byte() as u64)
    }

    fn text(&mut self, max: usize) -> String {
        let len = (self.byte() as usize) % (max + 1);
        let take = len.min(self.0.len());
        let (head, rest) = self.0.split_at(take);
        self.0 = rest;
        String::from_utf8_lossy(head).into_owned()
    }

    fn ident(&mut self, max: usize) -> String {
        let len = (self.byte() as usize) % (max + 1);
        (0..len)
            .map(|_| b"abcdefghijklmnopqrstuvwxyz_0123456789"[self.byte() as usize % 37] as char)
            .collect()
    }
}

/// Families from fuzzer bytes, within what the exporter can be asked to
/// write: valid, distinct names; any help and label text; any values.
pub fn families_from_bytes(data: &[u8]) -> Vec<Family> {
    let mut b = Bytes(data);
    let n = b.byte() % 4 + 1;
    (0..n)
        .map(|i| {
            let kind = [Kind::Counter, Kind::Gauge, Kind::Histogram][b.byte() as usize % 3];
            let mut name = format!("f{i}_{}", b.ident(6));
            if kind == Kind::Counter && b.byte() % 2 == 0 {
                name.push_str("_total");
            }
            let help = b.text(24);
            let samples = (0..b.byte() % 4)
                .map(|_| {
                    let labels = (0..b.byte() % 4)
                        .map(|j| (format!("l{j}{}", b.ident(3)), b.text(16)))
                        .collect();
                    let value = match kind {
                        Kind::Counter => Value::Int(b.u64()),
                        Kind::Histogram => {
                            let mut buckets = Vec::new();
                            let mut bound = f64::from_bits(b.u64()) % 1e6;
                            let mut cumulative = 0u64;
                            for _ in 0..b.byte() % 4 {
                                bound = if bound.is_finite() {
                                    bound.abs() + 1.0 + b.byte() as f64
                                } else {
                                    1.0
                                };
                                cumulative = cumulative.saturating_add(b.byte() as u64);
                                buckets.push((bound, cumulative));
                            }
                            let count = cumulative.saturating_add(b.byte() as u64);
                            Value::Histogram {
                                buckets,
                                count,
                                sum: f64::from_bits(b.u64()),
                            }
                        }
                        _ => Value::Float(f64::from_bits(b.u64())),
                    };
                    Sample { labels, value }
                })
                .collect();
            Family {
                name,
                help,
                kind,
                samples,
            }
        })
        .collect()
}

/// One sample line: its name, labels in order, and the value's text.
pub type Line = (String, Vec<(String, String)>, String);

/// A parsed family: name as it appears in `# TYPE`.
#[derive(Debug)]
pub struct Parsed {
    pub name: String,
    pub help: String,
    pub kind: String,
    /// (sample name, labels, value text) in order.
    pub lines: Vec<Line>,
}

pub fn parse(text: &str, format: Format) -> Result<Vec<Parsed>, String> {
    let body = text
        .strip_suffix('\n')
        .ok_or("the text does not end with a newline")?;
    let mut lines: Vec<&str> = body.split('\n').collect();
    if format == Format::OpenMetrics && lines.pop() != Some("# EOF") {
        return Err("no `# EOF` at the end".into());
    }
    let mut out: Vec<Parsed> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let help_line = lines[i];
        let rest = help_line
            .strip_prefix("# HELP ")
            .ok_or_else(|| format!("line {}: expected # HELP, got {help_line:?}", i + 1))?;
        let (name, help) = rest
            .split_once(' ')
            .ok_or_else(|| format!("line {}: no help text", i + 1))?;
        check_metric_name(name)?;
        let help = unescape(help, format == Format::OpenMetrics)?;
        let type_line = lines.get(i + 1).ok_or("HELP without TYPE")?;
        let kind = type_line
            .strip_prefix("# TYPE ")
            .and_then(|r| r.strip_prefix(name))
            .and_then(|r| r.strip_prefix(' '))
            .ok_or_else(|| format!("line {}: expected # TYPE {name}", i + 2))?;
        i += 2;
        let mut family = Parsed {
            name: name.to_string(),
            help,
            kind: kind.to_string(),
            lines: Vec::new(),
        };
        while i < lines.len() && !lines[i].starts_with('#') {
            family.lines.push(
                parse_sample(lines[i])
                    .map_err(|e| format!("line {}: {e}: {:?}", i + 1, lines[i]))?,
            );
            i += 1;
        }
        out.push(family);
    }
    Ok(out)
}

fn check_metric_name(name: &str) -> Result<(), String> {
    if crate::config::validate::is_metric_name(name) {
        Ok(())
    } else {
        Err(format!("bad metric name {name:?}"))
    }
}

fn unescape(s: &str, quote: bool) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quote => out.push('"'),
            other => return Err(format!("bad escape \\{other:?}")),
        }
    }
    Ok(out)
}

fn parse_sample(line: &str) -> Result<Line, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    check_metric_name(name)?;
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        rest = r;
        loop {
            let eq = rest.find('=').ok_or("label without =")?;
            let lname = &rest[..eq];
            if !crate::config::validate::is_label_name(lname) {
                return Err(format!("bad label name {lname:?}"));
            }
            rest = rest[eq + 1..]
                .strip_prefix('"')
                .ok_or("label value not quoted")?;
            let mut value = String::new();
            let mut chars = rest.char_indices();
            let end = loop {
                match chars.next() {
                    None => return Err("unterminated label value".into()),
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, 'n')) => value.push('\n'),
                        other => return Err(format!("bad escape in label value: {other:?}")),
                    },
                    Some((_, '\n')) => return Err("raw newline in label value".into()),
                    Some((_, c)) => value.push(c),
                }
            };
            labels.push((lname.to_string(), value));
            rest = &rest[end + 1..];
            if let Some(r) = rest.strip_prefix(',') {
                rest = r;
            } else if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            } else {
                return Err("expected , or } after a label".into());
            }
        }
    }
    let value = rest.strip_prefix(' ').ok_or("no space before the value")?;
    if value.is_empty() || value.contains(' ') {
        return Err(format!(
            "bad value {value:?} (timestamps are never written)"
        ));
    }
    Ok((name.to_string(), labels, value.to_string()))
}

fn float(text: &str) -> Result<f64, String> {
    match text {
        "NaN" => Ok(f64::NAN),
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        t if t
            .bytes()
            .all(|c| c.is_ascii_digit() || b".eE+-".contains(&c)) =>
        {
            t.parse().map_err(|e| format!("bad number {t:?}: {e}"))
        }
        t => Err(format!("bad number {t:?}")),
    }
}

/// Equal as exposed: NaN is NaN, and -0 is written as `0`, as Go's
/// client library writes it (found by this fuzz target: crash input in
/// fuzz/regressions/encoders). Any other value must come back bit for bit,
/// which `==` means for non-zero floats.
fn same_float(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b
}

/// Panics unless `parsed` says exactly what `families` held.
pub fn assert_same(families: &[Family], parsed: &[Parsed], format: Format) {
    assert_eq!(families.len(), parsed.len(), "family count");
    for (f, p) in families.iter().zip(parsed) {
        let om_counter = format == Format::OpenMetrics && f.kind == Kind::Counter;
        let family_name = if om_counter {
            f.name.strip_suffix("_total").unwrap_or(&f.name)
        } else {
            &f.name
        };
        assert_eq!(p.name, family_name);
        assert_eq!(p.help, f.help, "help of {}", f.name);
        let kind = match f.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
            Kind::Untyped if format == Format::Text => "untyped",
            Kind::Untyped => "unknown",
        };
        assert_eq!(p.kind, kind);
        let mut lines = p.lines.iter();
        let mut next =
            |suffix: &str, labels: &[(String, String)]| -> (Vec<(String, String)>, String) {
                let (name, got, value) = lines
                    .next()
                    .unwrap_or_else(|| panic!("{}: missing sample", f.name));
                assert_eq!(name, &format!("{family_name}{suffix}"));
                assert_eq!(&got[..labels.len()], labels, "labels of {name}");
                (got[labels.len()..].to_vec(), value.clone())
            };
        for s in &f.samples {
            match &s.value {
                Value::Int(v) => {
                    let suffix = if om_counter { "_total" } else { "" };
                    let (extra, text) = next(suffix, &s.labels);
                    assert!(extra.is_empty());
                    assert_eq!(text.parse::<u64>(), Ok(*v));
                }
                Value::Float(v) => {
                    let (extra, text) = next("", &s.labels);
                    assert!(extra.is_empty());
                    let got = float(&text).unwrap_or_else(|e| panic!("{e}"));
                    assert!(same_float(got, *v), "{got} != {v}");
                }
                Value::Histogram {
                    buckets,
                    count,
                    sum,
                } => {
                    for (bound, cumulative) in buckets
                        .iter()
                        .map(|(b, c)| (Some(*b), *c))
                        .chain([(None, *count)])
                    {
                        let (extra, text) = next("_bucket", &s.labels);
                        assert_eq!(extra.len(), 1);
                        assert_eq!(extra[0].0, "le");
                        let le = float(&extra[0].1).unwrap_or_else(|e| panic!("{e}"));
                        assert!(same_float(le, bound.unwrap_or(f64::INFINITY)), "le {le}");
                        assert_eq!(text.parse::<u64>(), Ok(cumulative));
                    }
                    let (_, text) = next("_sum", &s.labels);
                    let got = float(&text).unwrap_or_else(|e| panic!("{e}"));
                    assert!(same_float(got, *sum), "sum {got} != {sum}");
                    let (_, text) = next("_count", &s.labels);
                    assert_eq!(text.parse::<u64>(), Ok(*count));
                }
            }
        }
        assert!(lines.next().is_none(), "{}: extra samples", f.name);
    }
}
