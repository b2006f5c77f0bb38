//! Parsing what the exporter serves: text and OpenMetrics into `Scrape`,
//! protobuf into the `prometheus` crate's types, and promtool's verdict.

use super::*;

/// The length-delimited `MetricFamily` messages of a protobuf exposition,
/// parsed with the `prometheus` crate's generated code.
pub fn parse_protobuf(mut bytes: &[u8]) -> Vec<prometheus::proto::MetricFamily> {
    use protobuf::Message;
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let mut stream = protobuf::CodedInputStream::from_bytes(bytes);
        let len = stream.read_raw_varint64().expect("a length prefix") as usize;
        let at = stream.pos() as usize;
        let body = bytes.get(at..at + len).expect("a whole message");
        out.push(prometheus::proto::MetricFamily::parse_from_bytes(body).expect("a family"));
        bytes = &bytes[at + len..];
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed text-format scrape.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    pub text: String,
    pub samples: Vec<Sample>,
}

impl Scrape {
    pub fn parse(text: &str) -> Scrape {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| parse_sample(l).unwrap_or_else(|| panic!("unparsable sample line: {l:?}")))
            .collect();
        Scrape {
            text: text.to_string(),
            samples,
        }
    }

    /// Samples named `name` whose labels include all of `labels`.
    pub fn find(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// Sum of the matching samples' values.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.find(name, labels).iter().map(|s| s.value).sum()
    }

    /// Asserts that `histogram` has observations for `labels` and that
    /// each matching series adds up: its bucket rows, taken in `le` order,
    /// never decrease; the rows' own total (the highest finite bucket, since
    /// rows outside the configured range are not exported) is the `+Inf`
    /// bucket; and `_count` is that total.
    pub fn assert_inf_is_count(&self, histogram: &str, labels: &[(&str, &str)]) {
        let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for s in self.find(&format!("{histogram}_bucket"), labels) {
            let mut id = s.labels.clone();
            let le = id.remove("le").expect("bucket has le");
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap_or_else(|_| panic!("bad le {le:?}"))
            };
            series
                .entry(format!("{id:?}"))
                .or_default()
                .push((bound, s.value));
        }
        assert!(!series.is_empty(), "{histogram}{labels:?} has no buckets");
        let mut total = 0.0;
        for (id, rows) in &mut series {
            rows.sort_by(|a, b| a.0.total_cmp(&b.0));
            let Some((inf, finite)) = rows.split_last() else {
                continue;
            };
            assert_eq!(inf.0, f64::INFINITY, "{histogram}{id}: +Inf bucket");
            assert!(
                finite.windows(2).all(|w| w[0].1 <= w[1].1),
                "{histogram}{id}: buckets are cumulative: {rows:?}"
            );
            let rows_total = finite.last().map_or(0.0, |b| b.1);
            assert_eq!(
                inf.1, rows_total,
                "{histogram}{id}: +Inf is the rows' total"
            );
            total += rows_total;
        }
        assert!(total > 0.0, "{histogram}{labels:?} has observations");
        let count = self.sum(&format!("{histogram}_count"), labels);
        assert_eq!(
            count, total,
            "{histogram}{labels:?}: _count is the rows' total"
        );
    }

    pub fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|s| s.name == name)
    }
}

fn parse_sample(line: &str) -> Option<Sample> {
    let (name_labels, value) = line.rsplit_once(' ')?;
    let value: f64 = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    let (name, labels) = match name_labels.split_once('{') {
        None => (name_labels.to_string(), BTreeMap::new()),
        Some((n, rest)) => (n.to_string(), parse_labels(rest.strip_suffix('}')?)?),
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

fn parse_labels(mut s: &str) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    while !s.is_empty() {
        let (k, rest) = s.split_once("=\"")?;
        let mut v = String::new();
        let mut chars = rest.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => v.push('\n'),
                    c => v.push(c),
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                c => v.push(c),
            }
        }
        let end = end?;
        out.insert(k.trim_start_matches(',').to_string(), v);
        s = rest[end + 1..].trim_start_matches(',');
    }
    Some(out)
}

/// Runs `promtool check metrics` on a scrape; returns its complaints.
pub fn promtool_check(text: &str) -> String {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (apt-get install prometheus)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool runs");
    let mut msg = String::from_utf8_lossy(&out.stdout).into_owned();
    msg.push_str(&String::from_utf8_lossy(&out.stderr));
    if !out.status.success() && msg.trim().is_empty() {
        msg = format!("promtool exited with {}", out.status);
    }
    // The reference names the program run time without `_total`, and
    // switching must keep the series; it is served whenever
    // kernel.bpf_stats_enabled is 1, which another test may have set.
    msg.lines()
        .filter(|l| *l != RUN_TIME_LINT)
        .map(|l| format!("{l}\n"))
        .collect()
}

/// promtool's one expected complaint (see `promtool_check`).
pub const RUN_TIME_LINT: &str =
    "ebpf_exporter_ebpf_program_run_time_seconds counter metrics should have \"_total\" suffix";
