//! `probe:` metrics: hooks and fields in YAML, with no C, no compiler and
//! no object file. Each test runs real BPF (the exporter's generic probe
//! program, specialised by its config) against a workload whose counts it
//! knows, or checks a refusal's file, line, key and list of what exists.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Command;

use common::tools::{start, wait_for, SyscallChild};
use common::{scratch_dir, Running, Scrape};

/// The name of a raw tracepoint's last argument of this C type: kernels
/// whose BTF names the arguments (6.x) give it (`next`), older ones only
/// its position (`arg2` on 5.10), and the argument lists differ between
/// kernels (5.10's block_rq_issue passes the queue first).
fn raw_arg(tracepoint: &str, what: &str) -> String {
    use ebpf_exporter::probes::fields::{fields_of, Hook, UserArgs};
    let fields = fields_of(
        &Hook::RawTp {
            name: tracepoint.to_string(),
        },
        &UserArgs::default(),
    )
    .expect("the raw tracepoint's arguments");
    fields
        .iter()
        .rev()
        .find(|f| f.what == what)
        .unwrap_or_else(|| panic!("{tracepoint} has no {what} argument: {fields:?}"))
        .name
        .clone()
}

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
        "buf const char * buf (offset 24, 8 bytes; filter, match (an address: never a label))",
        "comm char[16]: the thread's command (built-in; label (decoder: string))",
    ] {
        assert!(lines.iter().any(|l| l == line), "{line:?} in:\n{text}");
    }
    // A kernel function's arguments by name, in the registers a kprobe
    // reads them from; a user-space hook's by position.
    let listing = |hook: &str| -> Vec<String> {
        let out = Command::new(common::BIN)
            .args(["fields", hook])
            .output()
            .expect("runs");
        assert!(out.status.success(), "{hook}: {out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    };
    let kprobe = listing("kprobe/vfs_read");
    for line in [
        "file struct file * (register di; members by path, as file.MEMBER; filter, match (an address: never a label))",
        "buf char * (register si; filter, match (an address: never a label))",
        "count size_t (register dx; label, value, filter)",
    ] {
        assert!(kprobe.iter().any(|l| l == line), "{line:?} in {kprobe:#?}");
    }
    assert_eq!(
        listing("kretprobe/vfs_read")[0],
        "ret ssize_t (register ax; label, value, filter)"
    );
    let usdt = listing("usdt//usr/bin/true:provider:name");
    assert_eq!(usdt[0], "arg0 u64 (USDT argument 0; label, value, filter)");
    assert_eq!(
        usdt[11],
        "arg11 u64 (USDT argument 11; label, value, filter)"
    );
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
    let next = raw_arg("sched_switch", "struct task_struct *");
    let path_want = format!("bad_path.yaml:9: key `metrics.counters[0].labels[0].field`: {next}.pid (pid_t) is not a pointer or a struct, so the path cannot go on");
    let member_want = format!("no_member.yaml:9: key `metrics.counters[0].labels[0].field`: {next} (struct task_struct) has no member \"cmm\"; its members: ");
    let struct_want = format!("struct_label.yaml:9: key `metrics.counters[0].labels[0].field`: {next}.se (struct sched_entity) is a struct, which a key field cannot take whole");
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
            good.replace("tracepoint/syscalls/sys_enter_write", "lsm/file_open"),
            "no_kind.yaml:6: key `metrics.counters[0].probe.hook`: \"lsm/file_open\": probes run on tracepoint/CATEGORY/NAME, raw_tp/NAME, tp_btf/NAME, fentry/FUNCTION, fexit/FUNCTION, kprobe/FUNCTION, kretprobe/FUNCTION, uprobe/PATH:FUNCTION, uretprobe/PATH:FUNCTION and usdt/PATH:PROVIDER:NAME hooks; \"lsm\" is none of those",
        ),
        (
            "pointer_label",
            good.replace("- name: comm", "- name: buf"),
            "pointer_label.yaml:9: key `metrics.counters[0].labels[0].name`: buf (const char * buf) is a kernel address: as a label it would put the kernel's layout on /metrics",
        ),
        (
            "text_filter",
            good.replace("field: fd", "field: comm"),
            "text_filter.yaml:7: key `metrics.counters[0].probe.filter[0].value`: comm (char[16]: the thread's command) is text, which a probe's filter compares with text, not a number: write the value in quotes",
        ),
        (
            "text_op",
            good.replace("field: fd, op: '>', value: 2", "field: comm, op: '<', value: 'x'"),
            "text_op.yaml:7: key `metrics.counters[0].probe.filter[0].value`: comm is text, which compares with == or != only, not <",
        ),
        (
            "long_text",
            good.replace("field: fd, op: '>', value: 2", "field: comm, op: ==, value: 'a-command-too-long'"),
            "long_text.yaml:7: key `metrics.counters[0].probe.filter[0].value`: \"a-command-too-long\" is 18 bytes; a filter on comm compares at most 15",
        ),
        (
            "bad_cgroup",
            good.replace("{field: fd, op: '>', value: 2}", "{cgroup: 'system.slice/(nginx'}"),
            "bad_cgroup.yaml:7: key `metrics.counters[0].probe.filter[0].cgroup`: bad regexp: regex parse error",
        ),
        (
            "two_cgroups",
            format!(
                "{}{}",
                good.replace("{field: fd, op: '>', value: 2}", "{cgroup: 'a.slice'}"),
                good.replace("metrics:\n  counters:\n", "")
                    .replace("good_writes_total", "other_writes_total")
                    .replace("{field: fd, op: '>', value: 2}", "{cgroup: 'b.slice'}")
            ),
            "two_cgroups.yaml:15: key `metrics.counters[1].probe.filter[0].cgroup`: the probes of one config share one cgroup filter, and an earlier probe filters on [\"a.slice\"]",
        ),
        (
            "kernel_args",
            good.replace("        filter:", "        args: [{name: fd, type: u32}]\n        filter:"),
            "kernel_args.yaml:7: key `metrics.counters[0].probe.args`: args and ret name and type a uprobe's, uretprobe's or USDT probe's arguments; tracepoint/syscalls/sys_enter_write's come from its format file in tracefs",
        ),
        (
            "user_type",
            good.replace("tracepoint/syscalls/sys_enter_write", "uprobe//usr/bin/true:main")
                .replace("        filter: [{field: fd, op: '>', value: 2}]\n", "        args: [{name: argc, type: float}]\n"),
            "user_type.yaml:7: key `metrics.counters[0].probe.args[0].type`: \"float\" is not a type a probe reads: use u8, u16, u32, u64, s8, s16, s32, s64, pointer, string or string[N]",
        ),
        (
            "user_path",
            good.replace("tracepoint/syscalls/sys_enter_write", "uprobe/libc.so.6:malloc")
                .replace("        filter: [{field: fd, op: '>', value: 2}]\n", ""),
            "user_path.yaml:6: key `metrics.counters[0].probe.hook`: \"uprobe/libc.so.6:malloc\": write it as uprobe/PATH:FUNCTION[+OFFSET], with the binary's or library's absolute path",
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
            "bad_path",
            good.replace("tracepoint/syscalls/sys_enter_write", "raw_tp/sched_switch")
                .replace("        filter: [{field: fd, op: '>', value: 2}]\n", "")
                .replace("- name: comm\n", &format!("- name: comm\n          field: {next}.pid.x\n")),
            &path_want,
        ),
        (
            "no_member",
            good.replace("tracepoint/syscalls/sys_enter_write", "raw_tp/sched_switch")
                .replace("        filter: [{field: fd, op: '>', value: 2}]\n", "")
                .replace("- name: comm\n", &format!("- name: comm\n          field: {next}.cmm\n")),
            &member_want,
        ),
        (
            "struct_label",
            good.replace("tracepoint/syscalls/sys_enter_write", "raw_tp/sched_switch")
                .replace("        filter: [{field: fd, op: '>', value: 2}]\n", "")
                .replace("- name: comm\n", &format!("- name: comm\n          field: {next}.se\n")),
            &struct_want,
        ),
        (
            "no_raw_tp",
            good.replace("tracepoint/syscalls/sys_enter_write", "raw_tp/sched_swich")
                .replace("        filter: [{field: fd, op: '>', value: 2}]\n", ""),
            "no_raw_tp.yaml:6: key `metrics.counters[0].probe.hook`: this kernel has no raw tracepoint \"sched_swich\" (its BTF has no __bpf_trace_sched_swich); nearest: sched_switch",
        ),
        (
            "no_function",
            good.replace("tracepoint/syscalls/sys_enter_write", "kprobe/vfs_reed")
                .replace("        filter: [{field: fd, op: '>', value: 2}]\n", ""),
            "no_function.yaml:6: key `metrics.counters[0].probe.hook`: this kernel has no function \"vfs_reed\" in its BTF (inlined, renamed, or absent); nearest: vfs_read",
        ),
        (
            "nine_labels",
            good.replace(
                "        - name: comm\n          decoders: [{name: string}]\n",
                &(0..9)
                    .map(|i| format!("        - {{name: c{i}, field: fd, decoders: [{{name: uint}}]}}\n"))
                    .collect::<String>(),
            ),
            "nine_labels.yaml:8: key `metrics.counters[0].labels`: a probe's key holds at most 8 labels (a histogram's bucket besides); this metric has 9",
        ),
        (
            "five_filters",
            good.replace(
                "{field: fd, op: '>', value: 2}",
                "{field: fd, op: '>', value: 2}, {field: fd, op: '>', value: 3}, {field: fd, op: '>', value: 4}, {field: fd, op: '>', value: 5}, {field: fd, op: '>', value: 6}",
            ),
            "five_filters.yaml:7: key `metrics.counters[0].probe.filter`: a probe takes at most 4 filters",
        ),
        (
            "nine_probes",
            format!(
                "metrics:\n  counters:\n{}",
                (0..9)
                    .map(|i| good.replace("metrics:\n  counters:\n", "").replace("good_writes_total", &format!("nine_{i}_total")))
                    .collect::<String>()
            ),
            "nine_probes.yaml:69: key `metrics.counters[8].probe`: a config holds at most 8 probes; put the others in a config of their own",
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
    let wants: Vec<(&str, &str)> = bad.iter().map(|(n, _, w)| (*n, *w)).collect();
    common::tools::assert_refusals_leave_the_good_running(&dir, &wants);
}

/// Every comparison a filter has, on one field, against a workload whose
/// every value is known: a child's 100 lseek() calls at offset 0x30. Each
/// operator is run both ways, so a count of 0 is a filter that held
/// nothing back, not a probe that never ran.
#[test]
fn every_filter_comparison_counts_exactly() {
    let child = SyscallChild::spawn(100, libc::SYS_lseek, [-1, 0x30, 0, 0]);
    let probes = [
        ("eq", "==", "0x30", 100.0),
        ("ne_other", "!=", "7", 100.0),
        ("ne_same", "!=", "0x30", 0.0),
        ("lt_above", "<", "0x31", 100.0),
        ("lt_same", "<", "0x30", 0.0),
        ("gt_below", ">", "0x2f", 100.0),
        ("mask_set", "&", "0x10", 100.0),
        ("mask_clear", "&", "0x0f", 0.0),
    ];
    let counters: String = probes
        .iter()
        .map(|(name, op, value, _)| {
            format!(
                "    - name: filter_{name}_total
      help: lseek() calls whose offset passes {op} {value}
      probe:
        hook: tracepoint/syscalls/sys_enter_lseek
        filter: [{{field: pid, op: ==, value: {pid}}}, {{field: offset, op: '{op}', value: {value}}}]
",
                pid = child.pid
            )
        })
        .collect();
    let dir = config_dir(
        "probes-filters",
        &format!("metrics:\n  counters:\n{counters}"),
    );
    let exporter = start(&dir);
    child.run();
    let s = wait_for(&exporter, "100 lseek calls", |s| {
        s.sum("ebpf_exporter_filter_eq_total", &[]) >= 100.0
    });
    for (name, op, value, want) in probes {
        assert_eq!(
            s.sum(&format!("ebpf_exporter_filter_{name}_total"), &[]),
            want,
            "offset 0x30 {op} {value}:\n{}",
            s.text
        );
    }
}

/// A field written as a number is that constant: a sum adds it per
/// event, and a label shows it. A child's 100 lseek() calls at a value
/// of 512 each sum to exactly 51,200 under the label 7.
#[test]
fn a_constant_is_a_field() {
    let child = SyscallChild::spawn(100, libc::SYS_lseek, [-1, 0x30, 0, 0]);
    let dir = config_dir(
        "probes-constant",
        &format!(
            "metrics:
  counters:
    - name: constant_weight_total
      help: 512 per lseek() call, under a fixed label
      probe:
        hook: tracepoint/syscalls/sys_enter_lseek
        value: 512
        filter: [{{field: pid, op: ==, value: {pid}}}]
      labels:
        - {{name: shard, field: 0x7, decoders: [{{name: uint}}]}}
",
            pid = child.pid
        ),
    );
    let exporter = start(&dir);
    child.run();
    let s = wait_for(&exporter, "100 lseek calls", |s| {
        s.sum("ebpf_exporter_constant_weight_total", &[]) >= 51_200.0
    });
    assert_eq!(
        series(&s, "ebpf_exporter_constant_weight_total", &[]),
        [(vec![("shard".to_string(), "7".to_string())], 51_200.0)].into(),
        "{}",
        s.text
    );
}

/// A config at every limit the README gives: 8 probes, one of them a
/// histogram whose 8 labels fill the key's 64 bytes (its bucket besides)
/// and which takes 4 filters. Every probe counts the child's 100 lseek()
/// calls exactly, and the histogram keeps every label's value.
#[test]
fn a_config_at_every_limit_counts_exactly() {
    let child = SyscallChild::spawn(100, libc::SYS_lseek, [-1, 0x30, 0, 0]);
    let pid = child.pid;
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).expect("the child's command");
    let comm = comm.trim_end();
    // pid, tid, uid @0,4,8; comm @12..28; cgroup, offset, whence, fd @32..64.
    let labels = "        - {name: pid, decoders: [{name: uint}]}
        - {name: tid, decoders: [{name: uint}]}
        - {name: uid, decoders: [{name: uint}]}
        - {name: comm, decoders: [{name: string}]}
        - {name: cgroup, decoders: [{name: uint}]}
        - {name: offset, decoders: [{name: uint}]}
        - {name: whence, decoders: [{name: uint}]}
        - {name: fd, decoders: [{name: uint}]}
";
    let mut yaml = format!(
        "metrics:
  histograms:
    - name: limits_offsets
      help: lseek() offsets, under eight labels and four filters
      bucket_type: exp2
      bucket_min: 0
      bucket_max: 8
      probe:
        hook: tracepoint/syscalls/sys_enter_lseek
        value: offset
        filter:
          - {{field: pid, op: ==, value: {pid}}}
          - {{field: offset, op: ==, value: 0x30}}
          - {{field: whence, op: ==, value: 0}}
          - {{field: comm, op: ==, value: '{comm}'}}
      labels:
{labels}  counters:
"
    );
    for i in 1..8 {
        yaml.push_str(&format!(
            "    - name: limits_{i}_total
      help: lseek() calls, probe {i}
      probe:
        hook: tracepoint/syscalls/sys_enter_lseek
        filter: [{{field: pid, op: ==, value: {pid}}}]
"
        ));
    }
    let dir = config_dir("probes-limits", &yaml);
    let exporter = start(&dir);
    child.run();
    let s = wait_for(&exporter, "100 lseek calls in each probe", |s| {
        s.sum("ebpf_exporter_limits_offsets_count", &[]) >= 100.0
            && (1..8).all(|i| s.sum(&format!("ebpf_exporter_limits_{i}_total"), &[]) >= 100.0)
    });
    for i in 1..8 {
        assert_eq!(
            s.sum(&format!("ebpf_exporter_limits_{i}_total"), &[]),
            100.0,
            "probe {i}"
        );
    }
    let counts = s.find("ebpf_exporter_limits_offsets_count", &[]);
    assert_eq!(counts.len(), 1, "{}", s.text);
    let labels = &counts[0].labels;
    // SAFETY: getuid cannot fail and touches no memory.
    let uid = unsafe { libc::getuid() }.to_string();
    for (name, want) in [
        ("pid", pid.to_string()),
        ("tid", pid.to_string()),
        ("uid", uid),
        ("comm", comm.to_string()),
        ("offset", "48".to_string()),
        ("whence", "0".to_string()),
        // The record keeps each argument as an unsigned long: -1 whole.
        ("fd", u64::MAX.to_string()),
    ] {
        assert_eq!(labels.get(name), Some(&want), "{name}: {}", s.text);
    }
    assert_eq!(counts[0].value, 100.0);
    assert_eq!(s.sum("ebpf_exporter_limits_offsets_sum", &[]), 4800.0);
    // 48 lies in (32, 64]: bucket 6 of exp2.
    assert_eq!(
        s.sum("ebpf_exporter_limits_offsets_bucket", &[("le", "32")]),
        0.0
    );
    assert_eq!(
        s.sum("ebpf_exporter_limits_offsets_bucket", &[("le", "64")]),
        100.0
    );
}

/// A refused probe is left out of its config, not the config out: the
/// other probes beside it load and count exactly, and `--config.check`
/// and the start-up log say DEGRADED, naming the one left out by file,
/// line and key.
#[test]
fn a_refused_probe_leaves_the_other_probes_of_its_config_running() {
    let child = SyscallChild::spawn(300, libc::SYS_getpid, [0; 4]);
    let yaml = format!(
        "metrics:
  counters:
    - name: mixed_getpid_total
      help: getpid() calls of one process
      probe:
        hook: tracepoint/raw_syscalls/sys_enter
        filter: [{{field: pid, op: ==, value: {pid}}}, {{field: id, op: ==, value: {nr}}}]
    - name: mixed_typo_total
      help: A field the hook does not have
      probe:
        hook: tracepoint/raw_syscalls/sys_enter
        filter: [{{field: pid, op: ==, value: {pid}}}]
      labels:
        - {{name: comand, decoders: [{{name: string}}]}}
    - name: mixed_exits_total
      help: Syscall exits of one process
      probe:
        hook: tracepoint/raw_syscalls/sys_exit
        filter: [{{field: pid, op: ==, value: {pid}}}, {{field: id, op: ==, value: {nr}}}]
",
        pid = child.pid,
        nr = libc::SYS_getpid
    );
    let dir = scratch_dir("probes-mixed");
    fs::write(dir.join("mixed.yaml"), &yaml).expect("write config");
    let want = "mixed.yaml:14: key `metrics.counters[1].labels[0].name`: tracepoint/raw_syscalls/sys_enter has no field \"comand\"";
    let check = common::tools::config_check(&dir);
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(!check.status.success(), "a degraded config fails the check");
    assert!(
        report.contains("config mixed (")
            && report.contains("): DEGRADED: 2/2 programs attached, 1 metric(s) left out"),
        "{report}"
    );
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("  metric LEFT OUT: ") && l.contains(want)),
        "{report}"
    );
    let exporter = start(&dir);
    child.run();
    let s = wait_for(&exporter, "300 getpid calls in and out", |s| {
        s.sum("ebpf_exporter_mixed_getpid_total", &[]) >= 300.0
            && s.sum("ebpf_exporter_mixed_exits_total", &[]) >= 300.0
    });
    assert_eq!(s.sum("ebpf_exporter_mixed_getpid_total", &[]), 300.0);
    assert_eq!(s.sum("ebpf_exporter_mixed_exits_total", &[]), 300.0);
    assert!(
        s.find("ebpf_exporter_mixed_typo_total", &[]).is_empty(),
        "{}",
        s.text
    );
    assert_eq!(
        s.sum(
            "ebpf_exporter_config_last_load_successful",
            &[("config", "mixed")]
        ),
        0.0,
        "a config with a metric left out did not load as written"
    );
    let log = exporter.log();
    assert!(
        log.contains("config mixed: metric left out: ") && log.contains(want),
        "{log}"
    );
}

/// A child that will pread() a 4096-byte file on disk `n` times, 4096
/// bytes each; the file, and the child's descriptor for it.
fn preader(test: &str, n: usize) -> (SyscallChild, std::path::PathBuf, i32) {
    let file = common::tools::disk_dir(test).join("data");
    fs::write(&file, vec![5u8; 4096]).expect("write");
    let f = fs::File::open(&file).expect("open");
    let mut buf = vec![0u8; 4096];
    // The child gets its own copies of the descriptor and the buffer at
    // the fork, inside spawn; the parent's may go after it.
    let child = SyscallChild::spawn(
        n,
        libc::SYS_pread64,
        [
            f.as_raw_fd().into(),
            buf.as_mut_ptr() as libc::c_long,
            4096,
            0,
        ],
    );
    (child, file, f.as_raw_fd())
}

/// A child that will sleep 2 ms in nanosleep() `n` times.
fn sleeper(n: usize) -> SyscallChild {
    let sleep = libc::timespec {
        tv_sec: 0,
        tv_nsec: 2_000_000,
    };
    // The child's copy of `sleep` is made at the fork, inside spawn.
    SyscallChild::spawn(
        n,
        libc::SYS_nanosleep,
        [&sleep as *const libc::timespec as libc::c_long, 0, 0, 0],
    )
}

/// A latency between two hooks, paired by thread: a child's 50 sleeps of
/// 2 ms each are timed, exactly 50 of them, none under 2 ms, under the
/// child's command read at the start hook.
#[test]
fn a_latency_between_two_hooks_times_each_pair() {
    let child = sleeper(50);
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

/// The series of one metric, by label set.
fn series(s: &Scrape, name: &str, only: &[(&str, &str)]) -> BTreeMap<Vec<(String, String)>, f64> {
    s.find(name, only)
        .into_iter()
        .map(|x| {
            let labels = x
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (labels, x.value)
        })
        .collect()
}

/// Each pair: a shipped metric, the probe that re-expresses it, and the
/// series compared (all, or those with these labels).
type Pair = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const PAIRS: [Pair; 6] = [
    // By filesystem device, the probe's read through file.f_inode.i_sb.
    (
        "ebpf_exporter_ext4_fsync_latency_seconds_count",
        "ebpf_exporter_probe_ext4_fsync_latency_seconds_count",
        &[],
    ),
    // By port and family; the error label is summed out (the shipped
    // program negates the kernel's -ENOMEM, which a probe's label cannot).
    (
        "ebpf_exporter_udp_drops_total",
        "ebpf_exporter_probe_udp_drops_total",
        &[],
    ),
    // Requests timed, in total: the shipped program labels them by disk
    // name and operation, which the probe's arguments do not spell the
    // same way (it labels by disk major).
    (
        "ebpf_exporter_bio_latency_seconds_count",
        "ebpf_exporter_probe_bio_latency_seconds_count",
        &[],
    ),
    (
        "ebpf_exporter_signals_total",
        "ebpf_exporter_probe_signals_total",
        &[],
    ),
    (
        "ebpf_exporter_execs_total",
        "ebpf_exporter_probe_execs_total",
        &[],
    ),
    (
        "ebpf_exporter_syscalls_total",
        "ebpf_exporter_probe_syscalls_total",
        &[("syscall", "getpid")],
    ),
];

/// Series with one label summed out.
fn summed_out(
    series: BTreeMap<Vec<(String, String)>, f64>,
    label: &str,
) -> BTreeMap<Vec<(String, String)>, f64> {
    let mut out = BTreeMap::new();
    for (labels, v) in series {
        let kept: Vec<_> = labels.into_iter().filter(|(k, _)| k != label).collect();
        *out.entry(kept).or_insert(0.0) += v;
    }
    out
}

/// `n` datagrams of 1 KiB to a socket that never reads, with the
/// smallest receive buffer: all but the first few are dropped.
fn drop_datagrams(n: usize) {
    use std::net::UdpSocket;
    let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let size: libc::c_int = 1;
    // SAFETY: a valid socket and an int option the call only reads.
    let rc = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&rx),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_RCVBUF");
    let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let to = rx.local_addr().expect("address");
    for _ in 0..n {
        tx.send_to(&[0u8; 1024], to).expect("send");
    }
}

/// A scrape at a quiet moment: two in a row agree on every pair, so no
/// event fell between the reads of a pair's two maps.
fn quiet_scrape(exporter: &Running) -> Scrape {
    let mut last = exporter.scrape();
    for _ in 0..100 {
        let s = exporter.scrape();
        let same = PAIRS.iter().all(|(a, b, only)| {
            series(&s, a, only) == series(&last, a, only)
                && series(&s, b, only) == series(&last, b, only)
        });
        if same {
            return s;
        }
        last = s;
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("no quiet moment in 100 scrapes:\n{}", last.text)
}

/// Shipped programs re-expressed as probes on the tracepoints of the same
/// events (signals, exec, syscalls), run side by side under one workload:
/// the same label sets, and over the workload the same counts, series by
/// series: 100 ignored SIGWINCH, 5 execs of the shell, 1000 getpid calls.
#[test]
fn probes_match_the_shipped_programs_series_for_series() {
    let dir = scratch_dir("probes-vs-shipped");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    for name in [
        "signals",
        "exec",
        "syscalls",
        "biolatency",
        "fsync",
        "udp_drops",
    ] {
        fs::copy(
            shipped.join(format!("{name}.yaml")),
            dir.join(format!("{name}.yaml")),
        )
        .expect("copy a shipped config");
    }
    // The shipped labels and decoders, with a probe's fields instead of
    // a program's key.
    let text = |name: &str| fs::read_to_string(shipped.join(format!("{name}.yaml"))).expect("read");
    let signals = text("signals")
        .replace(
            "- name: signals_total\n",
            "- name: probe_signals_total\n      probe: {hook: tracepoint/signal/signal_generate}\n",
        )
        .replace(
            "        - name: signal\n          size: 4\n",
            "        - name: signal\n          field: sig\n",
        )
        .replace(
            "        - name: result\n          size: 4\n",
            "        - name: result\n",
        );
    let exec = text("exec")
        .replace(
            "- name: execs_total\n",
            "- name: probe_execs_total\n      probe: {hook: tracepoint/sched/sched_process_exec}\n",
        )
        .replace(
            "        - name: command\n          size: 16\n",
            "        - name: command\n          field: comm\n",
        );
    let syscalls = "metrics:
  counters:
    - name: probe_syscalls_total
      help: System calls entered, by syscall name
      probe: {hook: tracepoint/raw_syscalls/sys_enter}
      labels:
        - name: syscall
          field: id
          decoders:
            - name: uint
            - name: syscall
              names: kernel
";
    // Paired by the request's address, as the shipped program pairs them:
    // (dev, sector) would pair two flushes in flight at once as one.
    let (rq_issue, rq_done) = (
        raw_arg("block_rq_issue", "struct request *"),
        raw_arg("block_rq_complete", "struct request *"),
    );
    let biolatency = format!(
        "metrics:
  histograms:
    - name: probe_bio_latency_seconds
      help: Block I/O latency from issue to completion
      bucket_type: exp2
      bucket_min: 0
      bucket_max: 27
      bucket_multiplier: 0.000001
      probe:
        start: {{hook: raw_tp/block_rq_issue, match: [{rq_issue}]}}
        end: {{hook: raw_tp/block_rq_complete, match: [{rq_done}]}}
        value: latency_us
"
    );
    let (file, sk) = (
        raw_arg("ext4_sync_file_enter", "struct file *"),
        raw_arg("udp_fail_queue_rcv_skb", "struct sock *"),
    );
    let fsync = format!(
        "metrics:
  histograms:
    - name: probe_ext4_fsync_latency_seconds
      help: Latency of fsync and fdatasync on ext4 files, by the filesystem's device
      bucket_type: exp2
      bucket_min: 0
      bucket_max: 26
      bucket_multiplier: 0.000001
      probe:
        start: {{hook: tp_btf/ext4_sync_file_enter, match: [tid]}}
        end: {{hook: tp_btf/ext4_sync_file_exit, match: [tid]}}
        value: latency_us
      labels:
        - name: device
          field: {file}.f_inode.i_sb.s_dev
          decoders: [{{name: kdev}}]
"
    );
    let udp_drops = format!(
        "metrics:
  counters:
    - name: probe_udp_drops_total
      help: UDP datagrams that could not be queued on the receiving socket
      probe: {{hook: tp_btf/udp_fail_queue_rcv_skb}}
      labels:
        - name: local_port
          field: {sk}.__sk_common.skc_num
          decoders: [{{name: uint}}]
        - name: family
          field: {sk}.__sk_common.skc_family
          decoders:
            - name: uint
            - name: static_map
              static_map: {{2: ipv4, 10: ipv6}}
              allow_unknown: true
"
    );
    fs::write(dir.join("p_fsync.yaml"), fsync).expect("write");
    fs::write(dir.join("p_udp_drops.yaml"), udp_drops).expect("write");
    fs::write(dir.join("p_biolatency.yaml"), biolatency).expect("write");
    fs::write(dir.join("p_signals.yaml"), signals).expect("write");
    fs::write(dir.join("p_exec.yaml"), exec).expect("write");
    fs::write(dir.join("p_syscalls.yaml"), syscalls).expect("write");
    let exporter = start(&dir);

    let child = SyscallChild::getpid(1000);
    let before = quiet_scrape(&exporter);
    for _ in 0..100 {
        // SAFETY: a signal to our own child, which ignores SIGWINCH.
        assert_eq!(unsafe { libc::kill(child.pid, libc::SIGWINCH) }, 0);
    }
    let sh = if Path::new("/bin/sh").exists() {
        "/bin/sh"
    } else {
        "/usr/bin/sh"
    };
    for _ in 0..5 {
        assert!(Command::new(sh)
            .args(["-c", "exit 0"])
            .status()
            .expect("sh")
            .success());
    }
    common::tools::direct_io("probes-vs-shipped", 32);
    {
        let file = common::tools::disk_dir("probes-fsync").join("data");
        let mut f = fs::File::create(&file).expect("create");
        for i in 0..20u8 {
            std::io::Write::write_all(&mut f, &[i; 512]).expect("write");
            f.sync_all().expect("fsync");
        }
    }
    drop_datagrams(300);
    child.run();
    wait_for(&exporter, "the workload seen by both", |s| {
        let getpid =
            |n| s.sum(n, &[("syscall", "getpid")]) - before.sum(n, &[("syscall", "getpid")]);
        getpid("ebpf_exporter_syscalls_total") >= 1000.0
            && getpid("ebpf_exporter_probe_syscalls_total") >= 1000.0
    });
    let after = quiet_scrape(&exporter);
    // In total, over the labels only one side has.
    let total = |s: &Scrape, name: &str| -> BTreeMap<Vec<(String, String)>, f64> {
        BTreeMap::from([(Vec::new(), s.sum(name, &[]))])
    };
    for (a, b, only) in PAIRS {
        let read = |s: &Scrape, name: &str| {
            if name.contains("bio_latency") {
                total(s, name)
            } else if name.contains("udp_drops") {
                summed_out(series(s, name, only), "error")
            } else {
                series(s, name, only)
            }
        };
        let delta = |name| {
            let old = read(&before, name);
            read(&after, name)
                .into_iter()
                .map(|(k, v)| {
                    let d = v - old.get(&k).copied().unwrap_or(0.0);
                    (k, d)
                })
                .filter(|(_, d)| *d != 0.0)
                .collect::<BTreeMap<_, _>>()
        };
        let (shipped, probe) = (delta(a), delta(b));
        assert_eq!(shipped, probe, "{a} against {b}");
        assert!(!shipped.is_empty(), "{a} saw the workload");
    }
    let winch = series(
        &after,
        "ebpf_exporter_probe_signals_total",
        &[("signal", "SIGWINCH"), ("result", "ignored")],
    );
    assert!(winch.values().sum::<f64>() >= 100.0, "{winch:?}");
}

/// Raw tracepoints take arguments by their BTF names, and paths through
/// pointers to members: each of a child's 30 sleeps switches it in once
/// (`next.pid`, `next.comm`), and each 64 KiB direct write is a request of
/// 65536 bytes (`rq.__data_len`) on the disk under /var/tmp, named by its
/// major through `rq.q.disk.major` (or `rq.rq_disk.major` on kernels that
/// had it).
#[test]
fn raw_tracepoint_arguments_and_paths_through_pointers() {
    use std::os::unix::fs::MetadataExt;
    let sleep = libc::timespec {
        tv_sec: 0,
        tv_nsec: 1_000_000,
    };
    let child = SyscallChild::spawn(
        30,
        libc::SYS_nanosleep,
        [&sleep as *const libc::timespec as libc::c_long, 0, 0, 0],
    );
    let comm = fs::read_to_string(format!("/proc/{}/comm", child.pid)).expect("comm");
    let comm = comm.trim_end().to_string();
    let btf = ebpf_exporter::probes::kernel_btf::vmlinux().expect("this kernel has BTF");
    let request = btf
        .find("request", |k| {
            matches!(k, ebpf_exporter::object::btf::Kind::Struct { .. })
        })
        .expect("struct request");
    let rq = raw_arg("block_rq_issue", "struct request *");
    let next = raw_arg("sched_switch", "struct task_struct *");
    let disk = if ebpf_exporter::probes::kernel_btf::member(&btf, request, "rq_disk").is_some() {
        format!("{rq}.rq_disk.major")
    } else {
        format!("{rq}.q.disk.major")
    };
    let io_dir = common::tools::disk_dir("probes-raw-tp");
    let major = libc::major(fs::metadata(&io_dir).expect("stat").dev()).to_string();
    let dir = config_dir(
        "probes-raw-tp",
        &format!(
            "metrics:
  counters:
    - name: probe_switches_in_total
      help: Switches into a process, by command
      probe:
        hook: raw_tp/sched_switch
        filter: [{{field: {next}.tgid, op: ==, value: {pid}}}]
      labels:
        - {{name: comm, field: {next}.comm, decoders: [{{name: string}}]}}
    - name: probe_disk_requests_total
      help: Block requests issued, by disk major and size
      probe:
        hook: raw_tp/block_rq_issue
      labels:
        - {{name: major, field: {disk}, decoders: [{{name: uint}}]}}
        - {{name: bytes, field: {rq}.__data_len, decoders: [{{name: uint}}]}}
",
            pid = child.pid
        ),
    );
    let exporter = start(&dir);
    let requests = |s: &Scrape| {
        s.sum(
            "ebpf_exporter_probe_disk_requests_total",
            &[("major", &major), ("bytes", "65536")],
        )
    };
    let before = exporter.scrape();
    child.run();
    common::tools::direct_io("probes-raw-tp-io", 16);
    let s = wait_for(&exporter, "the child's switches and 16 requests", |s| {
        s.sum("ebpf_exporter_probe_switches_in_total", &[("comm", &comm)]) >= 30.0
            && requests(s) >= requests(&before) + 16.0
    });
    let switches = s.sum("ebpf_exporter_probe_switches_in_total", &[]);
    assert!(
        (30.0..=36.0).contains(&switches),
        "30 sleeps switch the child in 30 times, plus its start: {switches}\n{}",
        s.text
    );
    let _ = fs::remove_dir_all(io_dir);
}

/// BTF-typed hooks: `tp_btf/` switches the same child in as `raw_tp/`
/// does, and `fentry/vfs_read` and `fexit/vfs_read` see exactly a child's
/// 200 reads of 4096 bytes, the latter with their return value. Where the
/// kernel runs no BPF trampolines (this machine), the fentry and fexit
/// probes are refused in its words and the tp_btf one still runs beside
/// them.
#[test]
fn btf_typed_hooks_and_function_returns() {
    let (reader, _, _) = preader("probes-fexit", 200);
    let next = raw_arg("sched_switch", "struct task_struct *");
    let dir = config_dir(
        "probes-btf",
        &format!(
            "metrics:
  counters:
    - name: probe_btf_switches_in_total
      help: Switches into the reader
      probe:
        hook: tp_btf/sched_switch
        filter: [{{field: {next}.tgid, op: ==, value: {pid}}}]
    - name: probe_read_bytes_total
      help: Bytes vfs_read returned to the reader
      probe:
        hook: fexit/vfs_read
        value: ret
        # count, an argument: the reads of the file, not the child's
        # one-byte read of the pipe that tells it to go
        filter: [{{field: pid, op: ==, value: {pid}}}, {{field: count, op: ==, value: 4096}}]
    - name: probe_reads_entered_total
      help: Calls of vfs_read by the reader for 4096 bytes
      probe:
        hook: fentry/vfs_read
        filter: [{{field: pid, op: ==, value: {pid}}}, {{field: count, op: ==, value: 4096}}]
",
            pid = reader.pid
        ),
    );
    let trampolines = *ebpf_exporter::host::kernel::trampolines()
        == ebpf_exporter::host::kernel::Trampolines::Available;
    if !(trampolines || common::in_kernel_matrix()) {
        let check = common::tools::config_check(&dir);
        let report = String::from_utf8_lossy(&check.stdout);
        assert!(
            report.contains("program fexit1 (fexit): NOT LOADED")
                && report.contains("program fentry2 (fentry): NOT LOADED")
                && report.contains("runs no BPF trampoline programs")
                && report.contains("program tp_btf0 (tp_btf): attached"),
            "{report}"
        );
        reader.run();
        return;
    }
    let exporter = start(&dir);
    reader.run();
    let s = wait_for(&exporter, "200 reads returned", |s| {
        s.sum("ebpf_exporter_probe_read_bytes_total", &[]) >= 200.0 * 4096.0
    });
    assert_eq!(
        s.sum("ebpf_exporter_probe_read_bytes_total", &[]),
        819_200.0
    );
    assert_eq!(s.sum("ebpf_exporter_probe_reads_entered_total", &[]), 200.0);
    assert!(
        s.sum("ebpf_exporter_probe_btf_switches_in_total", &[]) >= 1.0,
        "{}",
        s.text
    );
}

/// User-space hooks, their arguments named and typed by the config: a
/// uprobe, a uretprobe and a latency between them on the C library's
/// syscall(), and a USDT probe's signed and string arguments. A child's
/// 300 preads of 4096 bytes and 300 fired USDT probes fix every count.
#[test]
fn uprobes_uretprobes_and_usdt_read_the_arguments_the_config_types() {
    let (reader, _, fd) = preader("probes-uprobe", 300);
    let usdt = common::compile::c_program(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bpf/probe_usdt.c"),
        // Not position-independent: libbpf attaches USDT probes in PIE
        // binaries, for every process, only with BPF cookies (5.15+).
        &["-O1", "-no-pie"],
    );
    let libc = common::tools::libc_path();
    let dir = config_dir(
        "probes-uprobe",
        &format!(
            "metrics:
  counters:
    - name: probe_libc_syscalls_total
      help: The C library's syscall() calls, by number and descriptor
      probe:
        hook: uprobe/{libc}:syscall
        args: [{{name: nr, type: s64}}, {{name: fd, type: s32}}]
        filter: [{{field: pid, op: ==, value: {pid}}}]
      labels:
        - {{name: nr, decoders: [{{name: int}}]}}
        - {{name: fd, decoders: [{{name: int}}]}}
    - name: probe_libc_syscall_bytes_total
      help: Bytes syscall() returned
      probe:
        hook: uretprobe/{libc}:syscall
        ret: s64
        value: ret
        filter: [{{field: pid, op: ==, value: {pid}}}, {{field: ret, op: '>', value: 0}}]
    - name: probe_usdt_requests_total
      help: Requests by route and size, from a USDT probe
      probe:
        hook: usdt/{usdt}:ee_probe_test:request
        args: [{{name: size, type: s64}}, {{name: route, type: string}}]
        filter: [{{field: size, op: '>=', value: 0}}]
      labels:
        - {{name: route, decoders: [{{name: string}}]}}
        - {{name: size, decoders: [{{name: int}}]}}
  histograms:
    - name: probe_libc_syscall_seconds
      help: Time in syscall()
      bucket_type: exp2
      bucket_min: 0
      bucket_max: 34
      bucket_multiplier: 0.000000001
      probe:
        start: {{hook: uprobe/{libc}:syscall, match: [tid]}}
        end: {{hook: uretprobe/{libc}:syscall, match: [tid]}}
        value: latency_ns
        filter: [{{field: pid, op: ==, value: {pid}}}]
",
            pid = reader.pid,
            usdt = usdt.display()
        ),
    );
    let exporter = start(&dir);
    reader.run();
    let status = Command::new(&usdt)
        .args(["300", "/api/v1"])
        .status()
        .expect("runs the USDT program");
    assert!(status.success());
    let s = wait_for(&exporter, "300 calls, returns and requests", |s| {
        s.sum("ebpf_exporter_probe_libc_syscall_seconds_count", &[]) >= 300.0
            && s.sum("ebpf_exporter_probe_usdt_requests_total", &[]) >= 200.0
            && s.sum("ebpf_exporter_probe_libc_syscall_bytes_total", &[]) >= 300.0 * 4096.0
    });
    let calls = series(&s, "ebpf_exporter_probe_libc_syscalls_total", &[]);
    let want: BTreeMap<Vec<(String, String)>, f64> = [(
        vec![
            ("fd".to_string(), fd.to_string()),
            ("nr".to_string(), libc::SYS_pread64.to_string()),
        ],
        300.0,
    )]
    .into();
    assert_eq!(calls, want, "{}", s.text);
    assert_eq!(
        s.sum("ebpf_exporter_probe_libc_syscall_bytes_total", &[]),
        1_228_800.0
    );
    assert_eq!(
        s.sum("ebpf_exporter_probe_libc_syscall_seconds_count", &[]),
        300.0
    );
    s.assert_inf_is_count("ebpf_exporter_probe_libc_syscall_seconds", &[]);
    let requests = series(&s, "ebpf_exporter_probe_usdt_requests_total", &[]);
    let want: BTreeMap<Vec<(String, String)>, f64> = ["0", "1"]
        .iter()
        .map(|size| {
            (
                vec![
                    ("route".to_string(), "/api/v1".to_string()),
                    ("size".to_string(), size.to_string()),
                ],
                100.0,
            )
        })
        .collect();
    assert_eq!(requests, want, "{}", s.text);
}

/// kprobe and kretprobe hooks: arguments by the kernel's names, a path
/// through one (`file.f_inode.i_ino`), and `ret`. Where the kernel has no
/// kprobes, the config is refused in its words.
///
/// The return is taken at pread64's syscall function, not vfs_read's: a
/// kretprobe holds one of a few return slots for as long as each call
/// runs, and on 5.10 (ten slots on two CPUs) the other tests' threads
/// blocked in read() on pipes can hold every slot of vfs_read, so that
/// its returns go unseen. Only the reader calls pread64.
#[test]
fn kprobes_read_arguments_by_name_and_kretprobes_the_return() {
    use std::os::unix::fs::MetadataExt;
    let (reader, file, _) = preader("probes-kprobe", 200);
    let ino = fs::metadata(&file).expect("stat").ino();
    let dir = config_dir(
        "probes-kprobe",
        &format!(
            "metrics:
  counters:
    - name: probe_kprobe_reads_total
      help: vfs_read() calls of the file by the reader
      probe:
        hook: kprobe/vfs_read
        filter: [{{field: pid, op: ==, value: {pid}}}, {{field: file.f_inode.i_ino, op: ==, value: {ino}}}]
      labels:
        - {{name: count, decoders: [{{name: uint}}]}}
    - name: probe_kretprobe_read_bytes_total
      help: Bytes pread64() returned to the reader
      probe:
        hook: kretprobe/__x64_sys_pread64
        value: ret
        filter: [{{field: pid, op: ==, value: {pid}}}, {{field: ret, op: ==, value: 4096}}]
",
            pid = reader.pid
        ),
    );
    if !common::in_kernel_matrix()
        && !std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists()
    {
        let check = common::tools::config_check(&dir);
        let report = String::from_utf8_lossy(&check.stdout);
        assert!(
            report.contains(
                "program kprobe0 (kprobe): NOT ATTACHED: this kernel lacks kprobe support"
            ) && report.contains("so kretprobe/__x64_sys_pread64 cannot attach"),
            "{report}"
        );
        reader.run();
        return;
    }
    let exporter = start(&dir);
    reader.run();
    let s = wait_for(&exporter, "200 reads returned", |s| {
        s.sum("ebpf_exporter_probe_kretprobe_read_bytes_total", &[]) >= 200.0 * 4096.0
            && s.sum("ebpf_exporter_probe_kprobe_reads_total", &[]) >= 200.0
    });
    assert_eq!(
        series(&s, "ebpf_exporter_probe_kprobe_reads_total", &[]),
        [(vec![("count".to_string(), "4096".to_string())], 200.0)].into(),
        "{}",
        s.text
    );
    assert_eq!(
        s.sum("ebpf_exporter_probe_kretprobe_read_bytes_total", &[]),
        819_200.0
    );
}

/// Filters by command name, compared in the kernel as text, and by cgroup
/// path, through the program's cgroup map that the exporter keeps: a
/// child renamed `eeprobecomm` in a cgroup of its own calls getpid() 500
/// times, and each filter counts exactly those.
#[test]
fn filters_by_command_name_and_by_cgroup_path() {
    let root = common::cgroup2_mount();
    let cg = root.join(format!("ee-probe-cg-{}", std::process::id()));
    fs::create_dir(&cg).expect("create cgroup");
    struct Remove(std::path::PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = fs::remove_dir(&self.0);
        }
    }
    let _cg = Remove(cg.clone());
    let dir = config_dir(
        "probes-filters",
        &format!(
            "metrics:
  counters:
    - name: probe_named_getpid_total
      help: getpid() calls by commands named eeprobecomm
      probe:
        hook: tracepoint/syscalls/sys_enter_getpid
        filter: [{{field: comm, op: ==, value: eeprobecomm}}]
    - name: probe_in_cgroup_getpid_total
      help: getpid() calls in the test's cgroup, by command
      probe:
        hook: raw_tp/sys_enter
        filter: [{{cgroup: 'ee-probe-cg-{pid}$'}}, {{field: {id}, op: ==, value: {getpid}}}]
      labels:
        - {{name: comm, decoders: [{{name: string}}]}}
",
            pid = std::process::id(),
            getpid = libc::SYS_getpid,
            id = raw_arg("sys_enter", "long int")
        ),
    );
    let exporter = start(&dir);
    common::in_child(Some(&cg), || {
        let name = b"eeprobecomm\0";
        // SAFETY: a NUL-terminated name, copied by the kernel.
        unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
        for _ in 0..500 {
            // SAFETY: a plain syscall.
            unsafe { libc::syscall(libc::SYS_getpid) };
        }
    });
    let s = wait_for(&exporter, "500 getpid calls", |s| {
        s.sum("ebpf_exporter_probe_named_getpid_total", &[]) >= 500.0
            && s.sum("ebpf_exporter_probe_in_cgroup_getpid_total", &[]) >= 500.0
    });
    assert_eq!(s.sum("ebpf_exporter_probe_named_getpid_total", &[]), 500.0);
    assert_eq!(
        series(&s, "ebpf_exporter_probe_in_cgroup_getpid_total", &[]),
        [(vec![("comm".to_string(), "eeprobecomm".to_string())], 500.0)].into(),
        "{}",
        s.text
    );
}

/// A latency's in-flight map shows its pressure: it is an LRU, which
/// drops its oldest start when full instead of refusing the new one, so
/// its entries against its capacity are what tell an operator. Eight
/// children sleeping at once are eight entries of 64. (A map of fewer
/// entries than sleepers is no exact test: the kernel's LRU hands out
/// free entries per CPU, and may evict before every entry is in use.)
#[test]
fn a_latency_in_flight_map_reports_how_full_it_is() {
    // Long enough for a scrape to fall inside it on an emulated CPU.
    let long = libc::timespec {
        tv_sec: 3,
        tv_nsec: 0,
    };
    // Each child's copy of `long` is made at its fork, inside spawn.
    let sleepers: Vec<SyscallChild> = (0..8)
        .map(|_| {
            SyscallChild::spawn(
                1,
                libc::SYS_nanosleep,
                [&long as *const libc::timespec as libc::c_long, 0, 0, 0],
            )
        })
        .collect();
    let dir = config_dir(
        "probes-inflight",
        "metrics:
  histograms:
    - name: probe_long_sleep_seconds
      help: Time in nanosleep(), paired by thread through the in-flight map
      bucket_type: exp2
      bucket_min: 0
      bucket_max: 30
      bucket_multiplier: 0.000001
      probe:
        start: {hook: tracepoint/syscalls/sys_enter_nanosleep, match: [tid]}
        end: {hook: tracepoint/syscalls/sys_exit_nanosleep, match: [tid]}
        value: latency_us
        max_entries: 64
",
    );
    let exporter = start(&dir);
    let map = [("config", "probes"), ("map", "inflight0")];
    let before = exporter.scrape();
    assert_eq!(
        before.sum("ebpf_exporter_map_max_entries", &map),
        64.0,
        "{}",
        before.text
    );
    let running: Vec<_> = sleepers
        .into_iter()
        .map(|c| std::thread::spawn(move || c.run()))
        .collect();
    let asleep = wait_for(&exporter, "eight sleeps in flight", |s| {
        s.sum("ebpf_exporter_map_entries", &map) >= 8.0
    });
    for r in running {
        r.join().expect("a sleeper");
    }
    assert_eq!(asleep.sum("ebpf_exporter_map_entries", &map), 8.0);
    let after = wait_for(&exporter, "eight sleeps timed", |s| {
        s.sum("ebpf_exporter_probe_long_sleep_seconds_count", &[]) >= 8.0
    });
    assert_eq!(
        after.sum("ebpf_exporter_map_entries", &map),
        0.0,
        "each end takes its start out"
    );
    assert_eq!(after.sum("ebpf_exporter_map_max_entries", &map), 64.0);
}

/// A latency whose two sides name the same task (`tid` at both ends of a
/// BTF-typed hook, or a task_struct argument) pairs through task storage
/// where the kernel has it (5.11+), and through the in-flight hash where
/// it does not: either way, a child's 40 sleeps of 2 ms are 40 samples,
/// none under 2 ms. The plan says which way it went.
#[test]
fn a_latency_between_the_same_task_pairs_through_task_storage() {
    let child = sleeper(40);
    let id = raw_arg("sys_enter", "long int");
    let yaml = format!(
        "metrics:
  histograms:
    - name: probe_task_sleep_seconds
      help: Time in nanosleep(), paired by task
      bucket_type: exp2
      bucket_min: 0
      bucket_max: 30
      bucket_multiplier: 0.000001
      probe:
        start: {{hook: tp_btf/sys_enter, match: [tid]}}
        end: {{hook: tp_btf/sys_exit, match: [tid]}}
        value: latency_us
        filter: [{{field: pid, op: ==, value: {pid}}}, {{field: {id}, op: ==, value: {nr}}}]
",
        pid = child.pid,
        nr = libc::SYS_nanosleep
    );
    let config = ebpf_exporter::config::load::parse_config(
        "probes",
        "probes.yaml",
        ebpf_exporter::config::load::ConfigSource::Embedded,
        &yaml,
    )
    .expect("parses");
    let planned = ebpf_exporter::probes::plan(&config).expect("plans");
    let tasks = ebpf_exporter::host::kernel::version()
        .is_some_and(|v| v >= ebpf_exporter::host::kernel::Version::new(5, 11));
    assert_eq!(
        planned.config.spec.maps.contains_key("inflight0"),
        !tasks,
        "task storage where the kernel has it (5.11+), else the in-flight hash: {:?}",
        planned.config.spec.maps.keys()
    );
    let dir = config_dir("probes-task-latency", &yaml);
    let exporter = start(&dir);
    child.run();
    let s = wait_for(&exporter, "40 sleeps timed", |s| {
        s.sum("ebpf_exporter_probe_task_sleep_seconds_count", &[]) >= 40.0
    });
    assert_eq!(
        s.sum("ebpf_exporter_probe_task_sleep_seconds_count", &[]),
        40.0
    );
    assert_eq!(
        s.sum(
            "ebpf_exporter_probe_task_sleep_seconds_bucket",
            &[("le", "0.001024")]
        ),
        0.0,
        "{}",
        s.text
    );
}

/// A forked child named `name` that makes `calls` getpid() calls, then
/// lives until dropped: its pid outlives scrapes.
struct LiveChild {
    pid: libc::pid_t,
    release: Option<std::os::fd::OwnedFd>,
}

impl LiveChild {
    fn start(name: &std::ffi::CStr, calls: usize) -> LiveChild {
        let mut fds = [0; 2];
        // SAFETY: fds has room for the two descriptors pipe2 returns.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: the child makes only raw syscalls, then _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            // SAFETY: plain syscalls on our own name, pipe and pid.
            unsafe {
                libc::close(fds[1]);
                libc::prctl(libc::PR_SET_NAME, name.as_ptr());
                for _ in 0..calls {
                    libc::syscall(libc::SYS_getpid);
                }
                let mut b = 0u8;
                libc::read(fds[0], (&mut b as *mut u8).cast(), 1);
                libc::_exit(0);
            }
        }
        // SAFETY: fds[0] is ours and closed once; fds[1] is owned from here.
        unsafe { libc::close(fds[0]) };
        LiveChild {
            pid,
            // SAFETY: a descriptor pipe2 just gave us, owned only here.
            release: Some(unsafe { std::os::fd::FromRawFd::from_raw_fd(fds[1]) }),
        }
    }

    /// Lets it exit, and reaps it.
    fn end(mut self) {
        self.release.take();
        let mut status = 0;
        // SAFETY: waiting for our own child.
        assert_eq!(unsafe { libc::waitpid(self.pid, &mut status, 0) }, self.pid);
        self.pid = 0;
    }
}

impl Drop for LiveChild {
    fn drop(&mut self) {
        if self.pid > 0 {
            self.release.take();
            // SAFETY: waiting for our own child, which the closed pipe ends.
            unsafe { libc::waitpid(self.pid, std::ptr::null_mut(), 0) };
        }
    }
}

/// A map keyed by pid, with the `pid` decoder and `delete_gone`, follows
/// what is alive: a process that exited before a scrape is exported by
/// that scrape and then forgotten, one that exits later is forgotten once
/// the exporter next checks (every 5 s), and live ones keep counting.
/// Round after round, the map's entries fall back to the live count.
#[test]
fn a_map_keyed_by_pid_forgets_processes_that_exited() {
    const METRIC: &str = "ebpf_exporter_probe_pid_getpid_total";
    let name = c"eepidgone";
    let dir = config_dir(
        "probes-pid-gone",
        "metrics:
  counters:
    - name: probe_pid_getpid_total
      help: getpid() calls of commands named eepidgone, by process
      delete_gone: true
      probe:
        hook: tracepoint/syscalls/sys_enter_getpid
        filter: [{field: comm, op: ==, value: eepidgone}]
      labels:
        - {name: pid, field: pid, decoders: [{name: uint}, {name: pid}]}
",
    );
    let exporter = start(&dir);
    let by_pid = |s: &Scrape| -> BTreeMap<String, f64> {
        s.find(METRIC, &[])
            .iter()
            .map(|x| (x.labels["pid"].clone(), x.value))
            .collect()
    };
    let self_metric = |s: &Scrape, what: &str| s.sum(what, &[("config", "probes")]);
    let live = LiveChild::start(name, 100);
    let live_pid = live.pid.to_string();
    wait_for(&exporter, "the live child's 100 calls", |s| {
        by_pid(s).get(&live_pid) == Some(&100.0)
    });
    let mut deleted = self_metric(
        &exporter.scrape(),
        "ebpf_exporter_map_gone_entries_deleted_total",
    );
    for round in 0..3 {
        let before: Vec<String> = by_pid(&exporter.scrape()).into_keys().collect();
        for _ in 0..5 {
            common::in_child(None, || {
                // SAFETY: naming ourselves, then plain syscalls.
                unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
                for _ in 0..100 {
                    // SAFETY: a plain syscall.
                    unsafe { libc::syscall(libc::SYS_getpid) };
                }
            });
        }
        // The five exited before this scrape: it exports them once...
        let s = exporter.scrape();
        let seen = by_pid(&s);
        let exited: Vec<&String> = seen.keys().filter(|p| !before.contains(p)).collect();
        assert_eq!(exited.len(), 5, "round {round}: {seen:?}");
        assert!(
            exited.iter().all(|p| seen[*p] == 100.0),
            "round {round}: {seen:?}"
        );
        // ... and the next one no more.
        let s = exporter.scrape();
        assert_eq!(
            by_pid(&s),
            [(live_pid.clone(), 100.0)].into(),
            "round {round}: only the live child is left"
        );
        assert_eq!(self_metric(&s, "ebpf_exporter_map_entries"), 1.0);
        let now = self_metric(&s, "ebpf_exporter_map_gone_entries_deleted_total");
        assert_eq!(now - deleted, 5.0, "round {round}");
        deleted = now;
    }
    // A process seen alive and then ending is found gone by a later check.
    live.end();
    let s = wait_for(&exporter, "the ended child's series gone", |s| {
        by_pid(s).is_empty()
    });
    assert_eq!(self_metric(&s, "ebpf_exporter_map_entries"), 0.0);
    assert_eq!(
        self_metric(&s, "ebpf_exporter_map_gone_entries_deleted_total") - deleted,
        1.0
    );
}

/// Runs `calls` getpid() calls in a child named eestale, as `uid` when
/// given.
fn stale_child(uid: Option<u32>, calls: usize) {
    common::in_child(None, || {
        // SAFETY: naming ourselves, dropping to a uid, then plain syscalls.
        unsafe {
            libc::prctl(libc::PR_SET_NAME, c"eestale".as_ptr());
            if let Some(uid) = uid {
                assert_eq!(libc::setuid(uid), 0);
            }
            for _ in 0..calls {
                libc::syscall(libc::SYS_getpid);
            }
        }
    });
}

/// `stale_after` ends label sets that name nothing known (here a uid with
/// no passwd entry) once their entries stop changing for that long, and
/// deletes their entries: a known label set that stops changing stays,
/// an unknown one that keeps changing stays, and a stale one that counts
/// again comes back from its new count.
#[test]
fn stale_after_ends_quiet_label_sets_that_name_nothing_known() {
    const METRIC: &str = "ebpf_exporter_probe_stale_getpid_total";
    let dir = config_dir(
        "probes-stale",
        "metrics:
  counters:
    - name: probe_stale_getpid_total
      help: getpid() calls of commands named eestale, by user
      stale_after: 2s
      probe:
        hook: tracepoint/syscalls/sys_enter_getpid
        filter: [{field: comm, op: ==, value: eestale}]
      labels:
        - {name: user, field: uid, decoders: [{name: uint}, {name: uid}]}
",
    );
    let exporter = start(&dir);
    let users = |s: &Scrape| -> BTreeMap<String, f64> {
        s.find(METRIC, &[])
            .iter()
            .map(|x| (x.labels["user"].clone(), x.value))
            .collect()
    };
    let deleted = |s: &Scrape| {
        s.sum(
            "ebpf_exporter_map_stale_entries_deleted_total",
            &[("config", "probes")],
        )
    };
    stale_child(None, 100);
    stale_child(Some(54321), 100);
    wait_for(&exporter, "root's and uid 54321's calls", |s| {
        let u = users(s);
        u.get("root") == Some(&100.0) && u.get("unknown_uid:54321") == Some(&100.0)
    });
    // uid 54322 keeps calling while 54321 falls quiet.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                stale_child(Some(54322), 1);
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        })
    };
    let s = wait_for(&exporter, "uid 54321's quiet series gone", |s| {
        let u = users(s);
        !u.contains_key("unknown_uid:54321") && u.contains_key("unknown_uid:54322")
    });
    let u = users(&s);
    assert_eq!(
        u.get("root"),
        Some(&100.0),
        "a known label set stays: {u:?}"
    );
    assert_eq!(deleted(&s), 1.0, "{u:?}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    busy.join().expect("busy child thread");
    let s = wait_for(&exporter, "uid 54322's series gone once it is quiet", |s| {
        !users(s).contains_key("unknown_uid:54322")
    });
    assert_eq!(deleted(&s), 2.0);
    assert_eq!(users(&s).get("root"), Some(&100.0));
    // Counting again, 54321 starts from its new count.
    stale_child(Some(54321), 7);
    wait_for(&exporter, "uid 54321 back with 7 calls", |s| {
        users(s).get("unknown_uid:54321") == Some(&7.0)
    });
}
