//! `ebpf-exporter describe OBJECT`: a starter config from an object's BTF.
//!
//! Every map that looks like a metric (a hash or array of u64 values)
//! becomes a counter, gauge or histogram whose labels are its key's
//! members, with no sizes: they bind to the members at load. Decoders are
//! guessed from member types and names. What is skipped is listed, with
//! why. The object is opened, never loaded, so this needs no privileges.

use std::fmt::Write;

use libbpf_rs::MapType;

use crate::decode::registry;
use crate::metrics::layout::{fields, Field};
use crate::object::btf::{Btf, Kind, ObjectTypes, TypeId};
use crate::object::map_types;

/// What `describe` made of one map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapPlan {
    Metric(MetricPlan),
    Skipped { map: String, why: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricPlan {
    /// The metric's name; the map's own when it reads the whole value.
    pub name: String,
    pub map: String,
    /// The value member it reads, for struct values.
    pub value: Option<String>,
    pub kind: MetricKind,
    pub labels: Vec<LabelPlan>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    /// exp2 buckets 0..=max.
    Histogram {
        max: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelPlan {
    pub name: String,
    /// Set when the member's path is not the label's name.
    pub field: Option<String>,
    /// Only for keys without BTF.
    pub size: Option<usize>,
    pub decoders: Vec<String>,
    /// `uint` in network byte order.
    pub big_endian: bool,
    /// The C type and offset, as a comment.
    pub comment: String,
}

/// Opens `bytes` (without loading) and plans a config for each map.
pub fn plan(bytes: &[u8]) -> Result<Vec<MapPlan>, String> {
    let object = libbpf_rs::ObjectBuilder::default()
        .open_memory(bytes)
        .map_err(|e| format!("cannot open the object: {e}"))?;
    let types = ObjectTypes::of_open(&object);
    let mut plans = Vec::new();
    for map in object.maps() {
        let name = map.name().to_string_lossy().into_owned();
        let info = MapInfo {
            name: name.clone(),
            map_type: map.map_type(),
            key_size: map.key_size() as usize,
            value_size: map.value_size() as usize,
            max_entries: map.max_entries(),
        };
        plans.extend(plan_map(&info, types.as_ref()));
    }
    Ok(plans)
}

pub struct MapInfo {
    pub name: String,
    pub map_type: MapType,
    pub key_size: usize,
    pub value_size: usize,
    pub max_entries: u32,
}

fn skipped(map: &str, why: impl Into<String>) -> MapPlan {
    MapPlan::Skipped {
        map: map.to_string(),
        why: why.into(),
    }
}

pub fn plan_map(m: &MapInfo, types: Option<&ObjectTypes>) -> Vec<MapPlan> {
    if m.name.contains('.') {
        return vec![skipped(
            &m.name,
            "a global-variable section, not a map of counts",
        )];
    }
    if m.name == crate::maps::pressure::FAILURES_MAP {
        return vec![skipped(
            &m.name,
            "the shared helpers' insert failures, exported as ebpf_exporter_map_update_failures_total",
        )];
    }
    if !map_types::is_metric(m.map_type) {
        let why = match m.map_type {
            MapType::RingBuf => "a RINGBUF map: records for tracing spans, not counts".to_string(),
            MapType::PerfEventArray => {
                "a PERF_EVENT_ARRAY map: events, which a counter with perf_event_array: true and sized labels can count".to_string()
            }
            other => format!(
                "a {} map, which metrics do not read",
                map_types::of(other).map_or("unknown", |t| t.name)
            ),
        };
        return vec![skipped(&m.name, why)];
    }
    let key = types.and_then(|t| Some((&t.btf, t.key(&m.name)?)));
    let labels = match key {
        Some((btf, id)) => {
            let all = fields(btf, id);
            if all.is_empty() {
                scalar_label(btf, id, m)
            } else {
                struct_labels(btf, &all)
            }
        }
        None => vec![LabelPlan {
            name: "key".into(),
            field: None,
            size: Some(m.key_size),
            decoders: vec!["uint".into()],
            big_endian: false,
            comment: format!("{} bytes; the object has no key type", m.key_size),
        }],
    };
    // A one-entry array is one unlabelled series (key 0).
    let labels = if labels.len() == 1 && m.map_type == MapType::Array && m.max_entries == 1 {
        Vec::new()
    } else {
        labels
    };
    let value = types.and_then(|t| Some((&t.btf, t.value(&m.name)?)));
    if let Some((btf, id)) = value {
        if !fields(btf, id).is_empty() {
            return struct_value_plans(m, btf, id, &labels);
        }
    }
    if m.value_size != 8 {
        let what = value
            .map(|(btf, id)| btf.describe(id))
            .unwrap_or_else(|| "values".to_string());
        return vec![skipped(
            &m.name,
            format!(
                "its values are {what} ({} bytes), with no members to read: metrics read u64 values or struct members",
                m.value_size
            ),
        )];
    }
    if let Some((btf, id)) = value {
        if !is_count(btf, id) {
            return vec![skipped(
                &m.name,
                format!("its values are {}, not an integer count", btf.describe(id)),
            )];
        }
    }
    let mut kind = guess_kind(&m.name);
    // A last key member named like a bucket makes a histogram, as does an
    // array indexed by slot with a histogram-like name.
    let bucket_like = |n: &str| {
        let n = n.rsplit('.').next().unwrap_or(n);
        matches!(n, "slot" | "bucket" | "le" | "hist_slot" | "bin")
    };
    let last = labels
        .last()
        .map(|l| l.field.as_deref().unwrap_or(&l.name).to_string());
    let histogram_name = m.name.contains("hist") || m.name.ends_with("_seconds");
    if last.as_deref().is_some_and(bucket_like)
        || (histogram_name
            && labels.len() == 1
            && matches!(labels[0].name.as_str(), "key" | "index"))
    {
        let max = u64::from(m.max_entries.saturating_sub(1));
        kind = MetricKind::Histogram { max: max.min(26) };
    }
    vec![MapPlan::Metric(MetricPlan {
        name: m.name.clone(),
        map: m.name.clone(),
        value: None,
        kind,
        labels,
    })]
}

/// An integer a map can count in: not `char` (text) or `bool`.
fn is_count(btf: &Btf, id: TypeId) -> bool {
    match btf.resolve(id) {
        Some((_, t)) if t.name == "char" => false,
        Some((_, t)) => matches!(
            t.kind,
            Kind::Int {
                size: 1 | 2 | 4 | 8,
                bool: false,
                ..
            } | Kind::Enum { .. }
        ),
        None => false,
    }
}

/// One metric per integer member of a struct value, and a histogram per
/// array of integer counts in it (libbpf-tools' `u32 slots[N]`).
fn struct_value_plans(m: &MapInfo, btf: &Btf, value: TypeId, labels: &[LabelPlan]) -> Vec<MapPlan> {
    let mut out = Vec::new();
    let all = fields(btf, value);
    let arrays = all
        .iter()
        .filter(|f| {
            matches!(btf.resolve(f.ty).map(|(_, t)| &t.kind), Some(Kind::Array { elem, .. }) if is_count(btf, *elem))
        })
        .count();
    for f in &all {
        let Some((_, t)) = btf.resolve(f.ty) else {
            continue;
        };
        let member = sanitize(&f.path);
        match &t.kind {
            Kind::Struct { .. } | Kind::Union { .. } => continue,
            Kind::Array { elem, nelems } if is_count(btf, *elem) => {
                let name = if arrays == 1 {
                    m.name.clone()
                } else {
                    format!("{}_{member}", m.name)
                };
                out.push(MapPlan::Metric(MetricPlan {
                    name,
                    map: m.name.clone(),
                    value: Some(f.path.clone()),
                    kind: MetricKind::Histogram {
                        max: u64::from(nelems.saturating_sub(1)).min(63),
                    },
                    labels: labels.to_vec(),
                }));
            }
            _ if is_count(btf, f.ty) && !f.bitfield => {
                let mut kind = guess_kind(&member);
                if kind == MetricKind::Counter {
                    kind = guess_kind(&m.name);
                }
                let mut name = format!("{}_{member}", m.name.trim_end_matches("_total"));
                if kind == MetricKind::Counter && !name.ends_with("_total") {
                    name.push_str("_total");
                }
                out.push(MapPlan::Metric(MetricPlan {
                    name,
                    map: m.name.clone(),
                    value: Some(f.path.clone()),
                    kind,
                    labels: labels.to_vec(),
                }));
            }
            _ => out.push(skipped(
                &format!("{}.{}", m.name, f.path),
                format!("value member of type {}, not a count", btf.describe(f.ty)),
            )),
        }
    }
    if out.is_empty() {
        out.push(skipped(
            &m.name,
            format!(
                "its values are {}, with no integer members",
                btf.describe(value)
            ),
        ));
    }
    out
}

fn guess_kind(map: &str) -> MetricKind {
    let gauge_words = [
        "inflight",
        "in_flight",
        "current",
        "active",
        "queue",
        "depth",
        "usage",
        "_now",
        "running",
        "pending",
        "open",
    ];
    if !map.ends_with("_total") && gauge_words.iter().any(|w| map.contains(w)) {
        MetricKind::Gauge
    } else {
        MetricKind::Counter
    }
}

fn scalar_label(btf: &Btf, id: TypeId, m: &MapInfo) -> Vec<LabelPlan> {
    let name = if m.map_type == MapType::Array {
        "index"
    } else {
        "key"
    };
    let (decoders, big) = decoders_for(btf, id, name);
    vec![LabelPlan {
        name: name.into(),
        field: None,
        size: None,
        decoders,
        big_endian: big,
        comment: btf.describe(id),
    }]
}

/// Labels for the leaf members of a key struct: nested structs are
/// flattened, and of a union only its first member is read.
fn struct_labels(btf: &Btf, all: &[Field]) -> Vec<LabelPlan> {
    let mut out: Vec<LabelPlan> = Vec::new();
    let mut covered_to = 0usize;
    for f in all {
        let composite = matches!(
            btf.resolve(f.ty).map(|(_, t)| &t.kind),
            Some(Kind::Struct { .. } | Kind::Union { .. })
        );
        if composite || f.bitfield || f.size == 0 {
            continue;
        }
        // A later member of a union overlaps what was already read.
        if f.offset < covered_to {
            continue;
        }
        covered_to = f.offset.saturating_add(f.size);
        let leaf = f.path.rsplit('.').next().unwrap_or(&f.path);
        let mut name = sanitize(&f.path);
        if matches!(name.as_str(), "le" | "quantile" | "cpu") || name.starts_with("__") {
            name = format!("key_{}", name.trim_start_matches('_'));
        }
        while out.iter().any(|l| l.name == name) {
            name.push('_');
        }
        let (decoders, big) = decoders_for(btf, f.ty, leaf);
        out.push(LabelPlan {
            field: (name != f.path).then(|| f.path.clone()),
            name,
            size: None,
            decoders,
            big_endian: big,
            comment: format!("{} at offset {}", btf.describe(f.ty), f.offset),
        });
    }
    out
}

fn sanitize(path: &str) -> String {
    let mut s: String = path
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) || s.is_empty() {
        s.insert(0, '_');
    }
    s
}

/// Decoders for a member, from its type and name: char arrays are strings,
/// other arrays hex, and integers get the decoder whose registry entry
/// suits the member's name and size (after `uint` where it reads the
/// number `uint` makes, as in the reference), else `uint`.
fn decoders_for(btf: &Btf, ty: TypeId, name: &str) -> (Vec<String>, bool) {
    let v = |d: &[&str]| d.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let size = btf.size_of(ty).unwrap_or(0);
    let typedef = btf.typedef_name(ty).unwrap_or("");
    let big = typedef.starts_with("__be");
    let lower = name.to_ascii_lowercase();
    let resolved = btf.resolve(ty).map(|(_, t)| t.kind.clone());
    if let Some(Kind::Array { elem, .. }) = &resolved {
        let char_elem = matches!(
            btf.resolve(*elem).map(|(_, t)| &t.kind),
            Some(Kind::Int { char: true, .. })
        ) || btf.describe(*elem) == "char";
        if char_elem {
            return (v(&["string"]), false);
        }
        // An address array (`u8 saddr[16]`) is the one raw-bytes guess for
        // arrays.
        return match registry::guess(&lower, size as usize) {
            Some(e) if e.name == "inet_ip" => (v(&["inet_ip"]), false),
            _ => (v(&["hex"]), false),
        };
    }
    if !matches!(resolved, Some(Kind::Int { .. } | Kind::Enum { .. })) {
        return (v(&["hex"]), false);
    }
    // The decoders' own entries say which members they suit.
    let d = if typedef == "dev_t" {
        v(&["majorminor"])
    } else {
        match registry::guess(&lower, size as usize) {
            Some(e) if e.guess.after_uint => v(&["uint", e.name]),
            Some(e) => v(&[e.name]),
            None => v(&["uint"]),
        }
    };
    let big = big && d.len() == 1 && d[0] == "uint";
    (d, big)
}

fn help_of(map: &str) -> String {
    let words = map.trim_end_matches("_total").replace('_', " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => map.to_string(),
    }
}

/// The config, as YAML text.
/// `object_key` is the config's `object:` value; `described` what the user
/// asked for, for the header.
/// `alternatives` are the object's `programs.one_of` groups where they are
/// known (a built-in object's shipped config says them).
pub fn render(
    object_key: &str,
    described: &str,
    plans: &[MapPlan],
    alternatives: &[Vec<String>],
) -> String {
    let mut y = String::new();
    let _ = writeln!(
        y,
        "# Written by `ebpf-exporter describe {described}`: a starting point. Check each\n\
         # metric's type and help, and each label's decoders, against what the\n\
         # program stores. Labels have no sizes: they bind to the key's members\n\
         # in the object's BTF when the config loads."
    );
    let _ = writeln!(y, "object: {}", yaml_str(object_key));
    let metrics: Vec<&MetricPlan> = plans
        .iter()
        .filter_map(|p| match p {
            MapPlan::Metric(m) => Some(m),
            MapPlan::Skipped { .. } => None,
        })
        .collect();
    y.push_str("metrics:\n");
    for (section, want) in [("counters", 0), ("gauges", 1), ("histograms", 2)] {
        let of: Vec<&&MetricPlan> = metrics
            .iter()
            .filter(|m| {
                want == match m.kind {
                    MetricKind::Counter => 0,
                    MetricKind::Gauge => 1,
                    MetricKind::Histogram { .. } => 2,
                }
            })
            .collect();
        if of.is_empty() {
            continue;
        }
        let _ = writeln!(y, "  {section}:");
        for m in of {
            let _ = writeln!(y, "    - name: {}", m.name);
            let _ = writeln!(y, "      help: {}", yaml_str(&help_of(&m.name)));
            if m.name != m.map {
                let _ = writeln!(y, "      map: {}", m.map);
            }
            if let Some(v) = &m.value {
                let _ = writeln!(y, "      value: {v}");
            }
            if let MetricKind::Histogram { max } = m.kind {
                let _ = writeln!(
                    y,
                    "      # {}; check the range and the unit\n      # (bucket_multiplier) against the program.",
                    if m.value.is_some() {
                        "Bucket i is element i of the value's array"
                    } else {
                        "The bucket is the last label"
                    }
                );
                let _ = writeln!(
                    y,
                    "      bucket_type: exp2\n      bucket_min: 0\n      bucket_max: {max}"
                );
            }
            if m.labels.is_empty() {
                continue;
            }
            y.push_str("      labels:\n");
            for l in &m.labels {
                let _ = writeln!(y, "        - name: {}  # {}", l.name, l.comment);
                if let Some(f) = &l.field {
                    let _ = writeln!(y, "          field: {f}");
                }
                if let Some(size) = l.size {
                    let _ = writeln!(y, "          size: {size}");
                }
                y.push_str("          decoders:\n");
                for d in &l.decoders {
                    let _ = writeln!(y, "            - name: {d}");
                    if d == "uint" && l.big_endian {
                        y.push_str("              byte_order: big\n");
                    }
                }
            }
        }
    }
    if !alternatives.is_empty() {
        y.push_str(
            "# Of each group, the first program the kernel loads and attaches runs\n\
             # (as the shipped config of this object has them).\n",
        );
        y.push_str("programs:\n  one_of:\n");
        for group in alternatives {
            let _ = writeln!(y, "    - [{}]", group.join(", "));
        }
    }
    let skipped: Vec<(&str, &str)> = plans
        .iter()
        .filter_map(|p| match p {
            MapPlan::Skipped { map, why } => Some((map.as_str(), why.as_str())),
            MapPlan::Metric(_) => None,
        })
        .collect();
    if !skipped.is_empty() {
        y.push_str("# Skipped:\n");
        for (map, why) in skipped {
            let _ = writeln!(y, "#   {map}: {why}");
        }
    }
    y
}

fn yaml_str(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || " _-./+()".contains(c))
        && !s.starts_with([' ', '-'])
        && !s.ends_with(' ');
    if plain {
        s.to_string()
    } else {
        format!("{s:?}")
    }
}
