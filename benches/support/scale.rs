//! The scaling benches' maps: a HASH, a PERCPU_HASH and an LRU_HASH of u32
//! keys and u64 values (`benches/bpf/scale_maps.bpf.c`), each exported as a
//! counter with one `uint` label (`--cached`: through the key cache),
//! filled from user space.

use std::path::Path;

use libbpf_rs::{MapCore, MapHandle};

pub const MAPS: [&str; 3] = ["sc_hash_total", "sc_percpu_total", "sc_lru_total"];

/// The one-large-map layout (`benches/bpf/one_map.bpf.c`): a HASH of up to
/// 1M keys between a PERCPU_HASH and an LRU_HASH of 10240, in scrape order.
pub const ONE_MAP: [&str; 3] = ["om_before_total", "om_large_total", "om_after_total"];

/// Which of `ONE_MAP` is the large one.
pub const LARGE: usize = 1;

/// Keys in each of the one-map layout's small maps.
pub const SMALL_KEYS: u32 = 1000;

/// The largest the one-map layout's large map can be filled to.
pub const LARGE_KEYS: u32 = 1_048_576;

/// The label's decoders: `uint` alone is one-to-one, so rows are written
/// as the maps are read; `--cached` adds a regexp that keeps every value,
/// which sends them through the key cache, as any decoder that can merge
/// keys (`static_map`, `string`) would.
fn decoders() -> &'static str {
    if std::env::args().any(|a| a == "--cached") {
        "[{name: uint}, {name: regexp, regexps: ['^([0-9]+)$']}]"
    } else {
        "[{name: uint}]"
    }
}

/// How the label is decoded, for the benches' headers.
pub fn label_path() -> &'static str {
    if std::env::args().any(|a| a == "--cached") {
        "uint and a regexp, through the key cache"
    } else {
        "uint alone, rows written as read"
    }
}

/// Compiles the three-map object into `dir` and writes its config beside it.
pub fn write_config(dir: &Path) {
    write_config_of(dir, "scale_maps.bpf.c", &MAPS);
}

/// Compiles the one-large-map object into `dir` and writes its config
/// beside it; the config is named `scale` all the same.
pub fn write_one_map_config(dir: &Path) {
    write_config_of(dir, "one_map.bpf.c", &ONE_MAP);
}

fn write_config_of(dir: &Path, source: &str, maps: &[&str]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    super::common::compile_bpf(
        &root.join("benches/bpf").join(source),
        &dir.join("scale.bpf.o"),
    );
    let mut yaml = String::from("metrics:\n  counters:\n");
    for m in maps {
        yaml.push_str(&format!(
            "    - name: {m}\n      help: scaling\n      labels:\n        - {{name: k, decoders: {}}}\n",
            decoders()
        ));
    }
    std::fs::write(dir.join("scale.yaml"), yaml).expect("write");
}

/// Fills `map` with keys `from..to`, value 1 (per CPU for per-CPU maps),
/// in batches.
pub fn fill(map: &MapHandle, from: u32, to: u32, ncpus: usize) {
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
