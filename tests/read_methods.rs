//! Every map read method serves the same bytes. Two exporters share one set
//! of maps (pinned by name, so the second one's load reuses the first's),
//! and the exposition of each method is compared with batch lookups' byte
//! for byte, in the order the kernel gives the entries.

mod common;

use std::path::Path;
use std::process::Command;

use common::{in_kernel_matrix, Running};

const PINS: [&str; 7] = [
    "rm_hash_total",
    "rm_percpu_total",
    "rm_lru_total",
    "rm_lrupc_total",
    "rm_array_total",
    "rm_pcarray_total",
    "rm_mmap_seconds",
];

/// Keys in each hash map.
const N: u32 = 10_000;

/// Fills the pinned maps from user space: key i of each hash is
/// `{i * 7919, i % 13, i % 5}` with value `3i + 1`, arrays hold `3i + 1` at
/// index i, and per-CPU maps add the CPU's number, so every CPU's value
/// differs. The histogram's buckets hold `11 (i + 1)`.
fn fill() {
    use libbpf_rs::{MapCore, MapFlags, MapHandle};
    let open = |name: &str| {
        MapHandle::from_pinned_path(Path::new("/sys/fs/bpf").join(name))
            .unwrap_or_else(|e| panic!("pinned map {name}: {e}"))
    };
    let ncpus = ebpf_exporter::host::cpus::possible();
    let per_cpu = |v: u64| -> Vec<Vec<u8>> {
        (0..ncpus as u64)
            .map(|c| (v + c).to_ne_bytes().to_vec())
            .collect()
    };
    let (hash, percpu, lru, lrupc) = (
        open("rm_hash_total"),
        open("rm_percpu_total"),
        open("rm_lru_total"),
        open("rm_lrupc_total"),
    );
    let (array, pcarray, mmap) = (
        open("rm_array_total"),
        open("rm_pcarray_total"),
        open("rm_mmap_seconds"),
    );
    let any = MapFlags::ANY;
    for i in 0..N {
        let mut key = Vec::with_capacity(8);
        key.extend_from_slice(&(i.wrapping_mul(7919)).to_ne_bytes());
        key.extend_from_slice(&((i % 13) as u16).to_ne_bytes());
        key.extend_from_slice(&((i % 5) as u16).to_ne_bytes());
        let v = u64::from(i) * 3 + 1;
        hash.update(&key, &v.to_ne_bytes(), any)
            .expect("update hash");
        lru.update(&key, &v.to_ne_bytes(), any)
            .expect("update LRU hash");
        percpu
            .update_percpu(&key, &per_cpu(v), any)
            .expect("update per-CPU hash");
        lrupc
            .update_percpu(&key, &per_cpu(v), any)
            .expect("update LRU per-CPU hash");
        if i < 512 {
            array
                .update(&i.to_ne_bytes(), &v.to_ne_bytes(), any)
                .expect("update array");
            pcarray
                .update_percpu(&i.to_ne_bytes(), &per_cpu(v), any)
                .expect("update per-CPU array");
        }
        if i < 12 {
            let bucket = u64::from(i + 1) * 11;
            mmap.update(&i.to_ne_bytes(), &bucket.to_ne_bytes(), any)
                .expect("update histogram");
        }
    }
}

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

/// The test maps' families out of a scrape, each family's samples sorted:
/// series come in the order their map was read, and a large hash map read
/// in two parts at once (`maps/walk.rs`) interleaves them differently from
/// one read start to end. The set of lines is what every method must serve.
fn families(body: &str) -> String {
    let mut out = String::new();
    let mut samples: Vec<&str> = Vec::new();
    let flush = |samples: &mut Vec<&str>, out: &mut String| {
        samples.sort_unstable();
        for l in samples.drain(..) {
            out.push_str(l);
            out.push('\n');
        }
    };
    for l in body.lines() {
        let header = l
            .strip_prefix("# HELP ")
            .or_else(|| l.strip_prefix("# TYPE "));
        if !header.unwrap_or(l).starts_with("ebpf_exporter_rm_") {
            continue;
        }
        if header.is_some() {
            flush(&mut samples, &mut out);
            out.push_str(l);
            out.push('\n');
        } else {
            samples.push(l);
        }
    }
    flush(&mut samples, &mut out);
    out
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
    fill();
    let reference = families(&batch.get("/metrics").text());
    // Scrapes from the decode cache serve the same bytes again.
    serves(
        &batch,
        &reference,
        2,
        "batch lookups, from the decode cache",
    );
    // 10000 keys in each summed hash, a sample per CPU for the split
    // per-CPU hash, 512 array indices twice, and 11 buckets (0 to 10) +
    // +Inf + _sum + _count.
    let ncpus = ebpf_exporter::host::cpus::possible();
    let samples = reference.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(
        samples,
        10_000 * 3 + 10_000 * ncpus + 512 * 2 + 14,
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
            // The kernel matrix's kernels all run map-element iterators, so
            // there every map must be read by one; elsewhere a refusal must
            // at least be logged.
            "iterator" if in_kernel_matrix() => {
                for map in PINS {
                    assert!(
                        log.contains(&format!("map {map}: read by iterator")),
                        "{map} is read by its iterator: {log}"
                    );
                }
                assert!(!log.contains("reading in batches"), "{log}");
            }
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

/// A map larger than a batch is read a batch ahead on a second thread
/// (from its second read on, once its size is known), and every entry is
/// still handed over once, in order, with its own value: a hash, a
/// per-CPU hash and an array, each read three times.
#[test]
fn a_map_larger_than_a_batch_is_read_a_batch_ahead_with_every_entry_once() {
    use ebpf_exporter::maps::{MapReader, ReadPolicy};
    use libbpf_rs::{MapCore, MapFlags, MapHandle, MapType};
    let opts = libbpf_sys::bpf_map_create_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_map_create_opts>() as _,
        ..Default::default()
    };
    let ncpus = ebpf_exporter::host::cpus::possible();
    for (kind, n, name) in [
        (MapType::Hash, 30_000u32, "rm_ahead_h"),
        (MapType::PercpuHash, 9_000, "rm_ahead_p"),
        (MapType::Array, 12_345, "rm_ahead_a"),
        (MapType::Hash, 100, "rm_ahead_s"),
    ] {
        let map = MapHandle::create(kind, Some(name), 4, 8, n, &opts).expect("create a map");
        for k in 0..n {
            let key = k.to_ne_bytes();
            if kind == MapType::PercpuHash {
                let values: Vec<Vec<u8>> = (0..ncpus)
                    .map(|c| (u64::from(k) * 3 + c as u64).to_ne_bytes().to_vec())
                    .collect();
                map.update_percpu(&key, &values, MapFlags::ANY)
            } else {
                map.update(&key, &(u64::from(k) * 3).to_ne_bytes(), MapFlags::ANY)
            }
            .expect("update");
        }
        let id = map.info().expect("info").info.id;
        let mut r = MapReader::with_policy(
            MapHandle::from_map_id(id).expect("map by id"),
            name,
            ReadPolicy::Batch,
        );
        for round in 0..3 {
            let ahead = r.reads_ahead();
            let want_ahead = round > 0
                && n > 4096
                && std::thread::available_parallelism().is_ok_and(|c| c.get() > 1);
            assert_eq!(ahead, want_ahead, "{name} round {round}: read ahead");
            let mut seen = vec![false; n as usize];
            let mut next = 0;
            r.read_each(|position, key, value| {
                assert_eq!(position, next, "{name}: positions in order");
                next += 1;
                let k = u32::from_ne_bytes(key.try_into().expect("u32 key"));
                assert!(!seen[k as usize], "{name}: key {k} twice");
                seen[k as usize] = true;
                let v = u64::from_ne_bytes(value[..8].try_into().expect("u64"));
                assert_eq!(v, u64::from(k) * 3, "{name}: key {k}'s value");
                if kind == MapType::PercpuHash {
                    let last = &value[(ncpus - 1) * 8..ncpus * 8];
                    let v = u64::from_ne_bytes(last.try_into().expect("u64"));
                    assert_eq!(v, u64::from(k) * 3 + ncpus as u64 - 1, "{name}: last CPU");
                }
            })
            .expect("read_each");
            assert_eq!(next, n as usize, "{name} round {round}: every entry");
            assert!(seen.iter().all(|s| *s));
            assert_eq!(r.len(), n as usize);
        }
    }
}
