//! Checks a config on its own, before any BPF object is involved: what the
//! reference format requires, plus mistakes that would otherwise surface
//! only as silently wrong metrics.

use super::duration::parse_duration;
use super::error::ConfigError;
use super::load::Config;
use super::model::{BucketType, Histogram, Label};
use super::specs::SpecKind;

/// exp2 bounds past 2^1023 overflow an f64 `le`.
const MAX_EXP2_BUCKET: u64 = 1023;

pub fn validate(config: &Config) -> Result<(), ConfigError> {
    let m = &config.spec.metrics;
    let spans = config.spec.tracing.as_ref().map_or(0, |t| t.spans.len());
    if m.counters.is_empty() && m.gauges.is_empty() && m.histograms.is_empty() {
        let message = if spans > 0 {
            "only tracing spans are configured, and ebpf-exporter does not export spans; \
             at least one counter, gauge or histogram is required"
        } else {
            "no metrics: at least one counter, gauge or histogram is required"
        };
        return Err(config.error("metrics", message));
    }

    let mut seen: Vec<&str> = Vec::new();
    for spec in config.specs() {
        let at = &spec.at;
        check_metric_name(config, at, spec.name, &mut seen)?;
        check_help(config, at, spec.help)?;
        check_labels(config, at, spec.labels)?;
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
    if let Some(map) = &config.spec.cgroup_id_map {
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
    Ok(())
}

fn check_metric_name<'a>(
    config: &Config,
    at: &str,
    name: &'a str,
    seen: &mut Vec<&'a str>,
) -> Result<(), ConfigError> {
    let key = format!("{at}.name");
    if !is_metric_name(name) {
        return Err(config.error(
            &key,
            format!("{name:?} is not a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), and it must also name the BPF map"),
        ));
    }
    if seen.contains(&name) {
        return Err(config.error(&key, format!("metric {name:?} is defined twice")));
    }
    seen.push(name);
    Ok(())
}

fn check_help(config: &Config, at: &str, help: &str) -> Result<(), ConfigError> {
    if help.trim().is_empty() {
        return Err(config.error(&format!("{at}.help"), "help must not be empty"));
    }
    Ok(())
}

fn check_labels(config: &Config, at: &str, labels: &[Label]) -> Result<(), ConfigError> {
    let mut names: Vec<&str> = Vec::new();
    for (i, label) in labels.iter().enumerate() {
        let key = format!("{at}.labels[{i}]");
        if !is_label_name(&label.name) {
            return Err(config.error(
                &format!("{key}.name"),
                format!(
                    "{:?} is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)",
                    label.name
                ),
            ));
        }
        if label.name == "le" || label.name == "quantile" {
            return Err(config.error(
                &format!("{key}.name"),
                format!("label name {:?} is reserved by Prometheus", label.name),
            ));
        }
        if names.contains(&label.name.as_str()) {
            return Err(config.error(
                &format!("{key}.name"),
                format!("label {:?} is defined twice", label.name),
            ));
        }
        names.push(&label.name);
        if label.size == 0 {
            return Err(config.error(
                &format!("{key}.size"),
                "size must be set and greater than 0",
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

fn check_histogram(config: &Config, at: &str, h: &Histogram) -> Result<(), ConfigError> {
    if h.labels.is_empty() {
        return Err(config.error(
            &format!("{at}.labels"),
            "a histogram needs at least one label: the last one is the bucket index",
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
            if matches!(h.bucket_type, BucketType::Exp2 | BucketType::Exp2zero)
                && h.bucket_max > MAX_EXP2_BUCKET
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
