//! Scrape benchmark: how close a full scrape of large maps comes to the
//! kernel's floor, side by side with the reference exporter's method and
//! bpftool, in one run. Prints ratios, not absolute targets: machines here
//! are noisy, ratios measured in the same run are not.
//!
//! Run as root: `cargo bench --bench scrape` (`-- --rounds N` for more
//! rounds, `-- --hold SECS` to keep the filled exporter up for profiling).

#[path = "../tests/common/mod.rs"]
mod common;

use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{prog_fd, prog_map_ids, rss_kib, test_run};
use ebpf_exporter::encode::{Format, TextWriter};
use ebpf_exporter::host::cpus::possible as possible_cpus;
use ebpf_exporter::maps::MapReader;
use ebpf_exporter::metrics::sink::render_labels;
use ebpf_exporter::metrics::{Kind, Sink};
use libbpf_rs::{MapCore, MapHandle};

struct BenchMap {
    name: String,
    id: u32,
    handle: MapHandle,
    reader: MapReader,
}

fn fmt_ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// The reference exporter's method: next key, then lookup, per entry.
fn iterate(m: &BenchMap, percpu: bool, ncpus: usize) -> usize {
    let fd = m.handle.as_fd().as_raw_fd();
    let ks = m.handle.key_size() as usize;
    let vs = if percpu {
        8 * ncpus
    } else {
        m.handle.value_size() as usize
    };
    let mut key = vec![0u8; ks];
    let mut next = vec![0u8; ks];
    let mut value = vec![0u8; vs];
    let mut first = true;
    let mut n = 0;
    loop {
        let prev = if first {
            std::ptr::null()
        } else {
            key.as_ptr()
        };
        // SAFETY: buffers are sized for the map's key and value.
        let rc =
            unsafe { libbpf_sys::bpf_map_get_next_key(fd, prev.cast(), next.as_mut_ptr().cast()) };
        if rc != 0 {
            return n;
        }
        // SAFETY: as above.
        unsafe {
            libbpf_sys::bpf_map_lookup_elem(fd, next.as_ptr().cast(), value.as_mut_ptr().cast())
        };
        std::mem::swap(&mut key, &mut next);
        first = false;
        n += 1;
    }
}

fn bpftool_dump(id: u32) {
    let status = Command::new("bpftool")
        .args(["map", "dump", "id", &id.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("bpftool runs");
    assert!(status.success(), "bpftool map dump id {id}");
}

/// Peak and steady RSS (KiB) of an exporter serving exactly one 100k-series
/// counter, after a few scrapes.
fn rss_at_100k_series(dir: &Path) -> (u64, u64, usize) {
    let exporter = common::Running::start(&[
        &format!("--config.dir={}", dir.display()),
        "--config.names=bench_100k",
    ]);
    let id = exporter.program_id("fill_maps");
    test_run(&prog_fd(id));
    let mut series = 0;
    for _ in 0..5 {
        let text = exporter.get("/metrics").text();
        series = text
            .lines()
            .filter(|l| l.starts_with("ebpf_exporter_bh_total"))
            .count();
    }
    let pid = exporter.pid();
    (rss_kib(pid, "VmRSS:"), rss_kib(pid, "VmHWM:"), series)
}

fn main() {
    let rounds: usize = std::env::args()
        .skip_while(|a| a != "--rounds")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    ebpf_exporter::object::libbpf_log::install();
    // SAFETY: a plain getter.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("the scrape benchmark loads BPF programs: run it as root");
        std::process::exit(1);
    }

    let dir = common::scratch_dir("bench");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/bpf");
    common::compile_bpf(
        &root.join("bench_maps.bpf.c"),
        &dir.join("bench_maps.bpf.o"),
    );
    std::fs::copy(root.join("bench_maps.yaml"), dir.join("bench_maps.yaml")).expect("copy config");
    std::fs::copy(root.join("bench_100k.yaml"), dir.join("bench_100k.yaml")).expect("copy config");

    let rss_100k = rss_at_100k_series(&dir);
    let exporter = common::Running::start(&[
        &format!("--config.dir={}", dir.display()),
        "--config.names=bench_maps",
    ]);
    let pid = exporter.pid();
    let fill_id = exporter.program_id("fill_maps");
    let fill = prog_fd(fill_id);
    test_run(&fill);

    let ncpus = possible_cpus();
    let mut maps: Vec<BenchMap> = prog_map_ids(&fill)
        .into_iter()
        .map(|id| {
            let handle = MapHandle::from_map_id(id).expect("map by id");
            let name = handle.name().to_string_lossy().into_owned();
            let reader = MapReader::new(MapHandle::from_map_id(id).expect("map by id"), &name);
            BenchMap {
                name,
                id,
                handle,
                reader,
            }
        })
        .filter(|m| !m.name.contains('.'))
        .collect();
    maps.sort_by(|a, b| a.name.cmp(&b.name));
    let entries: usize = maps
        .iter_mut()
        .map(|m| {
            m.reader.read().expect("read");
            m.reader.len()
        })
        .sum();

    if let Some(secs) = std::env::args()
        .skip_while(|a| a != "--hold")
        .nth(1)
        .and_then(|v| v.parse::<u64>().ok())
    {
        // For profiling: keep the filled exporter up and say where it is.
        println!(
            "holding exporter pid {pid} at http://{}/metrics for {secs}s",
            exporter.addr
        );
        std::thread::sleep(Duration::from_secs(secs));
    }

    // Warm the exporter's decode cache, as in steady state.
    let warm = exporter.get("/metrics");
    let series = warm.text().lines().filter(|l| !l.starts_with('#')).count();

    let mut floor = Vec::new();
    let mut iter = Vec::new();
    let mut bpftool = Vec::new();
    let mut scrape = Vec::new();
    let mut scrape10 = Vec::new();
    let mut buf = Vec::new();
    for round in 0..rounds {
        // Rotate the order so drift in machine load hits every method alike.
        for step in 0..5 {
            match (round + step) % 5 {
                0 => {
                    let t = Instant::now();
                    for m in maps.iter_mut() {
                        m.reader.read().expect("batch read");
                    }
                    floor.push(t.elapsed());
                }
                1 => {
                    let t = Instant::now();
                    for m in &maps {
                        iterate(m, m.reader.is_percpu(), ncpus);
                    }
                    iter.push(t.elapsed());
                }
                2 => {
                    let t = Instant::now();
                    for m in &maps {
                        bpftool_dump(m.id);
                    }
                    bpftool.push(t.elapsed());
                }
                3 => {
                    // To the last byte, with a client that reads as it goes.
                    let (took, bytes) = common::timed_get(&exporter.addr, "/metrics", &mut buf);
                    assert!(bytes > series * 10, "a whole scrape");
                    scrape.push(took);
                }
                _ => {
                    let t = Instant::now();
                    let addr = exporter.addr.clone();
                    let handles: Vec<_> = (0..10)
                        .map(|_| {
                            let addr = addr.clone();
                            std::thread::spawn(move || {
                                // Reading clients, as for the single scrape.
                                common::timed_get(&addr, "/metrics", &mut Vec::new()).1
                            })
                        })
                        .collect();
                    for h in handles {
                        assert!(h.join().expect("scrape thread") > series * 10);
                    }
                    scrape10.push(t.elapsed());
                }
            }
        }
    }
    let (floor, iter, bpftool, scrape, scrape10) = (
        common::median(floor),
        common::median(iter),
        common::median(bpftool),
        common::median(scrape),
        common::median(scrape10),
    );
    let rss = rss_kib(pid, "VmRSS:");
    let hwm = rss_kib(pid, "VmHWM:");

    // Encoding alone, in process: pre-rendered labels into one buffer.
    let n_enc = 250_000usize;
    let labels: Vec<String> = (0..n_enc)
        .map(|i| render_labels(["key"], &[i.to_string()]))
        .collect();
    let mut enc = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let mut w = TextWriter::new(Format::Text);
        w.family("ebpf_exporter_x_total", "x", Kind::Counter);
        for (i, l) in labels.iter().enumerate() {
            w.sample_u64(l, None, i as u64);
        }
        std::hint::black_box(w.finish());
        enc.push(t.elapsed());
    }
    let enc = common::median(enc);

    // Start-up of the built-in default set, from exec to serving.
    let mut startup = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let e = common::Running::start(&[]);
        startup.push(t.elapsed());
        drop(e);
    }
    let startup = common::median(startup);

    let ratio = |d: Duration| d.as_secs_f64() / floor.as_secs_f64();
    println!("ebpf-exporter scrape benchmark: {} maps, {entries} entries, {series} series, {ncpus} possible CPUs, {rounds} rounds (medians)", maps.len());
    for m in &maps {
        println!(
            "  {:<14} {:?} {:>7} entries (max {})",
            m.name,
            m.handle.map_type(),
            m.reader.len(),
            m.handle.max_entries()
        );
    }
    println!();
    println!("{:<48} {:>12} {:>10}", "method", "time", "vs floor");
    println!(
        "{:<48} {:>12} {:>10}",
        "1. raw floor: batch read, reused buffers",
        fmt_ms(floor),
        "1.00x"
    );
    println!(
        "{:<48} {:>12} {:>9.2}x",
        "2. reference method: next key + lookup per key",
        fmt_ms(iter),
        ratio(iter)
    );
    println!(
        "{:<48} {:>12} {:>9.2}x",
        "3. bpftool map dump",
        fmt_ms(bpftool),
        ratio(bpftool)
    );
    println!(
        "{:<48} {:>12} {:>9.2}x",
        "4. full scrape over HTTP (ebpf-exporter)",
        fmt_ms(scrape),
        ratio(scrape)
    );
    println!();
    println!(
        "full scrape vs raw floor:            {:.2}x (target <= 2x)",
        ratio(scrape)
    );
    println!(
        "per-key iteration vs full scrape:    {:.2}x (target >= 5x)",
        iter.as_secs_f64() / scrape.as_secs_f64()
    );
    println!(
        "bpftool dump vs full scrape:         {:.2}x (target >= 5x)",
        bpftool.as_secs_f64() / scrape.as_secs_f64()
    );
    println!(
        "10 concurrent scrapes vs one:        {:.2}x (target <= 2x)",
        scrape10.as_secs_f64() / scrape.as_secs_f64()
    );
    println!(
        "end-to-end series/s:                 {:.0}",
        series as f64 / scrape.as_secs_f64()
    );
    println!(
        "encoding alone, series/s:            {:.0} (target >= 2M)",
        n_enc as f64 / enc.as_secs_f64()
    );
    println!(
        "exporter RSS serving {} series: {:.1} MB now, {:.1} MB peak (target <= 30 MB)",
        rss_100k.2,
        rss_100k.0 as f64 / 1024.0,
        rss_100k.1 as f64 / 1024.0
    );
    println!(
        "exporter RSS serving {series} series: {:.1} MB now, {:.1} MB peak",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    println!(
        "start-up, default set, exec to serving: {} (target < 500 ms)",
        fmt_ms(startup)
    );
    let _ = std::fs::remove_dir_all(dir);
}
