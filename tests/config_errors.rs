//! Bad configs: each error names file, line and key; the other configs keep
//! working; nothing panics; --config.strict and --config.check fail.

mod common;

use std::path::Path;
use std::process::Command;

use common::{scratch_dir, Running, BIN, SYSCALLS_COUNTER, SYSCALL_ERRORS};

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(format!("{name}.yaml")), text).expect("write config");
}

#[test]
fn unknown_key_is_reported_with_line_and_others_keep_working() {
    let dir = scratch_dir("unknown-key");
    write(&dir, "good", SYSCALLS_COUNTER);
    write(
        &dir,
        "typo",
        &SYSCALLS_COUNTER.replace("      labels:", "      lables:"),
    );
    let exporter = Running::start(&[&format!("--config.dir={}", dir.display())]);
    let scrape = exporter.scrape();
    assert!(
        scrape.has("ebpf_exporter_syscalls_total"),
        "the good config serves"
    );
    assert_eq!(
        scrape.sum("ebpf_exporter_enabled_configs", &[("name", "good")]),
        1.0
    );
    assert_eq!(
        scrape.sum("ebpf_exporter_enabled_configs", &[("name", "typo")]),
        0.0
    );
    let log = exporter.log();
    let expected = format!("{}:7:", dir.join("typo.yaml").display());
    assert!(log.contains(&expected), "file and line in: {log}");
    assert!(log.contains("unknown field `lables`"), "{log}");
    assert!(log.contains("metrics.counters[0]"), "key path in: {log}");
}

#[test]
fn key_size_mismatch_names_config_metric_and_both_sizes() {
    let dir = scratch_dir("size");
    write(&dir, "good", SYSCALL_ERRORS);
    write(
        &dir,
        "short",
        &SYSCALLS_COUNTER.replace("size: 4", "size: 8"),
    );
    let exporter = Running::start(&[&format!("--config.dir={}", dir.display())]);
    let log = exporter.log();
    let line = log
        .lines()
        .find(|l| l.contains("short.yaml"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("short.yaml:7:"), "line of labels: {line}");
    assert!(line.contains("metrics.counters[0].labels"), "{line}");
    assert!(line.contains("\"syscalls_total\""), "metric named: {line}");
    assert!(
        line.contains("describe 8 bytes") && line.contains("4-byte keys"),
        "both sizes: {line}"
    );
    assert_eq!(
        exporter
            .scrape()
            .sum("ebpf_exporter_enabled_configs", &[("name", "good")]),
        1.0
    );
}

#[test]
fn bad_inputs_each_get_a_clear_error() {
    let cases: &[(&str, String, &[&str])] = &[
        ("syntax", "metrics:\n  counters:\n    - name: [unclosed\n".to_string(), &[":3", "syntax.yaml"]),
        ("nomap", SYSCALLS_COUNTER.replace("name: syscalls_total", "name: no_such_map"), &["no BPF map", "syscalls_total", ":4:"]),
        ("decoder", SYSCALLS_COUNTER.replace("- name: syscall\n", "- name: sycsall\n"), &["unknown decoder \"sycsall\"", "decoders[1]", ":12:"]),
        ("object", SYSCALLS_COUNTER.replace("object: syscalls", "object: nope"), &["no built-in object named \"nope\"", ":1:"]),
        ("objpath", SYSCALLS_COUNTER.replace("object: syscalls", "object: ./missing.bpf.o"), &["cannot read BPF object", "missing.bpf.o"]),
        ("empty", "metrics: {}\n".to_string(), &["at least one counter"]),
        ("zero", SYSCALLS_COUNTER.replace("size: 4", "size: 0"), &["size must be greater than 0", "labels[0].size"]),
        ("hist", "object: syscalls\nmetrics:\n  histograms:\n    - name: syscalls_total\n      help: h\n      bucket_type: exp3\n".to_string(), &["unknown variant `exp3`", ":6"]),
        ("option", SYSCALLS_COUNTER.replace("            - name: uint\n", "            - name: uint\n              regexps: ['x']\n"), &["decoder `uint`: takes no `regexps` option (it takes byte_order)", "decoders[0].regexps", ":12:"]),
        ("alone", format!("{SYSCALLS_COUNTER}programs:\n  one_of:\n    - [syscalls_exit]\n"), &["names two programs or more", "programs.one_of[0]", ":15:"]),
        ("noprog", format!("{SYSCALLS_COUNTER}programs:\n  one_of:\n    - [syscalls_exit, nope]\n"), &["no program named \"nope\"", "programs.one_of[0][1]", ":15:"]),
        ("gone_array", SYSCALLS_COUNTER.replace("      omit_zero: true\n", "      omit_zero: true\n      delete_gone: true\n"), &["metrics.counters[0].delete_gone", "map syscalls_total is a PercpuArray, whose entries cannot be deleted: delete_gone needs a hash map", ":7:"]),
        ("stale_array", SYSCALLS_COUNTER.replace("      omit_zero: true\n", "      omit_zero: true\n      stale_after: 10m\n"), &["metrics.counters[0].stale_after", "map syscalls_total is a PercpuArray, whose entries cannot be deleted: stale_after needs a hash map", ":7:"]),
        // In OpenMetrics the counter's family is `syscalls_count`, and the
        // histogram's count is `syscalls_count` too.
        ("omclash", format!("{}  histograms:\n    - name: syscalls\n      help: h\n      map: syscalls_total\n      bucket_type: exp2\n      bucket_min: 0\n      bucket_max: 3\n", SYSCALLS_COUNTER.replace("name: syscalls_total\n", "name: syscalls_count_total\n      map: syscalls_total\n")), &["metrics.histograms[0].name", "metrics \"syscalls_count_total\" and \"syscalls\" would both be served as \"syscalls_count\"", ":15:"]),
        ("stale_time", SYSCALLS_COUNTER.replace("      omit_zero: true\n", "      omit_zero: true\n      stale_after: soon\n"), &["metrics.counters[0].stale_after", "\"soon\" is not a duration such as 30s, 1m or 1h30m", ":7:"]),
    ];
    let dir = scratch_dir("cases");
    write(&dir, "good", SYSCALL_ERRORS);
    for (name, text, _) in cases {
        write(&dir, name, text);
    }
    let exporter = Running::start(&[&format!("--config.dir={}", dir.display())]);
    let log = exporter.log();
    for (name, _, needles) in cases {
        let file = format!("{name}.yaml");
        let line = log
            .lines()
            .find(|l| l.contains(&file) && l.contains("ERROR"))
            .unwrap_or_else(|| panic!("no error for {file} in:\n{log}"));
        for needle in *needles {
            assert!(
                line.contains(needle),
                "{file}: expected {needle:?} in {line}"
            );
        }
    }
    assert!(!log.contains("panicked"), "{log}");
    let scrape = exporter.scrape();
    assert_eq!(
        scrape.sum("ebpf_exporter_enabled_configs", &[("name", "good")]),
        1.0,
        "good config unaffected"
    );
}

#[test]
fn strict_and_check_fail_on_a_broken_config() {
    let dir = scratch_dir("strict");
    write(&dir, "good", SYSCALLS_COUNTER);
    write(&dir, "bad", &SYSCALLS_COUNTER.replace("size: 4", "size: 2"));
    let d = format!("--config.dir={}", dir.display());
    let strict = Command::new(BIN)
        .args([&d, "--config.strict", "--web.listen-address=127.0.0.1:0"])
        .output()
        .expect("runs");
    assert!(!strict.status.success(), "strict exits non-zero");
    assert!(String::from_utf8_lossy(&strict.stderr).contains("--config.strict"));

    let check = Command::new(BIN)
        .args([&d, "--config.check"])
        .output()
        .expect("runs");
    assert!(!check.status.success());
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(
        report.contains("config good") && report.contains("OK"),
        "{report}"
    );
    assert!(
        report.contains("config bad") && report.contains("FAILED"),
        "{report}"
    );

    let ok = Command::new(BIN)
        .args([&d, "--config.names=good", "--config.check"])
        .output()
        .expect("runs");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
}

#[test]
fn all_configs_broken_exits_with_the_reasons() {
    let dir = scratch_dir("allbad");
    write(&dir, "bad", "metrics: []\n");
    let out = Command::new(BIN)
        .args([
            &format!("--config.dir={}", dir.display()),
            "--web.listen-address=127.0.0.1:0",
        ])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.yaml") && err.contains("could start"),
        "{err}"
    );
}

#[test]
fn a_metric_name_defined_by_two_configs_is_refused_for_the_second() {
    let dir = scratch_dir("dup");
    write(&dir, "a_first", SYSCALLS_COUNTER);
    write(&dir, "b_second", SYSCALLS_COUNTER);
    // Listed second-first: the winner is still the one whose name sorts first.
    let exporter = Running::start(&[
        &format!("--config.dir={}", dir.display()),
        "--config.names=b_second,a_first",
    ]);
    let scrape = exporter.scrape();
    assert_eq!(
        scrape.sum("ebpf_exporter_enabled_configs", &[("name", "a_first")]),
        1.0
    );
    assert_eq!(
        scrape.sum("ebpf_exporter_enabled_configs", &[("name", "b_second")]),
        0.0
    );
    assert_eq!(
        scrape
            .text
            .matches("# TYPE ebpf_exporter_syscalls_total")
            .count(),
        1
    );
    let log = exporter.log();
    assert!(
        log.contains("b_second.yaml:4: key `metrics.counters[0].name`"),
        "{log}"
    );
    assert!(
        log.contains(
            "already defined by config \"a_first\", which keeps it; config \"b_second\" is refused"
        ),
        "{log}"
    );
    assert!(common::promtool_check(&scrape.text).trim().is_empty());
}

/// Two configs whose names differ but meet in OpenMetrics, where a counter
/// `syscalls_total` is also served as `syscalls_created`: the second is
/// refused by name, and says so in its load metric.
#[test]
fn a_name_two_configs_would_share_in_openmetrics_is_refused_for_the_second() {
    let dir = scratch_dir("omdup");
    write(&dir, "a_first", SYSCALLS_COUNTER);
    write(
        &dir,
        "b_second",
        &SYSCALLS_COUNTER.replace(
            "name: syscalls_total\n",
            "name: syscalls_created_total\n      map: syscalls_total\n",
        ),
    );
    let exporter = Running::start(&[&format!("--config.dir={}", dir.display())]);
    let scrape = exporter.scrape();
    for (config, enabled, loaded) in [("a_first", 1.0, 1.0), ("b_second", 0.0, 0.0)] {
        assert_eq!(
            scrape.sum("ebpf_exporter_enabled_configs", &[("name", config)]),
            enabled,
            "{config}"
        );
        assert_eq!(
            scrape.sum(
                "ebpf_exporter_config_last_load_successful",
                &[("config", config)]
            ),
            loaded,
            "{config}"
        );
    }
    let log = exporter.log();
    assert!(
        log.contains("b_second.yaml:4: key `metrics.counters[0].name`")
            && log.contains(
                "metric \"syscalls_created_total\" would be served as \"syscalls_created\", which config \"a_first\" already serves"
            ),
        "{log}"
    );
    let om = exporter
        .get_with(
            "/metrics",
            &[("Accept", "application/openmetrics-text;version=1.0.0")],
        )
        .text();
    assert_eq!(
        om.matches("# TYPE ebpf_exporter_syscalls counter\n")
            .count(),
        1,
        "{om}"
    );
    assert!(!om.contains("syscalls_created_total"), "{om}");
}
