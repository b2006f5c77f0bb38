//! `ebpf-exporter describe OBJECT`: a starter config from an object's BTF.
//!
//! Every map that looks like a metric (a hash or array of u64 values)
//! becomes a counter, gauge or histogram whose labels are its key's
//! members, with no sizes: they bind to the members at load. Decoders are
//! guessed from member types and names. What is skipped is listed, with
//! why. The object is opened, never loaded, so this needs no privileges.

use std::fmt::Write;

use libbpf_rs::MapType;

use crate::config::specs::{exposed_names, Family};
use crate::decode::registry;
use crate::metrics::layout::{fields, Field};
use crate::object::btf::{Btf, Kind, ObjectTypes, TypeId};
use crate::object::line_info::LineIndex;
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
    /// Set when it reads a global variable (`map` is then its name).
    pub global: bool,
    /// For times (slot histograms, and counts or gauges named as times):
    /// the multiplier to seconds, and why that unit.
    pub unit: Option<(&'static str, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    /// Buckets 0..=max, laid out as `slots` says.
    Histogram {
        max: u64,
        slots: Slots,
    },
}

/// Where a histogram's buckets sit, which decides its bucket type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slots {
    /// The key's last member is the bucket: `exp2`, as in the reference.
    KeyExp2,
    /// An array filled at `slots[log2(v)]`, a floor log2, as libbpf-tools
    /// fill most of theirs: slot i holds [2^i, 2^(i+1)), so `exp2floor`.
    Log2Floor,
    /// An array filled at `slots[v]` (runqlen's queue lengths): `linear`.
    Linear,
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

/// What `describe` found in an object.
#[derive(Debug, Clone, Default)]
pub struct Described {
    pub plans: Vec<MapPlan>,
    /// Pairs of programs for one hook (`tp_btf/X` and `raw_tp/X`, `fentry/F`
    /// and `kprobe/F`), whose loader runs one: the preferred one first.
    pub twins: Vec<Vec<String>>,
    /// `.rodata` globals a loader sets (`targ_*` switches): name, C type,
    /// and the value the object holds.
    pub constants: Vec<(String, String, String)>,
    /// Programs in a bare `SEC("perf_event")`, whose loader opens the
    /// events: the config must say which.
    pub perf_events: Vec<String>,
    /// Maps the object leaves for its loader to size (max_entries 0, and
    /// for stack maps value_size 0): name, type, and whether the value
    /// size is open too.
    pub unsized_maps: Vec<(String, MapType, bool)>,
}

/// Opens `bytes` (without loading) as object `name`, and plans a config for
/// each map, with the metric names prefixed by the object's name (unless a
/// map's name already starts with it) so that configs of several objects
/// can run side by side. The name also makes libbpf's names for the
/// global-variable maps the same every run.
pub fn describe(name: &str, bytes: &[u8]) -> Result<Described, String> {
    let mut builder = libbpf_rs::ObjectBuilder::default();
    // A name with a NUL cannot come from a file name or a built-in one.
    let _ = builder.name(name);
    let object = builder
        .open_memory(bytes)
        .map_err(|e| format!("cannot open the object: {e}"))?;
    let types = ObjectTypes::of_open(&object);
    let mut plans = plan_maps(&object, types.as_ref());
    let prefix = metric_prefix(name);
    for p in &mut plans {
        if let MapPlan::Metric(m) = p {
            if !m.name.starts_with(&prefix) && format!("{}_", m.name) != prefix {
                m.name = format!("{prefix}{}", m.name);
            }
        }
    }
    let sections: Vec<(String, String)> = object
        .progs()
        .map(|p| {
            (
                p.name().to_string_lossy().into_owned(),
                p.section().to_string_lossy().into_owned(),
            )
        })
        .collect();
    let constants = match &types {
        Some(types) => rodata_constants(&object, &types.btf),
        None => Vec::new(),
    };
    if let Some(types) = &types {
        for mut g in global_plans(&types.btf) {
            if let MapPlan::Metric(m) = &mut g {
                m.name = format!("{prefix}{}", m.name);
            }
            plans.push(g);
        }
    }
    // Slot arrays are filled at a floor log2 unless the object's source,
    // where it has some, never takes one; times take the unit the
    // object's switches give.
    let lines = LineIndex::of_object(bytes);
    let linear_slots = lines.has_source() && !takes_log2(&lines);
    let switches = slot_unit(&constants);
    for p in &mut plans {
        let MapPlan::Metric(m) = p else {
            continue;
        };
        match m.kind {
            MetricKind::Histogram {
                max,
                slots: Slots::Log2Floor,
            } => {
                if linear_slots {
                    m.kind = MetricKind::Histogram {
                        max,
                        slots: Slots::Linear,
                    };
                } else if let Some((multiplier, why)) = &switches {
                    if !m.name.ends_with("_seconds") {
                        m.name.push_str("_seconds");
                    }
                    m.unit = Some((multiplier, why.clone()));
                }
            }
            MetricKind::Histogram { .. } => {}
            MetricKind::Counter | MetricKind::Gauge => in_seconds(m, switches.as_ref()),
        }
    }
    avoid_clashes(&mut plans);
    Ok(Described {
        plans,
        twins: twins(&sections),
        constants,
        perf_events: sections
            .iter()
            .filter(|(_, s)| s == "perf_event")
            .map(|(n, _)| n.clone())
            .collect(),
        unsized_maps: object
            .maps()
            // Storage maps and perf event arrays take 0 by design.
            .filter(|m| {
                !m.name().to_string_lossy().contains('.')
                    && m.max_entries() == 0
                    && matches!(
                        m.map_type(),
                        MapType::Hash
                            | MapType::Array
                            | MapType::PercpuHash
                            | MapType::PercpuArray
                            | MapType::LruHash
                            | MapType::LruPercpuHash
                            | MapType::StackTrace
                    )
            })
            .map(|m| {
                (
                    m.name().to_string_lossy().into_owned(),
                    m.map_type(),
                    m.value_size() == 0,
                )
            })
            .collect(),
    })
}

/// The unit of an object's slot histograms of times, from the switches its
/// loader offers: libbpf-tools that take `-m` (`targ_ms`, `in_ms`) or
/// `-N` (`targ_ns`) count microseconds unless told otherwise, and
/// funclatency's `units` is 0 for nanoseconds. Objects with none of
/// these (bitesize's KiB, runqlen's lengths) get no unit.
fn slot_unit(constants: &[(String, String, String)]) -> Option<(&'static str, String)> {
    let value = |name: &str| {
        constants
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, v)| v.as_str())
    };
    for switch in ["targ_ms", "in_ms", "targ_ns"] {
        if value(switch) == Some("false") {
            return Some((
                "0.000001",
                format!("Microseconds, as the object counts with {switch} left false."),
            ));
        }
    }
    if value("units") == Some("0") {
        return Some((
            "0.000000001",
            "Nanoseconds, as the object counts with units left 0.".to_string(),
        ));
    }
    None
}

/// Whether the object's code takes a log2: a call the compiler kept on
/// its own line, or the body of libbpf-tools' `log2()` (bits.bpf.h),
/// inlined, whose lines are all that is left of the call where it was
/// one expression of a line (`slot = log2l(delta);` leaves no line).
fn takes_log2(lines: &LineIndex) -> bool {
    lines.any(|file, text| {
        text.contains("log2") || file.ends_with("bits.bpf.h") || text.contains("0xFFFF) << 4")
    })
}

/// Renames a count or gauge of time to seconds and sets its multiplier,
/// when its member's name gives the unit (`_ns`, `_us`, `_ms`), or names a
/// time (`time`, `total_time`, `delta`) whose unit the object's switches
/// give (`switches`, from `slot_unit`). Names that say nothing of time are
/// left alone: a guessed unit would be a wrong number with no warning.
fn in_seconds(m: &mut MetricPlan, switches: Option<&(&'static str, String)>) {
    if !matches!(m.kind, MetricKind::Counter | MetricKind::Gauge) || m.unit.is_some() {
        return;
    }
    let source = m.value.as_deref().unwrap_or(&m.map);
    let member = source
        .rsplit('.')
        .next()
        .unwrap_or(source)
        .to_ascii_lowercase();
    let suffixed = [
        ("_ns", "0.000000001", "nanoseconds"),
        ("_us", "0.000001", "microseconds"),
        ("_ms", "0.001", "milliseconds"),
    ]
    .into_iter()
    .find(|(suffix, _, _)| member.ends_with(suffix));
    let (multiplier, why, suffix) = match suffixed {
        Some((suffix, multiplier, words)) => (
            multiplier,
            format!("{member} counts {words}, as its name ends in {suffix}."),
            Some(suffix),
        ),
        None if member == "time" || member.ends_with("_time") || member == "delta" => {
            let Some((multiplier, why)) = switches else {
                return;
            };
            (*multiplier, why.clone(), None)
        }
        None => return,
    };
    let counter = m.kind == MetricKind::Counter;
    let mut base = m.name.trim_end_matches("_total").to_string();
    if let Some(suffix) = suffix {
        if let Some(stripped) = base.strip_suffix(suffix) {
            base = stripped.to_string();
        }
    }
    if !base.ends_with("_seconds") {
        base.push_str("_seconds");
    }
    m.name = if counter { base + "_total" } else { base };
    m.unit = Some((multiplier, why));
}

/// Metrics for the results programs keep in global variables (`.bss`,
/// `.data`), as runqlen, softirqs, vfsstat and cachestat do: counts, arrays
/// of counts (labelled by index), and structs with counts or a `slots`
/// array.
/// Arrays of histograms at most this long are labelled by index.
const FEW_ELEMENTS: u32 = 16;

fn global_plans(btf: &Btf) -> Vec<MapPlan> {
    let mut out = Vec::new();
    for g in btf.globals() {
        let data = g.section == ".bss"
            || g.section == ".data"
            || g.section.starts_with(".bss.")
            || g.section.starts_with(".data.");
        if !data || g.name.contains('.') || g.is_static {
            continue;
        }
        let plan = |name: String, value: Option<String>, kind, labels: Vec<LabelPlan>| {
            MapPlan::Metric(MetricPlan {
                name,
                map: g.name.clone(),
                value,
                kind,
                labels,
                global: true,
                unit: None,
            })
        };
        let index = || LabelPlan {
            name: "index".into(),
            field: None,
            size: None,
            decoders: vec!["uint".into()],
            big_endian: false,
            comment: "the element's index".into(),
        };
        let resolved = btf.resolve(g.ty).map(|(_, t)| t.kind.clone());
        let (elem, array) = match resolved {
            Some(Kind::Array { elem, nelems }) if nelems > 0 => (elem, true),
            _ => (g.ty, false),
        };
        let elements = match resolved {
            Some(Kind::Array { nelems, .. }) => nelems,
            _ => 1,
        };
        if is_count(btf, elem) {
            // `u32 hist[MAX_SLOTS]` (funclatency): slots, filled as
            // libbpf-tools fill them.
            if array && (g.name.contains("hist") || g.name.contains("slots")) {
                out.push(plan(
                    g.name.clone(),
                    None,
                    MetricKind::Histogram {
                        max: u64::from(elements.saturating_sub(1)).min(63),
                        slots: Slots::Log2Floor,
                    },
                    vec![LabelPlan {
                        name: "slot".into(),
                        comment: "the element's index: the bucket".into(),
                        ..index()
                    }],
                ));
                continue;
            }
            let kind = if is_signed(btf, elem) {
                MetricKind::Gauge
            } else {
                guess_kind(&g.name)
            };
            let name = match kind {
                MetricKind::Counter if !(g.name.ends_with("_total") || g.name == "total") => {
                    format!("{}_total", g.name)
                }
                _ => g.name.clone(),
            };
            out.push(plan(
                name,
                None,
                kind,
                if array { vec![index()] } else { Vec::new() },
            ));
            continue;
        }
        let members = fields(btf, elem);
        if members.is_empty() {
            out.push(skipped(
                &g.name,
                format!(
                    "a global of type {}, with no counts to read",
                    btf.describe(g.ty)
                ),
            ));
            continue;
        }
        let before = out.len();
        for f in members.iter().filter(|f| f.depth == 0) {
            let member = sanitize(&f.path);
            match btf.resolve(f.ty).map(|(_, t)| &t.kind) {
                Some(Kind::Array { elem, nelems }) if is_count(btf, *elem) => out.push(plan(
                    format!("{}_{member}", g.name),
                    Some(f.path.clone()),
                    MetricKind::Histogram {
                        max: u64::from(nelems.saturating_sub(1)).min(63),
                        slots: Slots::Log2Floor,
                    },
                    // A few elements are kinds of event (fsdist's read,
                    // write, open...), labelled by index. Many are one per
                    // CPU or group (runqlen's), most of them empty unless
                    // the object's constants ask for them: summed.
                    if array && elements <= FEW_ELEMENTS {
                        vec![index()]
                    } else {
                        Vec::new()
                    },
                )),
                _ if identifier_like(&member) => {}
                _ if is_count(btf, f.ty) && !f.bitfield => out.push(plan(
                    counter_name(format!("{}_{member}", g.name)),
                    Some(f.path.clone()),
                    MetricKind::Counter,
                    if array { vec![index()] } else { Vec::new() },
                )),
                _ => {}
            }
        }
        if out.len() == before {
            out.push(skipped(
                &g.name,
                format!(
                    "a global of type {}, with no counts to read",
                    btf.describe(g.ty)
                ),
            ));
        }
    }
    out
}

/// Names a metric takes in any exposition format, as the loader checks.
fn exposed(m: &MetricPlan) -> Vec<String> {
    let family = match m.kind {
        MetricKind::Counter => Family::Counter,
        MetricKind::Gauge => Family::Gauge,
        MetricKind::Histogram { .. } => Family::Histogram,
    };
    exposed_names(family, &m.name)
}

/// Renames a histogram whose names another metric takes (a `count`
/// member's counter beside a `slots` histogram of the same map, as
/// hardirqs has), so the config loads in every format.
fn avoid_clashes(plans: &mut [MapPlan]) {
    let others: Vec<String> = plans
        .iter()
        .filter_map(|p| match p {
            MapPlan::Metric(m) if !matches!(m.kind, MetricKind::Histogram { .. }) => {
                Some(exposed(m))
            }
            _ => None,
        })
        .flatten()
        .collect();
    for p in plans.iter_mut() {
        if let MapPlan::Metric(m) = p {
            if matches!(m.kind, MetricKind::Histogram { .. })
                && exposed(m).iter().any(|n| others.contains(n))
            {
                m.name.push_str("_hist");
            }
        }
    }
}

/// `hardirqs_` for object `hardirqs`; names that are not metric-name
/// characters become `_`.
fn metric_prefix(object: &str) -> String {
    format!("{}_", sanitize(object).trim_matches('_'))
}

/// Programs on one hook in two forms, as libbpf-tools ship them, grouped
/// with the one that needs less of the kernel last: `tp_btf/X` before
/// `raw_tp/X`, `fentry/F` before `kprobe/F`, `fexit/F` before
/// `kretprobe/F`. Loaded together, both would count every event.
pub fn twins(programs: &[(String, String)]) -> Vec<Vec<String>> {
    const PAIRS: [(&str, &str); 3] = [
        ("tp_btf/", "raw_tp/"),
        ("fentry/", "kprobe/"),
        ("fexit/", "kretprobe/"),
    ];
    let mut out = Vec::new();
    for (name, section) in programs {
        for (preferred, fallback) in PAIRS {
            let Some(hook) = section.strip_prefix(preferred) else {
                continue;
            };
            let twin = programs.iter().find(|(_, s)| {
                s.strip_prefix(fallback) == Some(hook)
                    || (fallback == "raw_tp/" && s.strip_prefix("raw_tracepoint/") == Some(hook))
            });
            if let Some((other, _)) = twin {
                out.push(vec![name.clone(), other.clone()]);
            }
        }
    }
    out
}

/// The object's `.rodata` globals with the values it holds: what its
/// loader would set through `constants:`.
fn rodata_constants(object: &libbpf_rs::OpenObject, btf: &Btf) -> Vec<(String, String, String)> {
    let data: Option<Vec<u8>> = object
        .maps()
        .find(|m| m.name().to_string_lossy().ends_with(".rodata"))
        .and_then(|m| m.initial_value().map(<[u8]>::to_vec));
    btf.globals()
        .into_iter()
        .filter(|g| g.section == ".rodata" && !g.name.contains('.') && !g.is_static)
        .map(|g| {
            let bytes = data
                .as_ref()
                .and_then(|d| d.get(g.offset as usize..(g.offset + g.size) as usize));
            let value = match (btf.resolve(g.ty).map(|(_, t)| &t.kind), bytes) {
                (Some(Kind::Int { bool: true, .. }), Some(b)) => {
                    (b.iter().any(|x| *x != 0)).to_string()
                }
                (Some(Kind::Int { signed, size, .. }), Some(b)) if b.len() <= 8 => {
                    let mut buf = [0u8; 8];
                    buf[..b.len()].copy_from_slice(b);
                    let raw = u64::from_le_bytes(buf);
                    if *signed {
                        let shift = 64 - 8 * (*size).min(8);
                        (((raw << shift) as i64) >> shift).to_string()
                    } else {
                        raw.to_string()
                    }
                }
                (Some(Kind::Enum { .. }), Some(b)) if b.len() <= 8 => {
                    let mut buf = [0u8; 8];
                    buf[..b.len()].copy_from_slice(b);
                    u64::from_le_bytes(buf).to_string()
                }
                _ => "…".to_string(),
            };
            (g.name, btf.describe(g.ty), value)
        })
        .collect()
}

/// A plan for each map of the opened object, with the maps' own names as
/// metric names.
fn plan_maps(object: &libbpf_rs::OpenObject, types: Option<&ObjectTypes>) -> Vec<MapPlan> {
    let mut plans = Vec::new();
    for map in object.maps() {
        let info = MapInfo {
            name: map.name().to_string_lossy().into_owned(),
            map_type: map.map_type(),
            key_size: map.key_size() as usize,
            value_size: map.value_size() as usize,
            max_entries: map.max_entries(),
        };
        plans.extend(plan_map(&info, types));
    }
    plans
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
            "a global-variable section: its variables are offered by name (global:)",
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
    if let Some(why) = in_flight_state(m, key, value) {
        return vec![skipped(&m.name, why)];
    }
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
        kind = MetricKind::Histogram {
            max: max.min(26),
            slots: Slots::KeyExp2,
        };
    }
    vec![MapPlan::Metric(MetricPlan {
        name: m.name.clone(),
        map: m.name.clone(),
        value: None,
        kind,
        labels,
        global: false,
        unit: None,
    })]
}

/// Whether the map holds in-flight state rather than counts: start
/// timestamps keyed by a request pointer or a thread, which a program
/// deletes when the matching end comes. Served as a counter it would put
/// kernel addresses on /metrics (a KASLR leak) and make a series per
/// request or thread.
fn in_flight_state(
    m: &MapInfo,
    key: Option<(&Btf, TypeId)>,
    value: Option<(&Btf, TypeId)>,
) -> Option<String> {
    let pointer_key = key.is_some_and(|(btf, id)| {
        matches!(
            btf.resolve(id).map(|(_, t)| &t.kind),
            Some(Kind::Ptr { .. })
        )
    });
    let name = m.name.to_ascii_lowercase();
    let timestamp_name = !name.ends_with("_total")
        && name.split('_').any(|w| {
            matches!(
                w,
                "start" | "starts" | "birth" | "ts" | "tss" | "timestamp" | "timestamps" | "issued"
            )
        });
    let scalar_value =
        value.is_none_or(|(btf, id)| fields(btf, id).is_empty()) && m.value_size == 8;
    // Kernel addresses stored as integers: `u64 lock_ptr`, `__u64 addr`.
    let address_member = key.is_some_and(|(btf, id)| {
        fields(btf, id).iter().any(|f| {
            let last = f.path.rsplit('.').next().unwrap_or(&f.path);
            f.size == 8 && (address_like(last))
        })
    });
    if pointer_key || address_member {
        return Some(
            "in-flight state keyed by kernel pointers: its keys would put kernel addresses on /metrics"
                .into(),
        );
    }
    if name.starts_with("in_") && m.map_type == MapType::Hash && m.key_size <= 8 {
        return Some(format!(
            "per-thread state: set while a thread is {}, not counts",
            name.replace('_', " ")
        ));
    }
    let timestamp_members = value.is_some_and(|(btf, id)| {
        let all = fields(btf, id);
        let named_start = all.iter().any(|f| {
            f.path
                .split(['.', '_'])
                .any(|w| matches!(w, "ts" | "start" | "timestamp"))
        }) && m
            .name
            .split('_')
            .any(|w| matches!(w, "start" | "starts" | "birth"));
        // Times things happened (`try_at`, `acq_at`, `rel_at`): one is a
        // date, two or more are the stages of something under way.
        let at = all.iter().filter(|f| f.path.ends_with("_at")).count();
        !all.is_empty() && (named_start || at >= 2)
    });
    if timestamp_members {
        return Some(
            "in-flight state: start timestamps (and what the program keeps beside them until the matching end), not counts"
                .into(),
        );
    }
    if timestamp_name && scalar_value {
        return Some(
            "in-flight state: start timestamps a program deletes at the matching end, not counts"
                .into(),
        );
    }
    None
}

/// `_total` once: `hist.total` is `hist_total`.
fn counter_name(base: String) -> String {
    if base.ends_with("_total") {
        base
    } else {
        base + "_total"
    }
}

/// A member that holds a kernel address as an integer, by its name.
fn address_like(member: &str) -> bool {
    member.ends_with("_ptr")
        || member.ends_with("_addr")
        || matches!(member, "ptr" | "addr" | "address" | "ip" | "ips")
}

/// A value member that names a thing (a tid, a stack, an address) rather
/// than measuring it: no sum, maximum or last value of it means anything,
/// and an address would leak the kernel's layout.
fn identifier_like(member: &str) -> bool {
    address_like(member) || member.ends_with("_id") || member == "id"
}

/// Signed counts go down as well as up (cachestat's `total` is increments
/// minus decrements): a gauge is the honest type.
fn is_signed(btf: &Btf, id: TypeId) -> bool {
    matches!(
        btf.resolve(id).map(|(_, t)| &t.kind),
        Some(Kind::Int { signed: true, .. })
    )
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
            Kind::Array { .. } if identifier_like(&member) => out.push(skipped(
                &format!("{}.{}", m.name, f.path),
                "addresses or identifiers, not a histogram",
            )),
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
                        slots: Slots::Log2Floor,
                    },
                    labels: labels.to_vec(),
                    global: false,
                    unit: None,
                }));
            }
            _ if identifier_like(&member) => out.push(skipped(
                &format!("{}.{}", m.name, f.path),
                "an identifier or address, not a measure",
            )),
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
                    global: false,
                    unit: None,
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
        "max",
        "min",
        "last",
        "peak",
        "pos",
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
    let signed = matches!(
        resolved,
        Some(Kind::Int {
            signed: true,
            char: false,
            ..
        })
    );
    let d = if typedef == "dev_t" {
        v(&["kdev"])
    } else {
        match registry::guess(&lower, size as usize) {
            Some(e) if e.guess.after_uint => v(&["uint", e.name]),
            Some(e) => v(&[e.name]),
            None if signed => v(&["int"]),
            None => v(&["uint"]),
        }
    };
    let big = big && d.len() == 1 && d[0] == "uint";
    (d, big)
}

fn help_of(map: &str) -> String {
    let base = map.trim_end_matches("_total");
    let (base, unit) = match base.strip_suffix("_seconds") {
        Some(b) => (b, ", in seconds"),
        None => (base, ""),
    };
    let words = base.replace('_', " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).chain(unit.chars()).collect(),
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
    found: &Described,
    alternatives: &[Vec<String>],
) -> String {
    let plans = &found.plans[..];
    let mut y = String::new();
    let _ = writeln!(
        y,
        "# Written by `ebpf-exporter describe {described}`: a starting point. Check each\n\
         # metric's type and help, and each label's decoders, against what the\n\
         # program stores. Labels have no sizes: they bind to the key's members\n\
         # in the object's BTF when the config loads."
    );
    if object_key.ends_with(".o") {
        y.push_str(
            "# `object:` is relative to the config's directory: save this config\n\
             # beside the object.\n",
        );
    }
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
            if m.global {
                let _ = writeln!(y, "      global: {}", m.map);
            } else if m.name != m.map {
                let _ = writeln!(y, "      map: {}", m.map);
            }
            if let Some(v) = &m.value {
                let _ = writeln!(y, "      value: {v}");
            }
            if let MetricKind::Histogram { max, slots } = m.kind {
                let (comment, bucket_type) = match slots {
                    Slots::Log2Floor => (
                        "Bucket i is element i of the array, filled as libbpf-tools\n      \
                         # fill slots[log2(v)]: slot i holds [2^i, 2^(i+1)), hence exp2floor.\n      \
                         # Such arrays keep no total, so _sum reads 0. Check the range and the\n      \
                         # unit (bucket_multiplier) against the program.",
                        "exp2floor",
                    ),
                    Slots::Linear => (
                        "Bucket i is element i of the array, filled at slots[v] (the\n      \
                         # object's source takes no log2): slot i counts the value i, and the\n      \
                         # last slot usually everything above. Such arrays keep no total,\n      \
                         # so _sum reads 0. Check the range against the program.",
                        "linear",
                    ),
                    Slots::KeyExp2 => (
                        "The bucket is the last label; check the range and the unit\n      \
                         # (bucket_multiplier) against the program.",
                        "exp2",
                    ),
                };
                let _ = writeln!(y, "      # {comment}");
                let _ = writeln!(
                    y,
                    "      bucket_type: {bucket_type}\n      bucket_min: 0\n      bucket_max: {max}"
                );
                if let Some((multiplier, why)) = &m.unit {
                    let _ = writeln!(y, "      # {why}");
                    let _ = writeln!(y, "      bucket_multiplier: {multiplier}");
                }
            }
            if !matches!(m.kind, MetricKind::Histogram { .. }) {
                if let Some((multiplier, why)) = &m.unit {
                    let _ = writeln!(y, "      # {why}");
                    let _ = writeln!(y, "      value_multiplier: {multiplier}");
                }
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
    let groups = if alternatives.is_empty() {
        &found.twins[..]
    } else {
        alternatives
    };
    if !groups.is_empty() || !found.perf_events.is_empty() {
        y.push_str("programs:\n");
    }
    if !groups.is_empty() {
        y.push_str(if alternatives.is_empty() {
            "  # Programs in pairs for one hook, as the object's own loader picks one:\n\
             \x20 # loaded together, both would count every event. Of each group, the\n\
             \x20 # first the kernel loads and attaches runs.\n"
        } else {
            "  # Of each group, the first program the kernel loads and attaches runs\n\
             \x20 # (as the shipped config of this object has them).\n"
        });
        y.push_str("  one_of:\n");
        for group in groups {
            let _ = writeln!(y, "    - [{}]", group.join(", "));
        }
    }
    if !found.perf_events.is_empty() {
        y.push_str(
            "  # Programs in a bare SEC(\"perf_event\"): the events their loader would\n\
             \x20 # open. The CPU clock (type=1, config=0) at 99 Hz on every CPU suits a\n\
             \x20 # sampler; one named for hardware events (cache misses, cycles) needs\n\
             \x20 # type=0 or 3 and that event's config, and is left for you to set.\n\
             \x20 attach:\n",
        );
        for name in &found.perf_events {
            let lower = name.to_ascii_lowercase();
            let hardware = ["cache", "miss", "ref", "cycle", "instr", "branch", "llc"]
                .iter()
                .any(|w| lower.contains(w));
            let _ = writeln!(
                y,
                "    {}{name}: perf_event/type=1,config=0,frequency=99",
                if hardware { "# " } else { "" }
            );
        }
    }
    if !found.unsized_maps.is_empty() {
        y.push_str(
            "# Maps the object leaves for its loader to size; these are libbpf-tools'\n\
             # defaults (10240 entries; 127 frames of 8 bytes for a stack map).\nmaps:\n",
        );
        for (name, map_type, value_open) in &found.unsized_maps {
            let value = if *value_open && *map_type == MapType::StackTrace {
                ", value_size: 1016"
            } else {
                ""
            };
            let _ = writeln!(y, "  {name}: {{max_entries: 10240{value}}}");
        }
    }
    if !found.constants.is_empty() {
        y.push_str(
            "# The object's constants, as its loader would set them (shown with the\n\
             # values the object holds); uncomment to change one.\n# constants:\n",
        );
        for (name, ty, value) in &found.constants {
            let _ = writeln!(y, "#   {name}: {value}  # {ty}");
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

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(name: &str, value: Option<&str>, kind: MetricKind) -> MetricPlan {
        MetricPlan {
            name: name.into(),
            // A global's name, when no member is read.
            map: value.map_or_else(|| name.trim_end_matches("_total").into(), |_| "data".into()),
            value: value.map(Into::into),
            kind,
            labels: Vec::new(),
            global: false,
            unit: None,
        }
    }

    fn converted(
        mut m: MetricPlan,
        switches: Option<&(&'static str, String)>,
    ) -> (String, Option<&'static str>) {
        in_seconds(&mut m, switches);
        (m.name, m.unit.map(|(multiplier, _)| multiplier))
    }

    #[test]
    fn times_named_with_their_unit_are_served_in_seconds() {
        assert_eq!(
            converted(
                plan(
                    "syscount_data_total_ns_total",
                    Some("total_ns"),
                    MetricKind::Counter
                ),
                None
            ),
            (
                "syscount_data_total_seconds_total".into(),
                Some("0.000000001")
            )
        );
        assert_eq!(
            converted(
                plan("x_max_lat_us", Some("stat.max_lat_us"), MetricKind::Gauge),
                None
            ),
            ("x_max_lat_seconds".into(), Some("0.000001"))
        );
        assert_eq!(
            converted(plan("wait_ms_total", None, MetricKind::Counter), None),
            ("wait_seconds_total".into(), Some("0.001"))
        );
    }

    #[test]
    fn a_bare_time_takes_its_unit_from_the_switches_or_stays_as_it_is() {
        let switches = ("0.000001", "Microseconds.".to_string());
        assert_eq!(
            converted(
                plan("time_total", None, MetricKind::Counter),
                Some(&switches)
            ),
            ("time_seconds_total".into(), Some("0.000001"))
        );
        // klockstat's times say no unit, and no switch gives one.
        assert_eq!(
            converted(
                plan(
                    "k_acq_total_time_total",
                    Some("acq_total_time"),
                    MetricKind::Counter
                ),
                None
            ),
            ("k_acq_total_time_total".into(), None)
        );
        // Counts are not times, whatever the switches say.
        assert_eq!(
            converted(
                plan("x_count_total", Some("count"), MetricKind::Counter),
                Some(&switches)
            ),
            ("x_count_total".into(), None)
        );
        // Histograms take their unit as bucket_multiplier, elsewhere.
        let hist = MetricKind::Histogram {
            max: 3,
            slots: Slots::Log2Floor,
        };
        assert_eq!(
            converted(plan("x_lat_us", Some("lat_us"), hist), None),
            ("x_lat_us".into(), None)
        );
    }
}
