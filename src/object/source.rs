//! Decides which BPF object a config uses: the `object:` key if set, else
//! `DIR/NAME.bpf.o` beside the config, else the built-in object `NAME`.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use super::embedded;
use crate::config::{Config, ConfigError, ConfigSource};
use crate::host::files;

/// An object's ELF bytes, kept so the object can be opened again (loading
/// consumes an opened object, and a retry without a refused program needs a
/// fresh one) and so its BTF can be read before loading.
pub struct ObjectBytes {
    /// `built-in:NAME` or the file path, for messages.
    pub origin: String,
    pub bytes: Cow<'static, [u8]>,
    /// The file read, for objects on disk: what a config watcher must
    /// also watch when it lies outside the config directory.
    pub path: Option<PathBuf>,
}

impl ObjectBytes {
    /// The name the object is opened with: its file's stem (`hardirqs` for
    /// `hardirqs.bpf.o`), or the built-in's name. Without a name libbpf
    /// makes one from a heap address, which then shows in its log lines and
    /// in the names of the object's global-variable maps, different every
    /// run.
    pub fn name(&self) -> String {
        match &self.path {
            Some(path) => object_stem(path),
            None => self
                .origin
                .strip_prefix("built-in:")
                .unwrap_or(&self.origin)
                .to_string(),
        }
    }
}

/// `hardirqs` for `.../hardirqs.bpf.o` (or `hardirqs.o`).
pub fn object_stem(path: &Path) -> String {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    file.strip_suffix(".bpf.o")
        .or_else(|| file.strip_suffix(".o"))
        .unwrap_or(&file)
        .to_string()
}

pub fn resolve_object(config: &Config) -> Result<ObjectBytes, ConfigError> {
    let dir = match &config.source {
        ConfigSource::Dir(dir) => Some(dir.as_path()),
        ConfigSource::Embedded => None,
    };
    if config.specs().any(|s| s.probe.is_some()) {
        return Ok(ObjectBytes {
            origin: "built-in:probe".to_string(),
            bytes: Cow::Borrowed(embedded::PROBE),
            path: None,
        });
    }
    match config.spec.object.as_deref() {
        Some(object) if looks_like_path(object) => {
            let path = match dir {
                Some(dir) if Path::new(object).is_relative() => dir.join(object),
                _ => PathBuf::from(object),
            };
            read_file(config, &path)
        }
        Some(object) => embedded::find(object)
            .map(|bytes| ObjectBytes {
                origin: format!("built-in:{object}"),
                bytes: Cow::Borrowed(bytes),
                path: None,
            })
            .ok_or_else(|| {
                config.error(
                    "object",
                    format!(
                        "no built-in object named {object:?} (built-in: {}); a path to a .bpf.o must contain '/' or end in .o",
                        embedded::names().join(", ")
                    ),
                )
            }),
        None => {
            if let Some(dir) = dir {
                let path = dir.join(format!("{}.bpf.o", config.name));
                if path.exists() {
                    return read_file(config, &path);
                }
            }
            embedded::find(&config.name)
                .map(|bytes| ObjectBytes {
                    origin: format!("built-in:{}", config.name),
                    bytes: Cow::Borrowed(bytes),
                    path: None,
                })
                .ok_or_else(|| {
                    let beside = dir
                        .map(|d| format!("{} does not exist and ", d.join(format!("{}.bpf.o", config.name)).display()))
                        .unwrap_or_default();
                    config.error(
                        "",
                        format!(
                            "no BPF object: {beside}there is no built-in object named {:?}; set `object:` to a path or a built-in name",
                            config.name
                        ),
                    )
                })
        }
    }
}

fn looks_like_path(s: &str) -> bool {
    s.contains('/') || s.ends_with(".o")
}

fn read_file(config: &Config, path: &Path) -> Result<ObjectBytes, ConfigError> {
    let bytes = files::read_regular(path, files::MAX_OBJECT_BYTES).map_err(|e| {
        config.error(
            "object",
            format!("cannot read BPF object {}: {e}", path.display()),
        )
    })?;
    Ok(ObjectBytes {
        origin: path.display().to_string(),
        bytes: Cow::Owned(bytes),
        path: Some(path.to_path_buf()),
    })
}
