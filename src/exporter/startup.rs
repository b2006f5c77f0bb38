//! Start-up: load every config, and keep going past the ones that fail.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::bail;

use super::{ConfigReport, Exporter, RunningConfig};
use crate::config::{self, Config, ConfigError};
use crate::decode::RowDecoder;
use crate::host::Host;
use crate::maps::cgroup_id_map::CgroupIdMapSync;
use crate::metrics::{bind_collectors, Collector};
use crate::object::load::LoadOptions;
use crate::object::{load_object, resolve_object, LoadedObject};
use crate::spans::export::{self, SpanQueue};
use crate::spans::reader::{SpanReader, SpanSource};
use crate::spans::SpanStats;
use libbpf_rs::MapCore;

#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Read configs from here; `None` runs the built-in configs.
    pub config_dir: Option<PathBuf>,
    /// Config names; empty means all in the dir (or the built-in defaults).
    pub config_names: Vec<String>,
    /// Any config or attach failure is fatal.
    pub strict: bool,
    pub btf_path: Option<PathBuf>,
    /// Scrapes a key may go unseen before its decoded labels are forgotten.
    pub cache_max_idle: u32,
}

/// Loads all configs. Fails only when `strict` is set and something failed,
/// or when configs were found but none could run.
pub fn start(opts: &StartOptions) -> anyhow::Result<Exporter> {
    crate::object::libbpf_log::install();
    let mut configs: Vec<Result<Config, ConfigError>> = match &opts.config_dir {
        Some(dir) if opts.config_names.is_empty() => {
            config::load_dir(dir).map_err(anyhow::Error::new)?
        }
        Some(dir) => config::load_named(dir, &opts.config_names),
        None => config::load_embedded(&opts.config_names),
    };
    if configs.is_empty() {
        bail!("no configs found");
    }
    // Started in name order whatever order --config.names gave, so which
    // of two configs claiming one metric name wins never depends on how
    // they were listed.
    configs.sort_by(|a, b| sort_key(a).cmp(sort_key(b)));
    let host = Host::new();
    let spans = SpanRuntime::default();
    // Metric name -> config that defines it: two families of one name make
    // the whole exposition invalid, so the config whose name sorts later is
    // refused, with an error naming both.
    let mut owners: HashMap<String, String> = HashMap::new();
    let mut running = Vec::new();
    let mut reports = Vec::new();
    for loaded in configs {
        let config = match loaded {
            Ok(config) => config,
            Err(e) => {
                log::error!("{e}");
                reports.push(ConfigReport::unparsed(&e));
                continue;
            }
        };
        if let Some(e) = duplicate_metric(&config, &owners) {
            log::error!("{e}");
            reports.push(ConfigReport::new(&config).failed(e.to_string()));
            continue;
        }
        let (state, report) = start_one(&config, opts, &host, &spans);
        if state.is_some() {
            for spec in config.specs() {
                owners.insert(spec.name.to_string(), config.name.clone());
            }
        }
        running.extend(state);
        reports.push(report);
    }
    if opts.strict {
        let problems: Vec<String> = reports.iter().flat_map(ConfigReport::problems).collect();
        if !problems.is_empty() {
            bail!(
                "--config.strict: {} problem(s):\n  {}",
                problems.len(),
                problems.join("\n  ")
            );
        }
    }
    if running.is_empty() {
        let why: Vec<String> = reports.iter().filter_map(|r| r.error.clone()).collect();
        bail!(
            "none of the {} config(s) could start:\n  {}",
            reports.len(),
            why.join("\n  ")
        );
    }
    Ok(Exporter::new(running, reports, spans.stats))
}

/// The span export queue, started by the first config that has spans, and
/// the counts every config's spans add to.
#[derive(Default)]
struct SpanRuntime {
    queue: std::cell::OnceCell<Result<SpanQueue, String>>,
    stats: Arc<SpanStats>,
}

/// Starts a reader for each of the config's spans.
fn start_spans(
    config: &Config,
    loaded: &LoadedObject,
    host: &Arc<Host>,
    runtime: &SpanRuntime,
) -> Result<Vec<SpanReader>, ConfigError> {
    let Some(tracing) = &config.spec.tracing else {
        return Ok(Vec::new());
    };
    let mut readers = Vec::new();
    for (i, span) in tracing.spans.iter().enumerate() {
        let at = format!("tracing.spans[{i}]");
        let queue = runtime
            .queue
            .get_or_init(export::start)
            .as_ref()
            .map_err(|e| config.error(&at, e.clone()))?;
        let handle = loaded
            .map_handle(&span.ringbuf)
            .map_err(|e| config.error(&format!("{at}.ringbuf"), e.to_string()))?;
        if handle.map_type() != libbpf_rs::MapType::RingBuf {
            return Err(config.error(
                &format!("{at}.ringbuf"),
                format!(
                    "map {:?} is {:?}, not a RINGBUF",
                    span.ringbuf,
                    handle.map_type()
                ),
            ));
        }
        let rows = RowDecoder::new(&span.labels, host).map_err(|e| {
            config.error(
                &format!(
                    "{at}.labels[{}].decoders[{}]",
                    e.label_index, e.decoder_index
                ),
                e.to_string(),
            )
        })?;
        let name = if span.name.is_empty() {
            span.ringbuf.clone()
        } else {
            span.name.clone()
        };
        let service: Arc<str> = span
            .service
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(export::default_service)
            .into();
        let source = SpanSource {
            config: config.name.clone(),
            name,
            service,
            rows,
        };
        readers.push(
            SpanReader::start(
                source,
                handle,
                queue.clone(),
                runtime.stats.for_config(&config.name),
            )
            .map_err(|e| config.error(&format!("{at}.ringbuf"), e))?,
        );
    }
    Ok(readers)
}

fn start_one(
    config: &Config,
    opts: &StartOptions,
    host: &Arc<Host>,
    spans: &SpanRuntime,
) -> (Option<RunningConfig>, ConfigReport) {
    let mut report = ConfigReport::new(config);
    let result = (|| -> Result<RunningConfig, ConfigError> {
        let bytes = resolve_object(config)?;
        report.object = bytes.origin.clone();
        let addrs = if config.spec.kaddrs.is_empty() {
            HashMap::new()
        } else {
            host.kallsyms
                .addresses(&config.spec.kaddrs)
                .map_err(|e| config.error("kaddrs", e))?
        };
        let load_opts = LoadOptions {
            kaddrs: &addrs,
            btf_path: opts.btf_path.as_deref(),
        };
        let loaded =
            load_object(&bytes, &load_opts).map_err(|e| config.error("object", e.to_string()))?;
        report.programs = loaded.programs.clone();
        let collectors: Vec<Box<dyn Collector>> =
            bind_collectors(config, &loaded, host, opts.cache_max_idle.max(1))?;
        report.metrics = collectors.iter().map(|c| c.id().name.clone()).collect();
        // Maps the programs filter on are filled before the config serves.
        let cgroup_sync = match &config.spec.cgroup_id_map {
            None => None,
            Some(spec) => {
                let handle = loaded
                    .map_handle(&spec.name)
                    .map_err(|e| config.error("cgroup_id_map.name", e.to_string()))?;
                let sync = CgroupIdMapSync::new(&config.name, spec, handle)
                    .map_err(|e| config.error("cgroup_id_map", e))?;
                Some(
                    sync.start(host.cgroups.clone())
                        .map_err(|e| config.error("cgroup_id_map", e))?,
                )
            }
        };
        let span_readers = start_spans(config, &loaded, host, spans)?;
        Ok(RunningConfig::new(
            config,
            collectors,
            cgroup_sync,
            span_readers,
            loaded,
        ))
    })();
    match result {
        Ok(state) => {
            let attached = report.programs.iter().filter(|p| p.attached()).count();
            log::info!(
                "config {}: {} from {}, {attached}/{} programs attached, metrics: {}",
                config.name,
                config.file,
                report.object,
                report.programs.len(),
                report.metrics.join(", ")
            );
            (Some(state), report)
        }
        Err(e) => {
            log::error!("config {} not started: {e}", config.name);
            (None, report.failed(e.to_string()))
        }
    }
}

fn sort_key(c: &Result<Config, ConfigError>) -> &str {
    match c {
        Ok(c) => &c.name,
        Err(e) => &e.file,
    }
}

fn duplicate_metric(config: &Config, owners: &HashMap<String, String>) -> Option<ConfigError> {
    config.specs().find_map(|spec| {
        owners.get(spec.name).map(|owner| {
            config.error(
                &spec.key("name"),
                format!(
                    "metric {:?} is already defined by config {owner:?}, which keeps it; \
                     config {:?} is refused (metric names must be unique across configs; \
                     of two, the config whose name sorts first wins)",
                    spec.name, config.name
                ),
            )
        })
    })
}
