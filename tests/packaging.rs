//! What an operator sees of the binary itself: version, logs, process
//! metrics, OpenMetrics negotiation, completions.

mod common;

use std::process::Command;

use common::{http_get, Running, BIN};

#[test]
fn version_names_revision_build_and_toolchain() {
    let out = Command::new(BIN).arg("--version").output().expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    let first = text.lines().next().unwrap_or("");
    assert!(
        first.starts_with(&format!(
            "ebpf-exporter {} (revision: ",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
    for part in [
        "  build date: 20",
        "  rustc: rustc 1.",
        "  libbpf: 1.",
        "  platform: x86_64-",
    ] {
        assert!(text.contains(part), "{part:?} in {text}");
    }
    let e = Running::start(&["--config.names=syscalls"]);
    let info = e.scrape();
    let build = info.find("ebpf_exporter_build_info", &[]);
    assert_eq!(build.len(), 1);
    assert_ne!(
        build[0].labels["revision"], "unknown",
        "built from a checkout"
    );
    assert!(build[0].labels["rustc_version"].starts_with("rustc 1."));
}

#[test]
fn process_cpu_seconds_move_with_work() {
    let e = Running::start(&["--config.names=syscalls"]);
    let cpu = |s: &common::Scrape| s.sum("process_cpu_seconds_total", &[]);
    let before = cpu(&e.scrape());
    // Scrapes are the exporter's work: a few hundred cost it CPU.
    for _ in 0..300 {
        let _ = http_get(&e.addr, "/metrics", &[]);
    }
    let after = cpu(&e.scrape());
    assert!(after > before, "{before} -> {after}");
    assert!(
        after.fract() != 0.0 || after > 1.0,
        "fractions of a second show: {after}"
    );
    let s = e.scrape();
    for family in [
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        assert!(s.sum(family, &[]) > 0.0, "{family}");
    }
}

#[test]
fn logs_are_logfmt_or_json_and_journald_gets_no_timestamps() {
    let e = Running::start(&["--config.names=syscalls", "--log.format=logfmt"]);
    let log = e.log();
    let line = log
        .lines()
        .find(|l| l.contains("started 1 config(s)"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.starts_with("ts=20"), "{line}");
    assert!(
        line.contains(" level=info target=ebpf_exporter::commands msg=\"started 1 config(s) in "),
        "{line}"
    );
    drop(e);
    let e = Running::start(&[
        "--config.names=syscalls",
        "--log.format=json",
        "--log.level=info",
    ]);
    let log = e.log();
    let line = log
        .lines()
        .find(|l| l.contains("started 1 config(s)"))
        .unwrap_or_else(|| panic!("{log}"));
    let v: serde_yaml::Value = serde_yaml::from_str(line).expect("a JSON line");
    assert_eq!(v["level"].as_str(), Some("info"));
    assert!(v["ts"].as_str().is_some_and(|t| t.starts_with("20")));
    assert!(v["msg"]
        .as_str()
        .is_some_and(|m| m.starts_with("started 1 config(s)")));
    drop(e);
    // Under journald (JOURNAL_STREAM naming stderr's device and inode), no
    // timestamp of our own: the harness's pipe stands in for the journal.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "exec 2>/tmp/ee-journal-$$.log; set -- $(stat -L -c '%d %i' /proc/self/fd/2); \
             JOURNAL_STREAM=$1:$2 timeout 3 {BIN} --config.names=syscalls --log.format=logfmt \
             --web.listen-address=127.0.0.1:0; cat /tmp/ee-journal-$$.log >&1; rm -f /tmp/ee-journal-$$.log"
        ))
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let started = text
        .lines()
        .find(|l| l.contains("started 1 config(s)"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(started.starts_with("level=info "), "{started}");
}

#[test]
fn openmetrics_0_0_1_is_answered_as_asked() {
    let e = Running::start(&["--config.names=syscalls"]);
    let r = http_get(
        &e.addr,
        "/metrics",
        &[("Accept", "application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/openmetrics-text; version=0.0.1; charset=utf-8")
    );
    assert!(r.text().trim_end().ends_with("# EOF"));
}

#[test]
fn completions_and_the_man_page_come_from_the_flags() {
    let man = Command::new(BIN).arg("man").output().expect("runs");
    let page = String::from_utf8_lossy(&man.stdout);
    assert!(page.contains(".TH ebpf-exporter 1"), "{page}");
    assert!(page.contains("config.dir"), "every flag is in the page");
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(BIN)
            .args(["completion", shell])
            .output()
            .expect("runs");
        assert!(out.status.success(), "{shell}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("web.listen-address"),
            "{shell}"
        );
    }
    // bash itself accepts the script.
    let script = Command::new(BIN)
        .args(["completion", "bash"])
        .output()
        .expect("runs");
    let dir = common::scratch_dir("completion");
    std::fs::write(dir.join("c.bash"), &script.stdout).expect("write");
    let ok = Command::new("bash")
        .arg("-n")
        .arg(dir.join("c.bash"))
        .status()
        .expect("bash");
    assert!(ok.success());
}
