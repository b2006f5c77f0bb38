//! Inputs that used to crash, hang or balloon the exporter, each beside a
//! good config that must keep serving. Every refusal is checked word for
//! word, file:line: key included, and the process must stay small.

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;

use common::{compile_bpf, rss_kib, scratch_dir, Running, SYSCALLS_COUNTER, SYSCALL_ERRORS};

const HISTOGRAM: &str = "object: biolatency
metrics:
  histograms:
    - name: bio_latency_seconds
      help: h
      bucket_type: linear
      bucket_min: 0
      bucket_max: 9223372036854775808
      labels:
        - name: bucket
          size: 8
          decoders:
            - name: uint
";

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(format!("{name}.yaml")), text).expect("write config");
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL");
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// The message logged for `file`, from its `file:` on.
fn error_for(log: &str, dir: &Path, file: &str) -> String {
    let prefix = format!("{}", dir.join(file).display());
    log.lines()
        .filter(|l| l.contains("ERROR"))
        .find_map(|l| l.find(&prefix).map(|at| l[at + prefix.len()..].to_string()))
        .unwrap_or_else(|| panic!("no error for {file} in:\n{log}"))
}

#[test]
fn each_hostile_config_gets_one_exact_error_and_the_good_one_serves() {
    let dir = scratch_dir("hostile");
    write(&dir, "good", SYSCALL_ERRORS);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "linear_huge",
            HISTOGRAM.to_string(),
            ":8: key `metrics.histograms[0].bucket_max`: bucket_min 0 to bucket_max 9223372036854775808 is 9223372036854775809 buckets, more than the limit of 4096",
        ),
        (
            "linear_1e8",
            HISTOGRAM.replace("9223372036854775808", "100000000"),
            ":8: key `metrics.histograms[0].bucket_max`: bucket_min 0 to bucket_max 100000000 is 100000001 buckets, more than the limit of 4096",
        ),
        (
            "fixed_max_key",
            HISTOGRAM.replace("bucket_type: linear", "bucket_type: fixed").replace(
                "      bucket_min: 0\n      bucket_max: 9223372036854775808\n",
                "      bucket_keys: [1, 18446744073709551615]\n",
            ),
            ":7: key `metrics.histograms[0].bucket_keys`: the last bucket key must be below 18446744073709551615: the sum is kept at the key after it",
        ),
        (
            "same_le",
            HISTOGRAM
                .replace("9223372036854775808", "9007199254740994")
                .replace("bucket_min: 0", "bucket_min: 9007199254740992"),
            ":8: key `metrics.histograms[0].bucket_max`: buckets 9007199254740992 and 9007199254740993 have the same upper bound (9007199254740992) as floating point; use smaller bucket indexes or a larger bucket_multiplier",
        ),
        (
            "infinite_le",
            HISTOGRAM
                .replace("linear", "exp2")
                .replace("9223372036854775808", "10")
                .replace("bucket_min: 0", "bucket_min: 0\n      bucket_multiplier: 1e308"),
            ":9: key `metrics.histograms[0].bucket_max`: bucket 1 has an infinite upper bound; lower bucket_multiplier or the bucket range",
        ),
        (
            "dunder",
            SYSCALLS_COUNTER.replace("- name: syscall\n          size", "- name: __name__\n          size"),
            ":8: key `metrics.counters[0].labels[0].name`: label name \"__name__\" is reserved: names starting with `__` are Prometheus's own",
        ),
        (
            "size_wraps",
            SYSCALLS_COUNTER.replace("size: 4", "size: 18446744073709551615\n          padding: 1"),
            ":9: key `metrics.counters[0].labels[0].size`: size 18446744073709551615 is above the limit of 65536 bytes",
        ),
        (
            "size_sum",
            SYSCALLS_COUNTER.replace("size: 4", "size: 40000\n          padding: 30000"),
            ":9: key `metrics.counters[0].labels[0].size`: the labels up to here describe 70000 key bytes, above the limit of 65536",
        ),
        (
            "flush_zero",
            SYSCALLS_COUNTER.replace("      help:", "      perf_event_array: true\n      flush_interval: 0s\n      help:"),
            ":6: key `metrics.counters[0].flush_interval`: \"0s\" is zero; the duration must be positive",
        ),
        (
            "flush_huge",
            SYSCALLS_COUNTER.replace(
                "      help:",
                "      perf_event_array: true\n      flush_interval: 9999999999999999999h\n      help:",
            ),
            ":6: key `metrics.counters[0].flush_interval`: \"9999999999999999999h\" is longer than the largest duration, about 292 years",
        ),
        (
            "cgroup_map_is_metric",
            format!("{SYSCALLS_COUNTER}cgroup_id_map:\n  name: syscalls_total\n  regexps: [.*]\n"),
            ":14: key `cgroup_id_map.name`: \"syscalls_total\" is also a metric's map; the exporter writes cgroup ids into this map, so it needs a map of its own",
        ),
        (
            "duplicate_key",
            format!("{SYSCALLS_COUNTER}object: syscalls\n"),
            ":13: key `object`: key \"object\" is given twice",
        ),
        (
            "no_metrics",
            "object: syscalls\n\nkaddrs: [x]\n".to_string(),
            ":1: key `metrics`: no metrics and no tracing spans: at least one counter, gauge, histogram or span is required",
        ),
        (
            "no_help",
            SYSCALLS_COUNTER.replace("      help: System calls by name\n", ""),
            ":4: key `metrics.counters[0]`: missing field `help`",
        ),
        (
            "alias_bomb",
            {
                let mut t = SYSCALLS_COUNTER.replace(
                    "            - name: syscall\n",
                    "            - name: static_map\n              static_map:\n                0: &a0 [x, x, x, x, x, x, x, x, x, x]\n",
                );
                for i in 1..9 {
                    t += &format!(
                        "                {i}: &a{i} [{}]\n",
                        vec![format!("*a{}", i - 1); 10].join(", ")
                    );
                }
                t
            },
            ":18: key `metrics.counters[0].labels[0].decoders[1].static_map.4[7]`: aliases expand to more than 100000 nodes; write the values out or use fewer aliases",
        ),
        (
            "deep_flow",
            format!("metrics: {}1{}\n", "{a: ".repeat(120_000), "}".repeat(120_000)),
            ":1: flow collections ([...] or {...}) nest deeper than 64 levels",
        ),
        (
            "deep_block",
            format!("metrics:\n{}x\n", "- ".repeat(200_000)),
            ":2: key `metrics[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]`: nesting is deeper than 64 levels",
        ),
        (
            "too_big",
            {
                let mut t = String::from("metrics:\n  counters:\n");
                for i in 0..100_000 {
                    t += &format!("    - {{name: c{i}, help: h}}\n");
                }
                t
            },
            ": cannot read config: larger than the 1 MiB limit",
        ),
    ];
    for (name, text, _) in &cases {
        write(&dir, name, text);
    }
    mkfifo(&dir.join("fifo.yaml"));
    symlink("/dev/zero", dir.join("zero.yaml")).expect("symlink");
    std::fs::write(dir.join("not_utf8.yaml"), b"metrics:\n  counters: [\xff]\n").expect("write");
    // Objects that are not regular files, named by configs that are fine.
    mkfifo(&dir.join("fifo_object.bpf.o"));
    write(
        &dir,
        "fifo_object",
        &SYSCALLS_COUNTER.replace("object: syscalls\n", ""),
    );
    write(
        &dir,
        "zero_object",
        &SYSCALLS_COUNTER.replace("object: syscalls", "object: /dev/zero"),
    );

    let exporter = Running::start(&[&format!("--config.dir={}", dir.display())]);
    let log = exporter.log();
    for (name, _, expected) in &cases {
        assert_eq!(
            error_for(&log, &dir, &format!("{name}.yaml")),
            *expected,
            "{name}"
        );
    }
    let others = [
        ("fifo.yaml", ": cannot read config: not a regular file (it is a FIFO)"),
        (
            "zero.yaml",
            ": cannot read config: not a regular file (it is a character device)",
        ),
        (
            "not_utf8.yaml",
            ":2: not UTF-8 text: invalid byte at column 14",
        ),
        (
            "fifo_object.yaml",
            &format!(
                ":1: key `object`: cannot read BPF object {}: not a regular file (it is a FIFO)",
                dir.join("fifo_object.bpf.o").display()
            ),
        ),
        (
            "zero_object.yaml",
            ":1: key `object`: cannot read BPF object /dev/zero: not a regular file (it is a character device)",
        ),
    ];
    for (file, expected) in others {
        assert_eq!(error_for(&log, &dir, file), expected, "{file}");
    }
    assert!(!log.contains("panicked"), "{log}");
    let scrape = exporter.scrape();
    assert_eq!(
        scrape.sum("ebpf_exporter_enabled_configs", &[("name", "good")]),
        1.0,
        "the good config serves"
    );
    assert!(scrape.has("ebpf_exporter_syscall_errors_total"));
    let peak = rss_kib(exporter.pid(), "VmHWM:");
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB");
}

/// A program name with a byte that is not UTF-8 used to abort the process
/// inside libbpf's log callback.
#[test]
fn an_object_with_a_non_utf8_program_name_is_served_or_refused_cleanly() {
    let dir = scratch_dir("non-utf8-object");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let object = dir.join("bad.bpf.o");
    compile_bpf(&root.join("tests/bpf/external.bpf.c"), &object);
    let mut bytes = std::fs::read(&object).expect("read object");
    let yaml = std::fs::read_to_string(root.join("tests/bpf/external.yaml")).expect("yaml");
    // Every occurrence of the program's function name (symbol table and
    // BTF) gets a 0xff byte, so libbpf sees and logs a non-UTF-8 name.
    let source = std::fs::read_to_string(root.join("tests/bpf/external.bpf.c")).expect("source");
    // `int BPF_PROG(count_getpid, ...)`: the name is the macro's first argument.
    let func = source
        .lines()
        .find_map(|l| l.strip_prefix("int BPF_PROG("))
        .and_then(|r| r.split([',', ')']).next())
        .expect("a program function");
    let mut patched = 0;
    let mut at = 0;
    while let Some(pos) = bytes[at..]
        .windows(func.len())
        .position(|w| w == func.as_bytes())
    {
        bytes[at + pos + 1] = 0xff;
        at += pos + func.len();
        patched += 1;
    }
    assert!(patched > 0, "{func} not found in the object");
    std::fs::write(&object, &bytes).expect("write object");
    std::fs::write(dir.join("bad.yaml"), &yaml).expect("write config");
    write(&dir, "good", SYSCALL_ERRORS);

    let exporter = Running::start(&[&format!("--config.dir={}", dir.display())]);
    let scrape = exporter.scrape();
    assert_eq!(
        scrape.sum("ebpf_exporter_enabled_configs", &[("name", "good")]),
        1.0
    );
    let (status, log) = exporter.stop();
    assert!(status.success(), "clean exit: {status:?}\n{log}");
    assert!(!log.contains("panicked"), "{log}");
    // The renamed program still loads and attaches; kprobe and fentry cannot here.
    assert!(
        log.contains("bad.bpf.o, 1/3 programs attached"),
        "the object is served: {log}"
    );
}
