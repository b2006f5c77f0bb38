//! Ties the data path together: starts every config (isolating failures),
//! applies reloads as one step between scrapes, and renders a scrape from
//! all of them plus the exporter's own metrics.

pub mod reload;
pub mod reloader;
pub mod report;
pub mod self_metrics;
pub mod startup;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use crate::config::Config;
use crate::encode::{ChunkPool, Format, Spill, Writer};
use crate::host::{HostTable, Privileges};
use crate::maps::cgroup_id_map::CgroupIdMapTask;
use crate::maps::pressure::{Occupancy, UpdateFailures, FAILURES_MAP};
use crate::maps::Walk;
use crate::metrics::Collector;
use crate::object::LoadedObject;
use crate::spans::reader::SpanReader;
use crate::spans::SpanStats;

pub use reload::{Loader, Outcome};
pub use reloader::{ReloadHandle, Reloader};
pub use report::{ConfigReport, ReportBoard};
pub use self_metrics::SelfMetrics;
pub use startup::{start, StartOptions};

/// Scrapes whose maps held this many entries in all last time read them
/// one ahead on a second thread; below, the thread costs more than it hides.
const READ_AHEAD_FROM: usize = 2048;

/// A running config: what it collects, and the loaded object those read.
/// Fields drop in order, so collectors and the cgroup sync stop before the
/// object's programs detach and its maps close.
pub struct RunningConfig {
    pub name: String,
    /// Of the YAML text and the object bytes this version was built from
    /// (`reload::Build::digest`), to tell an unchanged config.
    pub digest: u64,
    /// Every name this version's metrics take in any exposition format
    /// (`MetricSpec::exposed_names`), which no other config may use.
    pub metric_names: Vec<String>,
    /// The object file read, if on disk.
    pub object_path: Option<std::path::PathBuf>,
    uses: Privileges,
    collectors: Vec<Box<dyn Collector>>,
    _cgroup_sync: Option<CgroupIdMapTask>,
    /// Inserts the BPF helpers could not make, per metric map.
    failures: Option<UpdateFailures>,
    /// How full the state maps that evict are.
    occupancy: Option<Occupancy>,
    _spans: Vec<SpanReader>,
    object: LoadedObject,
}

/// What building a config made, which a `RunningConfig` holds.
pub struct Parts {
    pub collectors: Vec<Box<dyn Collector>>,
    pub cgroup_sync: Option<CgroupIdMapTask>,
    pub spans: Vec<SpanReader>,
    pub object: LoadedObject,
    /// State maps that evict when full, whose fill is reported (a probe's
    /// in-flight starts).
    pub evicting: Vec<String>,
}

impl RunningConfig {
    /// The running version of `build`, from what building it made.
    pub fn new(build: &reload::Build, parts: Parts) -> Self {
        let Parts {
            collectors,
            cgroup_sync,
            spans,
            object,
            evicting,
        } = parts;
        let occupancy = (!evicting.is_empty()).then(|| {
            Occupancy::new(
                evicting
                    .into_iter()
                    .filter_map(|name| {
                        let handle = object.map_handle(&name).ok()?;
                        Some((name, handle))
                    })
                    .collect(),
            )
        });
        Self {
            name: build.config.name.clone(),
            digest: build.digest,
            metric_names: build
                .config
                .specs()
                .flat_map(|s| s.exposed_names())
                .collect(),
            object_path: build.bytes.path.clone(),
            uses: serving_privileges(&build.config),
            failures: failures_of(&object, &collectors),
            occupancy,
            collectors,
            _cgroup_sync: cgroup_sync,
            _spans: spans,
            object,
        }
    }

    /// The maps its self-metrics can name, for forgetting them.
    fn map_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .collectors
            .iter()
            .map(|c| c.id().map_name.clone())
            .collect();
        if let Some(f) = &self.failures {
            names.extend(f.names().map(str::to_string));
        }
        names.sort();
        names.dedup();
        names
    }

    /// Stops collecting and detaches every program; the kernel frees the
    /// programs and maps once no fd of them is left.
    pub fn detach(self) {
        let programs = self.object.programs.len();
        drop(self);
        log::debug!("detached a config with {programs} program(s)");
    }
}

/// The failure counts of an object built with the shared helpers.
fn failures_of(object: &LoadedObject, collectors: &[Box<dyn Collector>]) -> Option<UpdateFailures> {
    use libbpf_rs::MapCore;
    let failures = object.map_handle(FAILURES_MAP).ok()?;
    let maps: Vec<(String, libbpf_rs::MapHandle, bool)> = object
        .object
        .maps()
        .map(|m| m.name().to_string_lossy().into_owned())
        .filter(|name| !name.contains('.') && name != FAILURES_MAP)
        .filter_map(|name| {
            let metric = collectors.iter().any(|c| c.id().map_name == name);
            let handle = object.map_handle(&name).ok()?;
            Some((name, handle, metric))
        })
        .collect();
    Some(UpdateFailures::new(failures, maps))
}

/// What a config keeps reading from the host while it serves: the host
/// tables its decoders read, as their registry entries say, and the cgroup
/// tree for `cgroup_id_map`. It decides the privileges kept after the drop.
pub fn serving_privileges(config: &Config) -> Privileges {
    let mut privileges = Privileges::default();
    let probe_cgroups = config
        .specs()
        .filter_map(|s| s.probe)
        .any(|p| p.filter.iter().any(|f| f.cgroup.is_some()));
    if config.spec.cgroup_id_map.is_some() || probe_cgroups {
        privileges = privileges.reading(HostTable::CgroupTree);
    }
    let decoders = config
        .specs()
        .flat_map(|s| s.labels.iter())
        .chain(
            config
                .spec
                .tracing
                .iter()
                .flat_map(|t| t.spans.iter())
                .flat_map(|s| s.labels.iter()),
        )
        .flat_map(|l| l.decoders.iter());
    for spec in decoders {
        if let Some(entry) = crate::decode::registry::entry(&spec.name) {
            for table in entry.reads {
                privileges = privileges.reading(*table);
            }
        }
    }
    privileges
}

/// One configuration load, ready to apply in one step.
#[derive(Default)]
pub struct Change {
    /// Versions to start, each replacing a running one of its name if any.
    pub start: Vec<RunningConfig>,
    /// Their reports, by the same index.
    pub started: Vec<ConfigReport>,
    /// Configs whose file is gone: stopped, forgotten.
    pub remove: Vec<String>,
    /// Configs whose file failed; a running version keeps running.
    pub failed: Vec<ConfigReport>,
    /// Running configs found unchanged: any error of a refused edit since
    /// reverted is cleared.
    pub unchanged: Vec<String>,
    /// Whether the load applied everything, and whether it was a reload.
    pub success: bool,
    pub reload: bool,
}

pub struct Exporter {
    /// In name order, which is scrape order.
    configs: Vec<RunningConfig>,
    reports: BTreeMap<String, ConfigReport>,
    board: ReportBoard,
    self_metrics: SelfMetrics,
    /// Size of the previous scrape, so the next buffer is allocated once.
    last_len: usize,
    spans: Arc<SpanStats>,
    /// How the last scrape read its maps, so each change is logged once.
    read_mode: Option<ReadMode>,
}

/// How a scrape reads its maps: in turn, or one ahead on a second thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadMode {
    /// Too few entries or collectors for a second thread to pay.
    InTurn,
    /// Large enough, but this process has one CPU to run on.
    InTurnOneCpu,
    Ahead,
}

impl Exporter {
    /// An exporter with nothing running; start-up and reloads fill it.
    pub fn new(spans: Arc<SpanStats>) -> Self {
        Self {
            configs: Vec::new(),
            reports: BTreeMap::new(),
            board: ReportBoard::default(),
            self_metrics: SelfMetrics::new(spans.clone()),
            last_len: 0,
            spans,
            read_mode: None,
        }
    }

    pub fn configs(&self) -> &[RunningConfig] {
        &self.configs
    }

    /// The reports as of the last load, in name order.
    pub fn reports(&self) -> Arc<Vec<ConfigReport>> {
        self.board.get()
    }

    /// A handle that sees every later load's reports.
    pub fn report_board(&self) -> ReportBoard {
        self.board.clone()
    }

    /// Applies a load in one step and hands back the versions it stopped,
    /// to be detached by the caller after the lock is released: a scrape
    /// sees either the old set or the new one, and never waits for kernel
    /// teardown.
    pub fn apply(&mut self, change: Change) -> Vec<RunningConfig> {
        let now = SystemTime::now();
        let mut stopped = Vec::new();
        let mut take = |configs: &mut Vec<RunningConfig>, name: &str| {
            if let Some(i) = configs.iter().position(|c| c.name == name) {
                stopped.push(configs.remove(i));
            }
        };
        for name in &change.remove {
            take(&mut self.configs, name);
            self.reports.remove(name);
        }
        for (config, mut report) in change.start.into_iter().zip(change.started) {
            take(&mut self.configs, &config.name);
            report.running = true;
            report.loaded_at = Some(now);
            self.reports.insert(config.name.clone(), report);
            let at = self.configs.partition_point(|c| c.name < config.name);
            self.configs.insert(at, config);
        }
        for failed in change.failed {
            match self.reports.get_mut(&failed.name) {
                Some(old) if old.running => old.error = failed.error,
                _ => {
                    self.reports.insert(failed.name.clone(), failed);
                }
            }
        }
        for name in &change.unchanged {
            if let Some(r) = self.reports.get_mut(name) {
                r.error = None;
            }
        }
        for old in &stopped {
            let metrics: Vec<String> = old.collectors.iter().map(|c| c.id().name.clone()).collect();
            self.self_metrics
                .forget(&old.name, &old.map_names(), &metrics);
            if !self.configs.iter().any(|c| c.name == old.name) {
                self.spans.forget(&old.name);
            }
        }
        let reports: Vec<ConfigReport> = self.reports.values().cloned().collect();
        self.self_metrics.set_reports(&reports);
        self.self_metrics.set_programs(
            self.configs
                .iter()
                .flat_map(|c| c.object.program_fds())
                .collect(),
        );
        self.self_metrics.loaded(change.success, change.reload, now);
        self.board.set(reports);
        stopped
    }

    /// Whether this thread, with its capabilities as they are now, can read
    /// the running configs' maps (true when there are none).
    pub fn maps_readable(&self) -> bool {
        use libbpf_rs::MapCore;
        use std::os::fd::AsFd;
        let first = self
            .configs
            .iter()
            .find_map(|c| c.object.object.maps().next());
        first.is_none_or(|m| crate::maps::read::can_read(m.as_fd(), m.key_size() as usize))
    }

    /// What the running configs still use from the host while serving, which
    /// decides the privileges they keep.
    pub fn serving_privileges(&self) -> Privileges {
        self.configs
            .iter()
            .fold(Privileges::default(), |all, c| all.union(c.uses))
    }

    /// Detaches every config (shutdown).
    pub fn detach_all(&mut self) {
        for config in self.configs.drain(..) {
            config.detach();
        }
    }

    /// Collects every config's collectors into `out`, in scrape order.
    /// With `read_ahead`, maps are read ahead on a second thread: while a
    /// collector decodes and encodes, the next ones' maps are read, and the
    /// first two maps are read side by side. On a machine with a core to
    /// spare a scrape then takes less than its map reads one after another,
    /// plus the last collector's work, not the sum of all of it.
    fn collect_all(&mut self, out: &mut Writer, read_ahead: bool) {
        let self_metrics = &self.self_metrics;
        let mut order = Vec::new();
        let mut all = Vec::new();
        for config in &mut self.configs {
            let RunningConfig {
                name,
                collectors,
                failures,
                occupancy,
                ..
            } = config;
            order.push(ConfigTail {
                name,
                failures,
                occupancy,
                collectors: collectors.len(),
            });
            all.extend(collectors.iter_mut());
        }
        if !read_ahead {
            collect_configs(order, all.into_iter(), self_metrics, out);
            return;
        }
        // Maps large enough to be read in shared batches are begun now, for
        // the helper to read from the scrape's start while this thread
        // decodes what comes before them: a scrape dominated by one large
        // map then costs about that map's read.
        let walks: Vec<Arc<Walk>> = all.iter_mut().filter_map(|c| c.begin_walk()).collect();
        if !walks.is_empty() {
            collect_walking(order, all, &walks, self_metrics, out);
            return;
        }
        // The first collector is read here, at once, while the thread
        // starts and reads the second: the thread's start-up is then off
        // the scrape's path, and the first two maps are read side by side.
        let mut rest = all.into_iter();
        let first = rest.next();
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::channel::<&mut Box<dyn Collector>>();
            scope.spawn(move || {
                for collector in rest {
                    collector.prefetch();
                    if tx.send(collector).is_err() {
                        return;
                    }
                }
            });
            collect_configs(order, first.into_iter().chain(rx.iter()), self_metrics, out);
        });
    }

    /// Reads every map and renders the whole exposition.
    pub fn scrape(&mut self, format: Format) -> Vec<u8> {
        self.scrape_streaming(format, None)
    }

    /// Like `scrape`, but with `spill` the bytes are handed over in chunks of
    /// the pool's size, in the pool's buffers, as it is rendered, and only
    /// the rest is returned:
    /// a million-series text exposition then never sits in memory whole, and
    /// its first bytes reach the client while later maps are still read.
    pub fn scrape_streaming(
        &mut self,
        format: Format,
        spill: Option<(Arc<ChunkPool>, Spill)>,
    ) -> Vec<u8> {
        let mut out = match spill {
            None => Writer::new(format, self.last_len + self.last_len / 8),
            Some((pool, spill)) => Writer::new(format, 0).spilling(pool, spill),
        };
        let collectors = self
            .configs
            .iter()
            .map(|c| c.collectors.len())
            .sum::<usize>();
        let entries: usize = self
            .configs
            .iter()
            .flat_map(|c| &c.collectors)
            .map(|c| c.last_entries())
            .sum();
        let mode = match (
            collectors >= 2 && entries >= READ_AHEAD_FROM,
            // With one CPU, a read-ahead thread has nothing to overlap
            // with and only adds a thread and two hand-offs to a scrape.
            crate::host::cpus::spare(),
        ) {
            (false, _) => ReadMode::InTurn,
            (true, false) => ReadMode::InTurnOneCpu,
            (true, true) => ReadMode::Ahead,
        };
        if self.read_mode != Some(mode) {
            self.read_mode = Some(mode);
            match mode {
                ReadMode::InTurn => log::debug!("scrapes read maps in turn"),
                ReadMode::InTurnOneCpu => log::debug!(
                    "scrapes read maps in turn: one CPU to run on, so no read-ahead thread ({entries} entries)"
                ),
                ReadMode::Ahead => {
                    log::debug!("scrapes read maps ahead on a second thread ({entries} entries)")
                }
            }
        }
        self.collect_all(&mut out, mode == ReadMode::Ahead);
        self.self_metrics.collect(&mut out);
        let streamed = out.spilled();
        let text = out.finish();
        self.last_len = streamed + text.len();
        text
    }
}

/// A scrape with maps read in shared batches (`walks`, in scrape order):
/// the read-ahead thread reads them one after another from the scrape's
/// start, while this thread decodes every collector in order and reads the
/// small maps itself. The small maps after the last walk are read first,
/// so that none is left to read after the large maps end.
fn collect_walking(
    order: Vec<ConfigTail<'_>>,
    mut all: Vec<&mut Box<dyn Collector>>,
    walks: &[Arc<Walk>],
    self_metrics: &SelfMetrics,
    out: &mut Writer,
) {
    // Closes every walk however the scrape ends, so the helper never waits
    // for a consumer that is gone.
    struct CloseAll<'a>(&'a [Arc<Walk>]);
    impl Drop for CloseAll<'_> {
        fn drop(&mut self) {
            for walk in self.0 {
                walk.close();
            }
        }
    }
    let _close = CloseAll(walks);
    for pair in walks.windows(2) {
        pair[0].then(pair[1].clone());
    }
    crate::maps::walk::hand_over(walks.to_vec());
    let after_last = all
        .iter()
        .rposition(|c| c.walking())
        .map_or(all.len(), |i| i + 1);
    for collector in &mut all[after_last..] {
        collector.prefetch();
    }
    collect_configs(order, all.into_iter(), self_metrics, out);
}

/// A config in scrape order: how many collectors it has, and what is
/// read for it after them.
struct ConfigTail<'a> {
    name: &'a str,
    failures: &'a mut Option<UpdateFailures>,
    occupancy: &'a Option<Occupancy>,
    collectors: usize,
}

/// Collects each config's collectors, taken in scrape order from
/// `collectors`, then records the config's helper failures, the fill of
/// its evicting maps, and its scrape time.
fn collect_configs<'c>(
    order: Vec<ConfigTail<'_>>,
    mut collectors: impl Iterator<Item = &'c mut Box<dyn Collector>>,
    self_metrics: &SelfMetrics,
    out: &mut Writer,
) {
    for ConfigTail {
        name,
        failures,
        occupancy,
        collectors: count,
    } in order
    {
        let started = std::time::Instant::now();
        for _ in 0..count {
            // None only if the reading thread panicked; the scope passes
            // its panic on.
            let Some(collector) = collectors.next() else {
                return;
            };
            let collected = collector.collect(out);
            self_metrics.observe(name, collector.id(), &collected);
        }
        if let Some(failures) = failures {
            for (map, total) in failures.read() {
                self_metrics.update_failures(name, map, total);
            }
        }
        if let Some(occupancy) = occupancy {
            for (map, entries, max) in occupancy.read() {
                self_metrics.map_fill(name, map, entries, max);
            }
        }
        self_metrics.scrape_took(name, started.elapsed());
    }
}
