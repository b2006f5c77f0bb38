//! `perf_event_array: true` counters count perf records by decoded labels,
//! and keep counting when some records fail to decode.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{compile_bpf, eventually, promtool_check, scratch_dir, Running};

#[test]
fn perf_records_are_counted_and_bad_ones_skipped() {
    let dir = scratch_dir("events");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bpf");
    compile_bpf(&src.join("events.bpf.c"), &dir.join("events.bpf.o"));
    std::fs::copy(src.join("events.yaml"), dir.join("events.yaml")).expect("copy config");
    let exporter = Running::start(&[&format!("--config.dir={}", dir.display())]);

    // 31 getpid() calls from a child named eeevents (30, then one for the
    // pid it prints): every third record's tag is not UTF-8, so 21 are
    // valid and 10 are not.
    let child = Command::new("python3")
        .args([
            "-c",
            "import ctypes, os, sys; ctypes.CDLL(None).prctl(15, b'eeevents', 0, 0, 0); \
             [os.getpid() for _ in range(30)]; print(os.getpid())",
        ])
        .output()
        .expect("child runs");
    assert!(child.status.success());
    let pid = String::from_utf8_lossy(&child.stdout).trim().to_string();

    let mut last = String::new();
    let counted = eventually(Duration::from_secs(10), || {
        let s = exporter.scrape();
        last = s.text.clone();
        s.sum(
            "ebpf_exporter_getpid_events_total",
            &[("pid", pid.as_str()), ("tag", "ok")],
        ) >= 21.0
    });
    assert!(counted, "21 valid records counted for pid {pid}:\n{last}");
    // Counted once more after a pause: nothing late arrives.
    std::thread::sleep(Duration::from_millis(500));
    let s = exporter.scrape();
    assert_eq!(
        s.sum(
            "ebpf_exporter_getpid_events_total",
            &[("pid", pid.as_str()), ("tag", "ok")]
        ),
        21.0
    );
    let ours = s.find(
        "ebpf_exporter_getpid_events_total",
        &[("pid", pid.as_str())],
    );
    assert!(
        ours.iter().all(|x| x.labels["tag"] == "ok"),
        "bad records are skipped, not counted: {ours:?}"
    );
    let errors = s.sum(
        "ebpf_exporter_decoder_errors_total",
        &[("config", "events")],
    );
    assert_eq!(
        errors, 10.0,
        "each bad record counted as a decode error, once"
    );
    assert!(promtool_check(&s.text).trim().is_empty());
    assert!(s
        .text
        .contains("# TYPE ebpf_exporter_getpid_events_total counter"));
    // Losses are exported, at zero when there are none.
    let lost = s.find(
        "ebpf_exporter_events_lost_total",
        &[("config", "events"), ("map", "getpid_events_total")],
    );
    assert_eq!(lost.len(), 1, "{}", s.text);
    assert_eq!(lost[0].value, 0.0);
}

#[test]
fn a_bad_flush_interval_is_a_config_error_naming_the_key() {
    let dir = scratch_dir("events-bad");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bpf");
    compile_bpf(&src.join("events.bpf.c"), &dir.join("events.bpf.o"));
    let text = std::fs::read_to_string(src.join("events.yaml")).expect("config");
    std::fs::write(
        dir.join("events.yaml"),
        text.replace("flush_interval: 1h", "flush_interval: soon"),
    )
    .expect("write config");
    let out = Command::new(common::BIN)
        .args([&format!("--config.dir={}", dir.display()), "--config.check"])
        .output()
        .expect("runs");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success());
    assert!(
        all.contains("events.yaml:7: key `metrics.counters[0].flush_interval`")
            && all.contains("\"soon\""),
        "{all}"
    );
}
