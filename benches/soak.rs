//! Soak benchmark: every shipped config under churn, for a set time. While
//! a loop creates and removes cgroups with a process run in each, starts
//! short-lived processes under a handful of names, opens and closes
//! loopback TCP connections, and adds and removes veth pairs that carry a
//! packet, a scraper reads /metrics five times a second. Every `--every`
//! seconds the exporter's series, the entries of its maps, its RSS, file
//! descriptors, inotify watches and threads are sampled.
//!
//! Printed: the samples, then each measure's least-squares slope per minute
//! over the second half of the run (the first half warms up: the first
//! cgroups, names and connections fill the maps), beside the scatter of the
//! samples about that line. A measure is flat when its slope is within
//! three standard errors of zero (what noise alone gives), or its whole
//! drift over that half is under 1% of its mean.
//!
//! Run as root: `cargo bench --bench soak` (`-- --seconds N` (300),
//! `--every N` (15), `--stale-after DURATION`: every shipped `stale_after`
//! set to this, for runs shorter than the shipped values).

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn arg(name: &str, default: u64) -> u64 {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One sample of the exporter's state.
struct Sample {
    at: f64,
    series: f64,
    cgroup_series: f64,
    entries: f64,
    /// What the exporter accounts for holding for its maps (keys, labels,
    /// sums, read buffers): RSS growing past it is elsewhere.
    held_mib: f64,
    rss_mib: f64,
    fds: f64,
    /// inotify watches held, as the kernel counts them.
    watches: f64,
    threads: f64,
}

/// A least-squares line through a measure's samples.
struct Fit {
    slope: f64,
    mean: f64,
    /// The samples' spread about the line.
    scatter: f64,
    /// The slope's standard error: how far noise alone would move it.
    slope_error: f64,
}

/// A measure's name, and how to read it from a sample.
type Measure = (&'static str, fn(&Sample) -> f64);

const MEASURES: &[Measure] = &[
    ("series", |s| s.series),
    ("cgroup_cpu series", |s| s.cgroup_series),
    ("map entries", |s| s.entries),
    ("held MiB", |s| s.held_mib),
    ("RSS MiB", |s| s.rss_mib),
    ("fds", |s| s.fds),
    ("inotify watches", |s| s.watches),
    ("threads", |s| s.threads),
];

fn main() {
    ebpf_exporter::object::libbpf_log::install();
    // SAFETY: a plain getter.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("the soak benchmark loads BPF programs and makes cgroups: run it as root");
        std::process::exit(1);
    }
    let seconds = arg("--seconds", 300);
    let every = arg("--every", 15).max(1);
    let configs = shipped_configs(std::env::args().skip_while(|a| a != "--stale-after").nth(1));
    let exporter = Arc::new(common::Running::start(&[&format!(
        "--config.dir={}",
        configs.display()
    )]));
    let pid = exporter.pid();
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicU64::new(0));
    let scrapes = Arc::new(AtomicU64::new(0));

    let scraper = {
        let (exporter, stop, scrapes) = (exporter.clone(), stop.clone(), scrapes.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                exporter.scrape();
                scrapes.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let churner = {
        let (stop, rounds) = (stop.clone(), rounds.clone());
        std::thread::spawn(move || churn(&stop, &rounds))
    };

    println!(
        "soak: all {} shipped configs for {seconds} s, sampled every {every} s",
        common::shipped_configs().len()
    );
    println!(
        "{:>6} {:>8} {:>10} {:>10} {:>8} {:>8} {:>5} {:>7} {:>7} {:>7} {:>8}",
        "t s",
        "series",
        "cgroup_cpu",
        "entries",
        "held MiB",
        "RSS MiB",
        "fds",
        "watches",
        "threads",
        "rounds",
        "scrapes"
    );
    let start = Instant::now();
    let mut samples = Vec::new();
    loop {
        let s = exporter.scrape();
        let sample = Sample {
            at: start.elapsed().as_secs_f64(),
            series: s.samples.len() as f64,
            cgroup_series: s.find("ebpf_exporter_cgroup_cpu_seconds_total", &[]).len() as f64,
            entries: s.sum("ebpf_exporter_map_entries", &[]),
            held_mib: s.sum("ebpf_exporter_map_memory_bytes", &[]) / (1024.0 * 1024.0),
            rss_mib: common::rss_kib(pid, "VmRSS:") as f64 / 1024.0,
            fds: std::fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|d| d.count())
                .unwrap_or(0) as f64,
            watches: common::inotify_watches(pid) as f64,
            threads: std::fs::read_dir(format!("/proc/{pid}/task"))
                .map(|d| d.count())
                .unwrap_or(0) as f64,
        };
        println!(
            "{:>6.0} {:>8} {:>10} {:>10} {:>8.1} {:>8.1} {:>5} {:>7} {:>7} {:>7} {:>8}",
            sample.at,
            sample.series,
            sample.cgroup_series,
            sample.entries,
            sample.held_mib,
            sample.rss_mib,
            sample.fds,
            sample.watches,
            sample.threads,
            rounds.load(Ordering::Relaxed),
            scrapes.load(Ordering::Relaxed)
        );
        samples.push(sample);
        if start.elapsed().as_secs() >= seconds {
            break;
        }
        std::thread::sleep(Duration::from_secs(every));
    }
    stop.store(true, Ordering::Relaxed);
    let _ = churner.join();
    let _ = scraper.join();

    let last = exporter.scrape();
    let half: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.at >= seconds as f64 / 2.0)
        .collect();
    println!(
        "\nslopes over the second half ({} samples), per minute:",
        half.len()
    );
    println!(
        "{:>18} {:>10} {:>12} {:>10}  verdict",
        "measure", "mean", "slope/min", "scatter"
    );
    for (name, get) in MEASURES {
        let points: Vec<(f64, f64)> = half.iter().map(|s| (s.at, get(s))).collect();
        let Fit {
            slope,
            mean,
            scatter,
            slope_error,
        } = fit(&points);
        let span = half.last().map_or(0.0, |l| l.at) - half.first().map_or(0.0, |f| f.at);
        let drift = (slope * span).abs();
        let flat = slope.abs() <= 3.0 * slope_error || drift <= 0.01 * mean.abs();
        println!(
            "{name:>18} {mean:>10.1} {:>12.3} {scatter:>10.2}  {}",
            slope * 60.0,
            if flat { "flat" } else { "GROWS" }
        );
    }
    let mut families: std::collections::BTreeMap<&str, usize> = Default::default();
    for x in &last.samples {
        *families.entry(x.name.as_str()).or_default() += 1;
    }
    let mut largest: Vec<(&str, usize)> = families.into_iter().collect();
    largest.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    println!(
        "\nlargest families at the end: {}",
        largest
            .iter()
            .take(6)
            .map(|(f, n)| format!("{f} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "churn: {} rounds, {} scrapes; entries deleted for gone things: {}; for stale label sets: {}",
        rounds.load(Ordering::Relaxed),
        scrapes.load(Ordering::Relaxed),
        by_config(&last, "ebpf_exporter_map_gone_entries_deleted_total"),
        by_config(&last, "ebpf_exporter_map_stale_entries_deleted_total")
    );
}

/// The shipped configs, or a copy of them whose `stale_after` values are
/// `stale_after`, so that a run shorter than them can show them at work.
fn shipped_configs(stale_after: Option<String>) -> PathBuf {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let Some(after) = stale_after else {
        return shipped;
    };
    let dir = common::scratch_dir("bench-soak-configs");
    for entry in std::fs::read_dir(&shipped).expect("read config/").flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let text: Vec<String> = text
            .lines()
            .map(|l| match l.split_once("stale_after:") {
                Some((indent, _)) => format!("{indent}stale_after: {after}"),
                None => l.to_string(),
            })
            .collect();
        std::fs::write(dir.join(entry.file_name()), text.join("\n") + "\n").expect("write config");
    }
    println!("soak: stale_after set to {after} in every config that has it");
    dir
}

/// Least-squares line through `points`: its slope, the mean of the values,
/// and the standard deviation of the values about the line.
fn fit(points: &[(f64, f64)]) -> Fit {
    let n = points.len() as f64;
    if points.len() < 3 {
        let mean = points.iter().map(|p| p.1).sum::<f64>() / n.max(1.0);
        return Fit {
            slope: 0.0,
            mean,
            scatter: 0.0,
            slope_error: f64::INFINITY,
        };
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let resid: f64 = points
        .iter()
        .map(|p| (p.1 - (my + slope * (p.0 - mx))).powi(2))
        .sum();
    Fit {
        slope,
        mean: my,
        scatter: (resid / n).sqrt(),
        slope_error: if sxx > 0.0 {
            (resid / (n - 2.0) / sxx).sqrt()
        } else {
            f64::INFINITY
        },
    }
}

/// A counter's nonzero sums by config, as `config N, ...`.
fn by_config(s: &common::Scrape, metric: &str) -> String {
    let mut by: std::collections::BTreeMap<String, f64> = Default::default();
    for x in s.find(metric, &[]) {
        *by.entry(x.labels["config"].clone()).or_default() += x.value;
    }
    let nonzero: Vec<String> = by
        .iter()
        .filter(|(_, n)| **n > 0.0)
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    if nonzero.is_empty() {
        "none".to_string()
    } else {
        nonzero.join(", ")
    }
}

/// Runs churn rounds until `stop`: each makes and removes a cgroup with a
/// process run in it, starts processes under a few names, makes and closes
/// loopback connections, and every fifth round adds and removes a veth
/// pair that carries a packet.
fn churn(stop: &AtomicBool, rounds: &AtomicU64) {
    let root = common::cgroup2_mount();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind listener");
    let addr = listener.local_addr().expect("listener address");
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut b = [0u8; 1];
            let _ = conn.read(&mut b);
        }
    });
    let names = CommandNames::new();
    let tag = std::process::id();
    let mut round = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let cg = root.join(format!("ee-soak-{tag}-{round}"));
        if std::fs::create_dir(&cg).is_ok() {
            common::in_child(Some(&cg), || {
                let t = Instant::now();
                while t.elapsed() < Duration::from_millis(2) {
                    std::hint::spin_loop();
                }
            });
            let _ = std::fs::remove_dir(&cg);
        }
        let _ = Command::new(names.pick(round)).status();
        for _ in 0..5 {
            if let Ok(mut c) = TcpStream::connect(addr) {
                let _ = c.write_all(b"x");
            }
        }
        if round % 5 == 0 {
            veth_round(tag, round);
        }
        round += 1;
        rounds.store(round, Ordering::Relaxed);
    }
}

/// `true` under a few names, so `exec` sees several commands come and go.
struct CommandNames {
    dir: PathBuf,
}

impl CommandNames {
    const COUNT: u64 = 8;

    fn new() -> Self {
        let dir = common::scratch_dir("bench-soak-commands");
        for i in 0..Self::COUNT {
            std::fs::copy("/bin/true", dir.join(format!("eesoak{i}"))).expect("copy /bin/true");
        }
        Self { dir }
    }

    fn pick(&self, round: u64) -> PathBuf {
        self.dir.join(format!("eesoak{}", round % Self::COUNT))
    }
}

/// A veth pair, up, with an address on one end; a datagram to the other
/// end's address makes it send an ARP request (a transmitted packet, for
/// `netdev_xmit`); then the pair is removed.
fn veth_round(tag: u32, round: u64) {
    let name = format!("ees{}x{}", tag % 1000, round % 1000);
    let peer = format!("{name}p");
    let ip = |args: &[&str]| {
        let _ = Command::new("ip").args(args).output();
    };
    ip(&["link", "add", &name, "type", "veth", "peer", "name", &peer]);
    ip(&["addr", "add", "169.254.77.1/30", "dev", &name]);
    ip(&["link", "set", &name, "up"]);
    ip(&["link", "set", &peer, "up"]);
    if let Ok(sock) = UdpSocket::bind("169.254.77.1:0") {
        let _ = sock.send_to(b"x", "169.254.77.2:9");
    }
    std::thread::sleep(Duration::from_millis(20));
    ip(&["link", "del", &name]);
}
