//! Layouts from BTF, with a real object (tests/bpf/layouts.bpf.c): labels
//! without sizes bind to key members, reference layouts are checked against
//! the key struct, and `describe` writes a config that serves unchanged.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{prog_fd, test_run, Running, Scrape};

/// A scratch dir holding the compiled object as `layouts.bpf.o`.
fn object_dir(name: &str) -> PathBuf {
    let dir = common::scratch_dir(name);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bpf/layouts.bpf.c");
    common::compile_bpf(&src, &dir.join("layouts.bpf.o"));
    dir
}

/// Starts the exporter on `dir`, runs the object's `fill` program once and
/// scrapes.
fn serve_and_fill(dir: &Path) -> (Running, Scrape) {
    let e = Running::start(&[&format!("--config.dir={}", dir.display())]);
    test_run(&prog_fd(e.program_id("fill")));
    let s = e.scrape();
    (e, s)
}

fn samples(s: &Scrape, prefix: &str) -> Vec<String> {
    let mut lines: Vec<String> = s
        .text
        .lines()
        .filter(|l| l.starts_with(prefix))
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

const BOUND: &str = "metrics:
  counters:
    - name: flow_packets_total
      help: Packets by flow
      labels:
        - {name: saddr, decoders: [{name: inet_ip}]}
        - {name: sport, decoders: [{name: uint, byte_order: big}]}
        - {name: proto, decoders: [{name: uint}]}
        - {name: comm, decoders: [{name: string}]}
        - {name: pid, field: ids.pid, decoders: [{name: uint}]}
        - {name: ifindex, decoders: [{name: uint}]}
    - name: scalar_hits_total
      help: Hits by key, summed over CPUs
      labels:
        - {name: k, decoders: [{name: uint}]}
    - name: sized_only_total
      help: A key without BTF, in the reference's format
      labels:
        - {name: k, size: 8, decoders: [{name: uint}]}
  histograms:
    - name: op_latency_seconds
      help: Latency by device and operation
      bucket_type: exp2
      bucket_min: 0
      bucket_max: 3
      labels:
        - {name: dev, decoders: [{name: uint}]}
        - {name: op, decoders: [{name: uint}]}
        - {name: bucket, decoders: [{name: uint}]}
    - name: array_hist_seconds
      help: A struct-keyed array, created again without BTF by libbpf
      bucket_type: linear
      bucket_min: 0
      bucket_max: 2
      labels:
        - {name: slot, decoders: [{name: uint}]}
";

#[test]
fn labels_without_sizes_bind_to_key_members() {
    let dir = object_dir("layouts-bound");
    std::fs::write(dir.join("layouts.yaml"), BOUND).expect("write");
    let (_e, s) = serve_and_fill(&dir);
    assert_eq!(
        samples(&s, "ebpf_exporter_flow_packets_total{"),
        vec![
            "ebpf_exporter_flow_packets_total{saddr=\"10.0.0.1\",sport=\"443\",proto=\"6\",comm=\"curl\",pid=\"42\",ifindex=\"1\"} 3"
        ]
    );
    assert_eq!(
        samples(&s, "ebpf_exporter_scalar_hits_total{"),
        vec!["ebpf_exporter_scalar_hits_total{k=\"7\"} 5"]
    );
    assert_eq!(
        samples(&s, "ebpf_exporter_sized_only_total{"),
        vec!["ebpf_exporter_sized_only_total{k=\"72623859790382856\"} 2"]
    );
    assert_eq!(
        samples(&s, "ebpf_exporter_array_hist_seconds_bucket{"),
        vec![
            "ebpf_exporter_array_hist_seconds_bucket{le=\"+Inf\"} 5",
            "ebpf_exporter_array_hist_seconds_bucket{le=\"0\"} 0",
            "ebpf_exporter_array_hist_seconds_bucket{le=\"1\"} 0",
            "ebpf_exporter_array_hist_seconds_bucket{le=\"2\"} 5",
        ]
    );
    // The bucket binds to the key's last member; slots 0..3 hold 1..4.
    assert_eq!(
        samples(&s, "ebpf_exporter_op_latency_seconds_bucket{"),
        vec![
            "ebpf_exporter_op_latency_seconds_bucket{dev=\"1048321\",op=\"1\",le=\"+Inf\"} 10",
            "ebpf_exporter_op_latency_seconds_bucket{dev=\"1048321\",op=\"1\",le=\"1\"} 1",
            "ebpf_exporter_op_latency_seconds_bucket{dev=\"1048321\",op=\"1\",le=\"2\"} 3",
            "ebpf_exporter_op_latency_seconds_bucket{dev=\"1048321\",op=\"1\",le=\"4\"} 6",
            "ebpf_exporter_op_latency_seconds_bucket{dev=\"1048321\",op=\"1\",le=\"8\"} 10",
        ]
    );
}

/// `--config.check` on a config whose one metric is `histogram` with
/// `labels`, in the reference's format; its output and success.
fn check_histogram(dir: &Path, labels: &str) -> (bool, String) {
    let config = format!(
        "metrics:\n  histograms:\n    - name: op_latency_seconds\n      help: Latency\n      bucket_type: exp2\n      bucket_min: 0\n      bucket_max: 3\n      labels:\n{labels}"
    );
    std::fs::write(dir.join("layouts.yaml"), config).expect("write");
    let out = Command::new(common::BIN)
        .args(["--config.check", &format!("--config.dir={}", dir.display())])
        .output()
        .expect("runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let config_ok = text.contains("config layouts (") && text.contains("): OK, object");
    (config_ok, text)
}

#[test]
fn reference_layouts_are_checked_against_btf() {
    let dir = object_dir("layouts-checked");
    let file = dir.join("layouts.yaml").display().to_string();
    // The reference's classic mistake: no padding after a u8 that a u64
    // follows.
    let (ok, out) = check_histogram(
        &dir,
        "        - {name: dev, size: 4, decoders: [{name: uint}]}\n        - {name: op, size: 1, decoders: [{name: uint}]}\n        - {name: bucket, size: 8, decoders: [{name: uint}]}\n",
    );
    assert!(!ok, "{out}");
    let expected = format!(
        "{file}:10: key `metrics.histograms[0].labels[1].size`: metric \"op_latency_seconds\": \
         label \"op\" is size 1 but member \"op\" (u8 at offset 4) is followed by 3 bytes of padding \
         before \"slot\" (u64 at offset 8): add padding: 3"
    );
    assert!(out.contains(&expected), "{out}");
    // Padding given, but wrong.
    let (ok, out) = check_histogram(
        &dir,
        "        - {name: dev, size: 4, decoders: [{name: uint}]}\n        - {name: op, size: 1, padding: 1, decoders: [{name: uint}]}\n        - {name: bucket, size: 8, decoders: [{name: uint}]}\n",
    );
    assert!(!ok, "{out}");
    assert!(out.contains("labels[1].padding`"), "{out}");
    assert!(out.contains(": use padding: 3"), "{out}");
    // A label that cuts a member.
    let (ok, out) = check_histogram(
        &dir,
        "        - {name: dev, size: 2, padding: 2, decoders: [{name: uint}]}\n        - {name: op, size: 4, decoders: [{name: uint}]}\n        - {name: bucket, size: 8, decoders: [{name: uint}]}\n",
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("label \"dev\" covers key bytes 0..2, which cuts member \"dev\" (u32 at offset 0, 4 bytes) in two"),
        "{out}"
    );
    // What works in the reference keeps working: explicit padding, or a
    // u8 given the 4 bytes up to the next member.
    for op in [
        "{name: op, size: 1, padding: 3, decoders: [{name: uint}]}",
        "{name: op, size: 4, decoders: [{name: uint}]}",
    ] {
        let (ok, out) = check_histogram(
            &dir,
            &format!("        - {{name: dev, size: 4, decoders: [{{name: uint}}]}}\n        - {op}\n        - {{name: bucket, size: 8, decoders: [{{name: uint}}]}}\n"),
        );
        assert!(ok, "{op}: {out}");
    }
    // Binding errors name the member list, the size, or the missing BTF.
    let (ok, out) = check_histogram(
        &dir,
        "        - {name: dev, decoders: [{name: uint}]}\n        - {name: op, field: opcode, decoders: [{name: uint}]}\n        - {name: bucket, decoders: [{name: uint}]}\n",
    );
    assert!(!ok);
    assert!(
        out.contains("labels[1].field`: metric \"op_latency_seconds\": map \"op_latency_seconds\"'s key struct op_key has no member \"opcode\"; its members: dev, op, slot"),
        "{out}"
    );
}

#[test]
fn check_layout_prints_where_labels_sit() {
    let dir = object_dir("layouts-print");
    std::fs::write(dir.join("layouts.yaml"), BOUND).expect("write");
    let out = Command::new(common::BIN)
        .args([
            "--config.check",
            "--config.check-layout",
            &format!("--config.dir={}", dir.display()),
        ])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "    label comm: member comm (char[16]) at offset 7, size 16, decoders string",
        "    label pid: member ids.pid (u32) at offset 24, size 4, decoders uint",
        "    label sport: member sport (__be16) at offset 4, size 2, decoders uint",
        "    label bucket: member slot (u64) at offset 8, size 8, decoders uint",
        "    label k: bytes at offset 0, size 8, decoders uint",
    ] {
        assert!(text.contains(line), "{line:?} in:\n{text}");
    }
}

#[test]
fn describe_writes_a_config_that_serves_unchanged() {
    let dir = object_dir("layouts-describe");
    let object = dir.join("layouts.bpf.o");
    let out = Command::new(common::BIN)
        .args(["describe", &object.display().to_string()])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !yaml.contains("size: 1") && !yaml.contains("padding"),
        "{yaml}"
    );
    for skipped in [
        "#   events: a RINGBUF map",
        "#   hists.comm: value member of type char[16], not a count",
    ] {
        assert!(yaml.contains(skipped), "{skipped:?} in:\n{yaml}");
    }
    // The object path is relative: saved under another name, elsewhere,
    // the config runs beside a copy of the object.
    assert!(yaml.contains("\nobject: layouts.bpf.o\n"), "{yaml}");
    let elsewhere = common::scratch_dir("layouts-describe-cfg");
    std::fs::write(elsewhere.join("mine.yaml"), &yaml).expect("write");
    std::fs::copy(&object, elsewhere.join("layouts.bpf.o")).expect("copy the object");
    let (_e, s) = serve_and_fill(&elsewhere);
    assert!(
        s.text
            .contains("ebpf_exporter_decoder_errors_total{config=\"mine\"} 0"),
        "{}",
        s.text
    );
    assert_eq!(
        samples(&s, "ebpf_exporter_layouts_flow_packets_total{"),
        vec![
            "ebpf_exporter_layouts_flow_packets_total{saddr=\"10.0.0.1\",sport=\"443\",proto=\"6\",comm=\"curl\",ids_pid=\"42\",ids_tgid=\"40\",ifindex=\"lo\"} 3"
        ]
    );
    assert_eq!(
        samples(&s, "ebpf_exporter_layouts_scalar_hits_total{"),
        vec!["ebpf_exporter_layouts_scalar_hits_total{key=\"7\"} 5"]
    );
    assert!(
        s.text.contains(
            // describe guesses `kdev` for a `dev` member: the kernel's
            // own dev_t, which this test value is not a real disk in.
            "ebpf_exporter_layouts_op_latency_seconds_bucket{dev=\"unknown:0:1048321\",op=\"1\",le=\"8\"} 10"
        ),
        "{}",
        s.text
    );
}

#[test]
fn describe_works_on_every_built_in_object() {
    let list = Command::new(common::BIN)
        .args(["describe", "no-such-object"])
        .output()
        .expect("runs");
    assert_eq!(list.status.code(), Some(2));
    let err = String::from_utf8_lossy(&list.stderr);
    let names: Vec<String> = err
        .split("(built-in: ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .expect("the built-in list")
        .split(", ")
        .map(str::to_string)
        .collect();
    assert!(names.len() >= 27, "{names:?}");
    for name in names {
        let out = Command::new(common::BIN)
            .args(["describe", &name])
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "describe {name}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(&format!("object: {name}\n")),
            "{name}"
        );
    }
}

const STRUCT_VALUES: &str = "metrics:
  counters:
    - name: pair_a_total
      help: Member a of each pair
      map: pairs
      value: a
      labels:
        - {name: k, decoders: [{name: uint}]}
    - name: pair_b_total
      help: Member b, scaled
      map: pairs
      value: b
      value_multiplier: 0.5
      labels:
        - {name: k, decoders: [{name: uint}]}
    - name: flow_bytes_total
      help: Bytes, summed over CPUs
      map: flow_stats
      value: bytes
      labels:
        - {name: k, decoders: [{name: uint}]}
  gauges:
    - name: flow_drops_by_cpu
      help: Drops, per CPU
      map: flow_stats
      value: drops
      labels:
        - {name: k, decoders: [{name: uint}]}
        - {name: cpu, size: 4, decoders: [{name: uint}]}
  histograms:
    - name: slot_hist
      help: Bucket counts kept in the value
      map: hists
      value: slots
      bucket_type: linear
      bucket_min: 1
      bucket_max: 6
      labels:
        - {name: k, decoders: [{name: uint}]}
";

#[test]
fn struct_values_feed_several_metrics_and_array_histograms() {
    let dir = object_dir("layouts-values");
    std::fs::write(dir.join("layouts.yaml"), STRUCT_VALUES).expect("write");
    let e = Running::start(&[&format!("--config.dir={}", dir.display())]);
    // The program runs on the calling thread's CPU: pinned to CPU 0, the
    // per-CPU copy it writes is known.
    common::pin_to_cpu(0);
    test_run(&prog_fd(e.program_id("fill")));
    let s = e.scrape();
    assert_eq!(
        samples(&s, "ebpf_exporter_pair_"),
        vec![
            "ebpf_exporter_pair_a_total{k=\"7\"} 10",
            "ebpf_exporter_pair_b_total{k=\"7\"} 10",
        ]
    );
    assert_eq!(
        samples(&s, "ebpf_exporter_flow_bytes_total{"),
        vec!["ebpf_exporter_flow_bytes_total{k=\"7\"} 1500"]
    );
    let drops = samples(&s, "ebpf_exporter_flow_drops_by_cpu{");
    assert_eq!(
        drops.len(),
        ebpf_exporter::host::cpus::possible(),
        "{drops:?}"
    );
    assert!(
        drops.contains(&"ebpf_exporter_flow_drops_by_cpu{k=\"7\",cpu=\"0\"} 1".to_string()),
        "{drops:?}"
    );
    assert_eq!(s.sum("ebpf_exporter_flow_drops_by_cpu", &[]), 1.0);
    // Slots hold 0..7; buckets 1..=6 are exported, cumulatively.
    assert_eq!(
        samples(&s, "ebpf_exporter_slot_hist_bucket{"),
        vec![
            "ebpf_exporter_slot_hist_bucket{k=\"7\",le=\"+Inf\"} 21",
            "ebpf_exporter_slot_hist_bucket{k=\"7\",le=\"1\"} 1",
            "ebpf_exporter_slot_hist_bucket{k=\"7\",le=\"2\"} 3",
            "ebpf_exporter_slot_hist_bucket{k=\"7\",le=\"3\"} 6",
            "ebpf_exporter_slot_hist_bucket{k=\"7\",le=\"4\"} 10",
            "ebpf_exporter_slot_hist_bucket{k=\"7\",le=\"5\"} 15",
            "ebpf_exporter_slot_hist_bucket{k=\"7\",le=\"6\"} 21",
        ]
    );
}

#[test]
fn struct_value_errors_name_the_members() {
    let dir = object_dir("layouts-value-errors");
    let file = dir.join("layouts.yaml").display().to_string();
    for (config, expected) in [
        (
            "metrics:\n  counters:\n    - name: pairs\n      help: h\n      labels: [{name: k, decoders: [{name: uint}]}]\n",
            format!("{file}:3: key `metrics.counters[0].name`: metric \"pairs\": map \"pairs\"'s values are struct big_value (16 bytes): name the member to export with `value:` (members: a (u64), b (u64))"),
        ),
        (
            "metrics:\n  counters:\n    - name: x_total\n      help: h\n      map: pairs\n      value: c\n      labels: [{name: k, decoders: [{name: uint}]}]\n",
            format!("{file}:6: key `metrics.counters[0].value`: metric \"x_total\": map \"pairs\"'s value struct big_value has no member \"c\"; its members: a (u64), b (u64)"),
        ),
        (
            "metrics:\n  histograms:\n    - name: h\n      help: h\n      map: hists\n      value: slots\n      bucket_type: linear\n      bucket_min: 0\n      bucket_max: 8\n      labels: [{name: k, decoders: [{name: uint}]}]\n",
            format!("{file}:6: key `metrics.histograms[0].value`: metric \"h\": the buckets go up to index 8, but member \"slots\" (u32[8]) has 8 elements"),
        ),
        (
            "metrics:\n  histograms:\n    - name: h\n      help: h\n      map: hists\n      value: comm\n      bucket_type: linear\n      bucket_min: 0\n      bucket_max: 3\n      labels: [{name: k, decoders: [{name: uint}]}]\n",
            format!("{file}:6: key `metrics.histograms[0].value`: metric \"h\": member \"comm\" is an array of char, not of integer counts"),
        ),
    ] {
        std::fs::write(dir.join("layouts.yaml"), config).expect("write");
        let out = Command::new(common::BIN)
            .args(["--config.check", &format!("--config.dir={}", dir.display())])
            .output()
            .expect("runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(text.contains(&expected), "{expected}\nin:\n{text}");
    }
}

/// BOUND, in the reference's format: every size and padding by hand.
const HAND_SIZED: &str = "metrics:
  counters:
    - name: flow_packets_total
      help: Packets by flow
      labels:
        - {name: saddr, size: 4, decoders: [{name: inet_ip}]}
        - {name: sport, size: 2, decoders: [{name: uint, byte_order: big}]}
        - {name: proto, size: 1, decoders: [{name: uint}]}
        - {name: comm, size: 16, padding: 1, decoders: [{name: string}]}
        - {name: pid, size: 4, padding: 4, decoders: [{name: uint}]}
        - {name: ifindex, size: 4, decoders: [{name: uint}]}
    - name: scalar_hits_total
      help: Hits by key, summed over CPUs
      labels:
        - {name: k, size: 4, decoders: [{name: uint}]}
    - name: sized_only_total
      help: A key without BTF, in the reference's format
      labels:
        - {name: k, size: 8, decoders: [{name: uint}]}
  histograms:
    - name: op_latency_seconds
      help: Latency by device and operation
      bucket_type: exp2
      bucket_min: 0
      bucket_max: 3
      labels:
        - {name: dev, size: 4, decoders: [{name: uint}]}
        - {name: op, size: 1, padding: 3, decoders: [{name: uint}]}
        - {name: bucket, size: 8, decoders: [{name: uint}]}
    - name: array_hist_seconds
      help: A struct-keyed array, created again without BTF by libbpf
      bucket_type: linear
      bucket_min: 0
      bucket_max: 2
      labels:
        - {name: slot, size: 4, decoders: [{name: uint}]}
";

/// The metric families of a scrape, self-metrics left out.
fn families(s: &Scrape) -> String {
    s.text
        .lines()
        .filter(|l| {
            let name = l
                .trim_start_matches("# HELP ")
                .trim_start_matches("# TYPE ");
            !name.starts_with("ebpf_exporter_enabled")
                && !name.starts_with("ebpf_exporter_ebpf_program")
                && !name.starts_with("ebpf_exporter_config")
                && !name.starts_with("ebpf_exporter_build")
                && !name.starts_with("ebpf_exporter_decode")
                && !name.starts_with("ebpf_exporter_map_")
                && !name.starts_with("process_")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn hand_sized_and_btf_bound_configs_scrape_byte_identical() {
    let mut scrapes = Vec::new();
    for (name, config) in [("bound", BOUND), ("hand", HAND_SIZED)] {
        let dir = object_dir(&format!("layouts-same-{name}"));
        std::fs::write(dir.join("layouts.yaml"), config).expect("write");
        let (_e, s) = serve_and_fill(&dir);
        scrapes.push(families(&s));
    }
    assert!(
        scrapes[0].contains("ebpf_exporter_flow_packets_total{"),
        "{}",
        scrapes[0]
    );
    assert_eq!(scrapes[0], scrapes[1]);
}

#[test]
fn an_array_value_histogram_equals_the_one_key_per_bucket_map() {
    let dir = object_dir("layouts-hist-same");
    std::fs::write(
        dir.join("layouts.yaml"),
        "metrics:
  histograms:
    - name: from_array
      help: h
      map: hists
      value: slots
      bucket_type: exp2
      bucket_min: 0
      bucket_max: 7
      labels:
        - {name: k, decoders: [{name: uint}]}
    - name: from_keys
      help: h
      map: hist_by_slot
      bucket_type: exp2
      bucket_min: 0
      bucket_max: 7
      labels:
        - {name: k, decoders: [{name: uint}]}
        - {name: slot, decoders: [{name: uint}]}
",
    )
    .expect("write");
    let (_e, s) = serve_and_fill(&dir);
    let buckets = |metric: &str| {
        samples(&s, &format!("ebpf_exporter_{metric}_bucket{{"))
            .into_iter()
            .map(|l| l.replacen(metric, "h", 1))
            .collect::<Vec<_>>()
    };
    let from_array = buckets("from_array");
    assert_eq!(from_array.len(), 9, "{from_array:?}");
    assert_eq!(from_array, buckets("from_keys"));
    assert!(from_array.contains(&"ebpf_exporter_h_bucket{k=\"7\",le=\"128\"} 28".to_string()));
}

#[test]
fn describe_output_of_every_shipped_object_starts_and_serves() {
    let list = Command::new(common::BIN)
        .args(["describe", "no-such-object"])
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&list.stderr);
    let names: Vec<String> = err
        .split("(built-in: ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .expect("the built-in list")
        .split(", ")
        .map(str::to_string)
        .collect();
    let dir = common::scratch_dir("layouts-describe-all");
    // Objects of tests/bpf that have metric maps and whose programs all
    // attach here (the others exist to fail, or hold ring buffers only).
    let tests_bpf = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bpf");
    let mut objects: Vec<String> = names.clone();
    for own in ["decoders", "churn", "cgroup_filter", "external", "layouts"] {
        let object = dir.join(format!("{own}.bpf.o"));
        common::compile_bpf(&tests_bpf.join(format!("{own}.bpf.c")), &object);
        objects.push(object.display().to_string());
    }
    // A perf event array, said plainly, and a count kept in a global
    // variable, offered by name.
    let events = dir.join("events.bpf.o");
    common::compile_bpf(&tests_bpf.join("events.bpf.c"), &events);
    let out = Command::new(common::BIN)
        .args(["describe", &events.display().to_string()])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("a PERF_EVENT_ARRAY map"), "{text}");
    assert!(
        text.contains(
            "    - name: events_sent_total\n      help: Events sent\n      global: sent\n"
        ),
        "{text}"
    );
    let configs = dir.join("configs");
    std::fs::create_dir_all(&configs).expect("mkdir");
    let mut described = Vec::new();
    for object in &objects {
        let out = Command::new(common::BIN)
            .args(["describe", object])
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "describe {object}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let base = Path::new(object)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(object)
            .trim_end_matches(".bpf.o")
            .to_string();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let config = ebpf_exporter::config::parse_config(
            &base,
            "described",
            ebpf_exporter::config::ConfigSource::Embedded,
            &text,
        )
        .unwrap_or_else(|e| panic!("describe {object}: {e}\n{text}"));
        // Each config alone, beside its object, as describe says to save it.
        let one = configs.join(&base);
        std::fs::create_dir_all(&one).expect("mkdir");
        std::fs::write(one.join(format!("{base}.yaml")), &text).expect("write");
        if object.ends_with(".o") {
            std::fs::copy(object, one.join(format!("{base}.bpf.o"))).expect("copy the object");
        }
        described.push((base, one, config));
    }
    let mut served = 0;
    for (base, one, config) in &described {
        let out = Command::new(common::BIN)
            .args(["--config.check", &format!("--config.dir={}", one.display())])
            .output()
            .expect("runs");
        let report = String::from_utf8_lossy(&out.stdout);
        // DEGRADED only for the programs this machine cannot run (below).
        assert!(
            report.contains("): OK, object") || report.contains("): DEGRADED: "),
            "{base}: {report}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Attached, apart from programs that are run, not attached, and
        // kprobes and trampolines on this machine, whose kernel has neither.
        for line in report.lines().filter(|l| l.contains("NOT ")) {
            assert!(
                line.contains("(syscall)")
                    || line.contains("this kernel lacks kprobe support")
                    || line.contains("runs no BPF trampoline programs"),
                "{base}: {line}"
            );
        }
        let e = Running::start(&[&format!("--config.dir={}", one.display())]);
        if e.scrape().has("ebpf_exporter_build_info") {
            for program in ["fill", "fill_maps"] {
                if e.get("/metrics")
                    .text()
                    .contains(&format!("program=\"{program}\""))
                {
                    test_run(&prog_fd(e.program_id(program)));
                }
            }
        }
        // Some traffic for the tracing programs.
        let _ = std::fs::write(one.join("junk"), vec![0u8; 65536]);
        std::thread::sleep(std::time::Duration::from_millis(300));
        let s = e.scrape();
        for spec in config.specs() {
            let name = format!("ebpf_exporter_{}", spec.name);
            let expected: std::collections::BTreeSet<&str> =
                spec.labels.iter().map(|l| l.name.as_str()).collect();
            let rows: Vec<_> = s
                .samples
                .iter()
                .filter(|x| x.name == name || x.name == format!("{name}_bucket"))
                .collect();
            for row in &rows {
                let got: std::collections::BTreeSet<&str> = row
                    .labels
                    .keys()
                    .map(String::as_str)
                    .filter(|k| *k != "le")
                    .collect();
                // A histogram's bucket label becomes `le`.
                let histogram = row.name.ends_with("_bucket") && spec.value.is_none();
                let want: std::collections::BTreeSet<&str> = if histogram {
                    let last = spec.labels.last().map(|l| l.name.as_str());
                    expected
                        .iter()
                        .copied()
                        .filter(|n| Some(*n) != last)
                        .collect()
                } else {
                    expected.clone()
                };
                assert_eq!(got, want, "{base}: {name}");
            }
            served += usize::from(!rows.is_empty());
        }
        assert!(
            s.text.contains(&format!(
                "ebpf_exporter_decoder_errors_total{{config=\"{base}\"}} 0"
            )),
            "{base}: decode errors\n{}",
            s.text
        );
    }
    eprintln!(
        "{} objects described; {served} described metrics had series",
        described.len()
    );
    assert!(served >= 15, "only {served} described metrics had series");
}
