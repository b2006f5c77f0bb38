//! `describe OBJECT`: a starter config on stdout, from the object's BTF,
//! checked by the same parser and validation as any config before it is
//! printed.

use std::process::ExitCode;

use crate::config::{self, ConfigSource};
use crate::describe::{self, MapPlan};
use crate::host::files;
use crate::object::embedded;

/// Why there is no config to print.
#[derive(Debug)]
pub enum DescribeError {
    /// The object file could not be read.
    Read(files::ReadError),
    /// Not a path, and not a built-in object's name.
    UnknownBuiltIn,
    /// The object could not be opened or its BTF read.
    Plan(String),
    /// No map holds what a metric can read; the config printed lists why
    /// each was skipped.
    NoMetric { yaml: String },
    /// What was written did not validate (a bug here, shown with the YAML).
    Invalid { yaml: String, error: String },
}

impl DescribeError {
    /// Usage errors (2) name something that is not there; the rest (1)
    /// are about the object itself.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Read(_) | Self::UnknownBuiltIn => ExitCode::from(super::USAGE),
            _ => ExitCode::FAILURE,
        }
    }
}

/// Whether `object` names a file rather than a built-in object.
fn is_path(object: &str) -> bool {
    object.contains('/') || object.ends_with(".o")
}

/// The `object:` value the config will carry, and the object's bytes.
fn read(object: &str) -> Result<(String, Vec<u8>), DescribeError> {
    if !is_path(object) {
        let bytes = embedded::find(object).ok_or(DescribeError::UnknownBuiltIn)?;
        return Ok((object.to_string(), bytes.to_vec()));
    }
    let path = std::path::Path::new(object);
    let bytes = files::read_regular(path, files::MAX_OBJECT_BYTES).map_err(DescribeError::Read)?;
    // Relative to the config's directory, where the config is to be saved:
    // an absolute path would break when the directory is moved or copied.
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| object.to_string());
    Ok((file, bytes))
}

/// The starter config for `object`, validated.
pub fn config_for(object: &str) -> Result<String, DescribeError> {
    let (key, bytes) = read(object)?;
    let name = if is_path(object) {
        crate::object::source::object_stem(std::path::Path::new(object))
    } else {
        object.to_string()
    };
    let found = describe::describe(&name, &bytes).map_err(DescribeError::Plan)?;
    // A built-in object's program choice is in its shipped config.
    let alternatives = if is_path(object) {
        Vec::new()
    } else {
        config::shipped_alternatives(object)
    };
    let yaml = describe::render(&key, object, &found, &alternatives);
    if !found.plans.iter().any(|p| matches!(p, MapPlan::Metric(_))) {
        return Err(DescribeError::NoMetric { yaml });
    }
    match config::parse_config(
        "described",
        "<describe output>",
        ConfigSource::Embedded,
        &yaml,
    ) {
        Ok(_) => Ok(yaml),
        Err(e) => Err(DescribeError::Invalid {
            yaml,
            error: e.to_string(),
        }),
    }
}

pub fn run(object: &str) -> ExitCode {
    let e = match config_for(object) {
        Ok(yaml) => {
            print!("{yaml}");
            return ExitCode::SUCCESS;
        }
        Err(e) => e,
    };
    match &e {
        DescribeError::Read(io) => log::error!("describe {object}: {io}"),
        DescribeError::UnknownBuiltIn => log::error!(
            "describe {object}: no built-in object of that name (built-in: {}); a path must contain '/' or end in .o",
            embedded::names().join(", ")
        ),
        DescribeError::Plan(why) => log::error!("describe {object}: {why}"),
        DescribeError::NoMetric { yaml } => {
            print!("{yaml}");
            log::error!(
                "describe {object}: no map of this object holds counts a metric can read (see the skipped list)"
            );
        }
        DescribeError::Invalid { yaml, error } => {
            log::error!("describe {object}: the config written does not validate: {error}");
            print!("{yaml}");
        }
    }
    e.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_objects_describe_to_valid_configs() {
        let yaml = config_for("syscalls").expect("a config");
        assert!(yaml.contains("object: syscalls"), "{yaml}");
        assert!(matches!(
            config_for("no_such_object"),
            Err(DescribeError::UnknownBuiltIn)
        ));
        let missing = config_for("/nonexistent/x.bpf.o").expect_err("an error");
        assert!(matches!(missing, DescribeError::Read(_)), "{missing:?}");
        assert_eq!(missing.exit_code(), ExitCode::from(2));
    }
}
