//! Compares two builds of the exporter side by side: each serves its own
//! copy of the scaling maps (`support/scale.rs`), filled alike, and one
//! client scrapes them in turns (the order flipping every round), so drift
//! in the machine's speed falls on both alike. It prints the median of the
//! per-pair wall-time ratios and the ratio of the two processes' CPU time
//! over all their scrapes. This is how a change to the scrape path is
//! judged on a noisy machine, where runs of `scaling` minutes apart differ
//! by more than most changes are worth.
//!
//! Run as root: `cargo bench --bench builds -- --base PATH [--var PATH]
//! [--keys N] [--scrapes N] [--cached] [--one-map]`. `--var` defaults to
//! this build; `--keys` is keys per map (three maps); `--scrapes` is
//! scrapes of each build; `--cached` sends the label through the key cache;
//! `--one-map` serves the one-large-map layout instead, `--keys` being the
//! large map's keys.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/scale.rs"]
mod scale;

use libbpf_rs::MapHandle;

fn arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

fn main() {
    ebpf_exporter::object::libbpf_log::install();
    // SAFETY: a plain getter.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("the builds benchmark loads BPF programs: run it as root");
        std::process::exit(1);
    }
    let Some(base) = arg("--base") else {
        eprintln!("usage: cargo bench --bench builds -- --base PATH [--var PATH] [--keys N] [--scrapes N]");
        std::process::exit(2);
    };
    let var = arg("--var").unwrap_or_else(|| common::BIN.to_string());
    let keys: u32 = arg("--keys").and_then(|v| v.parse().ok()).unwrap_or(3_334);
    let scrapes: usize = arg("--scrapes").and_then(|v| v.parse().ok()).unwrap_or(300);
    let ncpus = ebpf_exporter::host::cpus::possible();
    let one_map = std::env::args().any(|a| a == "--one-map");
    if one_map && keys > scale::LARGE_KEYS {
        eprintln!(
            "--one-map: the large map holds at most {} keys",
            scale::LARGE_KEYS
        );
        std::process::exit(2);
    }
    let (maps, layout) = if one_map {
        (
            &scale::ONE_MAP,
            "one large map: PERCPU_HASH, HASH, LRU_HASH",
        )
    } else {
        (&scale::MAPS, "HASH, PERCPU_HASH, LRU_HASH")
    };
    let keys_of = |i: usize| {
        if one_map && i != scale::LARGE {
            scale::SMALL_KEYS
        } else {
            keys
        }
    };
    let start = |name: &str, bin: &str| {
        let dir = common::scratch_dir(&format!("bench-builds-{name}"));
        if one_map {
            scale::write_one_map_config(&dir);
        } else {
            scale::write_config(&dir);
        }
        let e = common::Running::try_start_binary(
            bin,
            &[&format!("--config.dir={}", dir.display())],
            |_| {},
        )
        .unwrap_or_else(|log| panic!("{bin} did not start; its log:\n{log}"));
        let handles: Vec<MapHandle> = maps.iter().map(|m| e.map_of("touch", m)).collect();
        for (i, h) in handles.iter().enumerate() {
            scale::fill(h, 0, keys_of(i), ncpus);
        }
        e
    };
    let builds = [start("base", &base), start("var", &var)];
    let series: usize = (0..maps.len()).map(|i| keys_of(i) as usize).sum();
    println!(
        "builds benchmark: {series} series ({layout}; label: {}), {scrapes} scrapes of each, in turns",
        scale::label_path()
    );
    println!("  base: {base}");
    println!("  var:  {var}");
    let mut buf = Vec::new();
    // Warm: the first scrapes decode every key.
    for e in &builds {
        for _ in 0..5 {
            common::timed_get(&e.addr, "/metrics", &mut buf);
        }
    }
    let mut wall = [Vec::new(), Vec::new()];
    let mut cpu = [0.0f64; 2];
    for round in 0..scrapes {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let e = &builds[i];
            let before = common::process_cpu_secs(e.pid());
            let (took, bytes) = common::timed_get(&e.addr, "/metrics", &mut buf);
            assert!(bytes > series * 10, "served every series");
            cpu[i] += common::process_cpu_secs(e.pid()) - before;
            wall[i].push(took);
        }
    }
    let mut ratios: Vec<f64> = wall[1]
        .iter()
        .zip(&wall[0])
        .map(|(v, b)| v.as_secs_f64() / b.as_secs_f64())
        .collect();
    ratios.sort_by(f64::total_cmp);
    for (name, i) in [("base", 0), ("var", 1)] {
        let pid = builds[i].pid();
        println!(
            "  {name}: wall median {:.2} ms, CPU per scrape {:.2} ms, RSS {} MB now, {} MB peak",
            common::median(wall[i].clone()).as_secs_f64() * 1e3,
            cpu[i] / scrapes as f64 * 1e3,
            common::rss_kib(pid, "VmRSS") / 1024,
            common::rss_kib(pid, "VmHWM") / 1024
        );
    }
    println!(
        "var / base: wall {:.3}x (median of pairs), CPU {:.3}x",
        ratios[ratios.len() / 2],
        cpu[1] / cpu[0]
    );
    println!("(CPU from /proc/PID/stat, in clock ticks: use enough scrapes for a second or more of each)");
}
