//! One BPF key through many decoders, checked label by label against what
//! this machine says the values are; malformed keys are counted, not fatal.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{cgroup2_mount, compile_bpf, eventually, promtool_check, scratch_dir, Running};

/// Removes the test's cgroup even when an assertion fails.
struct CgroupGuard(PathBuf);
impl Drop for CgroupGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn every_label_decodes_to_the_exact_expected_string() {
    let dir = scratch_dir("decoders");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bpf");
    compile_bpf(&src.join("decoders.bpf.c"), &dir.join("decoders.bpf.o"));
    std::fs::copy(src.join("decoders.yaml"), dir.join("decoders.yaml")).expect("copy config");
    let exporter = Running::start(&[&format!("--config.dir={}", dir.display())]);

    // A cgroup created after start-up must resolve on a later scrape.
    let cg = CgroupGuard(cgroup2_mount().join(format!("ee-decoders-{}", std::process::id())));
    std::fs::create_dir(&cg.0).expect("create cgroup");
    common::python_in_cgroup(
        &cg.0,
        "import ctypes, os; ctypes.CDLL(None).prctl(15, b'eedecoders', 0, 0, 0); [os.getpid() for _ in range(5)]",
    );

    let expected_path = cg.0.display().to_string();
    let mut scrape = exporter.scrape();
    let found = eventually(Duration::from_secs(10), || {
        scrape = exporter.scrape();
        !scrape
            .find(
                "ebpf_exporter_decoded_total",
                &[("cgroup", expected_path.as_str())],
            )
            .is_empty()
    });
    assert!(found, "row with cgroup {expected_path}:\n{}", scrape.text);
    let rows = scrape.find(
        "ebpf_exporter_decoded_total",
        &[("cgroup", expected_path.as_str())],
    );
    let row = rows[0];
    let want = [
        ("v4", "127.0.0.1"),
        ("v6", "::1"),
        ("iface", "lo"),
        ("function", "do_nanosleep"),
        ("comm", "ee"),
        ("dname", "example.com"),
        ("errno", "ENOENT"),
        ("syscall", "getpid"),
        ("port", "8080"),
        ("raw", "abcd"),
        ("op", "write"),
        // The tests run as root.
        ("user", "root"),
    ];
    for (label, value) in want {
        assert_eq!(
            row.labels.get(label).map(String::as_str),
            Some(value),
            "label {label} in {row:?}"
        );
    }
    assert!(row.value >= 5.0, "five getpid calls, got {}", row.value);

    // The malformed metric is skipped and counted; the rest is served.
    assert!(scrape.find("ebpf_exporter_malformed_total", &[]).is_empty());
    let errors = scrape.sum(
        "ebpf_exporter_decoder_errors_total",
        &[("config", "decoders")],
    );
    assert!(errors >= 1.0, "decode errors counted: {errors}");
    let later = exporter.scrape();
    assert!(
        later.sum(
            "ebpf_exporter_decoder_errors_total",
            &[("config", "decoders")]
        ) > errors,
        "counted per scrape"
    );
    // Logged at warn, once a minute, naming config, metric and key.
    let log = exporter.log();
    let warned: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("metric ebpf_exporter_malformed_total left out of the scrape"))
        .collect();
    assert_eq!(warned.len(), 1, "{log}");
    assert!(warned[0].contains("WARN"), "{}", warned[0]);
    assert!(warned[0].contains("config decoders:"), "{}", warned[0]);
    assert!(warned[0].contains("the first key ["), "{}", warned[0]);

    // One histogram per CPU, each with its own cpu label.
    let counts = later.find("ebpf_exporter_percpu_latency_seconds_count", &[]);
    assert!(
        !counts.is_empty() && counts.iter().all(|s| s.labels.contains_key("cpu")),
        "{}",
        later.text
    );
    assert_eq!(counts.iter().map(|s| s.value).sum::<f64>(), 5.0);
    let le = later.find(
        "ebpf_exporter_percpu_latency_seconds_bucket",
        &[("le", "0.008")],
    );
    assert_eq!(
        le.iter().map(|s| s.value).sum::<f64>(),
        5.0,
        "bucket 3 has le 2^3 * 0.001"
    );
    assert_eq!(
        later.sum("ebpf_exporter_percpu_latency_seconds_sum", &[]),
        0.025
    );

    let complaints = promtool_check(&later.text);
    assert!(complaints.trim().is_empty(), "promtool: {complaints}");
    assert!(!exporter.log().contains("panicked"));
}
