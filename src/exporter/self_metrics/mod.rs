//! The exporter's own metrics. Every family, including those read from the
//! kernel or `/proc` at scrape time (`programs`, `process`, `spans`), is a
//! `prometheus` collector in the one registry that `SelfMetrics::new`
//! fills, and `collect` writes them all through the scrape's `Sink`, so they
//! follow the negotiated format like every config's families. A new
//! self-metric is one field and one line in its group's `register`.

mod process;
mod programs;
mod spans;

use prometheus::proto::MetricType;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus::core::Collector;
use prometheus::{Gauge, GaugeVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use super::ConfigReport;
use crate::metrics::collector::MEMORY_PARTS;
use crate::metrics::sink::render_labels;
use crate::metrics::{Collected, Kind, MetricId, Sink};
use crate::spans::SpanStats;

/// Registers families in the one registry. Definitions are static, so a
/// failure is a bug here (a bad name, or one registered twice), caught by
/// every test that builds an exporter.
struct Registrar<'r>(&'r Registry);

impl Registrar<'_> {
    fn add<C: Collector + Clone + 'static>(&self, c: C) -> C {
        self.collector(c.clone());
        c
    }

    fn collector(&self, c: impl Collector + 'static) {
        self.0
            .register(Box::new(c))
            .expect("self-metric registered once");
    }

    fn int_gauges(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        self.add(IntGaugeVec::new(Opts::new(name, help), labels).expect("valid self-metric"))
    }

    fn gauges(&self, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
        self.add(GaugeVec::new(Opts::new(name, help), labels).expect("valid self-metric"))
    }

    fn counters(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.add(IntCounterVec::new(Opts::new(name, help), labels).expect("valid self-metric"))
    }
}

/// The state of each config, as the last load left it.
struct ConfigFamilies {
    enabled: IntGaugeVec,
    info: IntGaugeVec,
    attached: IntGaugeVec,
    generation: IntGaugeVec,
    loaded_at: GaugeVec,
    last_load_ok: IntGaugeVec,
    scrape_seconds: GaugeVec,
    decoder_errors: IntCounterVec,
    series_limited: IntCounterVec,
}

impl ConfigFamilies {
    fn register(r: &Registrar) -> Self {
        Self {
            enabled: r.int_gauges(
                "ebpf_exporter_enabled_configs",
                "Configs requested: 1 if a version of it runs, 0 if none could start",
                &["name"],
            ),
            info: r.int_gauges(
                "ebpf_exporter_ebpf_program_info",
                "Info about loaded eBPF programs",
                &["config", "program", "tag", "id"],
            ),
            attached: r.int_gauges(
                "ebpf_exporter_ebpf_program_attached",
                "Whether an eBPF program is attached (1) or failed to load or attach (0)",
                &["config", "program", "id"],
            ),
            generation: r.int_gauges(
                "ebpf_exporter_config_generation",
                "Versions of the config started since the exporter started; an increase means its series were reset",
                &["config"],
            ),
            loaded_at: r.gauges(
                "ebpf_exporter_config_load_timestamp_seconds",
                "When the running version of the config was started, in seconds since the epoch",
                &["config"],
            ),
            scrape_seconds: r.gauges(
                "ebpf_exporter_config_scrape_duration_seconds",
                "Time this scrape spent reading, decoding and encoding the config's maps",
                &["config"],
            ),
            last_load_ok: r.int_gauges(
                "ebpf_exporter_config_last_load_successful",
                "Whether the config's file as it is now runs (1), or was refused (0; a previous version may still run)",
                &["config"],
            ),
            decoder_errors: r.counters(
                "ebpf_exporter_decoder_errors_total",
                "Map keys and perf records that failed to decode; a metric with such a key is left out of that scrape",
                &["config"],
            ),
            series_limited: r.counters(
                "ebpf_exporter_series_limited_total",
                "Label sets over a metric's series limit, folded into its overflow series or dropped, summed over scrapes",
                &["config", "metric"],
            ),
        }
    }
}

/// What each metric's map held and how reading it went, per scrape.
struct MapFamilies {
    read_errors: IntCounterVec,
    entries: IntGaugeVec,
    max_entries: IntGaugeVec,
    update_failures: IntCounterVec,
    events_lost: IntCounterVec,
    cache_entries: IntGaugeVec,
    memory: IntGaugeVec,
    gone_deleted: IntCounterVec,
    stale_deleted: IntCounterVec,
}

impl MapFamilies {
    fn register(r: &Registrar) -> Self {
        let per_map = ["config", "map"];
        Self {
            read_errors: r.counters(
                "ebpf_exporter_map_read_errors_total",
                "Failed reads of a metric's BPF map",
                &per_map,
            ),
            entries: r.int_gauges(
                "ebpf_exporter_map_entries",
                "Entries read from a metric's BPF map in the last scrape, or held by a probe's in-flight map (an LRU: at its capacity, the oldest starts are dropped)",
                &per_map,
            ),
            max_entries: r.int_gauges(
                "ebpf_exporter_map_max_entries",
                "Capacity of a metric's BPF map, or of a probe's in-flight map: a hash map whose entries reach it refuses new keys, an LRU drops its oldest",
                &per_map,
            ),
            update_failures: r.counters(
                "ebpf_exporter_map_update_failures_total",
                "Map inserts the programs' shared helpers could not make (the map was full), per metric map",
                &per_map,
            ),
            events_lost: r.counters(
                "ebpf_exporter_events_lost_total",
                "Records a perf event buffer lost because user space did not keep up",
                &per_map,
            ),
            gone_deleted: r.counters(
                "ebpf_exporter_map_gone_entries_deleted_total",
                "Map entries the exporter deleted once exported, because their labels named something gone (delete_gone: a removed cgroup, an exited process)",
                &per_map,
            ),
            stale_deleted: r.counters(
                "ebpf_exporter_map_stale_entries_deleted_total",
                "Map entries the exporter deleted, and left out, because their labels named nothing known to exist and had not changed for stale_after",
                &per_map,
            ),
            memory: r.int_gauges(
                "ebpf_exporter_map_memory_bytes",
                "Heap the exporter holds for a metric's map, by part: keys (the key cache), labels (interned label values), rows (per-label-set sums), read (read buffers)",
                &["config", "map", "part"],
            ),
            cache_entries: r.int_gauges(
                "ebpf_exporter_decode_cache_entries",
                "Raw keys whose decoded labels are cached, per map",
                &per_map,
            ),
        }
    }

    /// Every family keyed by (config, map), for forgetting a map.
    fn all_per_map(&self) -> [&dyn Forget; 8] {
        [
            &self.gone_deleted,
            &self.stale_deleted,
            &self.read_errors,
            &self.entries,
            &self.max_entries,
            &self.update_failures,
            &self.events_lost,
            &self.cache_entries,
        ]
    }
}

/// Removing a series by its label values, whatever the family's value type.
trait Forget {
    fn forget(&self, values: &[&str]);
}

impl<P: prometheus::core::MetricVecBuilder> Forget for prometheus::core::MetricVec<P> {
    fn forget(&self, values: &[&str]) {
        // Absent is fine: the series may never have been written.
        let _ = self.remove_label_values(values);
    }
}

/// Configuration loads: start-up and reloads.
struct LoadFamilies {
    last_ok: IntGauge,
    last_success: Gauge,
    reloads: IntCounterVec,
}

impl LoadFamilies {
    fn register(r: &Registrar) -> Self {
        let reloads = r.counters(
            "ebpf_exporter_config_reloads_total",
            "Configuration reloads (not counting start-up), by result",
            &["result"],
        );
        for result in ["success", "failure"] {
            reloads.with_label_values(&[result]);
        }
        Self {
            last_ok: r.add(
                IntGauge::new(
                    "ebpf_exporter_config_last_reload_successful",
                    "Whether the last configuration load (start-up or reload) applied every config",
                )
                .expect("valid self-metric"),
            ),
            last_success: r.add(
                Gauge::new(
                    "ebpf_exporter_config_last_reload_success_timestamp_seconds",
                    "When a configuration load last applied every config, in seconds since the epoch",
                )
                .expect("valid self-metric"),
            ),
            reloads,
        }
    }
}

fn register_build_info(r: &Registrar) {
    let build = r.int_gauges(
        "ebpf_exporter_build_info",
        "Build information of ebpf-exporter",
        &[
            "version",
            "revision",
            "libbpf_version",
            "rustc_version",
            "target",
            "build_date",
        ],
    );
    build
        .with_label_values(&[
            env!("CARGO_PKG_VERSION"),
            env!("EE_REVISION"),
            &libbpf_version(),
            env!("EE_RUSTC"),
            env!("EE_TARGET"),
            env!("EE_BUILD_DATE"),
        ])
        .set(1);
}

pub struct SelfMetrics {
    registry: Registry,
    configs: ConfigFamilies,
    maps: MapFamilies,
    loads: LoadFamilies,
    /// The running programs, for `programs::ProgramStats` to read.
    programs: programs::Programs,
}

fn seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl SelfMetrics {
    /// The one registration point of the exporter's own families.
    pub fn new(spans: Arc<SpanStats>) -> Self {
        let registry = Registry::new();
        let r = Registrar(&registry);
        let configs = ConfigFamilies::register(&r);
        let maps = MapFamilies::register(&r);
        let loads = LoadFamilies::register(&r);
        register_build_info(&r);
        let (stats, programs) = programs::ProgramStats::new();
        r.collector(stats);
        r.collector(spans::SpanCollector::new(spans));
        r.collector(process::ProcessCollector::new());
        Self {
            registry,
            configs,
            maps,
            loads,
            programs,
        }
    }

    /// Replaces the per-config state families with what `reports` say.
    pub fn set_reports(&mut self, reports: &[ConfigReport]) {
        let c = &self.configs;
        for v in [
            &c.enabled,
            &c.info,
            &c.attached,
            &c.generation,
            &c.last_load_ok,
        ] {
            v.reset();
        }
        c.loaded_at.reset();
        for r in reports {
            let name = r.name.as_str();
            c.enabled
                .with_label_values(&[name])
                .set(i64::from(r.running));
            c.last_load_ok
                .with_label_values(&[name])
                .set(i64::from(r.ok()));
            if r.running {
                c.generation
                    .with_label_values(&[name])
                    .set(r.generation as i64);
                if let Some(at) = r.loaded_at {
                    c.loaded_at.with_label_values(&[name]).set(seconds(at));
                }
                c.decoder_errors.with_label_values(&[name]);
            }
            for p in &r.programs {
                let id = p.id.map(|i| i.to_string()).unwrap_or_default();
                if let (Some(_), Some(tag), true) = (p.id, &p.tag, r.running) {
                    c.info
                        .with_label_values(&[name, p.name.as_str(), tag.as_str(), id.as_str()])
                        .set(1);
                }
                c.attached
                    .with_label_values(&[name, p.name.as_str(), id.as_str()])
                    .set(i64::from(p.attached() && r.running));
            }
        }
    }

    /// The running programs, whose run time and count scrapes read.
    pub fn set_programs(&self, fds: Vec<std::os::fd::OwnedFd>) {
        *self.programs.lock().unwrap_or_else(|p| p.into_inner()) = fds;
    }

    /// Drops the per-map and per-config series of a version that stopped:
    /// its maps may not exist in the next version, and a removed config
    /// must leave no series behind.
    pub fn forget(&self, config: &str, maps: &[String], metrics: &[String]) {
        self.configs.decoder_errors.forget(&[config]);
        self.configs.scrape_seconds.forget(&[config]);
        for map in maps {
            for family in self.maps.all_per_map() {
                family.forget(&[config, map.as_str()]);
            }
            for part in MEMORY_PARTS {
                self.maps.memory.forget(&[config, map.as_str(), part]);
            }
        }
        for metric in metrics {
            self.configs
                .series_limited
                .forget(&[config, metric.as_str()]);
        }
    }

    /// Records a configuration load; `reload` is false for start-up,
    /// which sets the state but is not counted as a reload.
    pub fn loaded(&self, success: bool, reload: bool, at: SystemTime) {
        self.loads.last_ok.set(i64::from(success));
        if success {
            self.loads.last_success.set(seconds(at));
        }
        if reload {
            let result = if success { "success" } else { "failure" };
            self.loads.reloads.with_label_values(&[result]).inc();
        }
    }

    /// Records what one collector of `config` did in this scrape.
    pub fn observe(&self, config: &str, id: &MetricId, c: &Collected) {
        let map = id.map_name.as_str();
        if c.decode_errors > 0 {
            self.configs
                .decoder_errors
                .with_label_values(&[config])
                .inc_by(c.decode_errors);
        }
        // Present at 0 from the first scrape, so rate() and alerts work
        // before the first event.
        self.configs
            .series_limited
            .with_label_values(&[config, id.name.as_str()])
            .inc_by(c.series_limited);
        if let Some(lost) = c.events_lost {
            self.maps
                .events_lost
                .with_label_values(&[config, map])
                .inc_by(lost);
        }
        let Some(stats) = c.map else { return };
        let labels = [config, map];
        self.maps
            .max_entries
            .with_label_values(&labels)
            .set(i64::from(stats.max_entries));
        // At 0 from the first scrape, like every error counter.
        let read_errors = self.maps.read_errors.with_label_values(&labels);
        if stats.read_failed {
            read_errors.inc();
        }
        self.maps
            .entries
            .with_label_values(&labels)
            .set(stats.entries as i64);
        self.maps
            .cache_entries
            .with_label_values(&labels)
            .set(stats.cached_keys as i64);
        self.maps
            .gone_deleted
            .with_label_values(&labels)
            .inc_by(c.gone_deleted);
        self.maps
            .stale_deleted
            .with_label_values(&labels)
            .inc_by(c.stale_deleted);
        for (part, bytes) in MEMORY_PARTS.iter().zip(stats.memory) {
            self.maps
                .memory
                .with_label_values(&[config, map, part])
                .set(bytes as i64);
        }
    }

    /// What this scrape spent on one config, so an expensive config is
    /// found by its name, not by elimination.
    pub fn scrape_took(&self, config: &str, took: std::time::Duration) {
        self.configs
            .scrape_seconds
            .with_label_values(&[config])
            .set(took.as_secs_f64());
    }

    /// A state map's entries and capacity, for maps no metric reads that
    /// evict when full (a probe's in-flight starts).
    pub fn map_fill(&self, config: &str, map: &str, entries: usize, max_entries: u32) {
        let labels = [config, map];
        self.maps
            .entries
            .with_label_values(&labels)
            .set(entries as i64);
        self.maps
            .max_entries
            .with_label_values(&labels)
            .set(i64::from(max_entries));
    }

    /// Sets a map's failed inserts to `total`, as the BPF side counts them.
    pub fn update_failures(&self, config: &str, map: &str, total: u64) {
        let c = self.maps.update_failures.with_label_values(&[config, map]);
        c.inc_by(total.saturating_sub(c.get()));
    }

    /// Writes every registered family, after every config's, in name order.
    pub fn collect(&self, out: &mut dyn Sink) {
        for family in self.registry.gather() {
            let kind = match family.get_field_type() {
                MetricType::COUNTER => Kind::Counter,
                MetricType::GAUGE => Kind::Gauge,
                _ => Kind::Untyped,
            };
            out.family(family.name(), family.help(), kind);
            for m in family.get_metric() {
                let names: Vec<&str> = m.label.iter().map(|l| l.name()).collect();
                let values: Vec<String> = m.label.iter().map(|l| l.value().to_string()).collect();
                let labels = render_labels(names, &values);
                let value = match kind {
                    Kind::Counter => m.counter.value(),
                    Kind::Gauge => m.gauge.value(),
                    _ => m.untyped.value(),
                };
                out.sample_f64(&labels, None, value);
            }
        }
    }
}

pub fn libbpf_version() -> String {
    // SAFETY: plain getters with no arguments.
    let (major, minor) = unsafe {
        (
            libbpf_sys::libbpf_major_version(),
            libbpf_sys::libbpf_minor_version(),
        )
    };
    format!("{major}.{minor}")
}
