//! A config plus a `.bpf.o` compiled outside the exporter's build works
//! unchanged; programs the kernel cannot run fail cleanly and visibly.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{compile_bpf, eventually, scratch_dir, Running};

fn setup() -> std::path::PathBuf {
    let dir = scratch_dir("external");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bpf");
    compile_bpf(&root.join("external.bpf.c"), &dir.join("external.bpf.o"));
    std::fs::copy(root.join("external.yaml"), dir.join("external.yaml")).expect("copy config");
    dir
}

fn kallsyms_addr(sym: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/kallsyms").expect("kallsyms");
    text.lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 3 && f[2] == sym)
                .then(|| u64::from_str_radix(f[0], 16).ok())
                .flatten()
        })
        .expect("symbol in kallsyms")
}

#[test]
fn external_object_serves_counters_gauges_and_percpu_split() {
    let dir = setup();
    let exporter = Running::start(&[&format!("--config.dir={}", dir.display())]);
    let me = std::process::id().to_string();
    for _ in 0..100 {
        // SAFETY: getpid has no preconditions.
        unsafe { libc::getpid() };
    }
    let mut scrape = exporter.scrape();
    assert!(
        eventually(Duration::from_secs(5), || {
            scrape = exporter.scrape();
            scrape.sum("ebpf_exporter_getpid_calls_total", &[("pid", me.as_str())]) >= 100.0
        }),
        "getpid calls by pid:\n{}",
        scrape.text
    );
    let per_cpu = scrape.find("ebpf_exporter_percpu_getpid_total", &[]);
    assert!(
        !per_cpu.is_empty() && per_cpu.iter().all(|s| s.labels.contains_key("cpu")),
        "split by cpu"
    );
    assert!(per_cpu.iter().map(|s| s.value).sum::<f64>() >= 100.0);
    // Compared as text: a 64-bit address does not survive an f64.
    let line = scrape
        .text
        .lines()
        .find(|l| l.starts_with("ebpf_exporter_nanosleep_kaddr "))
        .expect("kaddr gauge present");
    let addr: u64 = line
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("integer value");
    assert_eq!(
        addr,
        kallsyms_addr("do_nanosleep"),
        "kaddrs wrote the address"
    );
}

#[test]
fn kprobe_and_fentry_fail_clearly_without_taking_the_config_down() {
    let dir = setup();
    let exporter = Running::start(&[&format!("--config.dir={}", dir.display())]);
    let scrape = exporter.scrape();
    assert_eq!(
        scrape.sum("ebpf_exporter_enabled_configs", &[("name", "external")]),
        1.0
    );
    let attached =
        |prog: &str| scrape.sum("ebpf_exporter_ebpf_program_attached", &[("program", prog)]);
    assert_eq!(attached("count_getpid"), 1.0);
    let kprobes_here = Path::new("/sys/bus/event_source/devices/kprobe").exists();
    let log = exporter.log();
    if !kprobes_here {
        assert_eq!(
            attached("kprobe_nanosleep"),
            0.0,
            "kprobe reported as not attached"
        );
        assert!(
            log.contains("lacks kprobe support"),
            "clear kprobe message: {log}"
        );
        assert_eq!(
            attached("fentry_nanosleep"),
            0.0,
            "fentry reported as not attached"
        );
        assert!(
            log.contains("runs no BPF trampoline programs"),
            "clear fentry message: {log}"
        );
    }
    assert!(!log.contains("panicked"));
    let landing = exporter.get("/").text();
    assert!(landing.contains("kprobe_nanosleep") && landing.contains("fentry_nanosleep"));
}

#[test]
fn config_check_reports_failed_programs_and_strict_rejects_them() {
    let dir = setup();
    if Path::new("/sys/bus/event_source/devices/kprobe").exists() {
        return; // kprobes work on this kernel; nothing fails.
    }
    let out = std::process::Command::new(common::BIN)
        .args([&format!("--config.dir={}", dir.display()), "--config.check"])
        .output()
        .expect("runs");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        report.contains("count_getpid (raw_tp/sys_enter): attached"),
        "{report}"
    );
    assert!(
        report.contains("kprobe_nanosleep (kprobe/do_nanosleep): NOT ATTACHED"),
        "{report}"
    );
    assert!(
        report.contains("fentry_nanosleep (fentry/do_nanosleep): NOT LOADED"),
        "{report}"
    );
    let strict = common::Running::try_start(&[
        &format!("--config.dir={}", dir.display()),
        "--config.strict",
    ]);
    let log = strict.err().expect("strict refuses to run");
    assert!(log.contains("--config.strict"), "{log}");
}
