//! Load and attach failures in plain words: a kernel function or
//! tracepoint the kernel's BTF lacks (ESRCH), a hardware perf event without
//! a PMU, and an object whose extern the kernel cannot resolve.

mod common;

use std::path::{Path, PathBuf};

use common::{compile_bpf, scratch_dir, Running};

/// A directory with test object `name` and its config.
fn prepared(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bpf");
    let dir = scratch_dir(name);
    compile_bpf(
        &root.join(format!("{name}.bpf.c")),
        &dir.join(format!("{name}.bpf.o")),
    );
    std::fs::copy(
        root.join(format!("{name}.yaml")),
        dir.join(format!("{name}.yaml")),
    )
    .expect("copy");
    dir
}

/// `--config.check` of test object `name`'s directory: its whole report.
fn check(name: &str) -> String {
    report_of(&prepared(name))
}

fn report_of(dir: &Path) -> String {
    let out = common::tools::config_check(dir);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn line<'a>(report: &'a str, needle: &str) -> &'a str {
    report
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{report}"))
}

#[test]
fn missing_targets_are_named() {
    let report = check("missing_targets");
    assert!(
        line(&report, "program on_switch").contains(": attached, id"),
        "{report}"
    );
    assert!(
        line(&report, "program on_missing_function").contains(
            "NOT LOADED: fentry/ee_no_such_function names \"ee_no_such_function\", which this kernel's BTF does not have (ESRCH)"
        ),
        "{report}"
    );
    assert!(
        line(&report, "program on_missing_tracepoint").contains(
            "NOT LOADED: tp_btf/ee_no_such_tracepoint names \"ee_no_such_tracepoint\", which this kernel's BTF does not have (ESRCH)"
        ),
        "{report}"
    );
    assert!(
        line(&report, "program on_missing_usdt").contains(
            "NOT ATTACHED: usdt//nonexistent/ee-demo:ebpf_exporter:probe: the binary \"/nonexistent/ee-demo\" it probes does not exist"
        ),
        "{report}"
    );
    // This machine has no hardware PMU (see docs/machine notes).
    assert!(
        !Path::new("/sys/bus/event_source/devices/cpu").exists(),
        "this test expects a machine without a hardware PMU"
    );
    assert!(
        line(&report, "program on_cycles").contains(
            "NOT ATTACHED: this machine has no hardware performance counters (no PMU; usual in VMs)"
        ),
        "{report}"
    );
}

/// An object config with programs that did not load or attach runs what
/// did, and says it is DEGRADED everywhere an operator looks: the check,
/// the start-up log, and its load metric.
#[test]
fn an_object_config_with_programs_missing_is_degraded_not_ok() {
    let dir = prepared("missing_targets");
    let report = report_of(&dir);
    assert!(
        line(&report, "config missing_targets (").contains("): DEGRADED: 1/5 programs attached"),
        "{report}"
    );
    let exporter = Running::start(&[&format!("--config.dir={}", dir.display())]);
    let scrape = exporter.scrape();
    assert_eq!(
        scrape.sum(
            "ebpf_exporter_enabled_configs",
            &[("name", "missing_targets")]
        ),
        1.0,
        "it runs what attached"
    );
    assert_eq!(
        scrape.sum(
            "ebpf_exporter_config_last_load_successful",
            &[("config", "missing_targets")]
        ),
        0.0,
        "{}",
        scrape.text
    );
    assert_eq!(
        scrape.sum(
            "ebpf_exporter_ebpf_program_attached",
            &[("config", "missing_targets")]
        ),
        1.0,
        "{}",
        scrape.text
    );
    let log = exporter.log();
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("missing_targets") && l.contains("DEGRADED")),
        "{log}"
    );
}

#[test]
fn an_unresolvable_extern_fails_the_object_with_libbpfs_reason() {
    let report = check("missing_extern");
    let failed = line(&report, "config missing_extern not started:");
    assert!(
        failed.contains("key `object`: loading")
            && failed.contains("libbpf said: extern (func ksym) 'ee_no_such_kfunc': not found in kernel or module BTFs"),
        "{report}"
    );
    assert!(
        !report.contains("program on_switch"),
        "no program is blamed: {report}"
    );
    assert!(!report.contains("BPF token"), "{report}");
}
