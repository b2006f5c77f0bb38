//! One walk over a config's metrics with their key paths, so that checking,
//! binding and reporting all name a metric the same way
//! (`metrics.histograms[2]`) and none of them re-implements the walk.

use super::load::Config;
use super::model::{Counter, Histogram, Label};

/// Which section a metric comes from, with its own settings.
#[derive(Debug, Clone, Copy)]
pub enum SpecKind<'a> {
    Counter(&'a Counter),
    Gauge(&'a Counter),
    Histogram(&'a Histogram),
}

impl MetricSpec<'_> {
    /// Every name this metric takes in some exposition format, without the
    /// `ebpf_exporter_` prefix: its family and sample names in the text
    /// format and in OpenMetrics, where a counter's family drops `_total`
    /// and its samples carry it, and a histogram adds `_bucket`, `_sum` and
    /// `_count`. Two metrics that share any of them cannot both be served.
    pub fn exposed_names(&self) -> Vec<String> {
        let family = match self.kind {
            SpecKind::Counter(_) => Family::Counter,
            SpecKind::Gauge(_) => Family::Gauge,
            SpecKind::Histogram(_) => Family::Histogram,
        };
        exposed_names(family, self.name)
    }
}

/// A metric's type, as it decides the names the metric takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Counter,
    Gauge,
    Histogram,
}

/// Every name a metric `name` of type `family` takes in some exposition
/// format (see `MetricSpec::exposed_names`); `describe` asks it too, so
/// the configs it writes load.
pub fn exposed_names(family: Family, name: &str) -> Vec<String> {
    match family {
        Family::Counter => {
            // Its own name first, so a plain duplicate is named as one.
            let stem = name.strip_suffix("_total").unwrap_or(name);
            let mut names = vec![name.to_string()];
            for n in [
                stem.to_string(),
                format!("{stem}_total"),
                format!("{stem}_created"),
            ] {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
            names
        }
        Family::Gauge => vec![name.to_string()],
        Family::Histogram => ["", "_bucket", "_sum", "_count", "_created"]
            .iter()
            .map(|suffix| format!("{name}{suffix}"))
            .collect(),
    }
}

#[derive(Debug, Clone)]
pub struct MetricSpec<'a> {
    /// The key path of the metric, e.g. `metrics.counters[0]`.
    pub at: String,
    pub name: &'a str,
    /// The map it reads: `map:`, or the metric's own name.
    pub map: &'a str,
    /// The value member it reads (`value:`), if the values are structs.
    pub value: Option<&'a str>,
    /// The global variable it reads instead of a map (`global:`).
    pub global: Option<&'a str>,
    pub help: &'a str,
    pub labels: &'a [Label],
    pub kind: SpecKind<'a>,
    /// The metric's own `max_series`, else the config's.
    pub max_series: Option<usize>,
    pub overflow: crate::config::model::Overflow,
    /// Set for `probe:` metrics, whose map is their slot's in the generic
    /// probe object.
    pub probe: Option<&'a crate::config::model::ProbeSpec>,
}

/// The generic probe object's maps (`bpf/probe/probe.bpf.c`), one of each
/// per slot: a config's probe metrics take slots in order (counters,
/// gauges, histograms), so a config holds at most this many probes.
/// Gauges keep their last values in the shared map; counters and
/// histograms add up in the per-CPU one.
pub const PROBE_MAPS: [&str; 8] = [
    "counts0", "counts1", "counts2", "counts3", "counts4", "counts5", "counts6", "counts7",
];
pub const PROBE_PERCPU_MAPS: [&str; 8] = [
    "percpu0", "percpu1", "percpu2", "percpu3", "percpu4", "percpu5", "percpu6", "percpu7",
];

impl MetricSpec<'_> {
    /// The key path of one of the metric's fields.
    pub fn key(&self, field: &str) -> String {
        format!("{}.{field}", self.at)
    }

    /// Counters read from a perf event array rather than a map.
    pub fn is_event_counter(&self) -> bool {
        matches!(self.kind, SpecKind::Counter(c) if c.perf_event_array)
    }
}

impl Config {
    /// Counters, then gauges, then histograms, in file order.
    pub fn specs(&self) -> impl Iterator<Item = MetricSpec<'_>> {
        let m = &self.spec.metrics;
        // Probe slots in the order the specs come; past the last slot a
        // probe has no map, which validation refuses.
        let mut next = 0usize;
        let mut slot = |probe: bool, maps: &'static [&'static str; 8]| {
            probe.then(|| {
                next += 1;
                maps.get(next - 1).copied().unwrap_or("")
            })
        };
        let counter_maps: Vec<Option<&'static str>> = m
            .counters
            .iter()
            .map(|c| slot(c.probe.is_some(), &PROBE_PERCPU_MAPS))
            .collect();
        let gauge_maps: Vec<Option<&'static str>> = m
            .gauges
            .iter()
            .map(|c| slot(c.probe.is_some(), &PROBE_MAPS))
            .collect();
        let histogram_maps: Vec<Option<&'static str>> = m
            .histograms
            .iter()
            .map(|h| slot(h.probe.is_some(), &PROBE_PERCPU_MAPS))
            .collect();
        let counters = m.counters.iter().enumerate().map(move |(i, c)| MetricSpec {
            at: format!("metrics.counters[{i}]"),
            name: &c.name,
            map: counter_maps[i]
                .or(c.global.as_deref())
                .or(c.map.as_deref())
                .unwrap_or(&c.name),
            value: c.value.as_deref(),
            global: c.global.as_deref(),
            help: &c.help,
            labels: &c.labels,
            kind: SpecKind::Counter(c),
            max_series: c.max_series.or(self.spec.max_series),
            overflow: c.overflow.unwrap_or_default(),
            probe: c.probe.as_ref(),
        });
        let gauges = m.gauges.iter().enumerate().map(move |(i, c)| MetricSpec {
            at: format!("metrics.gauges[{i}]"),
            name: &c.name,
            map: gauge_maps[i]
                .or(c.global.as_deref())
                .or(c.map.as_deref())
                .unwrap_or(&c.name),
            value: c.value.as_deref(),
            global: c.global.as_deref(),
            help: &c.help,
            labels: &c.labels,
            kind: SpecKind::Gauge(c),
            max_series: c.max_series.or(self.spec.max_series),
            overflow: c.overflow.unwrap_or_default(),
            probe: c.probe.as_ref(),
        });
        let histograms = m
            .histograms
            .iter()
            .enumerate()
            .map(move |(i, h)| MetricSpec {
                at: format!("metrics.histograms[{i}]"),
                name: &h.name,
                map: histogram_maps[i]
                    .or(h.global.as_deref())
                    .or(h.map.as_deref())
                    .unwrap_or(&h.name),
                value: h.value.as_deref(),
                global: h.global.as_deref(),
                help: &h.help,
                labels: &h.labels,
                kind: SpecKind::Histogram(h),
                max_series: h.max_series.or(self.spec.max_series),
                overflow: h.overflow.unwrap_or_default(),
                probe: h.probe.as_ref(),
            });
        counters.chain(gauges).chain(histograms)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{parse_config, ConfigSource};

    #[test]
    fn walks_every_section_with_key_paths() {
        let text = "metrics:\n  counters:\n    - {name: a, help: h}\n    - {name: b, help: h}\n  gauges:\n    - {name: c, help: h}\n  histograms:\n    - {name: d, help: h, bucket_type: exp2, bucket_min: 0, bucket_max: 2, labels: [{name: bucket, size: 8, decoders: [{name: uint}]}]}\n";
        let config = parse_config("t", "t.yaml", ConfigSource::Embedded, text).expect("parses");
        let walked: Vec<(String, &str)> = config.specs().map(|s| (s.at, s.name)).collect();
        assert_eq!(
            walked,
            vec![
                ("metrics.counters[0]".to_string(), "a"),
                ("metrics.counters[1]".to_string(), "b"),
                ("metrics.gauges[0]".to_string(), "c"),
                ("metrics.histograms[0]".to_string(), "d"),
            ]
        );
    }
}
