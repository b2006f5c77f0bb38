//! Reads config files. Each file is parsed and checked on its own, so one
//! broken config never hides the others.

use std::path::{Path, PathBuf};

use super::error::ConfigError;
use super::locate::Locator;
use super::model::ConfigFile;
use super::validate::validate;
use super::yaml::{parse_yaml, read_yaml_file};

/// Configs compiled into the binary from `config/*.yaml`.
pub mod embedded {
    include!(concat!(env!("OUT_DIR"), "/config_index.rs"));
}

/// The `programs.one_of` groups of the shipped config named `name`: what
/// `describe` of a built-in object carries over, since program choice is
/// not in an object's BTF.
pub fn shipped_alternatives(name: &str) -> Vec<Vec<String>> {
    embedded::CONFIGS
        .iter()
        .find(|(n, _)| *n == name)
        .and_then(|(n, text)| parse_config(n, n, ConfigSource::Embedded, text).ok())
        .and_then(|c| c.spec.programs)
        .map(|p| p.one_of)
        .unwrap_or_default()
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
    /// Hash of the YAML text: a reload leaves a config whose text and
    /// object are unchanged running, untouched.
    pub digest: u64,
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

/// A hash to tell one version of a file from another within this process
/// (not stable across processes; never stored).
pub fn digest(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// Parses and checks one config text.
pub fn parse_config(
    name: &str,
    file: &str,
    source: ConfigSource,
    text: &str,
) -> Result<Config, ConfigError> {
    let (spec, locator): (ConfigFile, _) = parse_yaml(file, text)?;
    let config = Config {
        name: name.to_string(),
        file: file.to_string(),
        source,
        spec,
        locator,
        digest: digest(text.as_bytes()),
    };
    validate(&config)?;
    Ok(config)
}

fn read_one(dir: &Path, name: &str, path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = read_yaml_file(path, "config")?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        parse_config("t", "t.yaml", ConfigSource::Embedded, text)
    }

    const OK: &str = "metrics:\n  counters:\n    - name: a_total\n      help: A\n      labels:\n        - name: x\n          size: 4\n          decoders:\n            - name: uint\n";

    #[test]
    fn accepts_a_reference_config() {
        let c = parse(OK).expect("valid");
        assert_eq!(c.spec.metrics.counters[0].labels[0].size, Some(4));
    }

    #[test]
    fn unknown_keys_name_the_line_and_path() {
        let e = parse(&OK.replace("          size: 4", "          sise: 4")).expect_err("typo");
        assert_eq!(e.line, Some(7));
        assert_eq!(e.key, "metrics.counters[0].labels[0]");
        assert!(e.message.contains("unknown field `sise`"), "{e}");
        assert_eq!(
            e.to_string().split(": ").take(2).collect::<Vec<_>>(),
            vec!["t.yaml:7", "key `metrics.counters[0].labels[0]`"]
        );
        let top = parse(&format!("{OK}extra: 1\n")).expect_err("top-level typo");
        assert!(top.message.contains("unknown field `extra`"), "{top}");
    }

    #[test]
    fn bad_sizes_and_names_point_at_their_key() {
        let e = parse(&OK.replace("size: 4", "size: 0")).expect_err("zero size");
        assert_eq!(
            (e.key.as_str(), e.line),
            ("metrics.counters[0].labels[0].size", Some(7))
        );
        let e = parse(&OK.replace("size: 4", "size: -1")).expect_err("negative size");
        assert_eq!(e.line, Some(7), "{e}");
        let e = parse(&OK.replace("name: a_total", "name: a-total")).expect_err("bad name");
        assert_eq!(
            (e.key.as_str(), e.line),
            ("metrics.counters[0].name", Some(3))
        );
        let e = parse(&OK.replace("name: x", "name: le")).expect_err("reserved label");
        assert!(e.message.contains("reserved"), "{e}");
        let e = parse(&OK.replace("      help: A\n", "")).expect_err("missing help");
        assert!(e.message.contains("missing field `help`"), "{e}");
    }

    #[test]
    fn histogram_rules() {
        let h = "metrics:\n  histograms:\n    - name: h\n      help: H\n      bucket_type: exp2\n      bucket_min: 5\n      bucket_max: 2\n      labels:\n        - {name: bucket, size: 8, decoders: [{name: uint}]}\n";
        let e = parse(h).expect_err("max below min");
        assert_eq!(
            (e.key.as_str(), e.line),
            ("metrics.histograms[0].bucket_max", Some(7))
        );
        let fixed = h.replace("bucket_type: exp2", "bucket_type: fixed");
        assert!(parse(&fixed)
            .expect_err("no keys")
            .message
            .contains("bucket_keys"));
        let unsorted = fixed.replace("bucket_min: 5", "bucket_keys: [3, 1]");
        assert!(parse(&unsorted)
            .expect_err("unsorted")
            .message
            .contains("increasing"));
    }

    #[test]
    fn value_multiplier_must_be_positive() {
        let ok = OK.replace(
            "      help: A\n",
            "      help: A\n      value_multiplier: 0.000000001\n",
        );
        assert_eq!(
            parse(&ok).expect("valid").spec.metrics.counters[0].value_multiplier,
            Some(1e-9)
        );
        let bad = OK.replace(
            "      help: A\n",
            "      help: A\n      value_multiplier: 0\n",
        );
        let e = parse(&bad).expect_err("zero");
        assert_eq!(
            (e.key.as_str(), e.line),
            ("metrics.counters[0].value_multiplier", Some(5))
        );
    }

    #[test]
    fn spans_only_configs_are_valid_and_ring_buffers_are_read_once() {
        let spans = "tracing:\n  spans:\n    - name: s\n      ringbuf: rb\n      labels:\n        - {name: trace_id, size: 16, decoders: [{name: hex}]}\n";
        assert!(parse(spans).is_ok());
        let twice = format!("{spans}    - name: t\n      ringbuf: rb\n");
        let e = parse(&twice).expect_err("twice");
        assert_eq!(
            (e.key.as_str(), e.line),
            ("tracing.spans[1].ringbuf", Some(8))
        );
        // Span labels are attribute keys: dots are fine, unlike in metrics.
        assert!(parse(&spans.replace("name: trace_id", "name: cpu.orig")).is_ok());
        let e = parse("kaddrs: [x]\n").expect_err("nothing");
        assert!(e.message.contains("no metrics and no tracing spans"), "{e}");
    }

    #[test]
    fn syntax_errors_carry_a_line() {
        let e = parse("metrics:\n  counters:\n    - name: [x\n").expect_err("syntax");
        assert!(e.line.is_some(), "{e}");
    }
}
