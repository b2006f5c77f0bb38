//! A config's `probe:` metrics, turned into what the common load path
//! takes. Each probe's field names are resolved at its hook, its key laid
//! out (integers at their natural alignment, text bytewise, a histogram's
//! u32 bucket last), and its spec built as the program's own struct.

use std::collections::BTreeMap;

use crate::config::error::ConfigError;
use crate::config::load::Config;
use crate::config::model::{DecoderSpec, Label, MapSettings, ProbeFilter, ProbeSpec};
use crate::config::specs::PROBE_MAPS;
use crate::host::tracefs::FieldKind;

use super::fields::{fields_of, parse_hook, resolve, slot_programs, Field, Hook, UserArgs};
use super::skel::types::{ee_probe_op as Op, ee_probe_value as ValueKind};
use super::skel::{ee_probe_field, ee_probe_filter, ee_probe_spec, spec_bytes};

/// Bytes of a probe's labels in its key (`EE_PROBE_LABEL_MAX`); a
/// histogram's bucket comes after them, within `EE_PROBE_KEY_MAX`.
pub const KEY_MAX: u32 = 64;

// The program's keys (`EE_PROBE_KEY_MAX`, the in-flight record's copy of
// one) hold the most labels and a u32 bucket after them, so a laid-out
// key is never refused for its bucket.
const _: () = assert!(
    std::mem::size_of::<super::skel::types::ee_probe_inflight>() >= 8 + KEY_MAX as usize + 4
);
/// Fields in a key and filters per probe (`EE_PROBE_FIELDS`,
/// `EE_PROBE_FILTERS`).
pub const MAX_FIELDS: usize = 8;
pub const MAX_FILTERS: usize = 4;
/// Entries of a probe's map when `max_entries` is left out.
pub const DEFAULT_ENTRIES: u32 = 10240;
/// The program's map of cgroups that `cgroup:` filters count in, and its
/// bound: cgroups a host has at once, with room to spare.
pub const CGROUPS_MAP: &str = "cgroups";
const CGROUPS_ENTRIES: u32 = 16384;

/// What the load path needs for a config's probes.
#[derive(Debug)]
pub struct Planned {
    /// The config, each probe metric reading its slot's map, with labels
    /// sized and laid out over the key (and a histogram's bucket label),
    /// and the programs and maps below as its `programs:` and `maps:`.
    pub config: Config,
    /// `spec0`.. of the used slots, as the program's struct.
    pub globals: Vec<(String, Vec<u8>)>,
    /// Probes refused (a field the hook lacks, a key too large, ...): their
    /// metrics' key paths and why. The config's other metrics run without
    /// them; their slots stay unused, so every other metric keeps its map.
    pub refused: Vec<(String, ConfigError)>,
    /// The in-flight maps of its latencies that pair through a hash (an
    /// LRU, which evicts when full): their fill is all that shows
    /// pressure, so the exporter reports it.
    pub inflight: Vec<String>,
}

/// One probe, planned: its spec, its labels laid out over its key, and
/// where it runs (a latency's start at `hook`, its end at `end`).
struct PlannedProbe {
    spec: ee_probe_spec,
    /// Its `cgroup:` filters' regexps, and the key of the first.
    cgroups: Option<(Vec<String>, String)>,
    labels: Vec<Label>,
    key_size: u32,
    hook: Hook,
    end: Option<Hook>,
}

/// What one probe metric is, for the planner.
enum Kind {
    Counter,
    Gauge,
    Histogram { max: u64, linear: bool },
}

pub fn plan(config: &Config) -> Result<Planned, ConfigError> {
    if config.spec.cgroup_id_map.is_some() {
        return Err(config.error(
            "cgroup_id_map",
            "cgroup_id_map fills a map of the config's object, and probes have none: filter a probe on cgroups with filter: [{cgroup: REGEXP}]",
        ));
    }
    let mut out = config.clone();
    // The cgroup regexps the config's probes filter on: one set, since
    // they share the program's one map of cgroup ids.
    let mut cgroups: Option<Vec<String>> = None;
    let mut globals = Vec::new();
    // Each used slot's programs, to their hooks, and its maps' sizes.
    let mut attach = BTreeMap::new();
    let mut maps = BTreeMap::new();
    let mut slot = 0usize;
    // The slot maps the config's specs read, in the order of the probes
    // below: both go counters, gauges, histograms.
    let slot_maps: Vec<&str> = config
        .specs()
        .filter(|s| s.probe.is_some())
        .map(|s| s.map)
        .collect();
    let metrics = &mut out.spec.metrics;
    let mut probes: Vec<(String, &ProbeSpec, &mut Vec<Label>, Kind)> = Vec::new();
    for (i, c) in metrics.counters.iter_mut().enumerate() {
        if let Some(p) = &c.probe {
            probes.push((
                format!("metrics.counters[{i}]"),
                p,
                &mut c.labels,
                Kind::Counter,
            ));
        }
    }
    for (i, c) in metrics.gauges.iter_mut().enumerate() {
        if let Some(p) = &c.probe {
            probes.push((
                format!("metrics.gauges[{i}]"),
                p,
                &mut c.labels,
                Kind::Gauge,
            ));
        }
    }
    for (i, h) in metrics.histograms.iter_mut().enumerate() {
        if let Some(p) = &h.probe {
            let linear = matches!(h.bucket_type, crate::config::model::BucketType::Linear);
            probes.push((
                format!("metrics.histograms[{i}]"),
                p,
                &mut h.labels,
                Kind::Histogram {
                    max: h.bucket_max,
                    linear,
                },
            ));
        }
    }
    let mut refused = Vec::new();
    let mut inflight = Vec::new();
    let planned = probes.len();
    for (at, probe, labels, kind) in probes {
        let Some(map) = slot_maps.get(slot).filter(|m| !m.is_empty()) else {
            return Err(config.error(
                &format!("{at}.probe"),
                format!("a config holds at most {} probes", PROBE_MAPS.len()),
            ));
        };
        let mut one = match plan_one(config, &at, probe, labels, &kind) {
            Ok(one) => one,
            Err(e) => {
                refused.push((at, e));
                slot += 1;
                continue;
            }
        };
        one.spec.percpu = u32::from(!matches!(kind, Kind::Gauge));
        if let Some((regexps, key)) = one.cgroups.take() {
            match &cgroups {
                Some(seen) if *seen != regexps => {
                    return Err(config.error(
                        &key,
                        format!(
                            "the probes of one config share one cgroup filter, and an earlier probe filters on {seen:?}: give this probe the same, or a config of its own"
                        ),
                    ))
                }
                _ => cgroups = Some(regexps),
            }
            one.spec.cgroup_filter = 1;
        }
        *labels = one.labels;
        globals.push((format!("spec{slot}"), spec_bytes(&one.spec)));
        let max_entries = Some(probe.max_entries.unwrap_or(DEFAULT_ENTRIES).max(1));
        match one.end {
            Some(end) => {
                attach.insert(one.hook.program(slot, true), one.hook.section());
                attach.insert(end.program(slot, false), end.section());
                // Task storage grows with the tasks it holds; the hash
                // is bounded by the probe's max_entries.
                if one.spec.task_pairing == 0 {
                    inflight.push(format!("inflight{slot}"));
                    maps.insert(
                        format!("inflight{slot}"),
                        MapSettings {
                            max_entries,
                            ..MapSettings::default()
                        },
                    );
                }
            }
            None => {
                attach.insert(one.hook.program(slot, false), one.hook.section());
            }
        }
        maps.insert(
            map.to_string(),
            MapSettings {
                max_entries,
                key_size: Some(one.key_size),
                ..MapSettings::default()
            },
        );
        slot += 1;
    }
    // Every program no slot uses stays unloaded.
    let exclude = (0..PROBE_MAPS.len())
        .flat_map(slot_programs)
        .filter(|program| !attach.contains_key(program))
        .collect();
    out.spec.programs = Some(crate::config::model::Programs {
        exclude,
        attach,
        ..Default::default()
    });
    if let Some(regexps) = cgroups {
        maps.insert(
            CGROUPS_MAP.to_string(),
            MapSettings {
                max_entries: Some(CGROUPS_ENTRIES),
                ..MapSettings::default()
            },
        );
        out.spec.cgroup_id_map = Some(crate::config::model::CgroupIdMap {
            name: CGROUPS_MAP.to_string(),
            map_type: crate::config::model::CgroupIdMapType::Hash,
            regexps,
        });
    }
    out.spec.maps = maps;
    if !refused.is_empty() && refused.len() == planned {
        // Nothing would run: the first refusal is the config's error.
        return Err(refused.swap_remove(0).1);
    }
    Ok(Planned {
        config: out,
        globals,
        refused,
        inflight,
    })
}

/// One probe: its spec, its labels laid out, and its key's size.
fn plan_one(
    config: &Config,
    at: &str,
    probe: &ProbeSpec,
    labels: &[Label],
    kind: &Kind,
) -> Result<PlannedProbe, ConfigError> {
    let err = |key: &str, m: String| config.error(&format!("{at}.{key}"), m);
    // A latency's labels and filters are read at its start.
    let (hook_text, hook_key) = match &probe.start {
        Some(start) => (start.hook.as_str(), "probe.start.hook"),
        None => (probe.hook.as_str(), "probe.hook"),
    };
    let hook = parse_hook(hook_text).map_err(|m| err(hook_key, m))?;
    let end_hook = match &probe.end {
        Some(end) => Some(parse_hook(&end.hook).map_err(|m| err("probe.end.hook", m))?),
        None => None,
    };
    let user_space = hook.user_space() || end_hook.as_ref().is_some_and(Hook::user_space);
    if !user_space && (!probe.args.is_empty() || probe.ret.is_some()) {
        return Err(err(
            if probe.args.is_empty() { "probe.ret" } else { "probe.args" },
            format!(
                "args and ret name and type a uprobe's, uretprobe's or USDT probe's arguments; {}'s come from {}",
                hook.section(),
                if matches!(hook, Hook::Tracepoint { .. }) { "its format file in tracefs" } else { "the kernel's BTF" }
            ),
        ));
    }
    for (i, a) in probe.args.iter().enumerate() {
        super::fields::user_type(&a.ty).map_err(|m| err(&format!("probe.args[{i}].type"), m))?;
    }
    if let Some(ty) = &probe.ret {
        super::fields::user_type(ty).map_err(|m| err("probe.ret", m))?;
    }
    let named: Vec<(String, String)> = probe
        .args
        .iter()
        .map(|a| (a.name.clone(), a.ty.clone()))
        .collect();
    let user = UserArgs {
        args: &named,
        ret: probe.ret.as_deref(),
    };
    let fields = fields_of(&hook, &user).map_err(|m| err(hook_key, m))?;
    let find = |name: &str, key: &str| -> Result<Field, ConfigError> {
        resolve(&hook, &fields, name).map_err(|m| err(key, m))
    };
    let mut spec = ee_probe_spec::default();

    if labels.len() > MAX_FIELDS {
        return Err(err(
            "labels",
            format!(
                "a probe's key holds at most {MAX_FIELDS} labels (a histogram's bucket besides); this metric has {}",
                labels.len()
            ),
        ));
    }
    // Lay the labels out over the key.
    let mut laid_out = Vec::with_capacity(labels.len() + 1);
    let mut cursor = 0u32;
    for (i, label) in labels.iter().enumerate() {
        let (name, key) = match &label.field {
            Some(f) => (f.as_str(), format!("labels[{i}].field")),
            None => (label.name.as_str(), format!("labels[{i}].name")),
        };
        let f = find(name, &key)?;
        // An address becomes a label only through `ksym`, which names the
        // kernel function it points at (a timer's or a work item's).
        let named = label.decoders.first().is_some_and(|d| d.name == "ksym");
        match f.kind {
            FieldKind::Pointer if !named => {
                return Err(err(
                    &key,
                    format!("{name} ({}) is a kernel address: as a label it would put the kernel's layout on /metrics; name it with the ksym decoder, or filter on it instead", f.what),
                ))
            }
            FieldKind::Array => {
                return Err(err(
                    &key,
                    format!("{name} ({}) is {}, which a key field cannot take whole", f.what, f.shape()),
                ))
            }
            _ => {}
        }
        let align = if f.is_text() { 1 } else { f.size.max(1) };
        let offset = cursor.div_ceil(align) * align;
        if offset + f.size > KEY_MAX {
            return Err(err(
                &format!("labels[{i}]"),
                format!(
                    "the key would need {} bytes with {name}; a probe's key holds {KEY_MAX}",
                    offset + f.size
                ),
            ));
        }
        pad_to(laid_out.last_mut(), cursor, offset);
        spec.fields[i] = field_spec(&f, offset);
        let mut l = label.clone();
        l.size = Some(f.size as usize);
        l.padding = None;
        l.field = None;
        l.offset = None;
        laid_out.push(l);
        cursor = offset + f.size;
    }
    if let Kind::Histogram { max, linear } = kind {
        // At most KEY_MAX + 4 bytes, which the program's key holds (the
        // assertion beside KEY_MAX).
        let offset = cursor.div_ceil(4) * 4;
        pad_to(laid_out.last_mut(), cursor, offset);
        laid_out.push(Label {
            name: "bucket".to_string(),
            size: Some(4),
            padding: None,
            field: None,
            decoders: vec![DecoderSpec::named("uint")],
            fold_unknown: false,
            offset: None,
        });
        spec.bucket_offset = offset;
        spec.bucket_max = *max as u32;
        spec.value_kind = if *linear {
            ValueKind::EE_PROBE_LINEAR
        } else {
            ValueKind::EE_PROBE_EXP2
        };
        spec.bucket_step = probe.step.unwrap_or(1).max(1);
        cursor = offset + 4;
    }
    spec.nfields = labels.len() as u32;
    let mut end_side = None;
    if let (Some(start), Some(end), Some(end_hook)) = (&probe.start, &probe.end, end_hook) {
        let end_fields = fields_of(&end_hook, &user).map_err(|m| err("probe.end.hook", m))?;
        // Whether every match names a task that task storage can hold.
        let mut tasks = start.matching.len() == 1;
        for (side, e, fields, hook) in [
            ("start", start, &fields, &hook),
            ("end", end, &end_fields, &end_hook),
        ] {
            for (i, name) in e.matching.iter().enumerate() {
                let key = format!("probe.{side}.match[{i}]");
                let f = resolve(hook, fields, name).map_err(|m| err(&key, m))?;
                tasks &= names_a_task(hook, &f);
                if !matches!(f.kind, FieldKind::Int | FieldKind::Pointer) {
                    return Err(err(
                        &key,
                        format!(
                            "{name} ({}) is not a number or an address, which a match needs",
                            f.what
                        ),
                    ));
                }
                let m = field_spec(&f, 8 * i as u32);
                if side == "start" {
                    spec.start_match[i] = m;
                } else {
                    spec.end_match[i] = m;
                }
            }
        }
        spec.nmatch = start.matching.len() as u32;
        spec.task_pairing = u32::from(tasks && task_storage());
        end_side = Some(end_hook);
        spec.latency_div = match probe.value.as_deref() {
            Some("latency_us") => 1_000,
            Some("latency_ms") => 1_000_000,
            Some("latency_s") => 1_000_000_000,
            _ => 1,
        };
        spec.value_kind = if spec.value_kind == ValueKind::EE_PROBE_LINEAR {
            ValueKind::EE_PROBE_LATENCY_LINEAR
        } else {
            ValueKind::EE_PROBE_LATENCY_EXP2
        };
    } else if let Some(name) = &probe.value {
        let f = find(name, "probe.value")?;
        if f.kind != FieldKind::Int {
            return Err(err(
                "probe.value",
                format!(
                    "{name} ({}) is not a number: a probe's value is an integer field",
                    f.what
                ),
            ));
        }
        spec.value = field_spec(&f, 0);
        match kind {
            Kind::Counter => spec.value_kind = ValueKind::EE_PROBE_SUM,
            Kind::Gauge => spec.value_kind = ValueKind::EE_PROBE_LAST,
            Kind::Histogram { .. } => {}
        }
    }
    if probe.filter.len() > MAX_FILTERS {
        return Err(err(
            "probe.filter",
            format!("a probe takes at most {MAX_FILTERS} filters"),
        ));
    }
    let mut cgroups: Option<(Vec<String>, String)> = None;
    let mut n = 0;
    for (i, filter) in probe.filter.iter().enumerate() {
        if let Some(regexp) = &filter.cgroup {
            let (regexps, _) = cgroups
                .get_or_insert_with(|| (Vec::new(), format!("{at}.probe.filter[{i}].cgroup")));
            regexps.push(regexp.clone());
            continue;
        }
        let f = find(&filter.field, &format!("probe.filter[{i}].field"))?;
        spec.filters[n] =
            filter_spec(&f, filter).map_err(|m| err(&format!("probe.filter[{i}].value"), m))?;
        n += 1;
    }
    spec.nfilters = n as u32;
    // A probe with no labels keeps one series under a zeroed 4-byte key,
    // which the metrics read as an unlabelled one.
    let key_size = if laid_out.is_empty() { 4 } else { cursor };
    Ok(PlannedProbe {
        spec,
        cgroups,
        labels: laid_out,
        key_size,
        hook,
        end: end_side,
    })
}

/// Whether a match field is a task that the program can hand to
/// bpf_task_storage_get: the current one (`tid`), which BTF-typed hooks
/// get with bpf_get_current_task_btf, or a `struct task_struct *`
/// argument of such a hook, which the verifier types from BTF.
fn names_a_task(hook: &Hook, f: &Field) -> bool {
    use super::skel::types::ee_probe_source as Source;
    let typed = matches!(
        hook,
        Hook::TpBtf { .. } | Hook::Fentry { .. } | Hook::Fexit { .. }
    );
    typed
        && (f.source == Source::EE_PROBE_TID
            || (f.source == Source::EE_PROBE_ARG && f.what == "struct task_struct *"))
}

/// Whether this kernel has task storage (5.11+); where it does not, tasks
/// pair through the in-flight hash like any other match.
fn task_storage() -> bool {
    const BPF_MAP_TYPE_TASK_STORAGE: u32 = 29;
    crate::host::kernel::supports_map_type(BPF_MAP_TYPE_TASK_STORAGE) == Some(true)
}

/// Gives the previous label the bytes between its end and the next field
/// as padding, so that the labels' sequential layout matches the key.
fn pad_to(prev: Option<&mut Label>, end: u32, next_offset: u32) {
    if let Some(prev) = prev {
        if next_offset > end {
            prev.padding = Some((next_offset - end) as usize);
        }
    }
}

fn field_spec(f: &Field, key_offset: u32) -> ee_probe_field {
    let mut hops = [0u32; super::fields::MAX_HOPS];
    for (slot, hop) in hops.iter_mut().zip(&f.hops) {
        *slot = *hop;
    }
    ee_probe_field {
        source: f.source,
        offset: f.offset,
        size: f.size,
        key_offset,
        is_signed: u32::from(f.signed),
        nhops: f.hops.len() as u32,
        hops,
        constant: f.constant,
    }
}

/// Bytes of text a filter compares (`EE_PROBE_TEXT_MAX`), its NUL among
/// them.
const TEXT_MAX: usize = 16;

/// A comparison of an integer field with a constant that fits it, or of
/// a text field with text.
fn filter_spec(f: &Field, filter: &ProbeFilter) -> Result<ee_probe_filter, String> {
    if f.is_text() {
        let serde_yaml::Value::String(text) = &filter.value else {
            return Err(format!(
                "{} ({}) is text, which a probe's filter compares with text, not a number: write the value in quotes",
                f.name, f.what
            ));
        };
        let op = match filter.op.as_str() {
            "==" => Op::EE_PROBE_TEXT_EQ,
            "!=" => Op::EE_PROBE_TEXT_NE,
            other => {
                return Err(format!(
                    "{} is text, which compares with == or != only, not {other}",
                    f.name
                ))
            }
        };
        let room = (f.size as usize).min(TEXT_MAX);
        if text.len() + 1 > room || text.contains('\0') {
            return Err(format!(
                "{text:?} is {} bytes; a filter on {} compares at most {} ({} holds {} with its NUL)",
                text.len(),
                f.name,
                room - 1,
                f.what,
                f.size
            ));
        }
        let mut bytes = [0 as std::ffi::c_char; TEXT_MAX];
        for (b, t) in bytes.iter_mut().zip(text.bytes()) {
            *b = t as std::ffi::c_char;
        }
        return Ok(ee_probe_filter {
            field: field_spec(f, 0),
            op,
            text_len: text.len() as u32 + 1,
            text: bytes,
            ..ee_probe_filter::default()
        });
    }
    if f.kind == FieldKind::Array {
        return Err(format!(
            "{} ({}) is {}, which a filter cannot compare",
            f.name,
            f.what,
            f.shape()
        ));
    }
    let op = match filter.op.as_str() {
        "==" => Op::EE_PROBE_EQ,
        "!=" => Op::EE_PROBE_NE,
        "<" => Op::EE_PROBE_LT,
        ">" => Op::EE_PROBE_GT,
        "<=" => Op::EE_PROBE_LE,
        ">=" => Op::EE_PROBE_GE,
        "&" => Op::EE_PROBE_MASK,
        other => return Err(format!("{other:?} is no comparison")),
    };
    let value: i128 = match &filter.value {
        serde_yaml::Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .ok_or_else(|| format!("{n} is not an integer"))?,
        serde_yaml::Value::Bool(b) => i128::from(*b),
        other => {
            return Err(format!(
                "{} is a number: compare it with a number, not {}",
                f.name,
                serde_yaml::to_string(other).unwrap_or_default().trim()
            ))
        }
    };
    let bits = (f.size.min(8) * 8) as i128;
    let (min, max) = if f.signed {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    } else {
        (0, (1i128 << bits) - 1)
    };
    if value < min || value > max {
        return Err(format!(
            "{value} does not fit {} ({}, {} bytes{})",
            f.name,
            f.what,
            f.size,
            if f.signed { ", signed" } else { "" }
        ));
    }
    Ok(ee_probe_filter {
        field: field_spec(f, 0),
        op,
        operand: value as u64,
        ..ee_probe_filter::default()
    })
}
