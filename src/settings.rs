//! Flags become settings here, once. Every check of a flag's value is made
//! here, before anything is loaded, and fails with a typed [`UsageError`]
//! (exit status 2) that names the flag. Commands take `Settings`, never
//! flags, and the HTTP server's options are built in one place from
//! [`HttpSettings`]: a new HTTP option is one field here and one use there.

use std::path::PathBuf;
use std::sync::Arc;

use crate::cli::Cli;
use crate::config::error::ConfigError;
use crate::exporter::{ReloadHandle, StartOptions};
use crate::http::auth::BasicAuth;
use crate::http::connections::fit_to_fd_limit;
use crate::http::listen::{self, ListenError, Target};
use crate::http::tls::Tls;
use crate::http::{webconfig, ServerOptions};
use crate::process::capabilities::{self, Keep, UnknownCapability};
use crate::process::logging;

/// A flag whose value cannot be used.
#[derive(Debug)]
pub enum UsageError {
    Listen(ListenError),
    Capabilities(UnknownCapability),
    /// `--web.telemetry-path` not starting with `/`.
    TelemetryPath(String),
    /// `--web.config.file` unreadable or invalid: checked before any BPF is
    /// loaded, so a bad security setting stops start-up instead of falling
    /// back to plain, open HTTP.
    WebConfig(ConfigError),
    /// `--web.enable-lifecycle` with reloads off.
    LifecycleWithoutReload,
}

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Listen(e) => e.fmt(f),
            Self::Capabilities(e) => e.fmt(f),
            Self::TelemetryPath(p) => {
                write!(f, "--web.telemetry-path must start with '/': {p:?}")
            }
            Self::WebConfig(e) => write!(f, "--web.config.file: {e}"),
            Self::LifecycleWithoutReload => f.write_str(
                "--web.enable-lifecycle serves /-/reload, which --no-config.reload turns off",
            ),
        }
    }
}

impl std::error::Error for UsageError {}

/// How log lines are written.
#[derive(Debug, Clone, Copy)]
pub struct LogSettings {
    pub format: logging::Format,
    pub level: logging::Level,
    pub timestamps: bool,
}

impl LogSettings {
    /// Logging starts before any other flag is checked, so that their
    /// errors are logged in the format asked for.
    pub fn from_cli(cli: &Cli) -> Self {
        Self {
            format: cli.log_format,
            level: if cli.debug {
                logging::Level::Debug
            } else {
                cli.log_level
            },
            // journald stamps every line itself: a second timestamp is noise.
            timestamps: !cli.log_no_timestamps && !logging::stderr_is_journal(),
        }
    }

    pub fn init(self) {
        logging::init(self.format, self.level, self.timestamps);
    }
}

/// What the HTTP server is told. Security settings are loaded and checked
/// here, before any BPF is loaded.
pub struct HttpSettings {
    pub listen: Vec<Target>,
    pub metrics_path: String,
    pub tls: Option<Arc<Tls>>,
    pub auth: Option<Arc<BasicAuth>>,
    pub headers: Vec<(String, String)>,
    pub web_config_file: Option<PathBuf>,
    /// As asked for; `server_options` fits it to the fd limit.
    pub max_connections: usize,
    pub max_requests: usize,
    pub enable_lifecycle: bool,
}

impl HttpSettings {
    fn from_cli(cli: &Cli) -> Result<Self, UsageError> {
        let listen = if cli.systemd_socket {
            listen::all_activated()
        } else {
            cli.listen_address
                .iter()
                .map(|a| listen::parse_target(a))
                .collect()
        }
        .map_err(UsageError::Listen)?;
        if !cli.telemetry_path.starts_with('/') {
            return Err(UsageError::TelemetryPath(cli.telemetry_path.clone()));
        }
        let (tls, auth, headers) = match &cli.web_config_file {
            None => (None, None, Vec::new()),
            Some(path) => {
                let web = webconfig::load(path).map_err(UsageError::WebConfig)?;
                let tls = Tls::new(&web).map_err(UsageError::WebConfig)?;
                (
                    tls.map(Arc::new),
                    BasicAuth::new(&web.basic_auth_users),
                    web.headers.clone(),
                )
            }
        };
        Ok(Self {
            listen,
            metrics_path: cli.telemetry_path.clone(),
            tls,
            auth,
            headers,
            web_config_file: cli.web_config_file.clone(),
            max_connections: cli.max_connections,
            max_requests: cli.max_requests,
            enable_lifecycle: cli.enable_lifecycle,
        })
    }

    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The server's options: the one place they are built. `nofile` is the
    /// fd limit, which caps connections; `reload` serves `/-/reload` when
    /// the lifecycle endpoint is on.
    pub fn server_options(&self, nofile: u64, reload: Option<ReloadHandle>) -> ServerOptions {
        let max_connections = fit_to_fd_limit(
            self.max_connections,
            nofile,
            crate::process::limits::open_fds(),
        );
        if max_connections < self.max_connections {
            log::warn!(
                "--web.max-connections lowered from {} to {max_connections} to fit the fd limit of {nofile}",
                self.max_connections
            );
        }
        ServerOptions {
            metrics_path: self.metrics_path.clone(),
            tls: self.tls.clone(),
            auth: self.auth.clone(),
            max_connections,
            max_requests: self.max_requests,
            lifecycle: reload.filter(|_| self.enable_lifecycle),
            web_config_file: self.web_config_file.clone(),
            headers: self.headers.clone(),
        }
    }
}

/// Everything the exporter runs with, checked.
pub struct Settings {
    pub start: StartOptions,
    /// `--config.check`: load, report and exit; `Some(true)` also prints
    /// where each label sits (`--config.check-layout`).
    pub check: Option<bool>,
    pub keep: Keep,
    /// Live reloads (SIGHUP, the watcher, `/-/reload`).
    pub reload: bool,
    /// The directory the watcher follows, if it runs.
    pub watch_dir: Option<PathBuf>,
    pub http: HttpSettings,
}

impl Settings {
    pub fn from_cli(cli: &Cli) -> Result<Self, UsageError> {
        if cli.skip_cache_size.is_some() {
            log::warn!(
                "--config.skip-cache-size is accepted for compatibility and has no effect: \
                 decoded labels are cached per key and bounded by --decoder.cache-max-idle-scrapes"
            );
        }
        let keep =
            capabilities::parse_keep(&cli.capabilities_keep).map_err(UsageError::Capabilities)?;
        let http = HttpSettings::from_cli(cli)?;
        let reload = cli.reload_enabled();
        if cli.enable_lifecycle && !reload {
            return Err(UsageError::LifecycleWithoutReload);
        }
        let check = cli.config_check.then_some(cli.config_check_layout);
        Ok(Self {
            start: StartOptions {
                config_dir: cli.config_dir.clone(),
                config_names: cli.config_names.clone(),
                strict: cli.config_strict,
                btf_path: cli.btf_path.clone(),
                cache_max_idle: cli.cache_max_idle,
                read_method: cli.read_method,
                max_series: (cli.max_series > 0).then_some(cli.max_series),
                kubelet_log_dir: cli.kubelet_log_dir.clone(),
            },
            watch_dir: cli
                .config_dir
                .clone()
                .filter(|_| reload && !cli.no_watch && check.is_none()),
            check,
            keep,
            reload,
            http,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn settings(args: &[&str]) -> Result<Settings, UsageError> {
        let cli = Cli::try_parse_from(std::iter::once("ebpf-exporter").chain(args.iter().copied()))
            .expect("flags parse");
        Settings::from_cli(&cli)
    }

    #[test]
    fn usage_errors_are_typed_and_name_the_flag() {
        type Case = (
            &'static [&'static str],
            fn(&UsageError) -> bool,
            &'static str,
        );
        let cases: [Case; 5] = [
            (
                &["--web.listen-address=localhost"],
                |e| matches!(e, UsageError::Listen(ListenError::NotAnAddress(_))),
                "--web.listen-address \"localhost\": expected host:port, :port or fd://N",
            ),
            (
                &["--capabilities.keep=cap_nope"],
                |e| matches!(e, UsageError::Capabilities(_)),
                "--capabilities.keep: unknown capability \"cap_nope\"",
            ),
            (
                &["--web.telemetry-path=metrics"],
                |e| matches!(e, UsageError::TelemetryPath(_)),
                "--web.telemetry-path must start with '/': \"metrics\"",
            ),
            (
                &["--web.config.file=/nonexistent/web.yml"],
                |e| matches!(e, UsageError::WebConfig(_)),
                "--web.config.file: /nonexistent/web.yml",
            ),
            (
                &[
                    "--config.dir=d",
                    "--no-config.reload",
                    "--web.enable-lifecycle",
                ],
                |e| matches!(e, UsageError::LifecycleWithoutReload),
                "--web.enable-lifecycle serves /-/reload",
            ),
        ];
        for (args, kind, text) in cases {
            let e = settings(args).err().expect("a usage error");
            assert!(kind(&e), "{args:?}: {e:?}");
            assert!(e.to_string().starts_with(text), "{args:?}: {e}");
        }
    }

    #[test]
    fn watch_follows_reload_and_check() {
        let s = settings(&["--config.dir=d"]).expect("valid");
        assert_eq!(s.watch_dir, Some(PathBuf::from("d")));
        assert!(s.reload && s.check.is_none());
        let s = settings(&["--config.dir=d", "--no-config.watch"]).expect("valid");
        assert_eq!(s.watch_dir, None);
        let s = settings(&["--config.dir=d", "--config.check", "--config.check-layout"])
            .expect("valid");
        assert_eq!((s.watch_dir, s.check), (None, Some(true)));
        let s = settings(&["--metrics.max-series=0", "--web.max-connections=7"]).expect("valid");
        assert_eq!(s.start.max_series, None);
        assert_eq!(s.http.max_connections, 7);
        assert_eq!(s.http.scheme(), "http");
    }

    #[test]
    fn server_options_fit_connections_to_the_fd_limit() {
        let s = settings(&[
            "--web.max-connections=100000",
            "--web.enable-lifecycle",
            "--config.dir=d",
        ])
        .expect("valid");
        let opts = s.http.server_options(1024, None);
        assert!(opts.max_connections < 1024, "{}", opts.max_connections);
        assert!(opts.lifecycle.is_none(), "no reload handle, no lifecycle");
        assert_eq!(opts.metrics_path, "/metrics");
    }
}
