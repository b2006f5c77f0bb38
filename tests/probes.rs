//! `probe:` metrics: hooks and fields in YAML, with no C, no compiler and
//! no object file. Each test runs real BPF (the exporter's generic probe
//! program, specialised by its config) against a workload whose counts it
//! knows, or checks a refusal's file, line, key and list of what exists.

mod common;

use std::fs;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Command;

use common::tools::{start, wait_for, SyscallChild};
use common::{scratch_dir, Running, Scrape};

fn config_dir(test: &str, yaml: &str) -> std::path::PathBuf {
    let dir = scratch_dir(test);
    fs::write(dir.join("probes.yaml"), yaml).expect("write config");
    dir
}

/// A child's 1000 getpid() calls: exactly 1000 under its pid, in a count
/// keyed by pid and command, filtered to the child.
#[test]
fn a_counter_counts_exact_events_by_pid_and_command() {
    let child = SyscallChild::getpid(1000);
    let comm = fs::read_to_string(format!("/proc/{}/comm", child.pid)).expect("comm");
    let comm = comm.trim_end().to_string();
    let dir = config_dir(
        "probes-count",
        &format!(
            "metrics:
  counters:
    - name: probe_getpid_calls_total
      help: getpid() calls, by process
      probe:
        hook: tracepoint/syscalls/sys_enter_getpid
        filter:
          - {{field: pid, op: ==, value: {pid}}}
      labels:
        - name: pid
          decoders: [{{name: uint}}]
        - name: comm
          decoders: [{{name: string}}]
",
            pid = child.pid
        ),
    );
    let exporter = start(&dir);
    let pid = child.pid.to_string();
    let calls = |s: &Scrape| {
        s.sum(
            "ebpf_exporter_probe_getpid_calls_total",
            &[("pid", &pid), ("comm", &comm)],
        )
    };
    child.run();
    let s = wait_for(&exporter, "1000 getpid calls", |s| calls(s) >= 1000.0);
    assert_eq!(calls(&s), 1000.0, "{}", s.text);
    assert_eq!(
        s.find("ebpf_exporter_probe_getpid_calls_total", &[]).len(),
        1,
        "the filter lets only the child through:\n{}",
        s.text
    );
}

/// A record field as the value: the bytes a child asks of write() are
/// summed exactly (300 writes of 3000 bytes), the last size is kept as a
/// gauge, and the sizes fall in the exp2 bucket that holds 3000 (4096).
#[test]
fn sums_gauges_and_histograms_of_a_record_field() {
    let null = fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .expect("open /dev/null");
    let data = vec![0u8; 3000];
    let child = SyscallChild::spawn(
        300,
        libc::SYS_write,
        [
            null.as_raw_fd().into(),
            data.as_ptr() as libc::c_long,
            3000,
            0,
        ],
    );
    let filter = format!("[{{field: pid, op: ==, value: {}}}]", child.pid);
    let dir = config_dir(
        "probes-values",
        &format!(
            "metrics:
  counters:
    - name: probe_write_bytes_total
      help: Bytes asked of write()
      probe:
        hook: tracepoint/syscalls/sys_enter_write
        value: count
        filter: {filter}
  gauges:
    - name: probe_last_write_bytes
      help: The last size asked of write()
      probe:
        hook: tracepoint/syscalls/sys_enter_write
        value: count
        filter: {filter}
  histograms:
    - name: probe_write_size_bytes
      help: Sizes asked of write()
      bucket_type: exp2
      bucket_min: 0
      bucket_max: 20
      probe:
        hook: tracepoint/syscalls/sys_enter_write
        value: count
        filter: {filter}
"
        ),
    );
    let exporter = start(&dir);
    child.run();
    let s = wait_for(&exporter, "300 writes", |s| {
        s.sum("ebpf_exporter_probe_write_size_bytes_count", &[]) >= 300.0
    });
    assert_eq!(
        s.sum("ebpf_exporter_probe_write_bytes_total", &[]),
        900_000.0
    );
    assert_eq!(s.sum("ebpf_exporter_probe_last_write_bytes", &[]), 3000.0);
    assert_eq!(
        s.sum("ebpf_exporter_probe_write_size_bytes_count", &[]),
        300.0
    );
    assert_eq!(
        s.sum("ebpf_exporter_probe_write_size_bytes_sum", &[]),
        900_000.0
    );
    let bucket = |le: &str| s.sum("ebpf_exporter_probe_write_size_bytes_bucket", &[("le", le)]);
    assert_eq!((bucket("2048"), bucket("4096")), (0.0, 300.0), "{}", s.text);
    s.assert_inf_is_count("ebpf_exporter_probe_write_size_bytes", &[]);
    drop(data);
}

/// A `__data_loc` string of the record as a label: sched_process_exec's
/// filename names the program a child runs.
#[test]
fn a_dynamic_string_field_is_a_label() {
    let dir = config_dir(
        "probes-exec",
        "metrics:
  counters:
    - name: probe_execs_total
      help: Programs run, by file
      probe:
        hook: tracepoint/sched/sched_process_exec
      labels:
        - name: filename
          decoders: [{name: string}]
",
    );
    let exporter = start(&dir);
    let sh = if Path::new("/bin/sh").exists() {
        "/bin/sh"
    } else {
        "/usr/bin/sh"
    };
    for _ in 0..3 {
        let status = Command::new(sh)
            .args(["-c", "exit 0"])
            .status()
            .expect("run sh");
        assert!(status.success());
    }
    wait_for(&exporter, "3 execs of the shell", |s| {
        s.sum("ebpf_exporter_probe_execs_total", &[("filename", sh)]) >= 3.0
    });
}

/// `ebpf-exporter fields` lists a hook's fields with their types and uses,
/// and names the events a category has when asked for one it lacks.
#[test]
fn fields_lists_what_a_hook_offers() {
    let out = Command::new(common::BIN)
        .args(["fields", "tracepoint/syscalls/sys_enter_write"])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    for line in [
        "count size_t count (offset 32, 8 bytes; label, value, filter)",
        "buf const char * buf (offset 24, 8 bytes; filter (a kernel address: never a label))",
        "comm char[16]: the thread's command (built-in; label (decoder: string))",
    ] {
        assert!(lines.iter().any(|l| l == line), "{line:?} in:\n{text}");
    }
    let out = Command::new(common::BIN)
        .args(["fields", "tracepoint/syscalls/sys_enter_wirte"])
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("this kernel has no tracepoint syscalls/sys_enter_wirte; syscalls has: ")
            && err.contains("sys_enter_write"),
        "{err}"
    );
}

/// Probes that cannot run are refused with file, line and key, saying
/// what the hook does have, and a good config beside them runs.
#[test]
fn probes_that_cannot_run_are_refused_with_file_line_and_key() {
    let dir = scratch_dir("probes-errors");
    let good = "metrics:
  counters:
    - name: good_writes_total
      help: Writes
      probe:
        hook: tracepoint/syscalls/sys_enter_write
        filter: [{field: fd, op: '>', value: 2}]
      labels:
        - name: comm
          decoders: [{name: string}]
";
    fs::write(dir.join("good.yaml"), good).expect("write");
    let bad = [
        (
            "no_field",
            good.replace("- name: comm", "- name: comand"),
            "no_field.yaml:9: key `metrics.counters[0].labels[0].name`: tracepoint/syscalls/sys_enter_write has no field \"comand\"; its fields: __syscall_nr, fd, buf, count, pid, tid, comm, cgroup, cpu, uid",
        ),
        (
            "no_event",
            good.replace("sys_enter_write", "sys_enter_wirte"),
            "no_event.yaml:6: key `metrics.counters[0].probe.hook`: this kernel has no tracepoint syscalls/sys_enter_wirte; syscalls has: ",
        ),
        (
            "no_kind",
            good.replace("tracepoint/syscalls/sys_enter_write", "kprobe/vfs_write"),
            "no_kind.yaml:6: key `metrics.counters[0].probe.hook`: \"kprobe/vfs_write\": probes run on tracepoint/CATEGORY/NAME hooks; \"kprobe\" hooks are not supported by probes yet",
        ),
        (
            "pointer_label",
            good.replace("- name: comm", "- name: buf"),
            "pointer_label.yaml:9: key `metrics.counters[0].labels[0].name`: buf (const char * buf) is a kernel address: as a label it would put the kernel's layout on /metrics",
        ),
        (
            "text_filter",
            good.replace("field: fd", "field: comm"),
            "text_filter.yaml:7: key `metrics.counters[0].probe.filter[0].value`: comm (char[16]: the thread's command) is text, which a probe's filter cannot compare with a number",
        ),
        (
            "too_big",
            good.replace("value: 2", "value: -1"),
            "too_big.yaml:7: key `metrics.counters[0].probe.filter[0].value`: -1 does not fit fd (unsigned int fd, 8 bytes)",
        ),
        (
            "bad_op",
            good.replace("op: '>'", "op: '=~'"),
            "bad_op.yaml:7: key `metrics.counters[0].probe.filter[0].op`: \"=~\" is no comparison: use ==, !=, <, >, <=, >= or &",
        ),
        (
            "big_key",
            good.replace(
                "        - name: comm\n          decoders: [{name: string}]\n",
                &(0..5)
                    .map(|i| format!("        - name: c{i}\n          field: comm\n          decoders: [{{name: string}}]\n"))
                    .collect::<String>(),
            ),
            "big_key.yaml:21: key `metrics.counters[0].labels[4]`: the key would need 80 bytes with comm; a probe's key holds 64",
        ),
        (
            "gauge_no_value",
            good.replace("  counters:", "  gauges:"),
            "gauge_no_value.yaml:5: key `metrics.gauges[0].probe`: a gauge keeps a field's last value: name it with probe.value",
        ),
        (
            "bad_match",
            good.replace(
                "        hook: tracepoint/syscalls/sys_enter_write\n        filter: [{field: fd, op: '>', value: 2}]\n",
                "        start: {hook: tracepoint/syscalls/sys_enter_write, match: [tid]}\n        end: {hook: tracepoint/syscalls/sys_exit_write, match: [thread]}\n        value: latency_us\n",
            )
            .replace("  counters:", "  histograms:")
            .replace("      help: Writes\n", "      help: Writes\n      bucket_type: exp2\n      bucket_max: 20\n"),
            "bad_match.yaml:9: key `metrics.histograms[0].probe.end.match[0]`: tracepoint/syscalls/sys_exit_write has no field \"thread\"; its fields: __syscall_nr, ret, pid, tid, comm, cgroup, cpu, uid",
        ),
        (
            "with_map",
            good.replace("      probe:", "      map: writes\n      probe:"),
            "with_map.yaml:5: key `metrics.counters[0].map`: `map` reads an object's data; a probe: metric gathers its own",
        ),
    ];
    for (name, yaml, _) in &bad {
        let yaml = yaml.replace("good_writes_total", &format!("{name}_total"));
        fs::write(dir.join(format!("{name}.yaml")), yaml).expect("write");
    }
    let check = Command::new(common::BIN)
        .args([&format!("--config.dir={}", dir.display()), "--config.check"])
        .output()
        .expect("runs");
    let report = String::from_utf8_lossy(&check.stdout).into_owned()
        + &String::from_utf8_lossy(&check.stderr);
    for (name, _, want) in &bad {
        assert!(report.contains(want), "{name}: want {want:?} in:\n{report}");
    }
    let exporter = Running::start(&[&format!("--config.dir={}", dir.display())]);
    assert!(
        exporter.scrape().text.contains("config=\"good\""),
        "the good config runs"
    );
}

/// A latency between two hooks, paired by thread: a child's 50 sleeps of
/// 2 ms each are timed, exactly 50 of them, none under 2 ms, under the
/// child's command read at the start hook.
#[test]
fn a_latency_between_two_hooks_times_each_pair() {
    let sleep = libc::timespec {
        tv_sec: 0,
        tv_nsec: 2_000_000,
    };
    let child = SyscallChild::spawn(
        50,
        libc::SYS_nanosleep,
        [&sleep as *const libc::timespec as libc::c_long, 0, 0, 0],
    );
    let comm = fs::read_to_string(format!("/proc/{}/comm", child.pid)).expect("comm");
    let comm = comm.trim_end().to_string();
    let dir = config_dir(
        "probes-latency",
        &format!(
            "metrics:
  histograms:
    - name: probe_nanosleep_seconds
      help: Time in nanosleep(), by command
      bucket_type: exp2
      bucket_min: 0
      bucket_max: 30
      bucket_multiplier: 0.000001
      probe:
        start: {{hook: tracepoint/syscalls/sys_enter_nanosleep, match: [tid]}}
        end: {{hook: tracepoint/syscalls/sys_exit_nanosleep, match: [tid]}}
        value: latency_us
        filter: [{{field: pid, op: ==, value: {pid}}}]
      labels:
        - {{name: comm, decoders: [{{name: string}}]}}
  counters:
    - name: probe_timer_expirations_total
      help: Timers expired, by function
      probe: {{hook: tracepoint/timer/timer_expire_entry}}
      labels:
        - {{name: function, decoders: [{{name: ksym}}]}}
",
            pid = child.pid
        ),
    );
    let exporter = start(&dir);
    child.run();
    let by = [("comm", comm.as_str())];
    let s = wait_for(&exporter, "50 sleeps timed", |s| {
        s.sum("ebpf_exporter_probe_nanosleep_seconds_count", &by) >= 50.0
    });
    assert_eq!(
        s.sum("ebpf_exporter_probe_nanosleep_seconds_count", &by),
        50.0
    );
    let under_2ms = s.sum(
        "ebpf_exporter_probe_nanosleep_seconds_bucket",
        &[("comm", comm.as_str()), ("le", "0.001024")],
    );
    assert_eq!(under_2ms, 0.0, "{}", s.text);
    let total = s.sum("ebpf_exporter_probe_nanosleep_seconds_sum", &by);
    assert!(total >= 0.1, "50 sleeps of 2 ms: {total} s");
    s.assert_inf_is_count("ebpf_exporter_probe_nanosleep_seconds", &by);
    // A function pointer is a label only as ksym names it.
    let timers = s.find("ebpf_exporter_probe_timer_expirations_total", &[]);
    assert!(
        timers.iter().all(|t| t.labels["function"]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.".contains(c))),
        "{timers:?}"
    );
}
