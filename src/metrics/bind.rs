//! Binds a config's metrics to the maps of its loaded object, checking that
//! each map exists and that its key and value sizes agree with the labels.
//! A mismatch here would otherwise decode garbage labels at scrape time.

use std::sync::Arc;

use libbpf_rs::{MapCore, MapHandle, MapType};

use super::buckets::BucketLayout;
use super::collect::{MetricCollector, MetricKind};
use super::collector::{Collector, MetricId};
use super::events::{EventCounter, DEFAULT_FLUSH};
use crate::config::model::Label;
use crate::config::{parse_duration, Config, ConfigError, MetricSpec, SpecKind};
use crate::decode::chain::ChainBuildError;
use crate::decode::RowDecoder;
use crate::host::Host;
use crate::maps::MapReader;
use crate::object::LoadedObject;

/// The metric name prefix, fixed as in the reference.
pub const PREFIX: &str = "ebpf_exporter_";

/// One collector per configured metric: event counters for
/// `perf_event_array` counters, map collectors for the rest.
pub fn bind_collectors(
    config: &Config,
    object: &LoadedObject,
    host: &Arc<Host>,
    cache_max_idle: u32,
) -> Result<Vec<Box<dyn Collector>>, ConfigError> {
    config
        .specs()
        .map(|spec| -> Result<Box<dyn Collector>, ConfigError> {
            Ok(if spec.is_event_counter() {
                Box::new(bind_events(config, object, host, &spec)?)
            } else {
                Box::new(bind_one(config, object, host, &spec, cache_max_idle)?)
            })
        })
        .collect()
}

/// The exported name carries the fixed prefix; the map keeps the metric's.
fn metric_id(spec: &MetricSpec<'_>) -> MetricId {
    MetricId {
        name: format!("{PREFIX}{}", spec.name),
        help: spec.help.to_string(),
        map_name: spec.name.to_string(),
    }
}

fn map_handle(
    config: &Config,
    object: &LoadedObject,
    spec: &MetricSpec<'_>,
) -> Result<MapHandle, ConfigError> {
    object
        .map_handle(spec.name)
        .map_err(|e| config.error(&spec.key("name"), format!("metric {:?}: {e}", spec.name)))
}

/// Points a decoder build error at the decoder in the original label list.
fn chain_error(config: &Config, spec: &MetricSpec<'_>, e: ChainBuildError) -> ConfigError {
    let original = spec
        .labels
        .iter()
        .position(|l| l.name == e.label)
        .unwrap_or(e.label_index);
    config.error(
        &spec.key(&format!("labels[{original}].decoders[{}]", e.decoder_index)),
        e.source.to_string(),
    )
}

/// An event-driven counter (`perf_event_array: true`).
fn bind_events(
    config: &Config,
    object: &LoadedObject,
    host: &Arc<Host>,
    spec: &MetricSpec<'_>,
) -> Result<EventCounter, ConfigError> {
    let SpecKind::Counter(c) = spec.kind else {
        return Err(config.error(&spec.at, "perf_event_array applies to counters only"));
    };
    let handle = map_handle(config, object, spec)?;
    if handle.map_type() != MapType::PerfEventArray {
        return Err(config.error(
            &spec.key("name"),
            format!(
                "perf_event_array metric {:?} needs a PERF_EVENT_ARRAY map, not {:?}",
                spec.name,
                handle.map_type()
            ),
        ));
    }
    let rows = RowDecoder::new(spec.labels, host).map_err(|e| chain_error(config, spec, e))?;
    let flush = match &c.flush_interval {
        Some(text) => {
            parse_duration(text).map_err(|e| config.error(&spec.key("flush_interval"), e))?
        }
        None => DEFAULT_FLUSH,
    };
    EventCounter::start(metric_id(spec), handle, rows, flush)
        .map_err(|e| config.error(&spec.key("name"), e))
}

fn bind_one(
    config: &Config,
    object: &LoadedObject,
    host: &Arc<Host>,
    spec: &MetricSpec<'_>,
    cache_max_idle: u32,
) -> Result<MetricCollector, ConfigError> {
    let name_key = spec.key("name");
    let kind = match spec.kind {
        SpecKind::Counter(c) => MetricKind::Counter(c.value_multiplier),
        SpecKind::Gauge(c) => MetricKind::Gauge(c.value_multiplier),
        SpecKind::Histogram(h) => MetricKind::Histogram(BucketLayout::new(h)),
    };
    let handle = map_handle(config, object, spec)?;
    let map_type = handle.map_type();
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
    if let (MetricKind::Histogram(_), Some(i)) = (&kind, cpu_index) {
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
        key_labels.is_empty() && key_size == 4 && !matches!(kind, MetricKind::Histogram(_));
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
        RowDecoder::new(&key_labels, host)
    };
    let rows = rows.map_err(|e| chain_error(config, spec, e))?;
    let reader = MapReader::new(handle, spec.name);
    Ok(MetricCollector::new(
        metric_id(spec),
        kind,
        reader,
        rows,
        cpu_index.is_some(),
        cache_max_idle,
    ))
}
