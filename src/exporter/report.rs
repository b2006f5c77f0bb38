//! What start-up made of one config: shown on the landing page, in
//! `--config.check` and in self-metrics.

use crate::config::{Config, ConfigError};
use crate::object::{ProgramState, ProgramStatus};

#[derive(Debug, Clone)]
pub struct ConfigReport {
    pub name: String,
    pub file: String,
    /// Where the BPF object came from.
    pub object: String,
    /// `None` when the config is running; otherwise why it is not.
    pub error: Option<String>,
    pub programs: Vec<ProgramStatus>,
    pub metrics: Vec<String>,
}

impl ConfigReport {
    /// The report of a config about to start.
    pub fn new(config: &Config) -> Self {
        Self {
            name: config.name.clone(),
            file: config.file.clone(),
            object: String::new(),
            error: None,
            programs: Vec::new(),
            metrics: Vec::new(),
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
            programs: Vec::new(),
            metrics: Vec::new(),
        }
    }

    pub fn failed(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self
    }

    pub fn ok(&self) -> bool {
        self.error.is_none()
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
