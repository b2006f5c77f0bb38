//! The YAML schema: the reference exporter's v2 format, plus a few additive
//! keys. Unknown keys are rejected so that a typo fails loudly instead of
//! silently producing a metric with the wrong labels.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Ours: names an embedded object or a path to a `.bpf.o`.
    #[serde(default)]
    pub object: Option<String>,
    #[serde(default)]
    pub metrics: Metrics,
    #[serde(default)]
    pub tracing: Option<Tracing>,
    #[serde(default)]
    pub kaddrs: Vec<String>,
    #[serde(default)]
    pub cgroup_id_map: Option<CgroupIdMap>,
    /// Ours: the series limit of each metric of this config that sets none.
    #[serde(default)]
    pub max_series: Option<usize>,
    /// Ours: which programs of the object load, and where they attach.
    #[serde(default)]
    pub programs: Option<Programs>,
    /// Ours: values for the object's global variables by name (its
    /// `const volatile` switches), set before load as its loader would.
    #[serde(default)]
    pub constants: BTreeMap<String, serde_yaml::Value>,
    /// Ours: map sizes, by map name, set before load.
    #[serde(default)]
    pub maps: BTreeMap<String, MapSettings>,
}

/// Ours: what a loader would set on one map before load.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MapSettings {
    /// For maps the object leaves at 0 for its loader to size, or to
    /// bound one differently.
    #[serde(default)]
    pub max_entries: Option<u32>,
    /// Only for maps whose value has no BTF type to disagree with.
    #[serde(default)]
    pub value_size: Option<u32>,
    /// Only for maps whose key has no BTF type to disagree with.
    #[serde(default)]
    pub key_size: Option<u32>,
    /// Entries written after load and before attach: the filters and
    /// tables an object's own loader would fill (the reference's #638).
    #[serde(default)]
    pub entries: Vec<MapEntry>,
    /// Decoders of key members (by member name; `key` for a scalar key),
    /// as a metric's labels would decode them: `entries` give label text,
    /// which these turn back into bytes, last decoder first.
    #[serde(default)]
    pub decoders: BTreeMap<String, Vec<DecoderSpec>>,
}

/// One entry of `maps.NAME.entries`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapEntry {
    /// A scalar for a scalar key; for a struct key, its members by name
    /// (members left out are zero).
    pub key: serde_yaml::Value,
    /// As the key; 1 when left out, which a set's members usually hold.
    #[serde(default)]
    pub value: Option<serde_yaml::Value>,
}

/// Ours: program choice, as libbpf-tools' loaders make it in C.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Programs {
    /// Groups of programs for one hook on different kernels: of each, the
    /// first that the kernel loads and attaches runs, and the others are
    /// not loaded.
    #[serde(default)]
    pub one_of: Vec<Vec<String>>,
    /// Only these programs load (by name or section); without it, all do.
    #[serde(default)]
    pub include: Vec<String>,
    /// These programs never load (by name or section): one of the twins
    /// an object carries for one hook, say.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Where programs attach, by program name, as a section libbpf or this
    /// exporter would read (`kprobe/vfs_read`,
    /// `perf_event/type=1,config=0,frequency=99`): for programs whose own
    /// section names a placeholder or no target.
    #[serde(default)]
    pub attach: BTreeMap<String, String>,
}

/// What happens to label sets past a metric's `max_series`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Overflow {
    /// Summed into one series whose labels all read `__overflow__`.
    #[default]
    Fold,
    /// Left out.
    Drop,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    #[serde(default)]
    pub counters: Vec<Counter>,
    /// Ours: like counters, but exported as gauges (current values, not totals).
    #[serde(default)]
    pub gauges: Vec<Counter>,
    #[serde(default)]
    pub histograms: Vec<Histogram>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counter {
    pub name: String,
    pub help: String,
    #[serde(default)]
    pub labels: Vec<Label>,
    #[serde(default)]
    pub perf_event_array: bool,
    #[serde(default)]
    pub flush_interval: Option<String>,
    /// Ours: scales the exported value, so a map that counts nanoseconds can
    /// be published in seconds as Prometheus conventions ask.
    #[serde(default)]
    pub value_multiplier: Option<f64>,
    /// Ours: the map to read, when it is not named like the metric (so
    /// that several metrics can read one map).
    #[serde(default)]
    pub map: Option<String>,
    /// Ours: a global variable to read instead of a map (`.bss`, `.data`,
    /// `.rodata`), by its BTF name: an array's elements are its entries,
    /// keyed by index (u32); a scalar is one entry.
    #[serde(default)]
    pub global: Option<String>,
    /// Ours: the member of a struct value this metric exports (`a.b` for a
    /// nested one), from the map's value BTF.
    #[serde(default)]
    pub value: Option<String>,
    /// Ours: at most this many label sets per scrape.
    #[serde(default)]
    pub max_series: Option<usize>,
    #[serde(default)]
    pub overflow: Option<Overflow>,
    /// Ours: a hook and its fields instead of a map: the exporter's
    /// generic probe program gathers it (`probes/`).
    #[serde(default)]
    pub probe: Option<ProbeSpec>,
    /// Ours: label sets whose value is 0 are left out. For an array
    /// indexed by an id (a syscall number), whose every index exists but
    /// most never count: the program gets an array's inlined lookup, and
    /// the exposition shows what a hash of the ids that occurred would.
    #[serde(default)]
    pub omit_zero: bool,
    /// Ours: a key whose labels name something gone (a removed cgroup) is
    /// exported once more under its name, then deleted from the map, so
    /// the series of dead workloads end instead of piling up.
    #[serde(default)]
    pub delete_gone: bool,
    /// Ours: a Go duration. A label set that names nothing known to exist
    /// now (an `unknown…` or gone value) and whose entries have not
    /// changed for this long is left out, and its entries are deleted:
    /// for things whose end cannot be seen, only their silence.
    #[serde(default)]
    pub stale_after: Option<String>,
}

/// Ours: what a `probe:` metric gathers, with no object of its own.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeSpec {
    /// `tracepoint/CATEGORY/NAME`; empty for a latency (`start` and `end`).
    #[serde(default)]
    pub hook: String,
    /// A latency histogram's two hooks: the time from a start to the end
    /// with the same match fields.
    #[serde(default)]
    pub start: Option<ProbeEnd>,
    #[serde(default)]
    pub end: Option<ProbeEnd>,
    /// The field summed (counters), kept (gauges) or bucketed
    /// (histograms); a counter without it counts events.
    #[serde(default)]
    pub value: Option<String>,
    /// Events pass only when every comparison holds.
    #[serde(default)]
    pub filter: Vec<ProbeFilter>,
    /// Linear histograms: a bucket's width, in the value's own unit.
    #[serde(default)]
    pub step: Option<u64>,
    /// The bound of the probe's map (10240 when left out).
    #[serde(default)]
    pub max_entries: Option<u32>,
    /// A uprobe's or USDT probe's arguments, by position: user space has
    /// no BTF to name or type them. Positions left out read as `argN`,
    /// u64.
    #[serde(default)]
    pub args: Vec<ProbeArg>,
    /// A uretprobe's return value's type (`ret`; u64 when left out).
    #[serde(default)]
    pub ret: Option<String>,
}

/// One user-space argument: its name, and its type (`u8`..`u64`,
/// `s8`..`s64`, `pointer`, or `string` for text at a pointer).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeArg {
    pub name: String,
    #[serde(rename = "type", default = "default_arg_type")]
    pub ty: String,
}

fn default_arg_type() -> String {
    "u64".to_string()
}

/// One side of a latency: its hook, and the fields that pair a start with
/// its end (a thread id, a request's address).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeEnd {
    pub hook: String,
    #[serde(rename = "match")]
    pub matching: Vec<String>,
}

/// One comparison of a field with a constant (a number, or text for a
/// text field such as `comm`), or, alone, `cgroup:` a regexp the
/// event's cgroup path must match.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeFilter {
    #[serde(default)]
    pub field: String,
    /// `==`, `!=`, `<`, `>`, `<=`, `>=`, or `&` (any of the value's bits).
    #[serde(default)]
    pub op: String,
    #[serde(default)]
    pub value: serde_yaml::Value,
    /// As `cgroup_id_map`'s regexps match: the cgroup's path under the
    /// cgroup2 mount.
    #[serde(default)]
    pub cgroup: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BucketType {
    Exp2,
    Exp2zero,
    /// Ours: slot i counts values in [2^i, 2^(i+1)), as libbpf-tools fill
    /// `slots[log2l(v)]` with a floor log2 (slot 0 also holds 0 and 1), so
    /// its upper bound is 2^(i+1). Read with `exp2`, every bucket would be
    /// labelled one power of two too low.
    Exp2floor,
    Linear,
    Fixed,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Histogram {
    pub name: String,
    pub help: String,
    pub bucket_type: BucketType,
    #[serde(default)]
    pub bucket_min: u64,
    #[serde(default)]
    pub bucket_max: u64,
    #[serde(default)]
    pub bucket_keys: Vec<u64>,
    #[serde(default)]
    pub bucket_multiplier: Option<f64>,
    #[serde(default)]
    pub labels: Vec<Label>,
    /// Ours: the map to read, when it is not named like the metric.
    #[serde(default)]
    pub map: Option<String>,
    /// Ours: a global variable to read instead of a map, as for counters.
    #[serde(default)]
    pub global: Option<String>,
    /// Ours: an array member of the map's value holding the bucket counts
    /// (`u64 slots[27]`, one key per label set, as libbpf-tools store
    /// histograms); element i is bucket index i, and there is no bucket
    /// label.
    #[serde(default)]
    pub value: Option<String>,
    /// Ours: at most this many label sets (histograms) per scrape.
    #[serde(default)]
    pub max_series: Option<usize>,
    #[serde(default)]
    pub overflow: Option<Overflow>,
    /// Ours: a hook and its fields instead of a map, as for counters.
    #[serde(default)]
    pub probe: Option<ProbeSpec>,
    /// Ours: as for counters.
    #[serde(default)]
    pub delete_gone: bool,
    /// Ours: as for counters.
    #[serde(default)]
    pub stale_after: Option<String>,
}

impl Histogram {
    /// 0 or absent means 1, as in the reference.
    pub fn multiplier(&self) -> f64 {
        match self.bucket_multiplier {
            Some(m) if m != 0.0 => m,
            _ => 1.0,
        }
    }

    /// The upper bound (`le`) of the bucket stored at map index `idx`. It is
    /// part of the config's meaning, so validation can check that bounds are
    /// finite and increasing before any exposition depends on it.
    pub fn bound(&self, idx: u64) -> f64 {
        let m = self.multiplier();
        match self.bucket_type {
            BucketType::Exp2 => pow2(idx) * m,
            BucketType::Exp2floor => pow2(idx.saturating_add(1)) * m,
            BucketType::Exp2zero if idx == 0 => 0.0,
            BucketType::Exp2zero => pow2(idx - 1) * m,
            BucketType::Linear | BucketType::Fixed => idx as f64 * m,
        }
    }

    /// The map indexes that hold buckets, in order. Validation caps their
    /// number, so this is small for any config that passed it.
    pub fn bucket_indexes(&self) -> Box<dyn Iterator<Item = u64> + '_> {
        match self.bucket_type {
            BucketType::Fixed => Box::new(self.bucket_keys.iter().copied()),
            _ => Box::new(self.bucket_min..=self.bucket_max),
        }
    }
}

fn pow2(i: u64) -> f64 {
    2f64.powi(i.min(i32::MAX as u64) as i32)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Label {
    pub name: String,
    /// Bytes of key this label decodes. Optional where the map's key type
    /// has BTF: the label then takes the size of its struct member.
    #[serde(default)]
    pub size: Option<usize>,
    /// Bytes skipped after it (the reference's way to follow C alignment).
    #[serde(default)]
    pub padding: Option<usize>,
    /// Ours: the key struct member this label reads (`a.b` for a member of
    /// a nested struct); defaults to the member named like the label.
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub decoders: Vec<DecoderSpec>,
    /// Ours: every not-found result of the decoders (`unknown:…`,
    /// `unknown_cgroup_id:…`) becomes the one value `unknown`, so that a
    /// churn of unknown ids makes one series, not thousands.
    #[serde(default)]
    pub fold_unknown: bool,
    /// Where the label sits in the key, once bound to its BTF member;
    /// `None` for the reference's sequential layout.
    #[serde(skip)]
    pub offset: Option<usize>,
}

impl Label {
    /// The size as given or bound (0 while neither).
    pub fn size(&self) -> usize {
        self.size.unwrap_or(0)
    }

    pub fn padding(&self) -> usize {
        self.padding.unwrap_or(0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ByteOrder {
    #[default]
    Host,
    Little,
    Big,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecoderSpec {
    pub name: String,
    /// Keys are strings in the reference; YAML writes them as plain numbers,
    /// so any scalar is accepted and kept as its text.
    #[serde(default, deserialize_with = "scalar_map")]
    pub static_map: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub allow_unknown: Option<bool>,
    #[serde(default)]
    pub regexps: Option<Vec<String>>,
    /// Ours: byte order for `uint` (`big` for network order fields).
    #[serde(default)]
    pub byte_order: Option<ByteOrder>,
    /// Ours: which names `syscall` and `errno` give. `reference` (the
    /// default) is what the reference exporter prints, `kernel` the
    /// kernel's own.
    #[serde(default)]
    pub names: Option<NameTable>,
}

impl DecoderSpec {
    /// A decoder with no options.
    pub fn named(name: &str) -> Self {
        DecoderSpec {
            name: name.to_string(),
            static_map: None,
            allow_unknown: None,
            regexps: None,
            byte_order: None,
            names: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NameTable {
    #[default]
    Reference,
    Kernel,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tracing {
    #[serde(default)]
    pub spans: Vec<Span>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Span {
    pub name: String,
    pub ringbuf: String,
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub labels: Vec<Label>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CgroupIdMapType {
    /// Key: u64 cgroup id, value: u64 1.
    #[default]
    Hash,
    /// Cgroup local storage, updated through the cgroup directory's fd.
    CgrpStorage,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CgroupIdMap {
    pub name: String,
    /// `hash` when absent, as in the reference.
    #[serde(rename = "type", default)]
    pub map_type: CgroupIdMapType,
    #[serde(default)]
    pub regexps: Vec<String>,
}

fn scalar_map<'de, D>(de: D) -> Result<Option<BTreeMap<String, String>>, D::Error>
where
    D: Deserializer<'de>,
{
    let raw: Option<BTreeMap<Scalar, Scalar>> = Option::deserialize(de)?;
    Ok(raw.map(|m| m.into_iter().map(|(k, v)| (k.0, v.0)).collect()))
}

/// A YAML scalar of any type, kept as the text it was written as.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        // A visitor rather than a `Value`: a collection here is refused at
        // its first event instead of being built (and printed) whole.
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a scalar (a number, string or boolean)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(serde_yaml::Number::from(v).to_string()))
            }
        }
        de.deserialize_any(V)
    }
}
