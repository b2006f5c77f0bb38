//! Start-up: load every config, and keep going past the ones that fail.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use libbpf_rs::MapCore;

use super::{ConfigReport, ConfigState, Exporter};
use crate::config::{self, Config, ConfigError};
use crate::decode::DecoderEnv;
use crate::maps::cgroup_id_map::{spawn_sync, CgroupIdMapSync};
use crate::metrics::{bind_events, bind_metrics};
use crate::object::load::LoadOptions;
use crate::object::{kaddrs, load_object, resolve_object, ProgramState};

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
    let configs: Vec<Result<Config, ConfigError>> = match &opts.config_dir {
        Some(dir) if opts.config_names.is_empty() => {
            config::load_dir(dir).map_err(anyhow::Error::new)?
        }
        Some(dir) => config::load_named(dir, &opts.config_names),
        None => config::load_embedded(&opts.config_names),
    };
    if configs.is_empty() {
        bail!("no configs found");
    }
    let env = DecoderEnv::new();
    let mut kallsyms: Option<String> = None;
    // Metric name -> config that defines it: two families of one name make
    // the whole exposition invalid, so the second config is refused.
    let mut owners: HashMap<String, String> = HashMap::new();
    let mut states = Vec::new();
    let mut reports = Vec::new();
    for loaded in configs {
        let (state, report) = match loaded {
            Ok(config) => match duplicate_metric(&config, &owners) {
                Some(e) => {
                    log::error!("{e}");
                    (None, failed_report(&config, e.to_string()))
                }
                None => {
                    let started = start_one(&config, opts, &env, &mut kallsyms);
                    if started.0.is_some() {
                        for name in metric_names(&config) {
                            owners.insert(name.to_string(), config.name.clone());
                        }
                    }
                    started
                }
            },
            Err(e) => {
                log::error!("{e}");
                (
                    None,
                    ConfigReport {
                        name: e
                            .file
                            .rsplit('/')
                            .next()
                            .unwrap_or(&e.file)
                            .trim_end_matches(".yaml")
                            .to_string(),
                        file: e.file.clone(),
                        object: String::new(),
                        error: Some(e.to_string()),
                        programs: Vec::new(),
                        metrics: Vec::new(),
                    },
                )
            }
        };
        if let Some(s) = state {
            states.push(s);
        }
        reports.push(report);
    }
    if opts.strict {
        let mut problems = Vec::new();
        for r in &reports {
            if let Some(e) = &r.error {
                problems.push(e.clone());
            }
            for p in &r.programs {
                match &p.state {
                    ProgramState::Attached => {}
                    ProgramState::LoadFailed(why) | ProgramState::AttachFailed(why) => problems
                        .push(format!(
                            "{}: program {} ({}): {why}",
                            r.file, p.name, p.section
                        )),
                }
            }
        }
        if !problems.is_empty() {
            bail!(
                "--config.strict: {} problem(s):\n  {}",
                problems.len(),
                problems.join("\n  ")
            );
        }
    }
    // Maps the programs filter on are filled before the exporter serves.
    spawn_sync(
        states
            .iter_mut()
            .filter_map(|s| s.cgroup_id_map.take())
            .collect(),
    );
    if states.is_empty() {
        let why: Vec<String> = reports.iter().filter_map(|r| r.error.clone()).collect();
        bail!(
            "none of the {} config(s) could start:\n  {}",
            reports.len(),
            why.join("\n  ")
        );
    }
    Ok(Exporter::new(states, reports))
}

fn start_one(
    config: &Config,
    opts: &StartOptions,
    env: &Arc<DecoderEnv>,
    kallsyms: &mut Option<String>,
) -> (Option<ConfigState>, ConfigReport) {
    let mut report = ConfigReport {
        name: config.name.clone(),
        file: config.file.clone(),
        object: String::new(),
        error: None,
        programs: Vec::new(),
        metrics: Vec::new(),
    };
    for warning in unsupported_keys(config) {
        log::warn!("{warning}");
    }
    let result = (|| -> anyhow::Result<ConfigState> {
        let bytes = resolve_object(config)?;
        report.object = bytes.origin.clone();
        let addrs = if config.spec.kaddrs.is_empty() {
            HashMap::new()
        } else {
            if kallsyms.is_none() {
                *kallsyms = Some(
                    std::fs::read_to_string("/proc/kallsyms")
                        .context("reading /proc/kallsyms for kaddrs")?,
                );
            }
            let text = kallsyms.as_deref().unwrap_or_default();
            kaddrs::resolve(text, &config.spec.kaddrs).map_err(|e| config.error("kaddrs", e))?
        };
        let load_opts = LoadOptions {
            kaddrs: &addrs,
            btf_path: opts.btf_path.as_deref(),
        };
        let loaded = load_object(&bytes, &load_opts).map_err(|e| config.error("", e))?;
        report.programs = loaded.programs.clone();
        let collectors = bind_metrics(config, &loaded.object, env, opts.cache_max_idle.max(1))?;
        let cgroup_id_map = match &config.spec.cgroup_id_map {
            None => None,
            Some(spec) => {
                let map = loaded
                    .object
                    .maps()
                    .find(|m| m.name().to_str() == Some(spec.name.as_str()))
                    .ok_or_else(|| {
                        config.error(
                            "cgroup_id_map.name",
                            format!("the object has no map named {:?}", spec.name),
                        )
                    })?;
                let handle = libbpf_rs::MapHandle::try_from(&map).map_err(|e| {
                    config.error("cgroup_id_map.name", format!("map {:?}: {e}", spec.name))
                })?;
                Some(
                    CgroupIdMapSync::new(&config.name, spec, handle)
                        .map_err(|e| config.error("cgroup_id_map", e))?,
                )
            }
        };
        report.metrics = collectors.iter().map(|c| c.name.clone()).collect();
        let events = bind_events(config, &loaded.object, env)?;
        report.metrics.extend(events.iter().map(|e| e.name.clone()));
        Ok(ConfigState {
            name: config.name.clone(),
            collectors,
            events,
            cgroup_id_map,
            _object: loaded,
        })
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
            log::error!("config {} not started: {e:#}", config.name);
            report.error = Some(format!("{e:#}"));
            (None, report)
        }
    }
}

fn metric_names(config: &Config) -> impl Iterator<Item = &str> {
    let m = &config.spec.metrics;
    m.counters
        .iter()
        .chain(&m.gauges)
        .map(|c| c.name.as_str())
        .chain(m.histograms.iter().map(|h| h.name.as_str()))
}

fn duplicate_metric(config: &Config, owners: &HashMap<String, String>) -> Option<ConfigError> {
    let m = &config.spec.metrics;
    let keys = m
        .counters
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("metrics.counters[{i}].name"), c.name.as_str()))
        .chain(
            m.gauges
                .iter()
                .enumerate()
                .map(|(i, c)| (format!("metrics.gauges[{i}].name"), c.name.as_str())),
        )
        .chain(
            m.histograms
                .iter()
                .enumerate()
                .map(|(i, h)| (format!("metrics.histograms[{i}].name"), h.name.as_str())),
        );
    for (key, name) in keys {
        if let Some(owner) = owners.get(name) {
            return Some(config.error(
                &key,
                format!("metric {name:?} is already defined by config {owner:?}; metric names must be unique across configs"),
            ));
        }
    }
    None
}

fn failed_report(config: &Config, error: String) -> ConfigReport {
    ConfigReport {
        name: config.name.clone(),
        file: config.file.clone(),
        object: String::new(),
        error: Some(error),
        programs: Vec::new(),
        metrics: Vec::new(),
    }
}

/// Reference keys this exporter parses but does not act on; said out loud
/// so nobody wonders why nothing happens.
fn unsupported_keys(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if config
        .spec
        .tracing
        .as_ref()
        .is_some_and(|t| !t.spans.is_empty())
    {
        out.push(
            config
                .error(
                    "tracing",
                    "tracing spans are not exported by ebpf-exporter; the key is ignored",
                )
                .to_string(),
        );
    }
    out
}
