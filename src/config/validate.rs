//! Checks a config on its own, before any BPF object is involved: what the
//! reference format requires, plus mistakes that would otherwise surface
//! only as silently wrong metrics.

use std::collections::{HashMap, HashSet};

use super::duration::parse_duration;
use super::error::ConfigError;
use super::load::Config;
use super::model::{BucketType, Histogram, Label};
use super::specs::{MetricSpec, SpecKind};

/// exp2 bounds past 2^1023 overflow an f64 `le`.
const MAX_EXP2_BUCKET: u64 = 1023;
/// Buckets per histogram. Each is a series per label set and a slot in
/// memory; Prometheus's own native histograms stop at 160, and classic
/// histograms rarely pass 100.
pub const MAX_BUCKETS: u64 = 4096;
/// Bytes a label (size plus padding) and a whole key may describe. Far
/// above any real BPF key, low enough that sums cannot overflow.
pub const MAX_KEY_BYTES: usize = 64 << 10;

pub fn validate(config: &Config) -> Result<(), ConfigError> {
    let m = &config.spec.metrics;
    let spans = config
        .spec
        .tracing
        .as_ref()
        .map_or(&[][..], |t| &t.spans[..]);
    if m.counters.is_empty() && m.gauges.is_empty() && m.histograms.is_empty() && spans.is_empty() {
        return Err(config.error(
            "metrics",
            "no metrics and no tracing spans: at least one counter, gauge, histogram or span is required",
        ));
    }
    let mut rings: HashSet<&str> = HashSet::new();
    for (i, span) in spans.iter().enumerate() {
        let at = format!("tracing.spans[{i}]");
        if span.ringbuf.is_empty() {
            return Err(config.error(
                &format!("{at}.ringbuf"),
                "ringbuf must name the span's BPF ring buffer",
            ));
        }
        if !rings.insert(&span.ringbuf) {
            return Err(config.error(
                &format!("{at}.ringbuf"),
                format!(
                    "ring buffer {:?} is read by two spans; each record can be read once",
                    span.ringbuf
                ),
            ));
        }
        // Ring buffer records have no BTF type: every size is needed.
        check_label_list(config, &at, &span.labels, Names::Attributes, true)?;
    }

    let mut seen: HashMap<String, String> = HashMap::new();
    for spec in config.specs() {
        let at = &spec.at;
        check_metric_name(config, &spec, &mut seen)?;
        check_help(config, at, spec.help)?;
        if spec.max_series == Some(0) {
            return Err(config.error(
                &spec.key("max_series"),
                "max_series must be at least 1 (leave it out for no limit)",
            ));
        }
        if let Some(probe) = spec.probe {
            check_probe(config, &spec, probe)?;
        }
        if spec.map.is_empty() {
            return Err(config.error(&spec.key("map"), "map must name a BPF map"));
        }
        if let Some(v) = spec.value {
            if v.is_empty() || v.split('.').any(str::is_empty) {
                return Err(config.error(
                    &spec.key("value"),
                    "value must name a member of the map's value struct, such as `bytes` or `stats.drops`",
                ));
            }
            if spec.is_event_counter() {
                return Err(config.error(
                    &spec.key("value"),
                    "value applies to maps, not to perf_event_array counters",
                ));
            }
        }
        let sized = matches!(spec.kind, SpecKind::Counter(c) if c.perf_event_array);
        check_labels(config, at, spec.labels, sized)?;
        match spec.kind {
            SpecKind::Counter(c) | SpecKind::Gauge(c) => {
                if c.perf_event_array && matches!(spec.kind, SpecKind::Gauge(_)) {
                    return Err(config.error(
                        &spec.key("perf_event_array"),
                        "perf_event_array applies to counters only",
                    ));
                }
                if let Some(interval) = &c.flush_interval {
                    if let Err(e) = parse_duration(interval) {
                        return Err(config.error(&spec.key("flush_interval"), e));
                    }
                }
                if c.value_multiplier
                    .is_some_and(|m| !m.is_finite() || m <= 0.0)
                {
                    return Err(config.error(
                        &spec.key("value_multiplier"),
                        "value_multiplier must be a finite number above 0",
                    ));
                }
            }
            SpecKind::Histogram(h) => check_histogram(config, at, h)?,
        }
    }
    let probes = config.specs().filter(|s| s.probe.is_some()).count();
    if probes > 0 && config.spec.object.is_some() {
        return Err(config.error(
            "object",
            "a config with probe: metrics runs the exporter's own probe program, so it names no object; put the object's metrics in a config of their own",
        ));
    }
    if config.spec.max_series == Some(0) {
        return Err(config.error(
            "max_series",
            "max_series must be at least 1 (leave it out for no limit)",
        ));
    }
    if let Some(map) = &config.spec.cgroup_id_map {
        if config.specs().any(|s| s.map == map.name) {
            return Err(config.error(
                "cgroup_id_map.name",
                format!(
                    "{:?} is also a metric's map; the exporter writes cgroup ids into this map, \
                     so it needs a map of its own",
                    map.name
                ),
            ));
        }
        if map.regexps.is_empty() {
            return Err(config.error("cgroup_id_map.regexps", "at least one regexp is required"));
        }
        for (i, re) in map.regexps.iter().enumerate() {
            if let Err(e) = regex::Regex::new(re) {
                return Err(config.error(
                    &format!("cgroup_id_map.regexps[{i}]"),
                    format!("bad regexp: {e}"),
                ));
            }
        }
    }
    for (i, sym) in config.spec.kaddrs.iter().enumerate() {
        if sym.is_empty() {
            return Err(config.error(&format!("kaddrs[{i}]"), "empty symbol name"));
        }
    }
    if let Some(programs) = &config.spec.programs {
        check_alternatives(config, &programs.one_of)?;
    }
    Ok(())
}

/// Each `programs.one_of` group names two programs or more, and a program
/// stands in one group at most. Whether the object has them is checked when
/// it is opened.
fn check_alternatives(config: &Config, groups: &[Vec<String>]) -> Result<(), ConfigError> {
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (g, group) in groups.iter().enumerate() {
        if group.len() < 2 {
            return Err(config.error(
                &format!("programs.one_of[{g}]"),
                "a group of alternatives names two programs or more, in the order to try them",
            ));
        }
        for (i, name) in group.iter().enumerate() {
            if let Some(first) = seen.insert(name, g) {
                return Err(config.error(
                    &format!("programs.one_of[{g}][{i}]"),
                    if first == g {
                        format!("program {name:?} is named twice in this group")
                    } else {
                        format!("program {name:?} is already in group {first}; a program stands in one group at most")
                    },
                ));
            }
        }
    }
    Ok(())
}

/// A valid name, and no name shared with another metric of the config in
/// any exposition format (`seen`: exposed name → metric).
fn check_metric_name(
    config: &Config,
    spec: &MetricSpec<'_>,
    seen: &mut HashMap<String, String>,
) -> Result<(), ConfigError> {
    let name = spec.name;
    let key = spec.key("name");
    if !is_metric_name(name) {
        return Err(config.error(
            &key,
            format!("{name:?} is not a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), and it must also name the BPF map"),
        ));
    }
    for exposed in spec.exposed_names() {
        match seen.get(&exposed) {
            Some(other) if other == name => {
                return Err(config.error(&key, format!("metric {name:?} is defined twice")))
            }
            Some(other) => {
                return Err(config.error(
                    &key,
                    format!(
                        "metrics {other:?} and {name:?} would both be served as {exposed:?} (in OpenMetrics a \
                         counter's family drops `_total`, and a histogram adds `_bucket`, `_sum` and \
                         `_count`): rename one"
                    ),
                ))
            }
            None => {
                seen.insert(exposed, name.to_string());
            }
        }
    }
    Ok(())
}

fn check_help(config: &Config, at: &str, help: &str) -> Result<(), ConfigError> {
    if help.trim().is_empty() {
        return Err(config.error(&format!("{at}.help"), "help must not be empty"));
    }
    Ok(())
}

/// Whose rules label names follow: metric labels are Prometheus label
/// names; span labels are OpenTelemetry attribute keys, which may hold
/// dots (`cpu.orig` in the reference's sched-trace).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Names {
    Prometheus,
    Attributes,
}

/// `sized`: records with no BTF type (perf event arrays) need every size.
fn check_labels(
    config: &Config,
    at: &str,
    labels: &[Label],
    sized: bool,
) -> Result<(), ConfigError> {
    check_label_list(config, at, labels, Names::Prometheus, sized)
}

fn check_label_list(
    config: &Config,
    at: &str,
    labels: &[Label],
    rules: Names,
    sized: bool,
) -> Result<(), ConfigError> {
    let mut names: HashSet<&str> = HashSet::new();
    let mut key_bytes = 0usize;
    for (i, label) in labels.iter().enumerate() {
        let key = format!("{at}.labels[{i}]");
        if rules == Names::Attributes {
            if label.name.is_empty() || label.name.chars().any(char::is_control) {
                return Err(config.error(
                    &format!("{key}.name"),
                    "a span label needs a name without control characters",
                ));
            }
        } else if !is_label_name(&label.name) {
            return Err(config.error(
                &format!("{key}.name"),
                format!(
                    "{:?} is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)",
                    label.name
                ),
            ));
        }
        if rules == Names::Prometheus && label.name.starts_with("__") {
            return Err(config.error(
                &format!("{key}.name"),
                format!(
                    "label name {:?} is reserved: names starting with `__` are Prometheus's own",
                    label.name
                ),
            ));
        }
        if rules == Names::Prometheus && (label.name == "le" || label.name == "quantile") {
            return Err(config.error(
                &format!("{key}.name"),
                format!("label name {:?} is reserved by Prometheus", label.name),
            ));
        }
        if !names.insert(&label.name) {
            return Err(config.error(
                &format!("{key}.name"),
                format!("label {:?} is defined twice", label.name),
            ));
        }
        match label.size {
            Some(0) => {
                return Err(config.error(&format!("{key}.size"), "size must be greater than 0"))
            }
            None if sized => {
                return Err(config.error(
                    &format!("{key}.size"),
                    "size must be set: these records have no BTF type to take it from",
                ))
            }
            None if label.padding.is_some() => {
                return Err(config.error(
                    &format!("{key}.padding"),
                    "padding without size: a label without size takes its member's place from BTF, padding included",
                ))
            }
            _ => {}
        }
        if label.field.is_some() && label.size.is_some() {
            return Err(config.error(
                &format!("{key}.field"),
                "give either field (size from BTF) or size (the reference's layout), not both",
            ));
        }
        if label
            .field
            .as_deref()
            .is_some_and(|f| f.is_empty() || f.split('.').any(str::is_empty))
        {
            return Err(config.error(
                &format!("{key}.field"),
                "field must name a member, such as `pid` or `flow.sport`",
            ));
        }
        for (field, value) in [("size", label.size()), ("padding", label.padding())] {
            if value > MAX_KEY_BYTES {
                return Err(config.error(
                    &format!("{key}.{field}"),
                    format!("{field} {value} is above the limit of {MAX_KEY_BYTES} bytes"),
                ));
            }
        }
        key_bytes += label.size() + label.padding();
        if key_bytes > MAX_KEY_BYTES {
            return Err(config.error(
                &format!("{key}.size"),
                format!(
                    "the labels up to here describe {key_bytes} key bytes, above the limit of {MAX_KEY_BYTES}"
                ),
            ));
        }
        if label.decoders.is_empty() {
            return Err(config.error(
                &format!("{key}.decoders"),
                "at least one decoder is required",
            ));
        }
    }
    Ok(())
}

/// What a `probe:` metric may say: its hook, fields and filters are
/// checked against the kernel when it loads (`probes/`); here, what no
/// kernel could make right.
fn check_probe(
    config: &Config,
    spec: &MetricSpec<'_>,
    probe: &super::model::ProbeSpec,
) -> Result<(), ConfigError> {
    if spec.map.is_empty() {
        return Err(config.error(
            &spec.key("probe"),
            format!(
                "a config holds at most {} probes; put the others in a config of their own",
                super::specs::PROBE_MAPS.len()
            ),
        ));
    }
    let (map, global, perf) = match spec.kind {
        SpecKind::Counter(c) | SpecKind::Gauge(c) => {
            (c.map.is_some(), c.global.is_some(), c.perf_event_array)
        }
        SpecKind::Histogram(h) => (h.map.is_some(), h.global.is_some(), false),
    };
    for (given, key) in [
        (map, "map"),
        (global, "global"),
        (spec.value.is_some(), "value"),
        (perf, "perf_event_array"),
    ] {
        if given {
            return Err(config.error(
                &spec.key(key),
                format!("`{key}` reads an object's data; a probe: metric gathers its own (say its value as probe.value)"),
            ));
        }
    }
    match (&probe.start, &probe.end) {
        (None, None) if probe.hook.trim().is_empty() => {
            return Err(config.error(
                &spec.key("probe.hook"),
                "hook must name where the probe runs, such as tracepoint/syscalls/sys_enter_write (or start and end, for a latency)",
            ));
        }
        (None, None) => {}
        (Some(start), Some(end)) => {
            if !probe.hook.trim().is_empty() {
                return Err(config.error(
                    &spec.key("probe.hook"),
                    "a latency runs on its start and end hooks: leave out hook",
                ));
            }
            if !matches!(spec.kind, SpecKind::Histogram(_)) {
                return Err(config.error(
                    &spec.key("probe.start"),
                    "a latency between two hooks is a histogram",
                ));
            }
            for (side, e) in [("start", start), ("end", end)] {
                if e.matching.is_empty() || e.matching.len() > 2 {
                    return Err(config.error(
                        &spec.key(&format!("probe.{side}.match")),
                        "match names the 1 or 2 fields that pair a start with its end, such as [tid]",
                    ));
                }
            }
            if start.matching.len() != end.matching.len() {
                return Err(config.error(
                    &spec.key("probe.end.match"),
                    format!(
                        "start matches on {} field(s) and end on {}: they pair field by field",
                        start.matching.len(),
                        end.matching.len()
                    ),
                ));
            }
            if !matches!(
                probe.value.as_deref(),
                Some("latency_ns" | "latency_us" | "latency_ms" | "latency_s")
            ) {
                return Err(config.error(
                    &spec.key("probe.value"),
                    "a latency's value is latency_ns, latency_us, latency_ms or latency_s: the unit its buckets count in",
                ));
            }
        }
        (Some(_), None) => {
            return Err(config.error(&spec.key("probe.start"), "a latency needs an end too"))
        }
        (None, Some(_)) => {
            return Err(config.error(&spec.key("probe.end"), "a latency needs a start too"))
        }
    }
    for (i, label) in spec.labels.iter().enumerate() {
        if label.size.is_some() || label.padding.is_some() {
            return Err(config.error(
                &format!("{}.labels[{i}].size", spec.at),
                "a probe's labels take their sizes from the fields they read: leave out size and padding",
            ));
        }
    }
    for (i, f) in probe.filter.iter().enumerate() {
        if let Some(re) = &f.cgroup {
            let key = format!("{}.probe.filter[{i}].cgroup", spec.at);
            if !f.field.is_empty() || !f.op.is_empty() || !f.value.is_null() {
                return Err(config.error(
                    &key,
                    "a cgroup filter stands alone: {cgroup: REGEXP}, with no field, op or value",
                ));
            }
            if let Err(e) = regex::Regex::new(re) {
                return Err(config.error(&key, format!("bad regexp: {e}")));
            }
            continue;
        }
        if f.field.is_empty() {
            return Err(config.error(
                &format!("{}.probe.filter[{i}]", spec.at),
                "a filter is {field, op, value}, or {cgroup: REGEXP}",
            ));
        }
        if !matches!(f.op.as_str(), "==" | "!=" | "<" | ">" | "<=" | ">=" | "&") {
            return Err(config.error(
                &format!("{}.probe.filter[{i}].op", spec.at),
                format!("{:?} is no comparison: use ==, !=, <, >, <=, >= or & (any of the value's bits)", f.op),
            ));
        }
    }
    match spec.kind {
        SpecKind::Gauge(_) if probe.value.is_none() => Err(config.error(
            &spec.key("probe"),
            "a gauge keeps a field's last value: name it with probe.value",
        )),
        SpecKind::Histogram(h) => {
            if probe.value.is_none() {
                return Err(config.error(
                    &spec.key("probe"),
                    "a histogram buckets a field's values: name it with probe.value",
                ));
            }
            if !matches!(h.bucket_type, BucketType::Exp2 | BucketType::Linear) {
                return Err(config.error(
                    &spec.key("bucket_type"),
                    "a probe's histograms are exp2 or linear",
                ));
            }
            if h.bucket_max >= 64 {
                return Err(config.error(
                    &spec.key("bucket_max"),
                    "a probe's buckets stop at 63: a u64 value has no more powers of two",
                ));
            }
            Ok(())
        }
        _ => {
            if probe.step.is_some() {
                return Err(config.error(
                    &spec.key("probe.step"),
                    "step is the width of a linear histogram's buckets",
                ));
            }
            Ok(())
        }
    }
}

fn check_histogram(config: &Config, at: &str, h: &Histogram) -> Result<(), ConfigError> {
    // With `value:` the buckets are an array in the value, and there is
    // no bucket label; a probe's bucket label is its own.
    if h.labels.is_empty() && h.value.is_none() && h.probe.is_none() {
        return Err(config.error(
            &format!("{at}.labels"),
            "a histogram needs at least one label: the last one is the bucket index \
             (or `value:` naming an array of bucket counts in the map's value)",
        ));
    }
    match h.bucket_type {
        BucketType::Fixed => {
            if h.bucket_keys.is_empty() {
                return Err(config.error(
                    &format!("{at}.bucket_keys"),
                    "bucket_type fixed needs bucket_keys",
                ));
            }
            if h.bucket_keys.windows(2).any(|w| w[0] >= w[1]) {
                return Err(config.error(
                    &format!("{at}.bucket_keys"),
                    "bucket_keys must be strictly increasing",
                ));
            }
            if h.bucket_keys.len() as u64 > MAX_BUCKETS {
                return Err(config.error(
                    &format!("{at}.bucket_keys"),
                    format!(
                        "{} bucket_keys are more than the limit of {MAX_BUCKETS} buckets",
                        h.bucket_keys.len()
                    ),
                ));
            }
            if h.bucket_keys.last() == Some(&u64::MAX) {
                return Err(config.error(
                    &format!("{at}.bucket_keys"),
                    "the last bucket key must be below 18446744073709551615: the sum is kept at the key after it",
                ));
            }
        }
        _ => {
            if h.bucket_max < h.bucket_min {
                return Err(config.error(
                    &format!("{at}.bucket_max"),
                    format!(
                        "bucket_max ({}) is below bucket_min ({})",
                        h.bucket_max, h.bucket_min
                    ),
                ));
            }
            let count = (h.bucket_max - h.bucket_min).saturating_add(1);
            if count > MAX_BUCKETS {
                return Err(config.error(
                    &format!("{at}.bucket_max"),
                    format!(
                        "bucket_min {} to bucket_max {} is {count} buckets, more than the limit of {MAX_BUCKETS}",
                        h.bucket_min, h.bucket_max
                    ),
                ));
            }
            if h.bucket_max == u64::MAX {
                return Err(config.error(
                    &format!("{at}.bucket_max"),
                    "bucket_max must be below 18446744073709551615: the sum is kept at the key after it",
                ));
            }
            if matches!(
                h.bucket_type,
                BucketType::Exp2 | BucketType::Exp2zero | BucketType::Exp2floor
            ) && h.bucket_max > MAX_EXP2_BUCKET
            {
                return Err(config.error(
                    &format!("{at}.bucket_max"),
                    format!(
                        "bucket_max {} is too large for exp2 (at most {MAX_EXP2_BUCKET})",
                        h.bucket_max
                    ),
                ));
            }
        }
    }
    if !h.multiplier().is_finite() || h.multiplier() < 0.0 {
        return Err(config.error(
            &format!("{at}.bucket_multiplier"),
            "bucket_multiplier must be a finite, non-negative number",
        ));
    }
    // Each bucket needs its own finite `le`: equal bounds (an index too
    // large for an f64 to tell from the next) or an infinite one (a
    // multiplier that overflows) would make duplicate series.
    let key = if h.bucket_type == BucketType::Fixed {
        format!("{at}.bucket_keys")
    } else {
        format!("{at}.bucket_max")
    };
    let mut last: Option<(u64, f64)> = None;
    for idx in h.bucket_indexes() {
        let bound = h.bound(idx);
        if !bound.is_finite() {
            return Err(config.error(
                &key,
                format!("bucket {idx} has an infinite upper bound; lower bucket_multiplier or the bucket range"),
            ));
        }
        if let Some((prev, prev_bound)) = last {
            if bound <= prev_bound {
                return Err(config.error(
                    &key,
                    format!(
                        "buckets {prev} and {idx} have the same upper bound ({bound}) as floating point; \
                         use smaller bucket indexes or a larger bucket_multiplier"
                    ),
                ));
            }
        }
        last = Some((idx, bound));
    }
    Ok(())
}

pub fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

pub fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
