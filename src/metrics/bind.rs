//! Binds a config's metrics to the maps of its loaded object, checking that
//! each map exists and that its key and value sizes agree with the labels.
//! A mismatch here would otherwise decode garbage labels at scrape time.

use std::sync::Arc;

use libbpf_rs::{MapCore, MapHandle, MapType};

use super::buckets::BucketLayout;
use super::collect::{MetricCollector, MetricKind, SeriesLimit};
use super::collector::{Collector, MetricId};
use super::events::{EventCounter, DEFAULT_FLUSH};
use super::layout::{self, ValueRead};
use crate::config::model::{Label, Overflow};
use crate::config::{parse_duration, Config, ConfigError, MetricSpec, SpecKind};
use crate::decode::chain::ChainBuildError;
use crate::decode::RowDecoder;
use crate::host::Host;
use crate::maps::read::GlobalView;
use crate::maps::MapReader;
use crate::object::btf::{Btf, Kind, TypeId};
use crate::object::map_types;
use crate::object::LoadedObject;

/// The metric name prefix, fixed as in the reference.
pub const PREFIX: &str = "ebpf_exporter_";

/// One collector per configured metric: event counters for
/// `perf_event_array` counters, map collectors for the rest.
/// Binding settings that come from flags rather than the config.
#[derive(Debug, Clone, Copy)]
pub struct BindOptions {
    pub cache_max_idle: u32,
    /// `--metrics.max-series`: the limit of metrics whose config sets none.
    pub max_series: Option<usize>,
    /// `--maps.read-method`.
    pub read_method: crate::maps::ReadPolicy,
}

/// Binds every metric of `config` but those at `left_out` (key paths of
/// metrics refused before load, whose maps hold nothing).
pub fn bind_collectors(
    config: &Config,
    object: &LoadedObject,
    host: &Arc<Host>,
    opts: BindOptions,
    left_out: &[String],
) -> Result<Vec<Box<dyn Collector>>, ConfigError> {
    config
        .specs()
        .filter(|spec| !left_out.contains(&spec.at))
        .map(|spec| -> Result<Box<dyn Collector>, ConfigError> {
            Ok(if spec.is_event_counter() {
                Box::new(bind_events(config, object, host, &spec)?)
            } else {
                Box::new(bind_one(config, object, host, &spec, opts)?)
            })
        })
        .collect()
}

/// The exported name carries the fixed prefix; the map keeps the metric's.
fn metric_id(spec: &MetricSpec<'_>) -> MetricId {
    MetricId {
        name: format!("{PREFIX}{}", spec.name),
        help: spec.help.to_string(),
        map_name: spec.map.to_string(),
        config: String::new(),
        layout: Vec::new(),
    }
}

/// One line per label: where it reads the key, and what decodes it.
fn layout_lines(
    labels: &[Label],
    key: Option<(&crate::object::btf::Btf, crate::object::btf::TypeId)>,
) -> Vec<String> {
    let members = key.map(|(btf, ty)| (btf, layout::fields(btf, ty)));
    let mut offset = 0;
    labels
        .iter()
        .map(|l| {
            let at = l.offset.unwrap_or(offset);
            offset = at + l.size() + l.padding();
            let member = members
                .as_ref()
                .and_then(|(btf, all)| {
                    let f = all
                        .iter()
                        .filter(|f| f.offset == at)
                        .find(|f| f.size == l.size())?;
                    Some(format!("member {} ({})", f.path, btf.describe(f.ty)))
                })
                .unwrap_or_else(|| "bytes".to_string());
            let decoders: Vec<&str> = l.decoders.iter().map(|d| d.name.as_str()).collect();
            format!(
                "label {}: {member} at offset {at}, size {}{}, decoders {}",
                l.name,
                l.size(),
                if l.padding() > 0 {
                    format!(", then {} bytes of padding", l.padding())
                } else {
                    String::new()
                },
                decoders.join(" → ")
            )
        })
        .collect()
}

fn map_handle(
    config: &Config,
    object: &LoadedObject,
    spec: &MetricSpec<'_>,
) -> Result<MapHandle, ConfigError> {
    let at = if spec.map != spec.name { "map" } else { "name" };
    object
        .map_handle(spec.map)
        .map_err(|e| config.error(&spec.key(at), format!("metric {:?}: {e}", spec.name)))
}

/// Points a decoder build error at the decoder in the original label list.
fn chain_error(config: &Config, spec: &MetricSpec<'_>, e: ChainBuildError) -> ConfigError {
    let original = spec
        .labels
        .iter()
        .position(|l| l.name == e.label)
        .unwrap_or(e.label_index);
    config.error(&spec.key(&e.key_at(original)), e.source.to_string())
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
        .map_err(|e| config.error(&spec.key("name"), format!("reading the perf buffer: {e}")))
}

/// Binds one metric to its map: the map's type, the key's labels (with a
/// per-CPU `cpu` label taken out), the value's layout, then the decoders.
fn bind_one(
    config: &Config,
    object: &LoadedObject,
    host: &Arc<Host>,
    spec: &MetricSpec<'_>,
    opts: BindOptions,
) -> Result<MetricCollector, ConfigError> {
    let kind = match spec.kind {
        SpecKind::Counter(c) => MetricKind::Counter(c.value_multiplier),
        SpecKind::Gauge(c) => MetricKind::Gauge(c.value_multiplier),
        SpecKind::Histogram(h) => MetricKind::Histogram(BucketLayout::new(h)),
    };
    let (handle, global) = match spec.global {
        Some(name) => {
            let (handle, global) = global_source(config, object, spec, name)?;
            (handle, Some(global))
        }
        None => (map_handle(config, object, spec)?, None),
    };
    let percpu = check_map_type(config, spec, handle.map_type())?;
    let (omit_zero, delete_gone, stale_after) = match spec.kind {
        SpecKind::Counter(c) | SpecKind::Gauge(c) => {
            (c.omit_zero, c.delete_gone, c.stale_after.as_deref())
        }
        SpecKind::Histogram(h) => (false, h.delete_gone, h.stale_after.as_deref()),
    };
    let stale_after = stale_after
        .map(|text| parse_duration(text).map_err(|e| config.error(&spec.key("stale_after"), e)))
        .transpose()?;
    let deletes = [
        ("delete_gone", delete_gone),
        ("stale_after", stale_after.is_some()),
    ];
    if let Some((key, _)) = deletes.iter().find(|(_, set)| *set) {
        if !handle.map_type().is_hash_map() {
            return Err(config.error(
                &spec.key(key),
                format!(
                    "map {} is a {:?}, whose entries cannot be deleted: {key} needs a hash map",
                    spec.map,
                    handle.map_type()
                ),
            ));
        }
    }
    // Buckets come from the key's last label, or from an array in the
    // value (`value:`), in which case every label is a key label.
    let buckets_in_key = matches!(kind, MetricKind::Histogram(_)) && spec.value.is_none();
    let mut labels = split_cpu_label(config, spec, percpu, buckets_in_key)?;
    if global.is_some() {
        // A global's key is its element's index: a label reads all of it.
        for l in &mut labels.labels {
            if l.size.is_none() && l.field.is_none() {
                l.size = Some(4);
            }
        }
    }
    let key = bind_key_labels(
        config,
        object,
        spec,
        &labels,
        handle.key_size() as usize,
        buckets_in_key,
    )?;
    let (value_type, value_size) = match &global {
        Some(g) => (
            object.types.as_ref().map(|t| (&t.btf, g.elem_type)),
            g.view.elem,
        ),
        None => (
            object
                .types
                .as_ref()
                .and_then(|t| Some((&t.btf, t.value(spec.map)?))),
            handle.value_size() as usize,
        ),
    };
    let value = bind_value_read(config, spec, &kind, value_type, value_size)?;

    let rows = if key.zero_key {
        Ok(RowDecoder::zero_key())
    } else {
        RowDecoder::new(&key.labels, host)
    };
    let rows = rows.map_err(|e| chain_error(config, spec, e))?;
    let rows = if key.bound {
        rows.with_key_size(key.size)
    } else {
        rows
    };
    let reader = match &global {
        Some(g) => MapReader::global(handle, spec.map, g.view)
            .map_err(|e| config.error(&spec.key("global"), e.to_string()))?,
        None => MapReader::with_policy(handle, spec.map, opts.read_method),
    };
    let mut id = metric_id(spec);
    id.layout = layout_lines(&key.labels, key.btf_type);
    id.config = config.name.clone();
    let limit = SeriesLimit {
        max_series: spec.max_series.or(opts.max_series).unwrap_or(usize::MAX),
        fold: spec.overflow == Overflow::Fold,
    };
    Ok(MetricCollector::new(
        id,
        kind,
        reader,
        rows,
        labels.cpu_index.is_some(),
        opts.cache_max_idle,
    )
    .reading(value)
    .limited(limit)
    .omitting_zero(omit_zero)
    .deleting_gone(delete_gone)
    .deleting_stale(stale_after))
}

/// Refuses maps metrics cannot read; whether its values are per CPU.
fn check_map_type(
    config: &Config,
    spec: &MetricSpec<'_>,
    map_type: libbpf_rs::MapType,
) -> Result<bool, ConfigError> {
    if map_types::is_metric(map_type) {
        return Ok(map_types::of(map_type).is_some_and(|t| t.per_cpu));
    }
    let name = map_types::of(map_type).map_or("unknown", |t| t.name);
    Err(config.error(
        &spec.key("name"),
        format!(
            "map {:?} is a {name} map; metrics read {} maps",
            spec.name,
            map_types::metric_names().join(", ")
        ),
    ))
}

/// A metric's labels split into those of the key and a per-CPU `cpu`.
struct KeyLabels {
    /// Where the `cpu` label sits among the config's labels, if any.
    cpu_index: Option<usize>,
    /// Each key label's index among the config's labels, for messages.
    index: Vec<usize>,
    labels: Vec<Label>,
}

/// In a per-CPU map, a label named `cpu` is not part of the key: it names
/// the CPU each value came from (the reference's convention for the last
/// label, extended here to sit anywhere, so histograms can split by CPU).
fn split_cpu_label(
    config: &Config,
    spec: &MetricSpec<'_>,
    percpu: bool,
    buckets_in_key: bool,
) -> Result<KeyLabels, ConfigError> {
    let cpu_index = spec
        .labels
        .iter()
        .position(|l| l.name == "cpu")
        .filter(|_| percpu);
    let (index, labels) = spec
        .labels
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != cpu_index)
        .map(|(i, l)| (i, l.clone()))
        .unzip();
    if let (true, Some(i)) = (buckets_in_key, cpu_index) {
        if i == spec.labels.len() - 1 {
            return Err(config.error(
                &format!("{}.labels[{i}]", spec.at),
                "in a histogram the last label is the bucket index; put the `cpu` label before it",
            ));
        }
    }
    Ok(KeyLabels {
        cpu_index,
        index,
        labels,
    })
}

/// The key's labels placed in its bytes.
struct BoundKey<'o> {
    labels: Vec<Label>,
    /// The key's BTF type, when the object has one for the map.
    btf_type: Option<(&'o Btf, TypeId)>,
    size: usize,
    /// Labels placed by BTF member, not in sequence.
    bound: bool,
    /// A one-entry array read with no labels.
    zero_key: bool,
}

/// Places the key's labels, by BTF member or in sequence, and checks that
/// sequential labels describe the whole key.
fn bind_key_labels<'o>(
    config: &Config,
    object: &'o LoadedObject,
    spec: &MetricSpec<'_>,
    labels: &KeyLabels,
    key_size: usize,
    buckets_in_key: bool,
) -> Result<BoundKey<'o>, ConfigError> {
    let btf_type = object
        .types
        .as_ref()
        .and_then(|t| Some((&t.btf, t.key(spec.map)?)));
    let bound_labels = layout::bind_key(
        &labels.labels,
        &labels.index,
        btf_type,
        key_size,
        spec.map,
        buckets_in_key,
    )
    .map_err(|e| {
        config.error(
            &e.key(&spec.at),
            format!("metric {:?}: {}", spec.name, e.message),
        )
    })?;
    let bound = bound_labels.iter().any(|l| l.offset.is_some());
    let described: usize = bound_labels.iter().map(|l| l.size() + l.padding()).sum();
    let zero_key = bound_labels.is_empty() && key_size == 4 && !buckets_in_key;
    if described != key_size && !zero_key && !bound {
        let sizes: Vec<String> = bound_labels
            .iter()
            .map(|l| format!("{}={}+{}", l.name, l.size(), l.padding()))
            .collect();
        return Err(config.error(
            &format!("{}.labels", spec.at),
            format!(
                "metric {:?}: labels describe {described} bytes of key ({}), but map {:?} has {key_size}-byte keys",
                spec.name,
                if sizes.is_empty() { "no labels".to_string() } else { sizes.join(", ") },
                spec.map
            ),
        ));
    }
    Ok(BoundKey {
        labels: bound_labels,
        btf_type,
        size: key_size,
        bound,
        zero_key,
    })
}

/// A global variable as a metric's source: its section's map, and where
/// in the section's value it lies.
struct GlobalSource {
    view: GlobalView,
    /// The type of one element (the variable's own, for a scalar).
    elem_type: TypeId,
}

fn global_source(
    config: &Config,
    object: &LoadedObject,
    spec: &MetricSpec<'_>,
    name: &str,
) -> Result<(MapHandle, GlobalSource), ConfigError> {
    use crate::object::constants::find;
    let at = spec.key("global");
    let err = |m: String| config.error(&at, format!("metric {:?}: {m}", spec.name));
    let types = object.types.as_ref().ok_or_else(|| {
        err("the object has no BTF (built without -g?), so its globals have no names".into())
    })?;
    let globals = types.btf.globals();
    let g = find(&globals, name).map_err(|e| err(e.to_string()))?;
    let (elem_type, elem, count) = match types.btf.resolve(g.ty).map(|(_, t)| &t.kind) {
        Some(Kind::Array { elem, nelems }) if *nelems > 0 => {
            let size = types.btf.size_of(*elem).unwrap_or(0) as usize;
            (*elem, size, *nelems as usize)
        }
        _ => (g.ty, g.size as usize, 1),
    };
    if elem == 0 {
        return Err(err(format!("{name} has no size in BTF")));
    }
    let map = object
        .object
        .maps()
        .find(|m| m.name().to_string_lossy().ends_with(g.section.as_str()))
        .ok_or_else(|| {
            err(format!(
                "{name} lies in {}, which the object did not create",
                g.section
            ))
        })?;
    let handle =
        MapHandle::try_from(&map).map_err(|e| err(format!("a handle on {}: {e}", g.section)))?;
    Ok((
        handle,
        GlobalSource {
            view: GlobalView {
                offset: g.offset as usize,
                elem,
                count,
            },
            elem_type,
        },
    ))
}

/// Where the value is read: whole, a member, or a histogram's bucket array.
fn bind_value_read(
    config: &Config,
    spec: &MetricSpec<'_>,
    kind: &MetricKind,
    value_type: Option<(&Btf, TypeId)>,
    value_size: usize,
) -> Result<ValueRead, ConfigError> {
    let needed = match (kind, spec.value, spec.kind) {
        (MetricKind::Histogram(_), Some(_), SpecKind::Histogram(h)) => {
            Some(h.bucket_indexes().max().map_or(0, |m| m + 1))
        }
        _ => None,
    };
    layout::bind_value(value_type, value_size, spec.value, spec.map, needed).map_err(|e| {
        let at = if spec.value.is_some() {
            "value"
        } else {
            "name"
        };
        config.error(&spec.key(at), format!("metric {:?}: {e}", spec.name))
    })
}
