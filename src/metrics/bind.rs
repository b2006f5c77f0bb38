//! Binds a config's metrics to the maps of its loaded object, checking that
//! each map exists and that its key and value sizes agree with the labels.
//! A mismatch here would otherwise decode garbage labels at scrape time.

use std::sync::Arc;

use libbpf_rs::{MapCore, MapHandle, MapType, Object};

use super::buckets::BucketLayout;
use super::collect::{MetricCollector, MetricKind};
use super::events::{parse_duration, EventCounter, DEFAULT_FLUSH};
use crate::config::model::Label;
use crate::config::{Config, ConfigError};
use crate::decode::{DecoderEnv, RowDecoder};
use crate::maps::MapReader;

/// The metric name prefix, fixed as in the reference.
pub const PREFIX: &str = "ebpf_exporter_";

struct MetricSpec<'a> {
    at: String,
    name: &'a str,
    help: &'a str,
    labels: &'a [Label],
    kind: MetricKind,
}

pub fn bind_metrics(
    config: &Config,
    object: &Object,
    env: &Arc<DecoderEnv>,
    cache_max_idle: u32,
) -> Result<Vec<MetricCollector>, ConfigError> {
    let m = &config.spec.metrics;
    let mut specs = Vec::new();
    for (i, c) in m
        .counters
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.perf_event_array)
    {
        specs.push(MetricSpec {
            at: format!("metrics.counters[{i}]"),
            name: &c.name,
            help: &c.help,
            labels: &c.labels,
            kind: MetricKind::Counter(c.value_multiplier),
        });
    }
    for (i, c) in m.gauges.iter().enumerate() {
        specs.push(MetricSpec {
            at: format!("metrics.gauges[{i}]"),
            name: &c.name,
            help: &c.help,
            labels: &c.labels,
            kind: MetricKind::Gauge(c.value_multiplier),
        });
    }
    for (i, h) in m.histograms.iter().enumerate() {
        specs.push(MetricSpec {
            at: format!("metrics.histograms[{i}]"),
            name: &h.name,
            help: &h.help,
            labels: &h.labels,
            kind: MetricKind::Histogram(BucketLayout::new(h)),
        });
    }
    specs
        .into_iter()
        .map(|spec| bind_one(config, object, env, spec, cache_max_idle))
        .collect()
}

/// Starts the event-driven counters (`perf_event_array: true`) of a config.
pub fn bind_events(
    config: &Config,
    object: &Object,
    env: &Arc<DecoderEnv>,
) -> Result<Vec<EventCounter>, ConfigError> {
    let mut out = Vec::new();
    for (i, c) in config
        .spec
        .metrics
        .counters
        .iter()
        .enumerate()
        .filter(|(_, c)| c.perf_event_array)
    {
        let at = format!("metrics.counters[{i}]");
        let name_key = format!("{at}.name");
        let map = object
            .maps()
            .find(|map| map.name().to_str() == Some(c.name.as_str()))
            .ok_or_else(|| {
                config.error(
                    &name_key,
                    format!("metric {:?} has no BPF map of the same name", c.name),
                )
            })?;
        if map.map_type() != MapType::PerfEventArray {
            return Err(config.error(
                &name_key,
                format!(
                    "perf_event_array metric {:?} needs a PERF_EVENT_ARRAY map, not {:?}",
                    c.name,
                    map.map_type()
                ),
            ));
        }
        let handle = MapHandle::try_from(&map).map_err(|e| {
            config.error(
                &name_key,
                format!("map {:?}: cannot get a handle: {e}", c.name),
            )
        })?;
        let rows = RowDecoder::new(&c.labels, env).map_err(|e| {
            config.error(
                &format!(
                    "{at}.labels[{}].decoders[{}]",
                    e.label_index, e.decoder_index
                ),
                e.source.to_string(),
            )
        })?;
        let flush = match &c.flush_interval {
            Some(text) => parse_duration(text)
                .map_err(|e| config.error(&format!("{at}.flush_interval"), e))?,
            None => DEFAULT_FLUSH,
        };
        let counter = EventCounter::start(
            format!("{PREFIX}{}", c.name),
            c.help.clone(),
            c.name.clone(),
            handle,
            rows,
            flush,
        )
        .map_err(|e| config.error(&name_key, e))?;
        out.push(counter);
    }
    Ok(out)
}

fn bind_one(
    config: &Config,
    object: &Object,
    env: &Arc<DecoderEnv>,
    spec: MetricSpec<'_>,
    cache_max_idle: u32,
) -> Result<MetricCollector, ConfigError> {
    let name_key = format!("{}.name", spec.at);
    let map = object
        .maps()
        .find(|map| map.name().to_str() == Some(spec.name))
        .ok_or_else(|| {
            let names: Vec<String> = object
                .maps()
                .map(|m| m.name().to_string_lossy().into_owned())
                .filter(|n| {
                    !n.starts_with('.')
                        && !n.contains(".rodata")
                        && !n.contains(".bss")
                        && !n.contains(".data")
                })
                .collect();
            config.error(
                &name_key,
                format!(
                    "metric {:?} has no BPF map of the same name in the object; its maps: {}",
                    spec.name,
                    names.join(", ")
                ),
            )
        })?;
    let map_type = map.map_type();
    if !matches!(
        map_type,
        MapType::Hash
            | MapType::LruHash
            | MapType::Array
            | MapType::PercpuHash
            | MapType::PercpuArray
            | MapType::LruPercpuHash
    ) {
        return Err(config.error(
            &name_key,
            format!(
                "map {:?} is a {map_type:?} map; metrics read HASH, LRU_HASH, ARRAY, PERCPU_HASH, PERCPU_ARRAY or LRU_PERCPU_HASH maps",
                spec.name
            ),
        ));
    }
    let handle = MapHandle::try_from(&map).map_err(|e| {
        config.error(
            &name_key,
            format!("map {:?}: cannot get a handle: {e}", spec.name),
        )
    })?;

    // In a per-CPU map, a label named `cpu` is not part of the key: it names
    // the CPU each value came from (the reference's convention for the last
    // label, extended here to sit anywhere, so histograms can split by CPU).
    let percpu = map_type.is_percpu();
    let cpu_index = spec
        .labels
        .iter()
        .position(|l| l.name == "cpu")
        .filter(|_| percpu);
    let key_labels: Vec<Label> = spec
        .labels
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != cpu_index)
        .map(|(_, l)| l.clone())
        .collect();
    if let (MetricKind::Histogram(_), Some(i)) = (&spec.kind, cpu_index) {
        if i == spec.labels.len() - 1 {
            return Err(config.error(
                &format!("{}.labels[{i}]", spec.at),
                "in a histogram the last label is the bucket index; put the `cpu` label before it",
            ));
        }
    }

    let described: usize = key_labels.iter().map(|l| l.size + l.padding).sum();
    let key_size = handle.key_size() as usize;
    let zero_key =
        key_labels.is_empty() && key_size == 4 && !matches!(spec.kind, MetricKind::Histogram(_));
    if described != key_size && !zero_key {
        let sizes: Vec<String> = key_labels
            .iter()
            .map(|l| format!("{}={}+{}", l.name, l.size, l.padding))
            .collect();
        return Err(config.error(
            &format!("{}.labels", spec.at),
            format!(
                "metric {:?}: labels describe {described} bytes of key ({}), but map {:?} has {key_size}-byte keys",
                spec.name,
                if sizes.is_empty() { "no labels".to_string() } else { sizes.join(", ") },
                spec.name
            ),
        ));
    }
    let value_size = handle.value_size() as usize;
    if value_size != 8 {
        return Err(config.error(
            &name_key,
            format!("metric {:?}: map values are {value_size} bytes; metric maps need 8-byte (u64) values", spec.name),
        ));
    }

    let rows = if zero_key {
        Ok(RowDecoder::zero_key())
    } else {
        RowDecoder::new(&key_labels, env)
    };
    let rows = rows.map_err(|e| {
        // Point at the decoder in the original label list.
        let original = spec
            .labels
            .iter()
            .position(|l| l.name == e.label)
            .unwrap_or(e.label_index);
        config.error(
            &format!(
                "{}.labels[{original}].decoders[{}]",
                spec.at, e.decoder_index
            ),
            e.source.to_string(),
        )
    })?;
    let reader = MapReader::new(handle, spec.name);
    Ok(MetricCollector::new(
        format!("{PREFIX}{}", spec.name),
        spec.help.to_string(),
        spec.name.to_string(),
        spec.kind,
        reader,
        rows,
        cpu_index.is_some(),
        cache_max_idle,
    ))
}
