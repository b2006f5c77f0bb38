//! Serving and start-up benchmark, side by side in one run:
//! - the exporter's CPU per scrape when 50 clients scrape at once versus
//!   one client scraping alone at the same request rate (coalescing means
//!   joined clients share one map read, one encoding and one gzip);
//! - start-up time and RSS with the built-in default set versus all 27
//!   shipped configs.
//!
//! Run as root: `cargo bench --bench serving`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

/// `clients` scrapers, each making `per_client` gzip scrapes paced over
/// about `span`, all in step (`spread` false: Prometheus replicas that
/// happen to align) or at phases spread over the interval; the exporter's
/// CPU seconds in all.
fn cpu_total(
    e: &common::Running,
    clients: usize,
    per_client: usize,
    span: Duration,
    spread: bool,
) -> f64 {
    let before = common::process_cpu_secs(e.pid());
    let gap = span / per_client as u32;
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let addr = e.addr.clone();
            let phase = if spread {
                gap * c as u32 / clients as u32
            } else {
                Duration::ZERO
            };
            std::thread::spawn(move || {
                for i in 0..per_client {
                    let due = start + phase + gap * i as u32;
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let r = common::http_get(&addr, "/metrics", &[("Accept-Encoding", "gzip")]);
                    assert_eq!(r.status, 200);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client");
    }
    common::process_cpu_secs(e.pid()) - before
}

/// One scraper at a rate against 50 scrapers sharing that same total rate,
/// on a 100k-series exposition (gzip, as Prometheus asks): what concurrency
/// alone costs when the expositions are large.
fn hundred_thousand_series() {
    let dir = common::scratch_dir("bench-serving");
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/bpf");
    common::compile_bpf(&src.join("bench_maps.bpf.c"), &dir.join("bench_maps.bpf.o"));
    std::fs::copy(src.join("bench_100k.yaml"), dir.join("bench_100k.yaml")).expect("copy config");
    let e = common::Running::start(&[
        &format!("--config.dir={}", dir.display()),
        "--config.names=bench_100k",
        "--web.max-requests=100",
    ]);
    common::test_run(&common::prog_fd(e.program_id("fill_maps")));
    let body = common::http_get(&e.addr, "/metrics", &[]).text();
    let series = body
        .lines()
        .filter(|l| l.starts_with("ebpf_exporter_bh_total"))
        .count();
    assert_eq!(series, 100_000, "the 100k-key counter is filled");
    let span = Duration::from_secs(4);
    let (mut alone, mut split, mut step) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        // 40 scrapes in 4 s: one client, then 50 clients at spread phases
        // making 40 between them, then 50 clients in step, 40 rounds each
        // (Prometheus replicas that align: 50 times the request rate).
        alone.push(cpu_total(&e, 1, 40, span, false));
        split.push(cpu_total(&e, 40, 1, span, true));
        step.push(cpu_total(&e, 50, 40, span, false));
    }
    let (alone, split, step) = (
        common::median(alone),
        common::median(split),
        common::median(step),
    );
    println!(
        "  100k series, 10 req/s in all over {}s: 1 scraper {:.2} s CPU; 40 scrapers at spread phases {:.2} s ({:.2}x); 50 in step at 10 req/s each (50x the rate) {:.2} s ({:.2}x)",
        span.as_secs(),
        alone,
        split,
        split / alone,
        step,
        step / alone
    );
}

fn start_up(args: &[&str]) -> (Duration, u64) {
    let t = Instant::now();
    let e = common::Running::start(args);
    let took = t.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    (took, common::rss_kib(e.pid(), "VmRSS"))
}

fn main() {
    // SAFETY: a plain getter.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("the serving benchmark loads BPF programs: run it as root");
        std::process::exit(1);
    }
    let all = common::shipped_configs();
    let names = format!("--config.names={}", all.join(","));

    // Above the default limit of 40 scrapes in flight, which 50 clients
    // at once would reach.
    let e = common::Running::start(&[&names, "--web.max-requests=100"]);
    let size = common::http_get(&e.addr, "/metrics", &[]).body.len();
    // Each scraper at 10 requests/s for 4 s: one alone, then 50 at that
    // same rate, in step and with spread phases.
    let span = Duration::from_secs(4);
    let per_client = 40;
    let (mut one, mut step, mut spread) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        one.push(cpu_total(&e, 1, per_client, span, false));
        step.push(cpu_total(&e, 50, per_client, span, false));
        spread.push(cpu_total(&e, 50, per_client, span, true));
    }
    // The same total rate, split over 50 scrapers: concurrency alone.
    let (mut alone, mut split) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        alone.push(cpu_total(&e, 1, 100, span, false));
        split.push(cpu_total(&e, 50, 2, span, true));
    }
    let (one, step, spread) = (
        common::median(one),
        common::median(step),
        common::median(spread),
    );
    let (alone, split) = (common::median(alone), common::median(split));
    println!(
        "serving benchmark: all {} shipped configs, {size} byte scrape, gzip",
        all.len()
    );
    println!(
        "  exporter CPU over {}s with scrapers at 10 req/s each: 1 scraper {:.2} s; 50 in step {:.2} s ({:.2}x); 50 at spread phases {:.2} s ({:.2}x)",
        span.as_secs(),
        one,
        step,
        step / one,
        spread,
        spread / one
    );
    println!(
        "  the same 25 req/s in all: 1 scraper {:.2} s; 50 scrapers at spread phases {:.2} s ({:.2}x)",
        alone,
        split,
        split / alone
    );
    drop(e);
    hundred_thousand_series();
    let (t_default, rss_default) = start_up(&[]);
    let (t_all, rss_all) = start_up(&[&names]);
    println!(
        "  start-up to serving: default set {} ms, RSS {} KiB; all {} configs {} ms, RSS {} KiB",
        t_default.as_millis(),
        rss_default,
        all.len(),
        t_all.as_millis(),
        rss_all
    );
}
