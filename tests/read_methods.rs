//! Every map read method serves the same bytes. Two exporters share one set
//! of maps (pinned by name, so the second one's load reuses the first's),
//! and the exposition of each method is compared with batch lookups' byte
//! for byte, in the order the kernel gives the entries.

mod common;

use std::path::Path;
use std::process::Command;

use common::{prog_fd, test_run, Running};

const PINS: [&str; 6] = [
    "rm_hash_total",
    "rm_percpu_total",
    "rm_lru_total",
    "rm_array_total",
    "rm_pcarray_total",
    "rm_mmap_seconds",
];

/// Removes the test's pins: the kernel keeps pinned maps after the
/// exporters exit.
fn unpin() {
    for name in PINS {
        let _ = std::fs::remove_file(Path::new("/sys/fs/bpf").join(name));
    }
}

struct Unpin;
impl Drop for Unpin {
    fn drop(&mut self) {
        unpin();
    }
}

/// The test maps' families out of a scrape, as served.
fn families(body: &str) -> String {
    body.lines()
        .filter(|l| {
            let name = l
                .strip_prefix("# HELP ")
                .or_else(|| l.strip_prefix("# TYPE "))
                .unwrap_or(l);
            name.starts_with("ebpf_exporter_rm_")
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

fn start(dir: &Path, method: &str) -> Running {
    start_with(dir, method, |_| {})
}

/// Like `start`, with more set on the exporter's command first.
fn start_with(dir: &Path, method: &str, configure: impl FnOnce(&mut Command)) -> Running {
    Running::try_start_with(
        &[
            &format!("--config.dir={}", dir.display()),
            &format!("--maps.read-method={method}"),
        ],
        |cmd| {
            cmd.env("RUST_LOG", "debug");
            configure(cmd);
        },
    )
    .unwrap_or_else(|log| panic!("exporter ({method}) did not start: {log}"))
}

#[test]
fn every_method_serves_the_same_bytes_from_the_same_maps() {
    assert!(
        Path::new("/sys/fs/bpf").is_dir(),
        "bpffs must be mounted at /sys/fs/bpf for the pinned maps"
    );
    unpin();
    let _cleanup = Unpin;
    let dir = common::scratch_dir("read-methods");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bpf");
    common::compile_bpf(
        &src.join("read_methods.bpf.c"),
        &dir.join("read_methods.bpf.o"),
    );
    std::fs::copy(src.join("read_methods.yaml"), dir.join("read_methods.yaml"))
        .expect("copy config");

    let batch = start(&dir, "batch");
    test_run(&prog_fd(batch.program_id("fill")));
    let reference = families(&batch.get("/metrics").text());
    // Scrapes from the decode cache serve the same bytes again.
    serves(
        &batch,
        &reference,
        2,
        "batch lookups, from the decode cache",
    );
    // 10000 keys in each hash, a sample per CPU for the split per-CPU hash
    // (the CPU that ran the fill has the value, the others 0), 512 array
    // indices twice, and 11 buckets (0 to 10) + +Inf + _sum + _count.
    let ncpus = ebpf_exporter::host::cpus::possible();
    let samples = reference.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(
        samples,
        10_000 * 2 + 10_000 * ncpus + 512 * 2 + 14,
        "{reference}"
    );
    assert!(
        reference.contains("ebpf_exporter_rm_mmap_seconds_sum 0.132\n"),
        "the sum sits at bucket_max + 1 = 11: 12 * 11 * 0.001: {reference}"
    );

    for method in ["auto", "iterator", "keys"] {
        let other = start(&dir, method);
        // The first scrape decodes, the second is served from the cache.
        serves(
            &other,
            &reference,
            2,
            &format!("--maps.read-method={method}"),
        );
        let (_, log) = other.stop();
        match method {
            "auto" => assert!(
                log.contains("map rm_mmap_seconds: read by mmap"),
                "the mmapable array is mapped: {log}"
            ),
            "iterator" => assert!(
                log.contains("map-element iterator: load: Operation not permitted")
                    || !log.contains("reading in batches"),
                "an iterator either runs or its refusal is logged: {log}"
            ),
            _ => {}
        }
    }

    // The maps hold over 2048 entries in several collectors, so on two CPUs
    // every exporter above read them one ahead on a second thread. One held
    // to a single CPU reads them in turn, and serves the same bytes.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(
        cpus >= 2,
        "comparing read-ahead with reads in turn needs two CPUs, this machine gives {cpus}"
    );
    let one_cpu = start_with(&dir, "batch", |cmd| {
        use std::os::unix::process::CommandExt;
        // SAFETY: between fork and exec the child only binds itself to
        // CPU 0, one syscall on a set on its stack, with no allocation.
        unsafe {
            cmd.pre_exec(|| common::set_affinity(0));
        }
    });
    serves(&one_cpu, &reference, 3, "one CPU, reading in turn");
    let (_, log) = one_cpu.stop();
    assert!(
        log.contains("scrapes read maps in turn: one CPU to run on, so no read-ahead thread"),
        "{log}"
    );
    let (_, log) = batch.stop();
    assert!(
        log.contains("scrapes read maps ahead on a second thread"),
        "{log}"
    );
}

/// Scrapes `e` `times` times and checks that each serves the test maps'
/// families exactly as `reference` has them.
fn serves(e: &Running, reference: &str, times: usize, what: &str) {
    for round in 0..times {
        let body = families(&e.get("/metrics").text());
        assert!(
            body == reference,
            "{what}: scrape {round} serves other bytes than the first batch-lookup scrape:\n{}",
            first_difference(reference, &body)
        );
    }
}

fn first_difference(want: &str, got: &str) -> String {
    for (i, (w, g)) in want.lines().zip(got.lines()).enumerate() {
        if w != g {
            return format!("line {}: want {w:?}, got {g:?}", i + 1);
        }
    }
    format!(
        "lengths differ: {} lines wanted, {} served",
        want.lines().count(),
        got.lines().count()
    )
}

#[test]
fn trimming_after_a_large_read_ahead_keeps_a_mapped_arrays_keys_and_drops_batch_buffers() {
    use ebpf_exporter::maps::{MapReader, Method, ReadPolicy};
    use libbpf_rs::{MapCore, MapHandle, MapType};
    let opts = libbpf_sys::bpf_map_create_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_map_create_opts>() as _,
        map_flags: ebpf_exporter::maps::mapped::BPF_F_MMAPABLE,
        ..Default::default()
    };
    let map = MapHandle::create(MapType::Array, Some("rm_trim"), 4, 8, 400_000, &opts)
        .expect("create an mmapable array");
    let dup = || MapHandle::from_map_id(map.info().expect("info").info.id).expect("map by id");
    for (policy, method) in [
        (ReadPolicy::Auto, Method::Mapped),
        (ReadPolicy::Batch, Method::Batch),
    ] {
        let mut r = MapReader::with_policy(dup(), "rm_trim", policy);
        assert_eq!(r.method(), method);
        for _ in 0..2 {
            r.read().expect("read");
            assert_eq!(r.entries().count(), 400_000, "{method:?}: every index");
            let last = r.entries().last().expect("an entry");
            assert_eq!(
                last.0,
                399_999u32.to_ne_bytes(),
                "{method:?}: keys are the indices"
            );
            r.trim(1000);
        }
    }
}

#[test]
fn an_unknown_read_method_is_refused_with_the_choices_before_anything_loads() {
    let out = std::process::Command::new(common::BIN)
        .arg("--maps.read-method=fastest")
        .output()
        .expect("run the exporter");
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid value 'fastest' for '--maps.read-method <METHOD>'")
            && err.contains("[possible values: auto, iterator, batch, keys]"),
        "{err}"
    );
}
