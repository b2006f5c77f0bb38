//! Scaling benchmark: how the scrape grows with map size. A HASH, a
//! PERCPU_HASH and an LRU_HASH are filled from user space to 3.3k, 33k and
//! 333k keys each (10k, 100k and 1M series in all); at each size, in one
//! run, the raw batch-read floor of the three maps (MapReader, in the bench
//! process) is timed against a full HTTP scrape of the exporter serving
//! them, by wall time and by CPU time (the exporter's, all threads, per
//! scrape, against the floor thread's), and the exporter's RSS is read.
//!
//! Run as root: `cargo bench --bench scaling` (`-- --rounds N`; `-- --hold
//! SECS` keeps the exporter up with the largest maps, for profiling; `--
//! --sizes N,N,..` sets the keys per map of each step; `-- --one-map` runs
//! the one-large-map table alone, `-- --keys N,N,..` its steps; `--
//! --cached` adds a decoder that sends the labels through the key cache,
//! where `uint` alone lets rows be written as the maps are read).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/scale.rs"]
mod scale;

use std::time::{Duration, Instant};

use ebpf_exporter::maps::{MapReader, Method, ReadPolicy};
use libbpf_rs::{MapCore, MapHandle, MapType};

use scale::{fill, MAPS};

fn main() {
    ebpf_exporter::object::libbpf_log::install();
    // SAFETY: a plain getter.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("the scaling benchmark loads BPF programs: run it as root");
        std::process::exit(1);
    }
    let rounds: usize = std::env::args()
        .skip_while(|a| a != "--rounds")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(21);
    let ncpus = ebpf_exporter::host::cpus::possible();
    if std::env::args().any(|a| a == "--one-map") {
        one_map(rounds, ncpus);
        return;
    }
    let dir = common::scratch_dir("bench-scaling");
    scale::write_config(&dir);
    let e = common::Running::start(&[&format!("--config.dir={}", dir.display())]);
    let handles: Vec<MapHandle> = MAPS.iter().map(|name| e.map_of("touch", name)).collect();
    // The floor: batch lookups of the three maps, in this process.
    let mut batch: Vec<MapReader> = MAPS
        .iter()
        .zip(&handles)
        .map(|(name, h)| reader_of(h, name, ReadPolicy::Batch))
        .collect();
    let mut iters: Vec<MapReader> = MAPS
        .iter()
        .zip(&handles)
        .map(|(name, h)| reader_of(h, name, ReadPolicy::Iterator))
        .collect();
    // The exporter's own walk of each map (`MapReader::read_each`): on two
    // CPUs a map larger than a batch is read by two threads at once.
    let mut walked: Vec<MapReader> = MAPS
        .iter()
        .zip(&handles)
        .map(|(name, h)| reader_of(h, name, ReadPolicy::Batch))
        .collect();
    // Kernels that refuse tracing programs (this one answers EPERM, as for
    // fentry) cannot run iterators: say so, and the column stays empty.
    let iterator_refused = iters
        .iter()
        .find_map(|r| r.iterator_refused().map(|e| e.to_string()));

    println!(
        "scaling benchmark: HASH, PERCPU_HASH ({ncpus} CPUs) and LRU_HASH, u32 keys, one label: {}; medians of {rounds}",
        scale::label_path()
    );
    println!("(floor: BPF_MAP_LOOKUP_BATCH of the three maps in the bench process; scrape: a full HTTP scrape of the exporter serving them, to its last byte)");
    println!(
        "{:>10} | {:>10} | {:>18} | {:>10} | {:>19} | {:>10} | {:>13} | {:>12} | {:>19}",
        "series",
        "floor",
        "in the exporter",
        "scrape",
        "ratio (range)",
        "CPU ratio",
        "ns per series",
        "vs smallest",
        "peak RSS"
    );
    let mut first_per_entry = None;
    let mut held = Vec::new();
    let mut filled = 0u32;
    let mut methods = Vec::new();
    let mut buf = Vec::new();
    // `-- --sizes 3334,33334` for other sizes (keys per map).
    let sizes = numbers_arg("--sizes", &[3_334, 33_334, 333_334]);
    for per_map in sizes {
        for h in &handles {
            fill(h, filled, per_map, ncpus);
        }
        filled = per_map;
        let series = per_map as usize * MAPS.len();
        // Warm: the first scrape decodes every new key.
        let _ = common::http_get(&e.addr, "/metrics", &[]);
        let (mut floor, mut scrape) = (Vec::new(), Vec::new());
        let mut per_map_times = vec![(Vec::new(), Vec::new(), Vec::new()); MAPS.len()];
        for w in &mut walked {
            // Sizes the next walk by this one.
            w.read_each(|_, _, _| {}).expect("walk");
        }
        let mut inside: Vec<(f64, f64)> = Vec::new();
        // Small maps take a few ms, where one scheduler hiccup on a shared
        // VM doubles a sample: each sample then averages enough repeats to
        // last about 40 ms of floor reads, floor and scrape alike.
        let t = Instant::now();
        for r in &mut batch {
            r.read().expect("batch read");
        }
        let reps = (0.040 / t.elapsed().as_secs_f64().max(1e-6)).clamp(1.0, 50.0) as u32;
        // CPU time, beside wall time: the floor's on this thread, the
        // scrape's as all of the exporter's threads used while serving it
        // (nothing else runs there meanwhile).
        let (mut floor_cpu, mut scrape_cpu) = (0.0, 0.0);
        for _ in 0..rounds {
            // Floor read and scrape alternate, so neither gets a warmer
            // cache or a quieter moment than the other.
            let (mut read, mut took) = (Duration::ZERO, Duration::ZERO);
            let exporter_cpu = common::process_cpu_secs(e.pid());
            for _ in 0..reps {
                let (t, cpu) = (Instant::now(), common::thread_cpu_ns());
                for r in &mut batch {
                    r.read().expect("batch read");
                }
                read += t.elapsed();
                floor_cpu += (common::thread_cpu_ns() - cpu) / 1e9;
                let (one, bytes) = common::timed_get(&e.addr, "/metrics", &mut buf);
                assert!(bytes > series * 10, "served every series");
                took += one;
            }
            scrape_cpu += common::process_cpu_secs(e.pid()) - exporter_cpu;
            floor.push(read / reps);
            scrape.push(took / reps);
            // The exporter's own time, from its
            // ebpf_exporter_config_scrape_duration_seconds, paired with a
            // floor read just before: what the scrape costs beyond the
            // floor before HTTP adds anything.
            let t = Instant::now();
            for r in &mut batch {
                r.read().expect("batch read");
            }
            let read = t.elapsed().as_secs_f64();
            let text = common::http_get(&e.addr, "/metrics", &[]).text();
            let own: f64 = text
                .lines()
                .find_map(|l| {
                    l.strip_prefix(
                        "ebpf_exporter_config_scrape_duration_seconds{config=\"scale\"} ",
                    )
                })
                .and_then(|v| v.parse().ok())
                .expect("the exporter reports its scrape duration");
            inside.push((own, own / read));
            for (i, ((b, it), w)) in batch
                .iter_mut()
                .zip(&mut iters)
                .zip(&mut walked)
                .enumerate()
            {
                let t = Instant::now();
                b.read().expect("batch read");
                per_map_times[i].0.push(t.elapsed());
                let (t, mut count) = (Instant::now(), 0usize);
                w.read_each(|_, _, _| count += 1).expect("walk");
                per_map_times[i].2.push(t.elapsed());
                assert_eq!(count, b.len(), "{}: the walk's entries", MAPS[i]);
                if it.method() == Method::Iterator {
                    let t = Instant::now();
                    it.read().expect("iterator read");
                    per_map_times[i].1.push(t.elapsed());
                    assert_eq!(it.method(), Method::Iterator, "no fallback");
                    assert_eq!(it.len(), b.len(), "{}: same entries", MAPS[i]);
                }
            }
        }
        for (i, (b, it, w)) in per_map_times.into_iter().enumerate() {
            let it = (!it.is_empty()).then(|| common::median(it));
            methods.push((
                MAPS[i].to_string(),
                per_map as usize,
                common::median(b),
                Some(common::median(w)),
                it,
                None,
            ));
        }
        methods.push(array_methods(per_map, ncpus, rounds));
        // Each round's floor and scrape run back to back, so the ratio of
        // each pair is what drift in machine speed leaves alone; the table
        // shows their median and range.
        let mut ratios: Vec<f64> = floor
            .iter()
            .zip(&scrape)
            .map(|(f, s)| s.as_secs_f64() / f.as_secs_f64())
            .collect();
        ratios.sort_by(f64::total_cmp);
        inside.sort_by(|a, b| a.1.total_cmp(&b.1));
        let (inside, inside_ratio) = inside[inside.len() / 2];
        let (floor, scrape) = (common::median(floor), common::median(scrape));
        let per = scrape.as_nanos() as f64 / series as f64;
        let first = *first_per_entry.get_or_insert(per);
        println!(
            "{:>10} | {:>8.1}ms | {:>8.1}ms ({:.2}x) | {:>8.1}ms | {:>6.2}x ({:.2}-{:.2}) | {:>9.2}x | {:>13.0} | {:>11.2}x | {:>19}",
            series,
            floor.as_secs_f64() * 1e3,
            inside * 1e3,
            inside_ratio,
            scrape.as_secs_f64() * 1e3,
            ratios[ratios.len() / 2],
            ratios[0],
            ratios[ratios.len() - 1],
            scrape_cpu / floor_cpu,
            per,
            per / first,
            peak_rss(e.pid(), series)
        );
        held.push((series, held_per_series(&e, series)));
    }
    // Where the peak RSS goes: what the exporter reports holding for the
    // maps (ebpf_exporter_map_memory_bytes), per series.
    println!("held for the maps, bytes per series (the exporter's own accounting of its heap):");
    for (series, parts) in held {
        let line: Vec<String> = MEMORY_PARTS
            .iter()
            .zip(parts)
            .map(|(part, b)| format!("{part} {b:.1}"))
            .collect();
        println!(
            "{series:>10} series: {} (total {:.1})",
            line.join(", "),
            parts.iter().sum::<f64>()
        );
    }
    if let Some(secs) = std::env::args()
        .skip_while(|a| a != "--hold")
        .nth(1)
        .and_then(|v| v.parse::<u64>().ok())
    {
        // For profiling: keep the exporter up with the largest maps.
        println!(
            "holding exporter pid {} at http://{}/metrics for {secs}s",
            e.pid(),
            e.addr
        );
        std::thread::sleep(Duration::from_secs(secs));
    }
    println!("(CPU ratio: the exporter's CPU time per scrape, all threads, over the floor's CPU time per read)");
    println!();
    one_map(rounds, ncpus);
    println!();
    println!(
        "read methods against the batch floor, per map (same map, same run, medians of {rounds}):"
    );
    println!(
        "{:>16} | {:>8} | {:>10} | {:>18} | {:>18} | {:>18}",
        "map", "entries", "batch", "walked", "iterator", "mmap"
    );
    let cell = |d: Option<Duration>, floor: Duration| {
        d.map_or("-".to_string(), |d| {
            let ratio = d.as_secs_f64() / floor.as_secs_f64();
            if ratio < 0.1 {
                format!("{:.3}ms {:.4}x", d.as_secs_f64() * 1e3, ratio)
            } else {
                format!("{:.2}ms {:.2}x", d.as_secs_f64() * 1e3, ratio)
            }
        })
    };
    if let Some(why) = iterator_refused {
        println!("iterator: not measurable on this kernel: {why}");
    }
    for (name, n, b, w, it, mm) in methods {
        println!(
            "{:>16} | {:>8} | {:>8.2}ms | {:>18} | {:>18} | {:>18}",
            name,
            n,
            b.as_secs_f64() * 1e3,
            cell(w, b),
            cell(it, b),
            cell(mm, b)
        );
    }
    println!("(walked: MapReader::read_each, as a scrape reads a map larger than a batch; on two CPUs or more, two threads at once)");
}

/// One map that dominates, as per-pid or per-connection configs have: a
/// HASH sized for 1M keys, grown from 10k to 1M, between two small maps of
/// 1000 keys (`one_map.bpf.c`), in an exporter of its own. The floor is a
/// batch read of the large map alone, so the ratio is what everything else
/// a scrape does costs on top of it; the small maps' own batch reads are
/// shown beside it.
fn one_map(rounds: usize, ncpus: usize) {
    use scale::{LARGE, ONE_MAP, SMALL_KEYS};
    let dir = common::scratch_dir("bench-scaling-one");
    scale::write_one_map_config(&dir);
    let e = common::Running::start(&[&format!("--config.dir={}", dir.display())]);
    let handles: Vec<MapHandle> = ONE_MAP.iter().map(|name| e.map_of("touch", name)).collect();
    let reader = |i: usize| reader_of(&handles[i], ONE_MAP[i], ReadPolicy::Batch);
    let mut small: Vec<MapReader> = Vec::new();
    for i in (0..ONE_MAP.len()).filter(|&i| i != LARGE) {
        fill(&handles[i], 0, SMALL_KEYS, ncpus);
        small.push(reader(i));
    }
    let mut floor_reader = reader(LARGE);
    println!("one large map: {} (HASH of up to {} keys) grown, between two maps of {SMALL_KEYS} keys (PERCPU_HASH, LRU_HASH of 10240); floor: a batch read of the large map alone; medians of {rounds}", ONE_MAP[LARGE], scale::LARGE_KEYS);
    println!(
        "{:>10} | {:>10} | {:>11} | {:>18} | {:>10} | {:>19} | {:>10} | {:>19}",
        "keys",
        "floor",
        "small maps",
        "in the exporter",
        "scrape",
        "ratio (range)",
        "CPU ratio",
        "peak RSS"
    );
    let mut filled = 0;
    let mut buf = Vec::new();
    let steps = numbers_arg("--keys", &[10_000, 100_000, 1_000_000]);
    for keys in steps {
        fill(&handles[LARGE], filled, keys, ncpus);
        filled = keys;
        let _ = common::http_get(&e.addr, "/metrics", &[]);
        let (mut ratios, mut floors, mut scrapes) = (Vec::new(), Vec::new(), Vec::new());
        let (mut inside, mut smalls) = (Vec::new(), Vec::new());
        let (mut floor_cpu, mut scrape_cpu) = (0.0, 0.0);
        for _ in 0..rounds {
            let (t, cpu) = (Instant::now(), common::thread_cpu_ns());
            floor_reader.read().expect("batch read");
            let floor = t.elapsed();
            floor_cpu += (common::thread_cpu_ns() - cpu) / 1e9;
            let exporter_cpu = common::process_cpu_secs(e.pid());
            let (took, bytes) = common::timed_get(&e.addr, "/metrics", &mut buf);
            scrape_cpu += common::process_cpu_secs(e.pid()) - exporter_cpu;
            assert!(bytes > keys as usize * 10, "served every series");
            ratios.push(took.as_secs_f64() / floor.as_secs_f64());
            floors.push(floor);
            scrapes.push(took);
            inside.push(own_scrape_secs(&e) / floor.as_secs_f64());
            let t = Instant::now();
            for r in &mut small {
                r.read().expect("batch read");
            }
            smalls.push(t.elapsed());
        }
        ratios.sort_by(f64::total_cmp);
        inside.sort_by(f64::total_cmp);
        println!(
            "{:>10} | {:>8.1}ms | {:>9.2}ms | {:>17.2}x | {:>8.1}ms | {:>6.2}x ({:.2}-{:.2}) | {:>9.2}x | {:>19}",
            keys,
            common::median(floors).as_secs_f64() * 1e3,
            common::median(smalls).as_secs_f64() * 1e3,
            inside[inside.len() / 2],
            common::median(scrapes).as_secs_f64() * 1e3,
            ratios[ratios.len() / 2],
            ratios[0],
            ratios[ratios.len() - 1],
            scrape_cpu / floor_cpu,
            peak_rss(e.pid(), keys as usize + 2 * SMALL_KEYS as usize)
        );
    }
}

/// The exporter's peak RSS so far, and what it is per series.
fn peak_rss(pid: u32, series: usize) -> String {
    let kib = common::rss_kib(pid, "VmHWM");
    format!(
        "{} MiB ({:.1} B)",
        kib / 1024,
        (kib * 1024) as f64 / series as f64
    )
}

/// A second reader of the map behind `h`, this process's own, by `policy`.
fn reader_of(h: &MapHandle, name: &str, policy: ReadPolicy) -> MapReader {
    let id = h.info().expect("info").info.id;
    MapReader::with_policy(MapHandle::from_map_id(id).expect("map"), name, policy)
}

/// The comma-separated numbers after `name` on the command line, or
/// `default`.
fn numbers_arg(name: &str, default: &[u32]) -> Vec<u32> {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

/// The parts `ebpf_exporter_map_memory_bytes` reports, in order.
const MEMORY_PARTS: [&str; 4] = ["keys", "labels", "rows", "read"];

/// Bytes per series the exporter holds for the `scale` config's maps, by
/// part.
fn held_per_series(e: &common::Running, series: usize) -> [f64; 4] {
    let text = common::http_get(&e.addr, "/metrics", &[]).text();
    MEMORY_PARTS.map(|part| {
        let want = format!("part=\"{part}\"");
        let bytes: f64 = text
            .lines()
            .filter(|l| {
                l.starts_with("ebpf_exporter_map_memory_bytes{")
                    && l.contains("config=\"scale\"")
                    && l.contains(&want)
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        bytes / series as f64
    })
}

/// The exporter's own time for its last scrape of the `scale` config
/// (`ebpf_exporter_config_scrape_duration_seconds`), read with a scrape of
/// its own.
fn own_scrape_secs(e: &common::Running) -> f64 {
    common::http_get(&e.addr, "/metrics", &[])
        .text()
        .lines()
        .find_map(|l| {
            l.strip_prefix("ebpf_exporter_config_scrape_duration_seconds{config=\"scale\"} ")
        })
        .and_then(|v| v.parse().ok())
        .expect("the exporter reports its scrape duration")
}

/// A map's read times by method: name, entries, batch, walked, iterator,
/// mmap.
type MethodRow = (
    String,
    usize,
    Duration,
    Option<Duration>,
    Option<Duration>,
    Option<Duration>,
);

/// Batch, walked, iterator and mmap reads of one ARRAY of `n` u64 values
/// created with BPF_F_MMAPABLE (a plain array reads the same way by
/// syscall).
fn array_methods(n: u32, ncpus: usize, rounds: usize) -> MethodRow {
    let opts = libbpf_sys::bpf_map_create_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_map_create_opts>() as _,
        map_flags: ebpf_exporter::maps::mapped::BPF_F_MMAPABLE,
        ..Default::default()
    };
    let map = MapHandle::create(MapType::Array, Some("sc_array"), 4, 8, n, &opts)
        .expect("create an mmapable array");
    fill(&map, 0, n, ncpus);
    let dup = || MapHandle::from_map_id(map.info().expect("info").info.id).expect("map");
    let mut b = MapReader::with_policy(dup(), "sc_array", ReadPolicy::Batch);
    let mut w = MapReader::with_policy(dup(), "sc_array", ReadPolicy::Batch);
    assert_eq!(w.method(), Method::Batch);
    w.read_each(|_, _, _| {}).expect("walk");
    let mut tw = Vec::new();
    let mut it = MapReader::with_policy(dup(), "sc_array", ReadPolicy::Iterator);
    let mut mm = MapReader::with_policy(dup(), "sc_array", ReadPolicy::Auto);
    assert_eq!(mm.method(), Method::Mapped);
    let (mut tb, mut ti, mut tm) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        for (r, times, want) in [
            (&mut b, &mut tb, Method::Batch),
            (&mut it, &mut ti, Method::Iterator),
            (&mut mm, &mut tm, Method::Mapped),
        ] {
            if r.method() != want {
                continue;
            }
            let t = Instant::now();
            r.read().expect("read");
            times.push(t.elapsed());
            assert_eq!(r.len(), n as usize, "every index");
        }
        let (t, mut count) = (Instant::now(), 0usize);
        w.read_each(|_, _, _| count += 1).expect("walk");
        tw.push(t.elapsed());
        assert_eq!(count, n as usize, "the walk's entries");
    }
    (
        "ARRAY (mmapable)".to_string(),
        n as usize,
        common::median(tb),
        Some(common::median(tw)),
        (!ti.is_empty()).then(|| common::median(ti)),
        Some(common::median(tm)),
    )
}
