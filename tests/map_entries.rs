//! `maps.NAME.entries`: filters an object's own loader would fill, filled
//! from config before any program is attached, with keys given as label
//! text and turned back into bytes by their decoders (the reference's
//! issue #638: string keys in YAML instead of `#define`s in C).

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::tools::{start, wait_for, SyscallChild};
use common::{scratch_dir, Scrape};

fn object_dir(test: &str) -> PathBuf {
    let dir = scratch_dir(test);
    common::compile_bpf(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bpf/map_entries.bpf.c"),
        &dir.join("filters.bpf.o"),
    );
    dir
}

const METRICS: &str = "
metrics:
  counters:
    - name: watched_syscalls_total
      help: Syscalls of the watched commands, each call counted at its command's weight
      map: counts
      labels:
        - name: comm
          decoders:
            - name: string
        - name: syscall
          field: nr
          decoders:
            - name: uint
            - name: syscall
              names: kernel
";

fn maps(comm: &str) -> String {
    format!(
        "object: filters.bpf.o
maps:
  watched_comms:
    entries:
      - key: {comm:?}
        value: 3
  watched_syscalls:
    decoders:
      nr:
        - name: uint
        - name: syscall
          names: kernel
    entries:
      - key: {{nr: getpid}}
      - key: {{nr: getppid}}
"
    )
}

/// A child's 1000 getpid() calls, counted at the weight its command was
/// given (3): exactly 3000, under the child's command and `getpid`, with
/// nobody else's calls (the filters were full before the program ran).
#[test]
fn entries_from_label_text_fill_the_filters_before_attach() {
    let dir = object_dir("map-entries");
    let child = SyscallChild::getpid(1000);
    let comm = fs::read_to_string(format!("/proc/{}/comm", child.pid)).expect("child's comm");
    let comm = comm.trim_end().to_string();
    fs::write(dir.join("filters.yaml"), maps(&comm) + METRICS).expect("write config");
    let exporter = start(&dir);
    let calls = |s: &Scrape| {
        s.sum(
            "ebpf_exporter_watched_syscalls_total",
            &[("comm", &comm), ("syscall", "getpid")],
        )
    };
    assert_eq!(calls(&exporter.scrape()), 0.0);
    child.run();
    let s = wait_for(&exporter, "3000 weighted getpid calls", |s| {
        calls(s) >= 3000.0
    });
    assert_eq!(calls(&s), 3000.0, "{}", s.text);
    let all = s.find("ebpf_exporter_watched_syscalls_total", &[]);
    assert!(
        all.iter()
            .all(|x| x.labels.get("comm").map(String::as_str) == Some(comm.as_str())),
        "only the watched command: {all:?}"
    );
}

/// Entries that cannot be written are refused with file, line and key,
/// saying what the map has, while a good config beside them runs.
#[test]
fn entries_that_cannot_be_written_are_refused_with_file_line_and_key() {
    let dir = object_dir("map-entries-errors");
    let good = maps("nobody") + METRICS;
    fs::write(dir.join("good.yaml"), &good).expect("write");
    let bad = [
        (
            "no_member",
            good.replace("    decoders:\n      nr:", "    decoders:\n      nrr:"),
            "no_member.yaml:9: key `maps.watched_syscalls.decoders.nrr`: map watched_syscalls's key has no member \"nrr\"; its members: nr, unused",
        ),
        (
            "no_syscall",
            good.replace("{nr: getppid}", "{nr: getpidd}"),
            "no_syscall.yaml:15: key `maps.watched_syscalls.entries[1].key.nr`: decoder syscall in reverse: \"getpidd\" is not a syscall of this architecture",
        ),
        (
            "too_long",
            good.replace("\"nobody\"", "\"a-command-name-too-long\""),
            "too_long.yaml:5: key `maps.watched_comms.entries[0].key`: \"a-command-name-too-long\" is 23 bytes, and it holds at most 15 with the terminating NUL",
        ),
        (
            "one_way",
            good.replace("        - name: syscall\n          names: kernel\n    entries", "        - name: cgroup\n    entries"),
            "one_way.yaml:13: key `maps.watched_syscalls.entries[0].key.nr`: decoder cgroup cannot be run in reverse",
        ),
        (
            "struct_as_scalar",
            good.replace("{nr: getppid}", "getppid"),
            "struct_as_scalar.yaml:15: key `maps.watched_syscalls.entries[1].key`: struct syscall_key is a struct: give its members by name (nr, unused)",
        ),
    ];
    for (name, yaml, _) in &bad {
        let yaml = yaml.replace("watched_syscalls_total", &format!("{name}_total"));
        fs::write(dir.join(format!("{name}.yaml")), yaml).expect("write");
    }
    let wants: Vec<(&str, &str)> = bad.iter().map(|(n, _, w)| (*n, *w)).collect();
    common::tools::assert_refusals_leave_the_good_running(&dir, &wants);
}
