use std::process::ExitCode;
use std::sync::Arc;

use tokio::signal::unix::{signal, Signal, SignalKind};

use ebpf_exporter::cli::Cli;
use ebpf_exporter::config::watch::{self, DirWatch, Fingerprint};
use ebpf_exporter::exporter::reloader::Hooks;
use ebpf_exporter::exporter::{self, ConfigReport, ReloadHandle, Reloader, StartOptions};
use ebpf_exporter::http::auth::BasicAuth;
use ebpf_exporter::http::coalesce::Coalescer;
use ebpf_exporter::http::connections::fit_to_fd_limit;
use ebpf_exporter::http::listen;
use ebpf_exporter::http::tls::Tls;
use ebpf_exporter::http::{serve, webconfig, ServerOptions};
use ebpf_exporter::object::ProgramState;
use ebpf_exporter::process::capabilities::{self, Keep, Needs};
use ebpf_exporter::process::{limits, logging, sd_notify};

/// Called once after every config is attached at start-up, and after each
/// reload that started a config. A config can hang a uprobe on this symbol
/// of the exporter's own binary as an init hook, as with the reference
/// exporter.
#[no_mangle]
#[inline(never)]
pub extern "C" fn post_attach_mark() {
    std::hint::black_box(());
}

/// Scrape buffers run to megabytes and live for one scrape. glibc raises
/// its mmap threshold after such buffers are freed, and from then on keeps
/// them in the heap: RSS would then reflect the largest scrapes ever seen
/// rather than what is in use. A fixed threshold hands them back to the OS.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes an allocator tunable; called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse_args(&ebpf_exporter::exporter::self_metrics::libbpf_version());
    let level = if cli.debug {
        logging::Level::Debug
    } else {
        cli.log_level
    };
    // journald stamps every line itself: a second timestamp is noise.
    let timestamps = !cli.log_no_timestamps && !logging::stderr_is_journal();
    logging::init(cli.log_format, level, timestamps);
    match &cli.command {
        Some(ebpf_exporter::cli::Command::Describe { object }) => return describe(object),
        Some(generated) => {
            return match ebpf_exporter::cli::write_generated(generated, &mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    log::error!("writing to stdout: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        None => {}
    }
    if cli.skip_cache_size.is_some() {
        log::warn!(
            "--config.skip-cache-size is accepted for compatibility and has no effect: \
             decoded labels are cached per key and bounded by --decoder.cache-max-idle-scrapes"
        );
    }

    let nofile = match limits::raise_nofile() {
        Ok((soft, _)) => soft,
        Err(e) => {
            log::warn!("reading RLIMIT_NOFILE: {e}");
            1024
        }
    };
    let keep = match capabilities::parse_keep(&cli.capabilities_keep) {
        Ok(k) => k,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::from(2);
        }
    };
    let targets = if cli.systemd_socket {
        listen::all_activated()
    } else {
        cli.listen_address
            .iter()
            .map(|a| listen::parse_target(a))
            .collect::<Result<Vec<_>, _>>()
    };
    let targets = match targets {
        Ok(t) => t,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::from(2);
        }
    };
    if !cli.telemetry_path.starts_with('/') {
        log::error!(
            "--web.telemetry-path must start with '/': {:?}",
            cli.telemetry_path
        );
        return ExitCode::from(2);
    }
    // Checked before any BPF is loaded: a bad security setting must stop
    // start-up, never fall back to plain, open HTTP.
    let (tls, auth, headers) = match &cli.web_config_file {
        None => (None, None, Vec::new()),
        Some(path) => match webconfig::load(path).and_then(|web| Ok((Tls::new(&web)?, web))) {
            Ok((tls, web)) => (
                tls.map(Arc::new),
                BasicAuth::new(&web.basic_auth_users),
                web.headers.clone(),
            ),
            Err(e) => {
                log::error!("--web.config.file: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let tls_files = cli.web_config_file.is_some();
    if let Err(e) = capabilities::check_can_load() {
        log::error!("{e}");
        return ExitCode::FAILURE;
    }

    let reload_on = cli.reload_enabled();
    if cli.enable_lifecycle && !reload_on {
        log::error!("--web.enable-lifecycle serves /-/reload, which --no-config.reload turns off");
        return ExitCode::from(2);
    }
    // Taken before the configs are read: a change made while they load is
    // then seen by the watcher.
    let watch_dir = cli
        .config_dir
        .clone()
        .filter(|_| reload_on && !cli.no_watch && !cli.config_check);
    let seen = watch_dir.as_deref().map(|dir| Fingerprint::take(dir, &[]));

    let opts = StartOptions {
        config_dir: cli.config_dir.clone(),
        config_names: cli.config_names.clone(),
        strict: cli.config_strict,
        btf_path: cli.btf_path.clone(),
        cache_max_idle: cli.cache_max_idle,
        read_method: cli.read_method,
        max_series: (cli.max_series > 0).then_some(cli.max_series),
        kubelet_log_dir: cli.kubelet_log_dir.clone(),
    };
    let started = std::time::Instant::now();
    let (exporter, loader) = match exporter::start(&opts) {
        Ok(e) => e,
        Err(e) => {
            log::error!("{e:#}");
            return ExitCode::FAILURE;
        }
    };
    post_attach_mark();
    log::info!(
        "started {} config(s) in {:?}",
        exporter.configs().len(),
        started.elapsed()
    );

    if cli.config_check {
        let ok = print_report(&exporter.reports(), cli.config_check_layout);
        return if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }

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
        tls_files,
        reload: reload_on,
    };
    let max_connections = fit_to_fd_limit(cli.max_connections, nofile, limits::open_fds());
    if max_connections < cli.max_connections {
        log::warn!(
            "--web.max-connections lowered from {} to {max_connections} to fit the fd limit of {nofile}",
            cli.max_connections
        );
    }
    let result = runtime.block_on(async {
        let signals = Signals::install()?;
        // Bound before privileges are dropped: a port below 1024 needs
        // CAP_NET_BIND_SERVICE.
        let mut listeners = Vec::new();
        for target in &targets {
            listeners.push(listen::open(target)?);
        }
        if let Err(e) = drop_privileges(&keep, needs, &exporter) {
            log::error!("{e}");
            return Err(std::io::Error::other("could not drop capabilities"));
        }
        let running = exporter.configs().len();
        let shared = Arc::new(std::sync::Mutex::new(exporter));
        let scraper = Coalescer::shared(Arc::clone(&shared));
        let live = if reload_on {
            Some(start_reloads(loader, &shared, watch_dir, seen)?)
        } else {
            drop(loader);
            None
        };
        let handle = live.as_ref().map(|l| l.reloader.handle());
        for listener in &listeners {
            log::info!(
                "listening on {scheme}://{}{}",
                listener
                    .local_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_default(),
                cli.telemetry_path
            );
        }
        sd_notify::notify(&format!("READY=1\nSTATUS=serving {running} config(s)"));
        serve(
            listeners,
            scraper.clone(),
            reports,
            ServerOptions {
                metrics_path: cli.telemetry_path.clone(),
                tls,
                auth,
                max_connections,
                max_requests: cli.max_requests,
                lifecycle: handle.clone().filter(|_| cli.enable_lifecycle),
                web_config_file: cli.web_config_file.clone(),
                headers,
            },
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
    shared: &Arc<std::sync::Mutex<exporter::Exporter>>,
    watch_dir: Option<std::path::PathBuf>,
    seen: Option<Fingerprint>,
) -> std::io::Result<Live> {
    let extra = loader.watched();
    let hooks = Hooks {
        starting: Box::new(|| sd_notify::notify(&sd_notify::reloading())),
        finished: Box::new(|outcome| {
            // New configs may hang their one-time init on this hook, as at
            // start-up.
            if !outcome.started.is_empty() {
                post_attach_mark();
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
fn drop_privileges(keep: &Keep, needs: Needs, exporter: &exporter::Exporter) -> Result<(), String> {
    let (_, permitted) = capabilities::current().map_err(|e| e.to_string())?;
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

/// `describe OBJECT`: the starter config on stdout, checked by the same
/// parser and validation any config goes through.
fn describe(object: &str) -> ExitCode {
    use ebpf_exporter::host::files;
    let path_like = object.contains('/') || object.ends_with(".o");
    let (key, bytes) = if path_like {
        let path = std::path::Path::new(object);
        match files::read_regular(path, files::MAX_OBJECT_BYTES) {
            Ok(bytes) => {
                let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
                (abs.display().to_string(), bytes)
            }
            Err(e) => {
                log::error!("describe {object}: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        match ebpf_exporter::object::embedded::find(object) {
            Some(bytes) => (object.to_string(), bytes.to_vec()),
            None => {
                log::error!(
                    "describe {object}: no built-in object of that name (built-in: {}); a path must contain '/' or end in .o",
                    ebpf_exporter::object::embedded::names().join(", ")
                );
                return ExitCode::from(2);
            }
        }
    };
    let plans = match ebpf_exporter::describe::plan(&bytes) {
        Ok(p) => p,
        Err(e) => {
            log::error!("describe {object}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // A built-in object's program choice is in its shipped config.
    let alternatives = if path_like {
        Vec::new()
    } else {
        ebpf_exporter::config::shipped_alternatives(object)
    };
    let yaml = ebpf_exporter::describe::render(&key, object, &plans, &alternatives);
    if !plans
        .iter()
        .any(|p| matches!(p, ebpf_exporter::describe::MapPlan::Metric(_)))
    {
        print!("{yaml}");
        log::error!(
            "describe {object}: no map of this object holds counts a metric can read (see the skipped list)"
        );
        return ExitCode::FAILURE;
    }
    if let Err(e) = ebpf_exporter::config::parse_config(
        "described",
        "<describe output>",
        ebpf_exporter::config::ConfigSource::Embedded,
        &yaml,
    ) {
        // Nothing to describe gives an empty config, which is an error.
        log::error!("describe {object}: the config written does not validate: {e}");
        print!("{yaml}");
        return ExitCode::FAILURE;
    }
    print!("{yaml}");
    ExitCode::SUCCESS
}

/// Prints one block per config for `--config.check`; true if all is well.
fn print_report(reports: &[ConfigReport], layout: bool) -> bool {
    let mut ok = true;
    let (mut attached, mut total) = (0, 0);
    for r in reports {
        match &r.error {
            None => println!("config {} ({}): OK, object {}", r.name, r.file, r.object),
            Some(e) => {
                ok = false;
                println!("config {} ({}): FAILED: {e}", r.name, r.file);
            }
        }
        for p in &r.programs {
            total += 1;
            match &p.state {
                ProgramState::Attached => {
                    attached += 1;
                    println!(
                        "  program {} ({}): attached, id {}",
                        p.name,
                        p.section,
                        p.id.unwrap_or(0)
                    );
                }
                ProgramState::LoadFailed(why) => {
                    ok = false;
                    println!("  program {} ({}): NOT LOADED: {why}", p.name, p.section);
                }
                ProgramState::AttachFailed(why) => {
                    ok = false;
                    println!("  program {} ({}): NOT ATTACHED: {why}", p.name, p.section);
                }
            }
        }
        for u in &r.unused {
            match &u.why {
                Some(why) => println!(
                    "  program {} ({}): not used, {} runs instead; it was {why}",
                    u.name, u.section, u.instead
                ),
                None => println!(
                    "  program {} ({}): not used, {} runs instead",
                    u.name, u.section, u.instead
                ),
            }
        }
        for (i, m) in r.metrics.iter().enumerate() {
            println!("  metric {m}");
            if layout {
                for line in r.layouts.get(i).into_iter().flatten() {
                    println!("    {line}");
                }
            }
        }
    }
    let good = reports.iter().filter(|r| r.ok()).count();
    println!(
        "{good}/{} configs OK, {attached}/{total} programs attached",
        reports.len()
    );
    ok
}
