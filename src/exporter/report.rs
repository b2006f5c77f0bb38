//! What start-up and each reload made of one config: shown on the landing
//! page, in `--config.check` and in self-metrics.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use crate::config::{Config, ConfigError};
use crate::object::{ProgramState, ProgramStatus, UnusedProgram};

/// How a config runs: as written, without some of its programs (their
/// metrics stay empty, and a count they share is short), or not at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Ok,
    Degraded,
    Failed,
}

#[derive(Debug, Clone)]
pub struct ConfigReport {
    pub name: String,
    pub file: String,
    /// Where the BPF object came from.
    pub object: String,
    /// Why the config's file as it is now does not run; `None` when it
    /// runs as written.
    pub error: Option<String>,
    /// Whether a version of the config serves: the current one, or, after a
    /// refused change, the previous one (then `error` says why).
    pub running: bool,
    /// Versions of this config started so far; a new one means its series
    /// were reset.
    pub generation: u64,
    /// When the running version started.
    pub loaded_at: Option<SystemTime>,
    /// Of the running version, or of the failed attempt if none runs.
    pub programs: Vec<ProgramStatus>,
    /// Alternatives (`programs.one_of`) left out because another runs.
    pub unused: Vec<UnusedProgram>,
    /// Programs the config leaves out (`programs.include`, `exclude`).
    pub left_out: Vec<crate::object::alternatives::LeftOut>,
    pub metrics: Vec<String>,
    /// Metrics left out of the running version because their probe was
    /// refused, each error with its file, line and key.
    pub refused: Vec<String>,
    /// Per metric, where each label sits in the key.
    pub layouts: Vec<Vec<String>>,
}

impl ConfigReport {
    /// The report of a config about to start.
    pub fn new(config: &Config) -> Self {
        Self {
            name: config.name.clone(),
            file: config.file.clone(),
            object: String::new(),
            error: None,
            running: false,
            generation: 0,
            loaded_at: None,
            programs: Vec::new(),
            unused: Vec::new(),
            left_out: Vec::new(),
            metrics: Vec::new(),
            refused: Vec::new(),
            layouts: Vec::new(),
        }
    }

    /// The report of a file that did not even parse: named after the file.
    pub fn unparsed(e: &ConfigError) -> Self {
        let base = e.file.rsplit('/').next().unwrap_or(&e.file);
        Self {
            name: base.trim_end_matches(".yaml").to_string(),
            file: e.file.clone(),
            object: String::new(),
            error: Some(e.to_string()),
            running: false,
            generation: 0,
            loaded_at: None,
            programs: Vec::new(),
            unused: Vec::new(),
            left_out: Vec::new(),
            metrics: Vec::new(),
            refused: Vec::new(),
            layouts: Vec::new(),
        }
    }

    pub fn failed(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self
    }

    /// Runs as written, with every program attached.
    pub fn ok(&self) -> bool {
        self.health() == Health::Ok
    }

    pub fn health(&self) -> Health {
        if self.error.is_some() {
            Health::Failed
        } else if self.programs.iter().any(|p| !p.attached()) || !self.refused.is_empty() {
            Health::Degraded
        } else {
            Health::Ok
        }
    }

    /// Programs attached, and programs in all.
    pub fn attached(&self) -> (usize, usize) {
        let attached = self.programs.iter().filter(|p| p.attached()).count();
        (attached, self.programs.len())
    }

    /// Everything wrong with this config, one line each: its own error and
    /// each program that did not load or attach.
    pub fn problems(&self) -> Vec<String> {
        let mut out: Vec<String> = self.error.iter().cloned().collect();
        for p in &self.programs {
            let why = match &p.state {
                ProgramState::Attached => continue,
                ProgramState::LoadFailed(why) => why.to_string(),
                ProgramState::AttachFailed(why) => why.to_string(),
            };
            out.push(format!(
                "{}: program {} ({}): {why}",
                self.file, p.name, p.section
            ));
        }
        out
    }
}

/// The reports as last published, for readers outside the scrape lock (the
/// landing page): a reload swaps in a new list, readers keep the one they
/// took.
#[derive(Clone, Default)]
pub struct ReportBoard(Arc<RwLock<Arc<Vec<ConfigReport>>>>);

impl ReportBoard {
    pub fn get(&self) -> Arc<Vec<ConfigReport>> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn set(&self, reports: Vec<ConfigReport>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(reports);
    }
}
