//! `cgroup_id_map:` is kept filled with the cgroups whose path matches, and
//! follows cgroups created after start-up, in both of its shapes: a hash of
//! cgroup ids, and cgroup storage where the kernel has it (6.2 and later).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{cgroup2_mount, compile_bpf, eventually, scratch_dir, Running};

/// Removes the test's cgroups even when an assertion fails.
struct Cgroup(PathBuf);
impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Runs a child that calls getpid() inside `cg`.
fn getpid_in(cg: &Path) {
    common::in_child(Some(cg), || {
        for _ in 0..10 {
            // SAFETY: a plain syscall.
            unsafe { libc::getpid() };
        }
    });
}

/// `--config.check` of the configs in `dir`: whether it passed, and its
/// report with the log (where the reasons go when every config fails).
fn config_check(dir: &Path) -> (bool, String) {
    let out = Command::new(common::BIN)
        .args([&format!("--config.dir={}", dir.display()), "--config.check"])
        .output()
        .expect("runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), report)
}

/// The test object and config in a scratch directory, for a `hash` or a
/// `cgrp_storage` map.
fn setup(kind: &str) -> PathBuf {
    let dir = scratch_dir(&format!("cgmap-{kind}"));
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bpf");
    let defines: &[&str] = if kind == "cgrp_storage" {
        &["CGRP_STORAGE"]
    } else {
        &[]
    };
    common::compile_bpf_with(
        &src.join("cgroup_filter.bpf.c"),
        &dir.join("cgroup_filter.bpf.o"),
        defines,
    );
    let text = std::fs::read_to_string(src.join("cgroup_filter.yaml")).expect("config");
    std::fs::write(
        dir.join("cgroup_filter.yaml"),
        text.replace(
            "  name: cgroup_id_map\n",
            &format!("  name: cgroup_id_map\n  type: {kind}\n"),
        ),
    )
    .expect("write config");
    dir
}

#[test]
fn matching_cgroups_created_after_start_are_added_to_a_hash() {
    cgroups_created_after_start_are_followed("hash", 1);
}

#[test]
fn cgroup_storage_is_kept_where_the_kernel_has_it_and_refused_clearly_where_not() {
    let has_storage =
        ebpf_exporter::host::kernel::supports_map_type(libbpf_sys::BPF_MAP_TYPE_CGRP_STORAGE)
            .expect("the map type probe answers");
    if common::in_kernel_matrix() {
        assert_eq!(has_storage, common::kernel_at_least(6, 2), "CGRP_STORAGE");
    }
    if has_storage {
        cgroups_created_after_start_are_followed("cgrp_storage", 2);
        return;
    }
    let (ok, report) = config_check(&setup("cgrp_storage"));
    assert!(!ok, "{report}");
    assert!(
        report.contains("cgroup_filter.yaml:13: key `cgroup_id_map.name`")
            && report.contains("has no CGRP_STORAGE maps, which came in Linux 6.2"),
        "{report}"
    );
    assert!(!report.contains("panicked"), "{report}");
}

/// Cgroups made after start-up are put into the map when they match, and
/// only then: `n` tells this test's cgroups from the other's.
fn cgroups_created_after_start_are_followed(kind: &str, n: u32) {
    let dir = setup(kind);
    let exporter = Running::start(&[&format!("--config.dir={}", dir.display())]);

    let pid = std::process::id();
    let root = cgroup2_mount();
    let matching = Cgroup(root.join(format!("ee-cgmap-match-{pid}{n}")));
    let other = Cgroup(root.join(format!("ee-cgmap-other-{pid}{n}")));
    std::fs::create_dir(&matching.0).expect("create cgroup");
    std::fs::create_dir(&other.0).expect("create cgroup");
    let (m, o) = (
        matching.0.display().to_string(),
        other.0.display().to_string(),
    );

    // The map follows the cgroup tree once a second; keep calling until the
    // new cgroup's calls are counted as matched.
    let mut last = String::new();
    let matched = eventually(Duration::from_secs(10), || {
        getpid_in(&matching.0);
        getpid_in(&other.0);
        let s = exporter.scrape();
        last = s.text.clone();
        s.sum(
            "ebpf_exporter_cgroup_getpid_matched_total",
            &[("cgroup", m.as_str())],
        ) >= 10.0
            && s.sum(
                "ebpf_exporter_cgroup_getpid_other_total",
                &[("cgroup", o.as_str())],
            ) >= 10.0
    });
    assert!(matched, "matching cgroup counted as matched:\n{last}");
    let s = exporter.scrape();
    assert_eq!(
        s.sum(
            "ebpf_exporter_cgroup_getpid_matched_total",
            &[("cgroup", o.as_str())]
        ),
        0.0,
        "a cgroup the regexps do not match is never in the map"
    );
    assert_eq!(
        s.sum(
            "ebpf_exporter_enabled_configs",
            &[("name", "cgroup_filter")]
        ),
        1.0
    );
    assert!(
        !exporter.log().contains("WARN") || !exporter.log().contains("cgroup_id_map"),
        "{}",
        exporter.log()
    );
}

#[test]
fn a_missing_cgroup_id_map_is_a_config_error_naming_the_key() {
    let dir = scratch_dir("cgmap-missing");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bpf");
    compile_bpf(
        &src.join("cgroup_filter.bpf.c"),
        &dir.join("cgroup_filter.bpf.o"),
    );
    let text = std::fs::read_to_string(src.join("cgroup_filter.yaml")).expect("config");
    std::fs::write(
        dir.join("cgroup_filter.yaml"),
        text.replace("name: cgroup_id_map", "name: no_such_map"),
    )
    .expect("write config");
    let (ok, report) = config_check(&dir);
    assert!(!ok, "{report}");
    assert!(
        report.contains("cgroup_filter.yaml:13: key `cgroup_id_map.name`")
            && report.contains("no_such_map"),
        "{report}"
    );
}
