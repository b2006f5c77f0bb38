//! 1.5 million distinct keys streamed through a map: the exporter's memory
//! must stay flat, because cached labels of keys that are gone are dropped.

mod common;

use std::path::Path;

use common::{compile_bpf, prog_fd, rss_kib, scratch_dir, test_run, Running};

/// The stream's config: `decoders` for its one label, a u64 key.
fn config(decoders: &str) -> String {
    format!(
        "metrics:
  counters:
    - name: churn_total
      help: Keys streamed through an LRU map
      labels:
        - {{name: key, size: 8, decoders: {decoders}}}
"
    )
}

/// Labels through the key cache (a regexp is not one-to-one): the cache
/// forgets idle keys, so its parts and the RSS stay flat.
#[test]
fn memory_stays_flat_while_a_million_keys_stream_through() {
    let held = stream(
        "churn",
        &config("[{name: uint}, {name: regexp, regexps: ['^([0-9]+)$']}]"),
    );
    for part in 0..4 {
        assert!(held[5][part] > 0.0, "part {part} reported: {held:?}");
        let peak_after = held[6..].iter().map(|h| h[part]).fold(0.0, f64::max);
        assert!(
            peak_after <= held[5][part] * 2.0,
            "part {part} grew from {} to {peak_after}: {held:?}",
            held[5][part]
        );
    }
}

/// Labels one-to-one with the key (`uint` alone): rows are written as the
/// map is read, so there is no key cache, no label text and no sums.
#[test]
fn one_to_one_labels_hold_no_memory_per_key() {
    let held = stream("churn-direct", &config("[{name: uint}]"));
    for round in &held {
        assert_eq!(round[..3], [0.0, 0.0, 0.0], "keys, labels, rows: {held:?}");
    }
}

/// Streams 1.5M distinct keys through the map in 30 rounds, scraping
/// after each; checks the live series, the key cache's bound and a flat
/// RSS, and returns the held bytes (keys, labels, rows, read) per round.
fn stream(name: &str, yaml: &str) -> Vec<[f64; 4]> {
    let dir = scratch_dir(name);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bpf");
    compile_bpf(&src.join("churn.bpf.c"), &dir.join("churn.bpf.o"));
    std::fs::write(dir.join("churn.yaml"), yaml).expect("write config");
    let exporter = Running::start(&[
        &format!("--config.dir={}", dir.display()),
        "--decoder.cache-max-idle-scrapes=2",
    ]);
    let id: u32 = exporter.program_id("stream_keys");

    let rounds = 30; // 30 x 50k = 1.5M distinct keys
    let mut rss = Vec::new();
    let mut held = Vec::new();
    let memory = |s: &common::Scrape, part: &str| {
        s.sum(
            "ebpf_exporter_map_memory_bytes",
            &[("map", "churn_total"), ("part", part)],
        )
    };
    for _ in 0..rounds {
        test_run(&prog_fd(id));
        let scrape = exporter.scrape();
        // LRU maps evict a little early (per-CPU free lists), so "about 50k".
        let live = scrape.find("ebpf_exporter_churn_total", &[]).len();
        assert!((45_000..=50_000).contains(&live), "live keys: {live}");
        rss.push(rss_kib(exporter.pid(), "VmRSS:"));
        held.push(["keys", "labels", "rows", "read"].map(|p| memory(&scrape, p)));
    }
    // The heap the exporter reports holding for the map, part by part.
    eprintln!("held bytes (keys, labels, rows, read) per round: {held:?}");
    let cached = exporter.scrape().sum(
        "ebpf_exporter_decode_cache_entries",
        &[("map", "churn_total")],
    );
    assert!(
        cached <= 150_000.0,
        "cache bounded by live keys x idle scrapes: {cached}"
    );
    // Once the cache holds its bound of live keys (idle ones are forgotten
    // after 2 scrapes, so about 3 rounds' worth), memory stays within a few
    // MiB of tables doubling once to their final size. A leak of even 8
    // bytes per key would add over 9 MiB across the last 1.2M keys.
    let settled = rss[5];
    let peak_after = *rss[6..].iter().max().expect("samples");
    eprintln!("RSS KiB per 50k-key round: {rss:?}");
    assert!(
        peak_after <= settled + 8 * 1024,
        "RSS grew from {settled} KiB after 300k keys to {peak_after} KiB by 1.5M: {rss:?}"
    );
    held
}
