//! The daemon: serve the running configs over HTTP until a signal stops
//! it, with live reloads when they are on.

use std::process::ExitCode;
use std::sync::Arc;

use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::config::watch::{self, DirWatch, Fingerprint};
use crate::exporter::reloader::Hooks;
use crate::exporter::{self, ReloadHandle, Reloader};
use crate::http::coalesce::Coalescer;
use crate::http::{listen, serve};
use crate::process::capabilities::{self, Keep, Needs};
use crate::process::{limits, sd_notify};
use crate::settings::Settings;

pub fn run(settings: Settings, post_attach: extern "C" fn()) -> ExitCode {
    let nofile = match limits::raise_nofile() {
        Ok((soft, _)) => soft,
        Err(e) => {
            log::warn!("reading RLIMIT_NOFILE: {e}");
            1024
        }
    };
    // Taken before the configs are read: a change made while they load is
    // then seen by the watcher.
    let seen = settings
        .watch_dir
        .as_deref()
        .map(|dir| Fingerprint::take(dir, &[]));
    let (exporter, loader) = match super::start(&settings, post_attach) {
        Ok(started) => started,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            log::error!("starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let reports = exporter.report_board();
    let needs = Needs {
        serving: exporter.serving_privileges(),
        tls_files: settings.http.web_config_file.is_some(),
        reload: settings.reload,
    };
    let result = runtime.block_on(async {
        let signals = Signals::install()?;
        // Bound before privileges are dropped: a port below 1024 needs
        // CAP_NET_BIND_SERVICE.
        let mut listeners = Vec::new();
        for target in &settings.http.listen {
            listeners.push(listen::open(target)?);
        }
        if let Err(e) = drop_privileges(&settings.keep, needs, &exporter) {
            log::error!("{e}");
            return Err(std::io::Error::other("could not drop capabilities"));
        }
        let running = exporter.configs().len();
        let shared = Arc::new(std::sync::Mutex::new(exporter));
        let scraper = Coalescer::shared(Arc::clone(&shared));
        let live = if settings.reload {
            Some(start_reloads(
                loader,
                post_attach,
                &shared,
                settings.watch_dir.clone(),
                seen,
            )?)
        } else {
            drop(loader);
            None
        };
        let handle = live.as_ref().map(|l| l.reloader.handle());
        for listener in &listeners {
            log::info!(
                "listening on {}://{}{}",
                settings.http.scheme(),
                listener
                    .local_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_default(),
                settings.http.metrics_path
            );
        }
        sd_notify::notify(&format!("READY=1\nSTATUS=serving {running} config(s)"));
        serve(
            listeners,
            scraper.clone(),
            reports,
            settings.http.server_options(nofile, handle.clone()),
            async {
                signals.run(handle).await;
                sd_notify::notify("STOPPING=1");
            },
        )
        .await?;
        if let Some(live) = live {
            drop(live.watch);
            let reloader = live.reloader;
            let _ = tokio::task::spawn_blocking(move || reloader.stop()).await;
        }
        // Dropping the exporter closes links and objects: programs detach.
        scraper.detach_all().await;
        Ok::<(), std::io::Error>(())
    });
    match result {
        Ok(()) => {
            log::info!("stopped; programs detached");
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("serving: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What keeps configs live: the reload thread and the directory watcher.
struct Live {
    reloader: Reloader,
    watch: Option<DirWatch>,
}

/// Starts the reload thread, and the watcher that asks it for reloads.
fn start_reloads(
    loader: exporter::Loader,
    post_attach: extern "C" fn(),
    shared: &Arc<std::sync::Mutex<exporter::Exporter>>,
    watch_dir: Option<std::path::PathBuf>,
    seen: Option<Fingerprint>,
) -> std::io::Result<Live> {
    let extra = loader.watched();
    let hooks = Hooks {
        starting: Box::new(|| sd_notify::notify(&sd_notify::reloading())),
        finished: Box::new(move |outcome| {
            // New configs may hang their one-time init on this hook, as at
            // start-up.
            if !outcome.started.is_empty() {
                post_attach();
            }
            let status = if outcome.success {
                "reloaded".to_string()
            } else {
                format!("reloaded with {} problem(s)", outcome.errors.len())
            };
            sd_notify::notify(&format!("READY=1\nSTATUS={status}: {}", outcome.summary()));
        }),
    };
    let reloader = Reloader::spawn(loader, Arc::clone(shared), hooks)?;
    let watch = match watch_dir {
        None => None,
        Some(dir) => {
            let handle = reloader.handle();
            let initial = seen.unwrap_or_else(|| Fingerprint::take(&dir, &[]));
            log::info!(
                "watching {} for config changes (applied {} ms after the last write)",
                dir.display(),
                watch::DEBOUNCE.as_millis()
            );
            Some(DirWatch::start(
                dir,
                extra,
                initial,
                watch::DEBOUNCE,
                watch::POLL,
                move || handle.request("config watch"),
            )?)
        }
    };
    Ok(Live { reloader, watch })
}

/// Drops capabilities in every thread, as `--capabilities.keep` asks.
fn drop_privileges(
    keep: &Keep,
    needs: Needs,
    exporter: &exporter::Exporter,
) -> Result<(), capabilities::CapError> {
    let (_, permitted) = capabilities::current().map_err(capabilities::CapError::Read)?;
    let wanted = match keep {
        Keep::All => permitted,
        Keep::Auto => needs.caps(),
        Keep::Only(set) => *set,
    };
    let widen = matches!(keep, Keep::Auto);
    let report = capabilities::drop_to(wanted, widen, &|| exporter.maps_readable())?;
    if report.added_for_maps != capabilities::CapSet::default() {
        log::info!(
            "this kernel needs {} to read maps, so it is kept",
            report.added_for_maps
        );
    }
    if !exporter.maps_readable() {
        log::warn!(
            "map reads fail with the capabilities kept ({}); scrapes will be empty",
            report.kept
        );
    }
    log::info!(
        "capabilities: kept {} in {} thread(s), dropped the rest; no_new_privs set",
        report.kept,
        report.threads
    );
    Ok(())
}

struct Signals {
    term: Signal,
    int: Signal,
    quit: Signal,
    hup: Signal,
    usr1: Signal,
}

impl Signals {
    /// Must run inside the runtime.
    fn install() -> std::io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            quit: signal(SignalKind::quit())?,
            hup: signal(SignalKind::hangup())?,
            usr1: signal(SignalKind::user_defined1())?,
        })
    }

    /// Resolves on SIGTERM, SIGINT or SIGQUIT. SIGHUP reloads when reloads
    /// are on; otherwise it and SIGUSR1, whose default action would kill
    /// the process without a word, are logged and ignored: a stray
    /// `kill -HUP` must not take every config down.
    async fn run(mut self, reload: Option<ReloadHandle>) {
        loop {
            tokio::select! {
                _ = self.term.recv() => return log::info!("SIGTERM: shutting down"),
                _ = self.int.recv() => return log::info!("SIGINT: shutting down"),
                _ = self.quit.recv() => return log::info!("SIGQUIT: shutting down"),
                _ = self.hup.recv() => match &reload {
                    Some(r) => r.request("SIGHUP"),
                    None => log::warn!("SIGHUP: ignored (live reload is off: built-in configs, or --no-config.reload)"),
                },
                _ = self.usr1.recv() => log::warn!("SIGUSR1: ignored"),
            }
        }
    }
}
