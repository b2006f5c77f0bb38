//! Privileges after start-up, read from /proc as an auditor would: every
//! thread's sets, the bounding set and NoNewPrivs.

mod common;

use std::process::Command;

use common::{Running, BIN};
use ebpf_exporter::process::capabilities::{
    status_field, CapSet, CAP_BPF, CAP_DAC_READ_SEARCH, CAP_SYSLOG,
};

/// (CapEff, CapPrm, CapBnd, NoNewPrivs) of every thread of `pid`.
fn threads(pid: u32) -> Vec<(CapSet, CapSet, CapSet, String)> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("task dir")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("status")).ok())
        .map(|s| {
            let field = |f| status_field(&s, f).unwrap_or_else(|| panic!("{f} in {s}"));
            let nnp = s
                .lines()
                .find_map(|l| l.strip_prefix("NoNewPrivs:"))
                .map(|v| v.trim().to_string())
                .unwrap_or_default();
            (field("CapEff:"), field("CapPrm:"), field("CapBnd:"), nnp)
        })
        .collect()
}

fn assert_all_threads(exporter: &Running, want: CapSet) {
    let threads = threads(exporter.pid());
    assert!(
        threads.len() >= 3,
        "main and the async workers: {threads:?}"
    );
    for (eff, prm, bnd, nnp) in &threads {
        assert_eq!((*eff, *prm, *bnd), (want, want, want), "{threads:?}");
        assert_eq!(nnp, "1", "NoNewPrivs");
    }
}

#[test]
fn the_default_keeps_only_what_the_default_configs_use() {
    // oom_kills (a default) labels by cgroup, so the tree walk stays
    // possible; nothing in the defaults resolves kernel symbols. Where map
    // reads need CAP_BPF, it is kept too, and said.
    let need_bpf = common::map_reads_need_cap_bpf();
    let exporter = Running::start(&[]);
    let (want, kept) = if need_bpf {
        (
            CapSet::of(&[CAP_DAC_READ_SEARCH, CAP_BPF]),
            "cap_dac_read_search,cap_bpf",
        )
    } else {
        (CapSet::of(&[CAP_DAC_READ_SEARCH]), "cap_dac_read_search")
    };
    assert_all_threads(&exporter, want);
    assert!(exporter.scrape().sum("ebpf_exporter_syscalls_total", &[]) > 0.0);
    let log = exporter.log();
    assert!(
        log.contains(&format!("capabilities: kept {kept} in")),
        "{log}"
    );
    assert_eq!(
        log.contains("this kernel needs cap_bpf to read maps, so it is kept"),
        need_bpf,
        "{log}"
    );
}

#[test]
fn keep_none_drops_everything_and_says_whether_maps_still_read() {
    let need_bpf = common::map_reads_need_cap_bpf();
    let exporter = Running::start(&["--capabilities.keep=none"]);
    assert_all_threads(&exporter, CapSet::default());
    // An explicit list is honoured as given: where reads need CAP_BPF the
    // scrape has no map data, and the log says why.
    let scrape = exporter.scrape();
    let log = exporter.log();
    assert_eq!(
        scrape.sum("ebpf_exporter_syscalls_total", &[]) > 0.0,
        !need_bpf,
        "{log}"
    );
    assert_eq!(
        log.contains("map reads fail with the capabilities kept (none); scrapes will be empty"),
        need_bpf,
        "{log}"
    );
}

#[test]
fn keep_lists_and_all_are_honoured() {
    let exporter = Running::start(&["--capabilities.keep=cap_syslog", "--config.names=timers"]);
    assert_all_threads(&exporter, CapSet::of(&[CAP_SYSLOG]));
    drop(exporter);
    let exporter = Running::start(&["--capabilities.keep=all"]);
    let (eff, _, _, nnp) = threads(exporter.pid())[0].clone();
    let full = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| status_field(&s, "CapEff:"))
        .expect("own caps");
    assert_eq!((eff, nnp.as_str()), (full, "1"));

    let out = Command::new(BIN)
        .arg("--capabilities.keep=cap_sysadmin")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown capability \"cap_sysadmin\""));
}

#[test]
fn without_privileges_one_line_names_cap_bpf_and_cap_perfmon() {
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
        .arg("--web.listen-address=127.0.0.1:0")
        .output()
        .expect("setpriv (util-linux) runs");
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{log}");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0].contains("needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN)"),
        "{log}"
    );
    assert!(!log.to_lowercase().contains("memlock"), "{log}");
}
