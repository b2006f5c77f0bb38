//! Reload benchmark: scrape latency while configs are reloaded back to
//! back, side by side with quiet scrapes of the same exporter in the same
//! run, in alternating phases so drift hits both alike. Each reload rebuilds
//! one config (an edit: load, verify, attach, swap, detach) beside the
//! built-in default set, which stays untouched.
//!
//! Run as root: `cargo bench --bench reload` (`-- --rounds N`, `-- --scrapes N`,
//! `-- --unchanged` for reloads that find nothing to do).

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn arg(name: &str, default: usize) -> usize {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn scrapes(addr: &str, n: usize) -> Vec<Duration> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            let r = common::http_get(addr, "/metrics", &[]);
            assert_eq!(r.status, 200, "scrape failed: {}", r.text());
            t.elapsed()
        })
        .collect()
}

fn main() {
    let rounds = arg("--rounds", 4);
    let per_phase = arg("--scrapes", 200);
    // Reloads that find nothing changed: the cost of reading and comparing.
    let unchanged = std::env::args().any(|a| a == "--unchanged");
    // SAFETY: a plain getter.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("the reload benchmark loads BPF programs: run it as root");
        std::process::exit(1);
    }
    let dir = common::scratch_dir("bench-reload");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let defaults = std::fs::read_to_string(root.join("DEFAULTS")).expect("DEFAULTS");
    for name in defaults
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let file = format!("{name}.yaml");
        std::fs::copy(root.join(&file), dir.join(&file)).expect("copy config");
    }
    // The built-in signals config, not in the default set, as the one
    // edited: two texts to alternate.
    let signals = std::fs::read_to_string(root.join("signals.yaml")).expect("signals config");
    let variants = [
        signals.clone(),
        signals.replace("help: Signals generated", "help: Signals, generated"),
    ];
    assert_ne!(variants[0], variants[1]);
    std::fs::write(dir.join("signals.yaml"), &variants[0]).expect("write");
    let e = common::Running::start(&[
        &format!("--config.dir={}", dir.display()),
        "--web.enable-lifecycle",
        "--no-config.watch",
    ]);
    let size = common::http_get(&e.addr, "/metrics", &[]).body.len();

    let mut quiet = Vec::new();
    let mut busy = Vec::new();
    let mut reload_times = Vec::new();
    let reloads = Arc::new(AtomicUsize::new(0));
    for _ in 0..rounds {
        quiet.extend(scrapes(&e.addr, per_phase));
        let stop = Arc::new(AtomicBool::new(false));
        let reloader = {
            let (addr, dir, stop, reloads) = (
                e.addr.clone(),
                dir.clone(),
                Arc::clone(&stop),
                Arc::clone(&reloads),
            );
            let variants = variants.clone();
            std::thread::spawn(move || {
                let mut took = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let i = reloads.fetch_add(1, Ordering::SeqCst) + 1;
                    std::fs::write(
                        dir.join("signals.yaml"),
                        &variants[if unchanged { 0 } else { i % 2 }],
                    )
                    .expect("write");
                    let t = Instant::now();
                    let r = common::http_request(&addr, "POST", "/-/reload", &[]);
                    assert_eq!(r.status, 200, "reload: {}", r.text());
                    took.push(t.elapsed());
                }
                took
            })
        };
        busy.extend(scrapes(&e.addr, per_phase));
        stop.store(true, Ordering::SeqCst);
        reload_times.extend(reloader.join().expect("reloader"));
    }
    let gen = e
        .scrape()
        .find("ebpf_exporter_config_generation", &[("config", "signals")])
        .first()
        .map(|s| s.value)
        .unwrap_or(0.0);
    let configs = e.scrape().find("ebpf_exporter_enabled_configs", &[]).len();

    println!(
        "reload benchmark: {configs} configs, {size} byte scrape, {} reloads{} ({} generations), {} scrapes per side",
        reload_times.len(),
        if unchanged { " finding nothing changed" } else { " of one config" },
        gen,
        quiet.len()
    );
    println!(
        "  reload itself: median {}, p90 {}",
        ms(percentile(&mut reload_times, 0.5)),
        ms(percentile(&mut reload_times, 0.9))
    );
    println!("  {:<8} {:>10} {:>10} {:>10}", "", "median", "p90", "p99");
    let row = |name: &str, v: &mut Vec<Duration>| {
        let p = [0.5, 0.9, 0.99].map(|q| percentile(v, q));
        println!(
            "  {name:<8} {:>10} {:>10} {:>10}",
            ms(p[0]),
            ms(p[1]),
            ms(p[2])
        );
        p
    };
    let q = row("quiet", &mut quiet);
    let b = row("reloading", &mut busy);
    let ratio = |i: usize| b[i].as_secs_f64() / q[i].as_secs_f64();
    println!(
        "  ratio reloading/quiet: median {:.2}x, p90 {:.2}x, p99 {:.2}x",
        ratio(0),
        ratio(1),
        ratio(2)
    );
}
