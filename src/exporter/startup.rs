//! Start-up: load every config, and keep going past the ones that fail.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::bail;

use super::reload::Build;
use super::Parts;
use super::{ConfigReport, Exporter, Loader, RunningConfig};
use crate::config::{Config, ConfigError};
use crate::decode::RowDecoder;
use crate::host::Host;
use crate::maps::cgroup_id_map::CgroupIdMapSync;
use crate::metrics::bind::BindOptions;
use crate::metrics::{bind_collectors, Collector};
use crate::object::btf::ObjectTypes;
use crate::object::load::LoadOptions;
use crate::object::{load_object, LoadedObject, ObjectError};
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
    /// `--maps.read-method`.
    pub read_method: crate::maps::ReadPolicy,
    /// `--metrics.max-series`.
    pub max_series: Option<usize>,
    /// `--kubernetes.log-dir`: where the kubelet writes pod logs.
    pub kubelet_log_dir: Option<PathBuf>,
}

/// The first load of a `Loader`, whatever came of it: `--config.check`
/// reports on every config, including when none could start.
pub fn load_all(opts: &StartOptions) -> (Exporter, Loader, super::Outcome) {
    crate::object::libbpf_log::install();
    let host = match &opts.kubelet_log_dir {
        Some(dir) => Host::with_kubelet_logs(dir.clone()),
        None => Host::new(),
    };
    let mut loader = Loader::new(opts.clone(), host);
    let exporter = std::sync::Mutex::new(Exporter::new(loader.span_stats()));
    let outcome = loader.load(&exporter, false);
    let exporter = exporter.into_inner().unwrap_or_else(|p| p.into_inner());
    (exporter, loader, outcome)
}

/// Loads all configs: the first load of a `Loader`, with start-up's rules on
/// top. Fails only when `strict` is set and something failed, or when
/// configs were found but none could run.
pub fn start(opts: &StartOptions) -> anyhow::Result<(Exporter, Loader)> {
    let (exporter, loader, outcome) = load_all(opts);
    if outcome.seen == 0 {
        bail!("no configs found");
    }
    if opts.strict && !outcome.success {
        bail!(
            "--config.strict: {} problem(s):\n  {}",
            outcome.errors.len(),
            outcome.errors.join("\n  ")
        );
    }
    if exporter.configs().is_empty() {
        bail!(
            "none of the {} config(s) could start:\n  {}",
            outcome.seen,
            outcome.errors.join("\n  ")
        );
    }
    Ok((exporter, loader))
}

/// The span export queue, started by the first config that has spans, and
/// the counts every config's spans add to.
#[derive(Default)]
pub(super) struct SpanRuntime {
    queue: std::cell::OnceCell<std::io::Result<SpanQueue>>,
    pub(super) stats: Arc<SpanStats>,
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
            .map_err(|e| config.error(&at, format!("starting the span export thread: {e}")))?;
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
            config.error(&format!("{at}.{}", e.key_at(e.label_index)), e.to_string())
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
            .map_err(|e| {
                config.error(
                    &format!("{at}.ringbuf"),
                    format!("reading the ring buffer: {e}"),
                )
            })?,
        );
    }
    Ok(readers)
}

/// Builds one config from its object bytes: loads, attaches and binds it,
/// ready to publish. Nothing of it is visible to scrapes yet.
pub(super) fn start_one(
    build: &Build,
    opts: &StartOptions,
    host: &Arc<Host>,
    spans: &SpanRuntime,
) -> (Option<RunningConfig>, ConfigReport) {
    let (config, bytes) = (&build.config, &build.bytes);
    let mut report = ConfigReport::new(config);
    report.object = bytes.origin.clone();
    let result = (|| -> Result<RunningConfig, ConfigError> {
        // Probe metrics become a config of the generic probe object.
        let planned = if config.specs().any(|s| s.probe.is_some()) {
            Some(crate::probes::plan(config)?)
        } else {
            None
        };
        let typed_globals = planned.as_ref().map_or(&[][..], |p| &p.globals[..]);
        let refused = planned.as_ref().map_or(&[][..], |p| &p.refused[..]);
        report.refused = refused.iter().map(|(_, e)| e.to_string()).collect();
        let left_out: Vec<String> = refused.iter().map(|(at, _)| at.clone()).collect();
        let config = planned.as_ref().map_or(config, |p| &p.config);
        let addrs = if config.spec.kaddrs.is_empty() {
            HashMap::new()
        } else {
            host.kallsyms
                .addresses(&config.spec.kaddrs)
                .map_err(|e| config.error("kaddrs", e.to_string()))?
        };
        let programs = config.spec.programs.clone().unwrap_or_default();
        let encode_entries = |types: Option<&ObjectTypes>, object: &libbpf_rs::Object| {
            crate::metrics::entries::encode_all(&config.spec.maps, types, object, host)
        };
        let filled = config
            .spec
            .maps
            .values()
            .any(|m| !m.entries.is_empty() || !m.decoders.is_empty());
        let load_opts = LoadOptions {
            kaddrs: &addrs,
            btf_path: opts.btf_path.as_deref(),
            alternatives: &programs.one_of,
            include: &programs.include,
            exclude: &programs.exclude,
            attach: &programs.attach,
            constants: &config.spec.constants,
            maps: &config.spec.maps,
            entries: if filled { Some(&encode_entries) } else { None },
            typed_globals,
        };
        let loaded = load_object(bytes, &load_opts).map_err(|e| {
            let key = match &e {
                ObjectError::NoSuchProgram { group, index, .. } => {
                    format!("programs.one_of[{group}][{index}]")
                }
                ObjectError::ProgramChoice { key, .. } => key.clone(),
                ObjectError::AttachOverride { program, .. } => format!("programs.attach.{program}"),
                ObjectError::Constant(name, _) => format!("constants.{name}"),
                ObjectError::MapSetting { map, key: "", .. } => format!("maps.{map}"),
                ObjectError::MapSetting { map, key, .. } => format!("maps.{map}.{key}"),
                ObjectError::MapEntry { map, at, .. } => format!("maps.{map}.{at}"),
                _ => "object".to_string(),
            };
            config.error(&key, e.to_string())
        })?;
        report.programs = loaded.programs.clone();
        report.unused = loaded.unused.clone();
        // A probe config's object is the generic one, whose unused slots
        // the planner leaves out: listing them would say nothing the
        // config's author wrote.
        if planned.is_none() {
            report.left_out = loaded.left_out.clone();
        }
        let collectors: Vec<Box<dyn Collector>> = bind_collectors(
            config,
            &loaded,
            host,
            BindOptions {
                cache_max_idle: opts.cache_max_idle.max(1),
                max_series: opts.max_series,
                read_method: opts.read_method,
            },
            &left_out,
        )?;
        report.metrics = collectors.iter().map(|c| c.id().name.clone()).collect();
        report.layouts = collectors.iter().map(|c| c.id().layout.clone()).collect();
        // Maps the programs filter on are filled before the config serves.
        let cgroup_sync = match &config.spec.cgroup_id_map {
            None => None,
            Some(spec) => {
                let handle = loaded
                    .map_handle(&spec.name)
                    .map_err(|e| config.error("cgroup_id_map.name", e.to_string()))?;
                let sync = CgroupIdMapSync::new(&config.name, spec, handle)
                    .map_err(|e| config.error("cgroup_id_map", e))?;
                Some(sync.start(host.cgroups.clone()).map_err(|e| {
                    config.error(
                        "cgroup_id_map",
                        format!("starting the cgroup_id_map thread: {e}"),
                    )
                })?)
            }
        };
        // Checked last, so that a more precise error (a map of a type this
        // kernel lacks, say) is the one reported. With no program running
        // it would serve empty metrics as if all were well.
        let (attached, all) = report.attached();
        if all > 0 && attached == 0 {
            return Err(config.error(
                "object",
                format!(
                    "none of its {all} program(s) loaded and attached, so it would serve nothing"
                ),
            ));
        }
        let span_readers = start_spans(config, &loaded, host, spans)?;
        Ok(RunningConfig::new(
            build,
            Parts {
                collectors,
                cgroup_sync,
                spans: span_readers,
                object: loaded,
                evicting: planned.map(|p| p.inflight).unwrap_or_default(),
            },
        ))
    })();
    match result {
        Ok(state) => {
            let (attached, all) = report.attached();
            let line = format!(
                "config {}: {} from {}, {attached}/{all} programs attached, metrics: {}",
                config.name,
                config.file,
                report.object,
                report.metrics.join(", ")
            );
            for refused in &report.refused {
                log::warn!("config {}: metric left out: {refused}", config.name);
            }
            if attached < all {
                log::warn!(
                    "{line}: DEGRADED, the metrics its other programs feed stay empty or short"
                );
            } else if !report.refused.is_empty() {
                log::warn!(
                    "{line}: DEGRADED, {} metric(s) left out",
                    report.refused.len()
                );
            } else {
                log::info!("{line}");
            }
            (Some(state), report)
        }
        Err(e) => {
            log::error!("config {} not started: {e}", config.name);
            (None, report.failed(e.to_string()))
        }
    }
}
