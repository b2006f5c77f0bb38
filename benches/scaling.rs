//! Scaling benchmark: how the scrape grows with map size. A HASH, a
//! PERCPU_HASH and an LRU_HASH are filled from user space to 3.3k, 33k and
//! 333k keys each (10k, 100k and 1M series in all); at each size, in one
//! run, the raw batch-read floor of the three maps (MapReader, in the bench
//! process) is timed against a full HTTP scrape of the exporter serving
//! them, and the exporter's RSS is read.
//!
//! Run as root: `cargo bench --bench scaling` (`-- --rounds N`).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use ebpf_exporter::maps::MapReader;
use libbpf_rs::{MapCore, MapHandle};

const MAPS: [&str; 3] = ["sc_hash_total", "sc_percpu_total", "sc_lru_total"];

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Fills `map` with keys `from..to`, value 1 (per CPU for per-CPU maps),
/// in batches.
fn fill(map: &MapHandle, from: u32, to: u32, ncpus: usize) {
    use std::os::fd::{AsFd, AsRawFd};
    let percpu = map.map_type().is_percpu();
    let per_value = if percpu { ncpus } else { 1 };
    let mut start = from;
    while start < to {
        let end = (start + 4096).min(to);
        let keys: Vec<u32> = (start..end).collect();
        let values: Vec<u64> = vec![1; keys.len() * per_value];
        let mut count = keys.len() as u32;
        let opts = libbpf_sys::bpf_map_batch_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_map_batch_opts>() as _,
            ..Default::default()
        };
        // SAFETY: keys and values hold `count` keys and values of the map's
        // sizes (u32 keys, u64 values repeated per CPU), and outlive the call.
        let rc = unsafe {
            libbpf_sys::bpf_map_update_batch(
                map.as_fd().as_raw_fd(),
                keys.as_ptr().cast(),
                values.as_ptr().cast(),
                &mut count,
                &opts,
            )
        };
        assert_eq!(rc, 0, "batch update: {}", std::io::Error::last_os_error());
        start = end;
    }
}

fn main() {
    // SAFETY: a plain getter.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("the scaling benchmark loads BPF programs: run it as root");
        std::process::exit(1);
    }
    let rounds: usize = std::env::args()
        .skip_while(|a| a != "--rounds")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let dir = common::scratch_dir("bench-scaling");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    common::compile_bpf(
        &root.join("benches/bpf/scale_maps.bpf.c"),
        &dir.join("scale.bpf.o"),
    );
    let mut yaml = String::from("metrics:\n  counters:\n");
    for m in MAPS {
        yaml.push_str(&format!(
            "    - name: {m}\n      help: scaling\n      labels:\n        - {{name: k, decoders: [{{name: uint}}]}}\n"
        ));
    }
    std::fs::write(dir.join("scale.yaml"), yaml).expect("write");
    let e = common::Running::start(&[&format!("--config.dir={}", dir.display())]);
    let handles: Vec<MapHandle> = MAPS.iter().map(|name| e.map_of("touch", name)).collect();
    let ncpus = ebpf_exporter::host::cpus::possible();
    let mut readers: Vec<MapReader> = MAPS
        .iter()
        .zip(&handles)
        .map(|(name, h)| {
            MapReader::new(
                MapHandle::from_map_id(h.info().expect("info").info.id).expect("map"),
                name,
            )
        })
        .collect();

    println!("scaling benchmark: HASH, PERCPU_HASH ({ncpus} CPUs) and LRU_HASH, u32 keys, one uint label; medians of {rounds}");
    println!(
        "{:>10} | {:>10} | {:>10} | {:>7} | {:>13} | {:>12} | {:>9}",
        "series", "floor", "scrape", "ratio", "ns per series", "vs smallest", "RSS"
    );
    let mut first_per_entry = None;
    let mut filled = 0u32;
    for per_map in [3_334u32, 33_334, 333_334] {
        for h in &handles {
            fill(h, filled, per_map, ncpus);
        }
        filled = per_map;
        let series = per_map as usize * MAPS.len();
        // Warm: the first scrape decodes every new key.
        let _ = common::http_get(&e.addr, "/metrics", &[]);
        let (mut floor, mut scrape) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let t = Instant::now();
            for r in &mut readers {
                r.read().expect("batch read");
            }
            floor.push(t.elapsed());
            let t = Instant::now();
            let body = common::http_get(&e.addr, "/metrics", &[]).body;
            scrape.push(t.elapsed());
            assert!(body.len() > series * 10, "served every series");
        }
        let (floor, scrape) = (median(floor), median(scrape));
        let per = scrape.as_nanos() as f64 / series as f64;
        let first = *first_per_entry.get_or_insert(per);
        println!(
            "{:>10} | {:>8.1}ms | {:>8.1}ms | {:>6.2}x | {:>13.0} | {:>11.2}x | {:>6} MB",
            series,
            floor.as_secs_f64() * 1e3,
            scrape.as_secs_f64() * 1e3,
            scrape.as_secs_f64() / floor.as_secs_f64(),
            per,
            per / first,
            common::rss_kib(e.pid(), "VmHWM") / 1024
        );
    }
}
