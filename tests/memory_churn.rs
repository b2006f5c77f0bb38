//! 1.5 million distinct keys streamed through a map: the exporter's memory
//! must stay flat, because cached labels of keys that are gone are dropped.

mod common;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use common::{compile_bpf, scratch_dir, Running};

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .expect("VmRSS")
}

fn run_program(id: u32) {
    // SAFETY: plain syscall wrapper; the fd is owned below.
    let fd = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(id) };
    assert!(fd >= 0, "program {id}");
    // SAFETY: fd was just opened.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: zeroed opts with sz set is valid input for test_run.
    let mut opts: libbpf_sys::bpf_test_run_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<libbpf_sys::bpf_test_run_opts>() as _;
    // SAFETY: opts outlives the call.
    let rc = unsafe { libbpf_sys::bpf_prog_test_run_opts(fd.as_raw_fd(), &mut opts) };
    assert_eq!(rc, 0, "BPF_PROG_TEST_RUN");
}

#[test]
fn memory_stays_flat_while_a_million_keys_stream_through() {
    let dir = scratch_dir("churn");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bpf");
    compile_bpf(&src.join("churn.bpf.c"), &dir.join("churn.bpf.o"));
    std::fs::copy(src.join("churn.yaml"), dir.join("churn.yaml")).expect("copy config");
    let exporter = Running::start(&[
        &format!("--config.dir={}", dir.display()),
        "--decoder.cache-max-idle-scrapes=2",
    ]);
    let id: u32 = exporter.program_id("stream_keys");

    let rounds = 30; // 30 x 50k = 1.5M distinct keys
    let mut rss = Vec::new();
    for _ in 0..rounds {
        run_program(id);
        let scrape = exporter.scrape();
        // LRU maps evict a little early (per-CPU free lists), so "about 50k".
        let live = scrape.find("ebpf_exporter_churn_total", &[]).len();
        assert!((45_000..=50_000).contains(&live), "live keys: {live}");
        rss.push(rss_kib(exporter.pid()));
    }
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
}
