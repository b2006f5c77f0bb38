//! Reads config files. Each file is parsed and checked on its own, so one
//! broken config never hides the others.

use std::path::{Path, PathBuf};

use super::error::ConfigError;
use super::locate::Locator;
use super::model::ConfigFile;
use super::validate::validate;

/// Configs compiled into the binary from `config/*.yaml`.
pub mod embedded {
    include!(concat!(env!("OUT_DIR"), "/config_index.rs"));
}

/// Where a config came from; decides where its object is looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A file in a config directory; `DIR/NAME.bpf.o` is looked for beside it.
    Dir(PathBuf),
    /// A config built into the binary.
    Embedded,
}

/// A parsed, self-consistent config, not yet bound to a BPF object.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file's base name: the config's identity in metrics and logs.
    pub name: String,
    /// The file as shown in messages.
    pub file: String,
    pub source: ConfigSource,
    pub spec: ConfigFile,
    pub locator: Locator,
}

impl Config {
    /// An error at `key`, with the line looked up in this config's text.
    pub fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            line: self.locator.line(key),
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// Parses and checks one config text.
pub fn parse_config(
    name: &str,
    file: &str,
    source: ConfigSource,
    text: &str,
) -> Result<Config, ConfigError> {
    let spec: ConfigFile = match serde_yaml::from_str(text) {
        Ok(spec) => spec,
        Err(e) => return Err(yaml_error(file, &e)),
    };
    let config = Config {
        name: name.to_string(),
        file: file.to_string(),
        source,
        spec,
        locator: Locator::new(text),
    };
    validate(&config)?;
    Ok(config)
}

/// Turns serde_yaml's message (which embeds the key path and position) into
/// our file:line: key: message shape.
fn yaml_error(file: &str, e: &serde_yaml::Error) -> ConfigError {
    let line = e.location().map(|l| l.line());
    let text = e.to_string();
    // serde_yaml writes "path.to.key: message at line N column M".
    let text = match text.rfind(" at line ") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    };
    let (key, message) = match text.split_once(": ") {
        Some((k, m)) if !k.contains(' ') => (k.to_string(), m.to_string()),
        _ => (String::new(), text),
    };
    ConfigError {
        file: file.to_string(),
        line,
        key,
        message,
    }
}

fn read_one(dir: &Path, name: &str, path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file.clone(),
        line: None,
        key: String::new(),
        message: format!("cannot read: {e}"),
    })?;
    parse_config(name, &file, ConfigSource::Dir(dir.to_path_buf()), &text)
}

/// Loads `DIR/NAME.yaml` for each name.
pub fn load_named(dir: &Path, names: &[String]) -> Vec<Result<Config, ConfigError>> {
    names
        .iter()
        .map(|name| read_one(dir, name, &dir.join(format!("{name}.yaml"))))
        .collect()
}

/// Loads every `*.yaml` in `dir`, in name order.
pub fn load_dir(dir: &Path) -> Result<Vec<Result<Config, ConfigError>>, ConfigError> {
    let entries = std::fs::read_dir(dir).map_err(|e| ConfigError {
        file: dir.display().to_string(),
        line: None,
        key: String::new(),
        message: format!("cannot read config directory: {e}"),
    })?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let file_name = e.file_name().into_string().ok()?;
            file_name.strip_suffix(".yaml").map(str::to_string)
        })
        .collect();
    names.sort();
    Ok(load_named(dir, &names))
}

/// Loads built-in configs by name (all of them when `names` is empty).
pub fn load_embedded(names: &[String]) -> Vec<Result<Config, ConfigError>> {
    let wanted: Vec<&str> = if names.is_empty() {
        embedded::DEFAULT_CONFIGS.to_vec()
    } else {
        names.iter().map(String::as_str).collect()
    };
    wanted
        .into_iter()
        .map(|name| {
            let file = format!("<built-in>/{name}.yaml");
            match embedded::CONFIGS.iter().find(|(n, _)| *n == name) {
                Some((_, text)) => parse_config(name, &file, ConfigSource::Embedded, text),
                None => Err(ConfigError {
                    file,
                    line: None,
                    key: String::new(),
                    message: format!(
                        "no built-in config of that name; built-in configs: {}",
                        embedded::CONFIGS
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }),
            }
        })
        .collect()
}
