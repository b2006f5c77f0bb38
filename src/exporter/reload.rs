//! One configuration load, for start-up and every reload alike: read what
//! the configs are now, compare each with what runs, build only what is new
//! or changed, and hand the exporter one change to apply.
//!
//! A config whose YAML text and object bytes are what its running version
//! was built from is not touched: same programs, same maps, counters go on.
//! A new or changed config is loaded and attached beside what runs, and
//! replaces its old version in one step. A config whose new version fails
//! in any way keeps its old version running. With `strict`, a load with any
//! problem applies nothing.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::startup::{start_one, SpanRuntime};
use super::{Change, ConfigReport, Exporter, StartOptions};
use crate::config::watch::Extra;
use crate::config::{self, Config, ConfigError};
use crate::host::Host;
use crate::object::{resolve_object, ObjectBytes};
use crate::spans::SpanStats;

/// What a load did, for logs, the reload endpoint and sd_notify.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Every config applied as written (and, with `strict`, every program
    /// attached).
    pub success: bool,
    /// Configs found (files, named or built-in).
    pub seen: usize,
    /// Started: new, changed or retried, by name.
    pub started: Vec<String>,
    /// Stopped because their file is gone.
    pub removed: Vec<String>,
    /// Left running untouched.
    pub unchanged: usize,
    /// One line per problem, each naming its file (and line and key).
    pub errors: Vec<String>,
    /// `strict` refused the whole load.
    pub refused: bool,
    pub took: Duration,
}

impl Outcome {
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} started, {} removed, {} unchanged, {} problem(s) in {} ms",
            self.started.len(),
            self.removed.len(),
            self.unchanged,
            self.errors.len(),
            self.took.as_millis()
        );
        if self.refused {
            s.push_str("; --config.strict: nothing applied");
        }
        s
    }

    /// A failed load that built nothing (a reload that panicked).
    pub fn failed(why: String) -> Self {
        Self {
            errors: vec![why],
            ..Self::default()
        }
    }
}

/// Keeps what a load needs between loads: the options, the process's one
/// `Host`, the span export queue, and each config's generation count.
pub struct Loader {
    opts: StartOptions,
    host: Arc<Host>,
    spans: SpanRuntime,
    generations: HashMap<String, u64>,
    /// Object files outside the config directory, for the watcher.
    watched: Extra,
}

/// What to do with one config found.
enum Plan {
    Unchanged,
    Failed(Box<ConfigReport>),
    Build(Box<Build>),
}

/// A config to build: as found, its object's bytes, and the digest of the
/// two that the running version it replaces is compared by.
pub struct Build {
    pub config: Config,
    pub bytes: ObjectBytes,
    pub digest: u64,
}

/// What runs as a load begins, taken under the lock once.
struct Snapshot {
    /// Digest and metric names of each running config.
    running: HashMap<String, (u64, Vec<String>)>,
    /// Every config reported, running or failed.
    reported: Vec<String>,
    /// Programs each running version lacks, which a new version may lack
    /// too without being worse.
    not_attached: HashMap<String, HashSet<String>>,
}

impl Snapshot {
    fn take(exporter: &Exporter) -> Self {
        let running = exporter
            .configs()
            .iter()
            .map(|c| (c.name.clone(), (c.digest, c.metric_names.clone())))
            .collect();
        let reports = exporter.reports();
        let not_attached = reports
            .iter()
            .filter(|r| r.running)
            .map(|r| (r.name.clone(), missing_programs(r)))
            .collect();
        Self {
            running,
            reported: reports.iter().map(|r| r.name.clone()).collect(),
            not_attached,
        }
    }

    /// Configs gone since: running, or only reported as failed; either way
    /// forgotten.
    fn removed(&self, present: &HashSet<&str>) -> Vec<String> {
        let mut removed: Vec<String> = self
            .running
            .keys()
            .chain(&self.reported)
            .filter(|n| !present.contains(n.as_str()))
            .cloned()
            .collect();
        removed.sort();
        removed.dedup();
        removed
    }

    /// Metric name → the config holding it. A running config holds its
    /// names until a new version of it is built, since it may keep running.
    fn owners(&self, present: &HashSet<&str>) -> HashMap<String, String> {
        let mut owners = HashMap::new();
        for (name, (_, metrics)) in &self.running {
            if present.contains(name.as_str()) {
                for m in metrics {
                    owners.insert(m.clone(), name.clone());
                }
            }
        }
        owners
    }
}

/// Configs found, each with its name, in name order.
type Found = Vec<(String, Result<Config, ConfigError>)>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Loader {
    pub fn new(opts: StartOptions, host: Arc<Host>) -> Self {
        Self {
            opts,
            host,
            spans: SpanRuntime::default(),
            generations: HashMap::new(),
            watched: Extra::default(),
        }
    }

    pub fn span_stats(&self) -> Arc<SpanStats> {
        Arc::clone(&self.spans.stats)
    }

    pub fn options(&self) -> &StartOptions {
        &self.opts
    }

    /// The object files configs read from outside the config directory,
    /// kept current after each load.
    pub fn watched(&self) -> Extra {
        Arc::clone(&self.watched)
    }

    /// Every config as it is now, in name order, each with its name (a
    /// file that does not parse is named after the file).
    fn read_configs(&self) -> Result<Found, ConfigError> {
        let opts = &self.opts;
        let found = match &opts.config_dir {
            Some(dir) if opts.config_names.is_empty() => config::load_dir(dir)?,
            Some(dir) => config::load_named(dir, &opts.config_names),
            None => config::load_embedded(&opts.config_names),
        };
        let mut named: Found = found
            .into_iter()
            .map(|r| {
                let name = match &r {
                    Ok(c) => c.name.clone(),
                    Err(e) => ConfigReport::unparsed(e).name,
                };
                (name, r)
            })
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        named.dedup_by(|a, b| a.0 == b.0);
        Ok(named)
    }

    /// Loads what changed into `exporter` and applies it in one step:
    /// snapshot what runs, plan each config found, build the new and
    /// changed ones beside what runs, apply. `reload` is false for start-up.
    pub fn load(&mut self, exporter: &Mutex<Exporter>, reload: bool) -> Outcome {
        let began = Instant::now();
        let found = match self.read_configs() {
            Ok(found) => found,
            Err(e) => return unreadable(exporter, reload, e, began),
        };
        let snapshot = Snapshot::take(&lock(exporter));
        let present: HashSet<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
        let removed = snapshot.removed(&present);
        let owners = snapshot.owners(&present);
        let seen = found.len();
        let mut change = Change {
            reload,
            ..Change::default()
        };
        let mut to_build = Vec::new();
        for (name, found) in found {
            match self.plan(found, snapshot.running.get(&name).map(|r| r.0)) {
                Plan::Unchanged => change.unchanged.push(name),
                Plan::Failed(report) => change.failed.push(*report),
                Plan::Build(build) => to_build.push(*build),
            }
        }
        self.build(to_build, &snapshot, owners, &mut change);
        let mut outcome = self.apply(exporter, change, removed);
        outcome.seen = seen;
        outcome.took = began.elapsed();
        outcome
    }

    /// Builds each planned config beside what runs. Two passes, so that a
    /// metric moved from one config to another in one edit lands whichever
    /// of the two sorts first.
    fn build(
        &mut self,
        mut to_build: Vec<Build>,
        snapshot: &Snapshot,
        mut owners: HashMap<String, String>,
        change: &mut Change,
    ) {
        for pass in 0..2 {
            let mut refused = Vec::new();
            for build in to_build {
                if let Some(e) = duplicate_metric(&build.config, &owners) {
                    if pass == 0 {
                        refused.push(build);
                    } else {
                        log::error!("{e}");
                        change
                            .failed
                            .push(ConfigReport::new(&build.config).failed(e.to_string()));
                    }
                    continue;
                }
                let name = &build.config.name;
                let (built, report) = start_one(&build, &self.opts, &self.host, &self.spans);
                let (built, mut report) = match built {
                    Some(built) => no_program_lost(
                        built,
                        &build.config,
                        report,
                        snapshot.not_attached.get(name),
                    ),
                    None => (None, report),
                };
                let Some(built) = built else {
                    change.failed.push(report);
                    continue;
                };
                owners.retain(|_, holder| holder != name);
                for m in &built.metric_names {
                    owners.insert(m.clone(), name.clone());
                }
                let generation = self.generations.entry(name.clone()).or_default();
                *generation += 1;
                report.generation = *generation;
                change.start.push(built);
                change.started.push(report);
            }
            to_build = refused;
        }
    }

    /// Judges the load and applies it in one step (nothing of it, when
    /// `strict` and anything failed); versions it stopped are torn down
    /// after, outside the lock, so scrapes go on meanwhile.
    fn apply(
        &self,
        exporter: &Mutex<Exporter>,
        mut change: Change,
        removed: Vec<String>,
    ) -> Outcome {
        let mut outcome = Outcome::default();
        for r in change.failed.iter().chain(&change.started) {
            outcome.errors.extend(r.problems());
        }
        outcome.success = if self.opts.strict {
            outcome.errors.is_empty()
        } else {
            change.failed.is_empty()
        };
        if self.opts.strict && !outcome.success {
            // Nothing applies: what was built is detached right here, and
            // the failures are shown.
            outcome.refused = true;
            for built in change.start.drain(..) {
                built.detach();
            }
            change.started.clear();
            change.unchanged.clear();
        } else {
            change.remove = removed.clone();
            outcome.removed = removed;
        }
        outcome.started = change.start.iter().map(|c| c.name.clone()).collect();
        outcome.unchanged = change.unchanged.len();
        change.success = outcome.success;

        let stopped = lock(exporter).apply(change);
        for old in stopped {
            old.detach();
        }
        let outside: Vec<PathBuf> = lock(exporter)
            .configs()
            .iter()
            .filter_map(|c| c.object_path.clone())
            .collect();
        *lock(&self.watched) = outside;
        outcome
    }

    /// Decides what to do with one config found, given the digest of its
    /// running version if any.
    fn plan(&self, found: Result<Config, ConfigError>, running: Option<u64>) -> Plan {
        let config = match found {
            Ok(config) => config,
            Err(e) => {
                log::error!("{e}");
                return Plan::Failed(Box::new(ConfigReport::unparsed(&e)));
            }
        };
        let bytes = match resolve_object(&config) {
            Ok(bytes) => bytes,
            Err(e) => {
                log::error!("config {} not started: {e}", config.name);
                return Plan::Failed(Box::new(ConfigReport::new(&config).failed(e.to_string())));
            }
        };
        let object = match &bytes.bytes {
            // Built into the binary: the same bytes for the life of the
            // process, so their address is their identity, and hashing
            // them again at every reload would be wasted.
            std::borrow::Cow::Borrowed(b) => {
                config::load::digest(&(b.as_ptr() as usize).to_ne_bytes()) ^ b.len() as u64
            }
            std::borrow::Cow::Owned(b) => config::load::digest(b),
        };
        let digest = config.digest ^ object.rotate_left(1);
        if running == Some(digest) {
            return Plan::Unchanged;
        }
        Plan::Build(Box::new(Build {
            config,
            bytes,
            digest,
        }))
    }
}

/// The directory itself is unreadable: nothing is known to be gone, so
/// nothing is stopped, and the load is recorded as failed.
fn unreadable(exporter: &Mutex<Exporter>, reload: bool, e: ConfigError, began: Instant) -> Outcome {
    log::error!("{e}");
    let change = Change {
        success: false,
        reload,
        ..Change::default()
    };
    drop(lock(exporter).apply(change));
    Outcome {
        errors: vec![e.to_string()],
        took: began.elapsed(),
        ..Outcome::default()
    }
}

/// A new version that lacks a program its running version has would lose
/// data: it is detached, and the running version stays.
fn no_program_lost(
    built: super::RunningConfig,
    config: &Config,
    report: ConfigReport,
    before: Option<&HashSet<String>>,
) -> (Option<super::RunningConfig>, ConfigReport) {
    let Some(before) = before else {
        return (Some(built), report);
    };
    let lost: Vec<String> = missing_programs(&report)
        .difference(before)
        .cloned()
        .collect();
    if lost.is_empty() {
        return (Some(built), report);
    }
    built.detach();
    let e = config.error(
        "object",
        format!(
            "the new version's program(s) {} did not load or attach; \
             the running version keeps running",
            lost.join(", ")
        ),
    );
    log::error!("{e}");
    (None, report.failed(e.to_string()))
}

/// Names of a report's programs that did not load or attach.
fn missing_programs(report: &ConfigReport) -> HashSet<String> {
    report
        .programs
        .iter()
        .filter(|p| !p.attached())
        .map(|p| p.name.clone())
        .collect()
}

fn duplicate_metric(config: &Config, owners: &HashMap<String, String>) -> Option<ConfigError> {
    config.specs().find_map(|spec| {
        spec.exposed_names().into_iter().find_map(|exposed| {
            let owner = owners.get(&exposed)?;
            (*owner != config.name).then(|| {
                let what = if exposed == spec.name {
                    format!("metric {exposed:?} is already defined by config {owner:?}")
                } else {
                    format!(
                        "metric {:?} would be served as {exposed:?}, which config {owner:?} already serves",
                        spec.name
                    )
                };
                config.error(
                    &spec.key("name"),
                    format!(
                        "{what}, which keeps it; config {:?} is refused (metric names must be unique \
                         across configs and exposition formats; of two, the one already running wins, \
                         then the config whose name sorts first)",
                        config.name
                    ),
                )
            })
        })
    })
}

/// A load's outcome written to the log.
pub fn log_outcome(what: &str, outcome: &Outcome) {
    if outcome.success {
        log::info!("{what}: {}", outcome.summary());
    } else {
        log::error!(
            "{what} with problems: {}:\n  {}",
            outcome.summary(),
            outcome.errors.join("\n  ")
        );
    }
}
