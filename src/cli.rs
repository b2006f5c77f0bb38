//! Command-line flags, spelled as in the reference exporter.

use std::path::PathBuf;

use clap::builder::TypedValueParser as _;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "ebpf-exporter",
    version,
    about = "Turns eBPF map contents into Prometheus metrics"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Directory of config files. Without it, the built-in configs run.
    #[arg(long = "config.dir", value_name = "DIR")]
    pub config_dir: Option<PathBuf>,

    /// Comma-separated config names (DIR/NAME.yaml, or built-in names).
    /// Default: every *.yaml in --config.dir, or the built-in default set.
    #[arg(long = "config.names", value_name = "NAMES", value_delimiter = ',')]
    pub config_names: Vec<String>,

    /// Load and attach every config, print a report, and exit: non-zero if
    /// anything failed.
    #[arg(long = "config.check")]
    pub config_check: bool,

    /// With --config.check: also print where each label sits in its map's
    /// key (member, offset, size, decoders).
    #[arg(long = "config.check-layout")]
    pub config_check_layout: bool,

    /// Treat any config or attach failure as fatal.
    #[arg(long = "config.strict")]
    pub config_strict: bool,

    /// Allow live reloads (SIGHUP, the config watcher, /-/reload). On by
    /// default with --config.dir; built-in configs are compiled in, so a
    /// reload of them can only retry those that failed.
    #[arg(long = "config.reload", overrides_with = "no_reload")]
    pub reload: bool,

    /// Turn live reloads off: SIGHUP is ignored, and the capabilities that
    /// loading needs are dropped after start-up.
    #[arg(long = "no-config.reload", overrides_with = "reload")]
    pub no_reload: bool,

    /// Do not watch --config.dir for changes (SIGHUP and /-/reload still
    /// reload).
    #[arg(long = "no-config.watch")]
    pub no_watch: bool,

    /// Enable `POST /-/reload` (and PUT), as Prometheus spells it.
    #[arg(long = "web.enable-lifecycle")]
    pub enable_lifecycle: bool,

    /// Address to listen on: host:port, :port, or fd://N for a socket passed
    /// by systemd socket activation. Repeat to listen on several.
    #[arg(
        long = "web.listen-address",
        default_value = ":9435",
        value_name = "ADDR",
        action = clap::ArgAction::Append
    )]
    pub listen_address: Vec<String>,

    /// Listen on the sockets systemd socket activation passes, instead of
    /// --web.listen-address (as exporter-toolkit does).
    #[arg(long = "web.systemd-socket")]
    pub systemd_socket: bool,

    /// Path under which metrics are served.
    #[arg(
        long = "web.telemetry-path",
        default_value = "/metrics",
        value_name = "PATH"
    )]
    pub telemetry_path: String,

    /// TLS and basic-auth settings in the Prometheus exporter-toolkit format
    /// (tls_server_config, basic_auth_users).
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub web_config_file: Option<PathBuf>,

    /// Most connections open at once. At the limit, the oldest connection
    /// not serving a request is closed to make room, so idle clients cannot
    /// lock scrapers out. Lowered to fit the fd limit if needed.
    #[arg(long = "web.max-connections", default_value_t = 512, value_name = "N")]
    pub max_connections: usize,

    /// Most scrapes in flight at once; more get 503. 0 for no limit.
    #[arg(long = "web.max-requests", default_value_t = 40, value_name = "N")]
    pub max_requests: usize,

    /// Capabilities kept once programs are attached: `auto` (what the
    /// running configs need while serving), `all`, `none`, or a list such as
    /// cap_syslog,cap_dac_read_search.
    #[arg(
        long = "capabilities.keep",
        default_value = "auto",
        value_name = "CAPS"
    )]
    pub capabilities_keep: String,

    /// External BTF for kernels without /sys/kernel/btf/vmlinux.
    #[arg(long = "btf.path", value_name = "FILE")]
    pub btf_path: Option<PathBuf>,

    /// Scrapes a map key may go unseen before its decoded labels are
    /// forgotten; bounds memory under key churn.
    #[arg(
        long = "decoder.cache-max-idle-scrapes",
        default_value_t = 10,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(0..=16_384)
    )]
    pub cache_max_idle: u32,

    /// How maps are read on a scrape: `auto` copies mmapable arrays out of
    /// their mapping and times map-element iterators against batch lookups
    /// per map, keeping the faster; `iterator`, `batch` and `keys` (the
    /// reference's next-key-and-lookup) force one, each falling back to the
    /// next where the kernel refuses it.
    #[arg(
        long = "maps.read-method",
        default_value = "auto",
        value_name = "METHOD",
        value_parser = clap::builder::PossibleValuesParser::new(crate::maps::ReadPolicy::names())
            .try_map(|s| s.parse::<crate::maps::ReadPolicy>())
    )]
    pub read_method: crate::maps::ReadPolicy,

    /// Most label sets a metric exports per scrape, for metrics whose config
    /// sets no `max_series`; the rest are folded into one `__overflow__`
    /// series and counted in ebpf_exporter_series_limited_total. 0: no limit.
    #[arg(long = "metrics.max-series", default_value_t = 0, value_name = "N")]
    pub max_series: usize,

    /// Where the kubelet writes logs (its `pods/` and `containers/`
    /// directories name the pods and containers of the kube_* decoders).
    #[arg(long = "kubernetes.log-dir", value_name = "DIR")]
    pub kubelet_log_dir: Option<PathBuf>,

    /// Log lines without timestamps (for journald, which adds its own).
    #[arg(long = "log.no-timestamps")]
    pub log_no_timestamps: bool,

    /// The reference's skip-cache bound; accepted so its command lines run.
    /// Here the decoded-label cache is bounded by
    /// --decoder.cache-max-idle-scrapes instead.
    #[arg(long = "config.skip-cache-size", value_name = "N", hide = true)]
    pub skip_cache_size: Option<u64>,

    /// Log debug detail (the same as --log.level=debug; RUST_LOG also works).
    #[arg(long = "debug")]
    pub debug: bool,

    /// Lowest level logged.
    #[arg(
        long = "log.level",
        value_enum,
        default_value = "info",
        value_name = "LEVEL"
    )]
    pub log_level: crate::process::logging::Level,

    /// Line format: text (human), logfmt or json (for Loki and other
    /// collectors).
    #[arg(
        long = "log.format",
        value_enum,
        default_value = "text",
        value_name = "FORMAT"
    )]
    pub log_format: crate::process::logging::Format,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print a starter config for a BPF object, from its BTF: every map
    /// that looks like a metric, with labels from its key's members and
    /// suggested decoders, and a list of the maps skipped and why.
    Describe {
        /// A `.bpf.o` path, or the name of a built-in object.
        object: String,
    },
    /// Print what a `probe:` metric can read at a hook: each field's name,
    /// C type, and whether it can be a label, a value or a filter, e.g.
    /// `ebpf-exporter fields tracepoint/block/block_rq_issue`.
    Fields {
        /// `tracepoint/CATEGORY/NAME`, `raw_tp/NAME`, `tp_btf/NAME`,
        /// `fentry/`, `fexit/`, `kprobe/` or `kretprobe/FUNCTION`,
        /// `uprobe/` or `uretprobe/PATH:FUNCTION`, `usdt/PATH:PROVIDER:NAME`.
        hook: String,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish,
    /// powershell), e.g. `ebpf-exporter completion bash > /etc/bash_completion.d/ebpf-exporter`.
    Completion { shell: clap_complete::Shell },
    /// Print the man page (roff), e.g. `ebpf-exporter man > ebpf-exporter.1`.
    Man,
    /// Print the decoders this build knows, with what each takes and makes
    /// and the options it takes, as a Markdown table.
    Decoders,
}

/// `--version`, as the reference spells it, plus what a Rust build adds.
pub fn long_version(libbpf: &str) -> String {
    format!(
        "{} (revision: {})\n  build date: {}\n  rustc: {}\n  libbpf: {libbpf}\n  platform: {}",
        env!("CARGO_PKG_VERSION"),
        env!("EE_REVISION"),
        env!("EE_BUILD_DATE"),
        env!("EE_RUSTC"),
        env!("EE_TARGET"),
    )
}

impl Cli {
    /// Parses the process's arguments, with the long version filled in.
    pub fn parse_args(libbpf: &str) -> Self {
        use clap::{CommandFactory, FromArgMatches};
        let cmd = Self::command().long_version(long_version(libbpf));
        let matches = cmd.get_matches();
        Self::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }

    /// Whether live reloads are on: asked for, or configs come from a
    /// directory and they were not turned off.
    pub fn reload_enabled(&self) -> bool {
        !self.no_reload && (self.reload || self.config_dir.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_flag_spellings_parse() {
        let cli = Cli::try_parse_from([
            "ebpf-exporter",
            "--config.dir=examples",
            "--config.names=a,b",
            "--config.strict",
            "--web.listen-address=127.0.0.1:0",
            "--web.listen-address=fd://0",
            "--capabilities.keep=cap_syslog",
            "--log.no-timestamps",
            "--config.skip-cache-size=1024",
        ])
        .expect("parses");
        assert_eq!(cli.config_names, vec!["a", "b"]);
        assert!(cli.config_strict && cli.log_no_timestamps);
        assert_eq!(cli.listen_address, vec!["127.0.0.1:0", "fd://0"]);
        assert_eq!(cli.skip_cache_size, Some(1024));
        let plain = Cli::try_parse_from(["ebpf-exporter"]).expect("parses");
        assert_eq!(plain.listen_address, vec![":9435"]);
        assert!(
            !plain.reload_enabled(),
            "built-in configs: nothing to reload"
        );
        assert!(cli.reload_enabled(), "a config dir reloads by default");
        let off = Cli::try_parse_from(["ebpf-exporter", "--config.dir=d", "--no-config.reload"])
            .expect("parses");
        assert!(!off.reload_enabled());
        let on = Cli::try_parse_from(["ebpf-exporter", "--config.reload"]).expect("parses");
        assert!(on.reload_enabled());
    }
}
