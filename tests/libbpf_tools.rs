//! Objects nobody here wrote: iovisor/bcc's libbpf-tools, as Debian ships
//! them (the `libbpf-tools` package, which `scripts/setup.sh` installs).
//! Each tool's binary embeds its BPF object; the tests cut it out, give it
//! a config and nothing else (no loader of its own), and check what the
//! exporter serves against an independent truth: `/proc/interrupts`, the
//! size and disk of the I/O the test makes, the syscalls a child makes.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::tools::{
    config_check, describe, direct_io, disk_dir, start, tool_dir, tool_object, wait_for,
    SyscallChild,
};
use common::{run, scratch_dir, Running, Scrape};

/// The device an interrupt handler belongs to, without its queue:
/// `virtio0` for `virtio0-req.1`, `nvme0` for `nvme0q3`.
fn device(handler: &str) -> &str {
    if let Some((device, _)) = handler.split_once('-') {
        return device;
    }
    let queue = handler.trim_end_matches(|c: char| c.is_ascii_digit());
    match queue.strip_suffix('q') {
        Some(device) if handler.starts_with("nvme") => device,
        _ => handler,
    }
}

#[test]
fn interrupt_handlers_name_their_device() {
    assert_eq!(device("virtio0-req.1"), "virtio0");
    assert_eq!(device("virtio0-config"), "virtio0");
    assert_eq!(device("nvme0q3"), "nvme0");
    assert_eq!(device("ahci[0000:00:1f.2]"), "ahci[0000:00:1f.2]");
    assert_eq!(device("ata_piix"), "ata_piix");
}

/// Per interrupt handler (action) name, the interrupts of the IRQ lines it
/// is on, from `/proc/interrupts` and `/proc/irq/N/`.
fn handler_counts() -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let text = fs::read_to_string("/proc/interrupts").expect("read /proc/interrupts");
    for line in text.lines() {
        let Some((irq, rest)) = line.split_once(':') else {
            continue;
        };
        let irq = irq.trim();
        if irq.is_empty() || !irq.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let total: u64 = rest
            .split_whitespace()
            .map_while(|w| w.parse::<u64>().ok())
            .sum();
        for entry in fs::read_dir(format!("/proc/irq/{irq}"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                *out.entry(entry.file_name().to_string_lossy().into_owned())
                    .or_default() += total;
            }
        }
    }
    out
}

/// Reads `/proc/interrupts` on both sides of a scrape until none of
/// `handlers` moved meanwhile, so the two are of one instant: their summed
/// count, and the scrape.
fn at_rest(exporter: &Running, handlers: &[String]) -> (u64, Scrape) {
    let total = || {
        let counts = handler_counts();
        handlers
            .iter()
            .map(|h| counts.get(h).copied().unwrap_or(0))
            .sum::<u64>()
    };
    for _ in 0..200 {
        let before = total();
        let s = exporter.scrape();
        if total() == before {
            return (before, s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{handlers:?} never stayed still across a scrape");
}

// As hardirqs' loader does for -C: count mode, with the exit programs off
// (their start array would add the time since boot to every count).
const HARDIRQS: &str = "\
programs:
  one_of:
    - [irq_handler_entry_btf, irq_handler_entry]
  exclude: [irq_handler_exit_btf, irq_handler_exit]
constants:
  do_count: true
metrics:
  counters:
    - name: libbpf_hardirqs_total
      help: Hardware interrupts, by handler
      map: infos
      value: count
      labels:
        - name: handler
          field: name
          decoders:
            - name: string
";

/// hardirqs counts each interrupt once: its tp_btf and raw_tp twins would
/// count it twice, and `do_count` turns its count mode on as `-C` does.
#[test]
fn hardirqs_counts_equal_proc_interrupts() {
    let dir = tool_dir("hardirqs", "hardirqs", HARDIRQS);
    let exporter = start(&dir);
    let check = config_check(&dir);
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{report}");
    assert!(report.contains("1/1 programs attached"), "{report}");
    assert!(
        report.contains(
            "program irq_handler_exit_btf (tp_btf/irq_handler_exit): left out by programs.exclude"
        ),
        "{report}"
    );

    // The disk's handlers: those that move under direct I/O.
    let before = handler_counts();
    direct_io("hardirqs-find", 64);
    let after = handler_counts();
    let moved: BTreeSet<&str> = after
        .iter()
        .filter(|(h, n)| before.get(*h).is_some_and(|b| *n > b))
        .map(|(h, _)| h.as_str())
        .filter(|h| {
            h.contains("virtio") || h.contains("nvme") || h.contains("ahci") || h.contains("ata")
        })
        .map(device)
        .collect();
    assert!(
        !moved.is_empty(),
        "disk I/O raised device interrupts: {before:?} -> {after:?}"
    );
    // All of the disk's queues, not only those that moved: a request goes
    // to the queue of the CPU it is issued on, and the next run of `dd`
    // may be on another CPU.
    let disk: Vec<String> = after
        .keys()
        .filter(|h| moved.contains(device(h)))
        .cloned()
        .collect();
    let value = |s: &Scrape| {
        disk.iter()
            .map(|h| s.sum("ebpf_exporter_libbpf_hardirqs_total", &[("handler", h)]))
            .sum::<f64>()
    };
    let (p0, s0) = at_rest(&exporter, &disk);
    direct_io("hardirqs-count", 64);
    let (p1, s1) = at_rest(&exporter, &disk);
    assert!(p1 > p0, "{disk:?} fired");
    // Exact when nothing else raises these interrupts. Under the suite's
    // parallel I/O they may differ a little either way, and never by half:
    // an edge interrupt that arrives while its handler runs on another CPU
    // is handled twice in one loop of handle_edge_irq but counted once in
    // /proc/interrupts, and one counted there just before a scrape may
    // reach its handler just after. Counting the twin programs too would
    // double every count.
    let (counted, moved) = (value(&s1) - value(&s0), (p1 - p0) as f64);
    assert!(
        (counted - moved).abs() <= 2.0 + moved / 10.0,
        "{disk:?}: counted {counted} where /proc/interrupts moved by {moved}"
    );
}

const BITESIZE: &str = "\
constants:
  targ_comm: dd
metrics:
  histograms:
    - name: libbpf_bitesize_bytes
      help: Block I/O request sizes of dd
      map: hists
      value: slots
      bucket_type: exp2floor
      bucket_min: 0
      bucket_max: 19
      bucket_multiplier: 1024
      labels:
        - name: comm
          decoders:
            - name: string
";

/// bitesize fills slots[log2(KiB)] with a floor log2: 12 KiB requests go
/// in the slot of [8, 16) KiB, whose upper bound is 16 KiB.
#[test]
fn bitesize_puts_12k_requests_in_the_16k_bucket() {
    let dir = tool_dir("bitesize", "bitesize", BITESIZE);
    if !common::kernel_at_least(5, 11) {
        refused_before_5_11(&dir);
        return;
    }
    let exporter = start(&dir);
    let disk = disk_dir("bitesize-data");
    let file = disk.join("data");
    run(Command::new("dd").args([
        "if=/dev/zero",
        &format!("of={}", file.display()),
        "bs=12k",
        "count=50",
        "oflag=direct",
        "status=none",
    ]));
    let bucket = |s: &Scrape, le: &str| {
        s.sum(
            "ebpf_exporter_libbpf_bitesize_bytes_bucket",
            &[("comm", "dd"), ("le", le)],
        )
    };
    let s = wait_for(&exporter, "dd's 12 KiB requests", |s| {
        bucket(s, "16384") - bucket(s, "8192") >= 50.0
    });
    // Read as exp2, the 50 would sit at or under 8 KiB; dd's own metadata
    // writes (and other tests' dd) may put a few small requests there.
    assert!(
        bucket(&s, "8192") < 10.0,
        "the 12 KiB requests are above 8 KiB:\n{}",
        s.text
    );
}

/// Debian bookworm's block-tracepoint tools were built for the arguments
/// those tracepoints have since 5.11 (5.10 passes one more, the queue):
/// their typed programs are refused in the verifier's words, and the raw
/// ones do not attach, so the config is refused, never served wrong.
fn refused_before_5_11(dir: &Path) {
    let log = Running::try_start(&[
        &format!("--config.dir={}", dir.display()),
        "--config.strict",
    ])
    .err()
    .expect("the object does not run on this kernel");
    assert!(
        log.contains("the verifier said") || log.contains("passes 1 argument on this kernel"),
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
}

const BIOLATENCY: &str = "\
programs:
  one_of:
    - [block_rq_insert_btf, block_rq_insert]
    - [block_rq_issue_btf, block_rq_issue]
    - [block_rq_complete_btf, block_rq_complete]
constants:
  targ_per_disk: true
metrics:
  histograms:
    - name: libbpf_biolatency_seconds
      help: Block I/O latency, by disk
      map: hists
      value: slots
      bucket_type: exp2floor
      bucket_min: 0
      bucket_max: 26
      bucket_multiplier: 0.000001
      labels:
        - name: disk
          field: dev
          decoders:
            - name: kdev
";

/// With `targ_per_disk` set through `constants:`, biolatency keys by the
/// kernel's dev_t, which `kdev` names as /proc/partitions does.
#[test]
fn biolatency_per_disk_names_the_disk() {
    let dir = tool_dir("biolatency", "biolatency", BIOLATENCY);
    if !common::kernel_at_least(5, 11) {
        refused_before_5_11(&dir);
        return;
    }
    let exporter = start(&dir);
    // The disk holding the scratch directory: /proc/partitions names it.
    let partitions = fs::read_to_string("/proc/partitions").expect("partitions");
    let disks: Vec<String> = partitions
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().nth(3).map(str::to_string))
        .collect();
    direct_io("biolatency", 64);
    let s = wait_for(&exporter, "a latency series named by disk", |s| {
        s.find("ebpf_exporter_libbpf_biolatency_seconds_count", &[])
            .iter()
            .any(|x| x.value > 0.0 && disks.contains(&x.labels["disk"]))
    });
    for x in s.find("ebpf_exporter_libbpf_biolatency_seconds_count", &[]) {
        assert!(
            disks.contains(&x.labels["disk"]),
            "every disk label is a disk of /proc/partitions ({disks:?}): {:?}",
            x.labels
        );
    }
}

/// syscount counts exactly the getpid() calls a child makes, with the
/// child's pid set through `constants: {filter_pid: …}`.
#[test]
fn syscount_counts_exact_getpid_calls() {
    let child = SyscallChild::getpid(1000);
    let yaml = format!(
        "constants:\n  filter_pid: {}\nmetrics:\n  counters:\n    - name: libbpf_syscalls_total\n      help: Syscalls of one process\n      map: data\n      value: count\n      labels:\n        - name: syscall\n          decoders:\n            - name: uint\n            - name: syscall\n              names: kernel\n",
        child.pid
    );
    let dir = tool_dir("syscount", "syscount", &yaml);
    let exporter = start(&dir);
    let getpid = |s: &Scrape| {
        s.sum(
            "ebpf_exporter_libbpf_syscalls_total",
            &[("syscall", "getpid")],
        )
    };
    let before = exporter.scrape();
    child.run();
    let after = wait_for(&exporter, "1000 getpid calls", |s| {
        getpid(s) >= getpid(&before) + 1000.0
    });
    assert_eq!(getpid(&after) - getpid(&before), 1000.0, "{}", after.text);
}

/// The tools `describe` and these tests use, with the libbpf-tools' names.
const TOOLS: [&str; 12] = [
    "syscount",
    "biolatency",
    "runqlat",
    "runqlen",
    "hardirqs",
    "bitesize",
    "biopattern",
    "cpudist",
    "softirqs",
    "cachestat",
    "offcputime",
    "wakeuptime",
];

/// describe's configs are the same every run, name no absolute path, put
/// no kernel address on /metrics, pick one of each pair of twins, and run
/// side by side in one directory.
#[test]
fn described_configs_are_deterministic_safe_and_coexist() {
    let dir = scratch_dir("lbt-describe");
    let mut described = 0;
    for tool in TOOLS {
        fs::write(dir.join(format!("{tool}.bpf.o")), tool_object(tool)).expect("write object");
        let (ok, first) = describe(&dir, tool);
        let (_, second) = describe(&dir, tool);
        assert_eq!(first, second, "{tool}: the same config every run");
        assert!(
            first.contains(&format!("object: {tool}.bpf.o\n")),
            "{tool}:\n{first}"
        );
        if ok {
            described += 1;
            fs::write(dir.join(format!("{tool}.yaml")), &first).expect("write config");
        }
    }
    assert!(described >= 6, "{described} of the tools described");
    // Names carry units where the object's switches show them, and
    // identifiers, addresses and per-thread flags are never served.
    for (tool, has, lacks) in [
        ("biolatency", "- name: biolatency_hists_seconds\n", "\0"),
        (
            "funclatency",
            "bucket_multiplier: 0.000000001\n",
            "- name: funclatency_hist_total",
        ),
        (
            "cachestat",
            "  gauges:\n    - name: cachestat_total\n",
            "_total_total",
        ),
        (
            "klockstat",
            "#   stat_map.acq_max_lock_ptr: an identifier or address",
            "lock_ptr_total",
        ),
        (
            "klockstat",
            "#   lockholder_map: in-flight state",
            "lockholder_map_",
        ),
        (
            "readahead",
            "#   in_readahead: per-thread state",
            "_total_total",
        ),
        ("fsdist", "      labels:\n        - name: index", "\0"),
        // runqlen fills slots[length], tcpsynbl slots[log2(backlog)].
        ("runqlen", "      bucket_type: linear\n      bucket_min: 0\n      bucket_max: 31\n", "exp2floor"),
        ("tcpsynbl", "      bucket_type: exp2floor\n", "linear"),
        (
            "syscount",
            "    - name: syscount_data_total_seconds_total\n      help: \"Syscount data total, in seconds\"\n      map: data\n      value: total_ns\n      # total_ns counts nanoseconds, as its name ends in _ns.\n      value_multiplier: 0.000000001\n",
            "total_ns_total",
        ),
    ] {
        fs::write(dir.join(format!("{tool}.bpf.o")), tool_object(tool)).expect("write object");
        let (_, yaml) = describe(&dir, tool);
        assert!(
            yaml.contains(has) && !yaml.contains(lacks),
            "{tool}:\n{yaml}"
        );
        if !TOOLS.contains(&tool) {
            fs::remove_file(dir.join(format!("{tool}.bpf.o"))).expect("remove");
        }
    }
    let (_, biolatency) = describe(&dir, "biolatency");
    assert!(
        biolatency.contains("#   start: in-flight state keyed by kernel pointers"),
        "{biolatency}"
    );
    assert!(
        biolatency.contains("- [block_rq_issue_btf, block_rq_issue]"),
        "{biolatency}"
    );
    let check = config_check(&dir);
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(
        !report.contains("already") && !report.contains("would both be served"),
        "no two configs clash:\n{report}"
    );
    // cpudist leaves its maps at 0 entries for its loader: the described
    // config sizes them, and it loads.
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("config cpudist (") && l.contains("): OK, object")),
        "{report}"
    );
    let exporter = Running::start(&[&format!("--config.dir={}", dir.display())]);
    direct_io("lbt-describe-io", 16);
    // Every tool whose programs run here serves data, unedited: the I/O
    // above, and the machine's own scheduling and interrupts, feed them.
    // Before 5.11 the block tools run DEGRADED, serving nothing: their
    // typed programs are refused (see refused_before_5_11).
    // Each tool runs unless this kernel gives a known reason it cannot:
    // Debian bookworm's runqlen reads cfs_rq.nr_running, which 6.14
    // renamed; cachestat needs kprobes or fentry, which the development
    // machine lacks (every matrix kernel has them).
    let block_tools_run = common::kernel_at_least(5, 11);
    let cannot_run = |t: &str| match t {
        "biolatency" | "bitesize" => !block_tools_run,
        "runqlen" => common::kernel_at_least(6, 14),
        "cachestat" => !common::kernel_has_kprobes() && !common::in_kernel_matrix(),
        _ => false,
    };
    let running: Vec<&str> = TOOLS.into_iter().filter(|t| !cannot_run(t)).collect();
    for t in &running {
        assert!(
            report.lines().any(|l| {
                l.starts_with(&format!("config {t} ("))
                    && (l.contains("): OK") || l.contains("): DEGRADED"))
            }),
            "{t} runs on this kernel:\n{report}"
        );
    }
    assert!(running.len() >= 9, "{running:?}");
    let s = wait_for(&exporter, "every described tool serves data", |s| {
        running.iter().all(|t| {
            let prefix = format!("ebpf_exporter_{t}_");
            s.samples
                .iter()
                .any(|x| x.name.starts_with(&prefix) && x.value > 0.0)
        })
    });
    for sample in s
        .samples
        .iter()
        .filter(|x| x.name.starts_with("ebpf_exporter_"))
    {
        for value in sample.labels.values() {
            assert!(
                !(value.len() == 16
                    && value.ends_with("ffff")
                    && value.chars().all(|c| c.is_ascii_hexdigit())),
                "a kernel address on /metrics: {sample:?}"
            );
        }
    }
}

const RUNQLEN: &str = "\
programs:
  attach:
    do_sample: perf_event/type=1,config=0,frequency=99
metrics:
  histograms:
    - name: libbpf_run_queue_length
      help: Run queue length, sampled at 99 Hz on every CPU
      global: hists
      value: slots
      bucket_type: linear
      bucket_min: 0
      bucket_max: 31
";

/// runqlen keeps its histogram in a `.bss` array and samples from a bare
/// `SEC(\"perf_event\")` program: the config opens the perf events and reads
/// the global, with no loader of the tool's own.
#[test]
fn runqlen_reads_its_global_histogram_through_perf_events_it_opens() {
    let dir = tool_dir("runqlen", "runqlen", RUNQLEN);
    // Debian bookworm's runqlen reads cfs_rq.nr_running, which Linux 6.14
    // renamed: there the exporter must refuse it in the verifier's words.
    if common::kernel_at_least(6, 14) {
        let log = Running::try_start(&[
            &format!("--config.dir={}", dir.display()),
            "--config.strict",
        ])
        .err()
        .expect("the object does not load on this kernel");
        assert!(
            log.contains("struct cfs_rq.nr_running")
                && log.contains("none of its 1 program(s) loaded and attached"),
            "{log}"
        );
        return;
    }
    let exporter = start(&dir);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let count = |s: &Scrape| s.sum("ebpf_exporter_libbpf_run_queue_length_count", &[]);
    let first = exporter.scrape();
    let began = std::time::Instant::now();
    // Busy threads beyond the CPUs, so queues are not always empty.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hogs: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::hint::black_box(0u64);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let last = exporter.scrape();
    let elapsed = began.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in hogs {
        let _ = h.join();
    }
    let samples = count(&last) - count(&first);
    let expected = 99.0 * cpus * elapsed;
    assert!(
        // Emulated guests (the kernel matrix under TCG) run slower.
        samples > 0.2 * expected && samples < 1.5 * expected,
        "{samples} samples in {elapsed:.2}s on {cpus} CPUs, about {expected:.0} expected:\n{}",
        last.text
    );
    let queued = count(&last)
        - last.sum(
            "ebpf_exporter_libbpf_run_queue_length_bucket",
            &[("le", "0")],
        );
    assert!(queued > 0.0, "busy CPUs had tasks waiting:\n{}", last.text);
}

const LOADER_CONFIG: &str = "\
programs:
  attach:
    sample: perf_event/type=1,config=0,frequency=99
constants:
  weight: 3
metrics:
  counters:
    - name: loader_samples_total
      help: Samples, times the weight set through constants
      global: samples
    - name: loader_cpu_samples_total
      help: Samples by CPU
      global: per_cpu
      labels:
        - name: cpu
          decoders:
            - name: uint
";

/// What a loader does, from config: the perf events of a bare
/// `SEC(\"perf_event\")` program, a `const volatile` value, and results read
/// from global variables (a scalar, and an array labelled by index).
#[test]
fn a_bare_perf_event_program_constants_and_globals_from_config() {
    let dir = scratch_dir("lbt-loader-config");
    common::compile_bpf(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bpf/loader_config.bpf.c"),
        &dir.join("loader.bpf.o"),
    );
    fs::write(dir.join("loader.yaml"), LOADER_CONFIG).expect("write config");
    let exporter = start(&dir);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let total = |s: &Scrape| s.sum("ebpf_exporter_loader_samples_total", &[]);
    let first = exporter.scrape();
    std::thread::sleep(Duration::from_secs(2));
    let s = exporter.scrape();
    let by_cpu = s.find("ebpf_exporter_loader_cpu_samples_total", &[]);
    assert_eq!(by_cpu.len(), 64, "one series per element of per_cpu[64]");
    let counted: f64 = by_cpu.iter().map(|x| x.value).sum();
    let busy = by_cpu.iter().filter(|x| x.value > 0.0).count();
    assert!(busy >= 1 && busy <= cpus, "{busy} CPUs sampled of {cpus}");
    // 99 Hz of CPU clock on every CPU, for about 2 s.
    let rate = (total(&s) - total(&first)) / 3.0 / 2.0;
    assert!(
        rate > 20.0 * cpus as f64 && rate < 150.0 * cpus as f64,
        "about 99 samples a second per CPU, got {rate}"
    );
    // Each sample adds `weight` (3, from constants:) to `samples` and 1
    // to its CPU's element. The two are read a moment apart, and on an
    // emulated CPU that moment can hold a few samples per CPU, so allow
    // 5%: a weight not applied would be 67% off.
    let weighted = total(&s) / 3.0;
    assert!(
        (weighted - counted).abs() <= 4.0 * cpus as f64 + 0.05 * counted,
        "samples ({}) = 3 × the per-CPU sum ({counted})",
        total(&s)
    );
}

/// What a loader would set, set wrong: each refused with file, line and
/// key, saying what the object has, while a good config beside them runs.
#[test]
fn wrong_constants_programs_and_maps_are_refused_with_file_line_and_key() {
    let dir = scratch_dir("lbt-loader-errors");
    let object = dir.join("loader.bpf.o");
    common::compile_bpf(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bpf/loader_config.bpf.c"),
        &object,
    );
    let bad = [
        (
            "too_big",
            "constants:\n  weight: 4294967296\n",
            "too_big.yaml:6: key `constants.weight`: weight is __u32: 4294967296 does not fit: an unsigned 32-bit integer holds 0 to 4294967295",
        ),
        (
            "not_bool",
            "constants:\n  weight: yes please\n",
            "key `constants.weight`: weight is __u32: give an integer, not yes please",
        ),
        (
            "no_such",
            "constants:\n  wieght: 2\n",
            "key `constants.wieght`: the object has no global variable \"wieght\"; its globals: samples (.bss), per_cpu (.bss), weight (.rodata)",
        ),
        (
            "bad_exclude",
            "programs:\n  exclude: [smaple]\n",
            "key `programs.exclude[0]`: program \"smaple\" names no program or section of the object; its programs: sample (perf_event)",
        ),
        (
            "bad_map",
            "maps:\n  nope: {max_entries: 10}\n",
            "key `maps.nope`: the object has no map \"nope\"",
        ),
    ];
    let tail =
        "metrics:\n  counters:\n    - name: NAME_total\n      help: h\n      global: samples\n";
    for (name, head, _) in bad {
        let yaml = format!(
            "object: loader.bpf.o\nprograms:\n  attach:\n    sample: perf_event/type=1,config=0,frequency=99\n{head}{}",
            tail.replace("NAME", name)
        )
        .replace("programs:\n  attach:\n    sample: perf_event/type=1,config=0,frequency=99\nprograms:\n", "programs:\n  attach:\n    sample: perf_event/type=1,config=0,frequency=99\n");
        fs::write(dir.join(format!("{name}.yaml")), yaml).expect("write");
    }
    fs::write(
        dir.join("good.yaml"),
        format!(
            "object: loader.bpf.o\nprograms:\n  attach:\n    sample: perf_event/type=1,config=0,frequency=99\n{}",
            tail.replace("NAME", "good")
        ),
    )
    .expect("write");
    let exporter = Running::start(&[&format!("--config.dir={}", dir.display())]);
    let log = exporter.log();
    for (name, _, said) in bad {
        let line = log
            .lines()
            .find(|l| l.contains(&format!("{name}.yaml:")))
            .unwrap_or_else(|| panic!("{name}: no error in the log:\n{log}"));
        assert!(line.contains(said), "{name}: {said:?} in\n{line}");
    }
    let s = wait_for(&exporter, "the good config serves", |s| {
        s.sum("ebpf_exporter_good_total", &[]) > 0.0
    });
    assert_eq!(
        s.find("ebpf_exporter_enabled_configs", &[])
            .iter()
            .filter(|x| x.value == 1.0)
            .count(),
        1,
        "{}",
        s.text
    );
}

/// vfsstat (fentry programs with kprobe twins, results in a `.bss`
/// array): its described config, unedited, counts this test's reads where
/// the kernel runs BPF trampolines or kprobes (every kernel of the matrix),
/// and is refused in the kernel's words where it runs neither.
#[test]
fn vfsstat_serves_from_its_described_config() {
    let dir = scratch_dir("lbt-vfsstat");
    fs::write(dir.join("vfsstat.bpf.o"), tool_object("vfsstat")).expect("write object");
    let (ok, yaml) = describe(&dir, "vfsstat");
    assert!(ok, "{yaml}");
    assert!(
        yaml.contains("    - [fentry_vfs_read, kprobe_vfs_read]\n"),
        "{yaml}"
    );
    fs::write(dir.join("vfsstat.yaml"), &yaml).expect("write config");
    let trampolines = *ebpf_exporter::host::kernel::trampolines()
        == ebpf_exporter::host::kernel::Trampolines::Available;
    if !(common::in_kernel_matrix() || common::kernel_has_kprobes() || trampolines) {
        let log = Running::try_start(&[&format!("--config.dir={}", dir.display())])
            .err()
            .expect("no program of vfsstat runs on this kernel");
        assert!(
            log.contains("none of its 10 program(s) loaded and attached")
                && log.contains("runs no BPF trampoline programs")
                && log.contains("lacks kprobe support"),
            "{log}"
        );
        return;
    }
    let exporter = start(&dir);
    let reads = |s: &Scrape| s.sum("ebpf_exporter_vfsstat_stats_total", &[("index", "0")]);
    let before = exporter.scrape();
    let file = dir.join("vfsstat.yaml");
    for _ in 0..200 {
        fs::read(&file).expect("read");
    }
    wait_for(&exporter, "200 reads counted as vfs_read", |s| {
        reads(s) >= reads(&before) + 200.0
    });
}

/// Generic `SEC("uprobe")` and `SEC("uretprobe")` programs, pointed by
/// `programs.attach` at the C library's `syscall()` and told a child's
/// pid: exactly the child's 700 calls, and as many returns.
#[test]
fn placeholder_uprobes_attach_where_the_config_says() {
    let dir = scratch_dir("lbt-uprobe-override");
    common::compile_bpf(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bpf/placeholder_uprobe.bpf.c"),
        &dir.join("probes.bpf.o"),
    );
    let child = SyscallChild::getpid(700);
    let libc = common::tools::libc_path();
    let yaml = format!(
        "object: probes.bpf.o
constants:
  targ_tgid: {pid}
programs:
  attach:
    on_call: uprobe/{libc}:syscall
    on_return: uretprobe/{libc}:syscall
metrics:
  counters:
    - name: libc_syscall_calls_total
      help: Calls of the C library's syscall()
      map: calls
      labels:
        - name: pid
          decoders:
            - name: uint
    - name: libc_syscall_returns_total
      help: Returns from the C library's syscall()
      map: returns
      labels:
        - name: pid
          decoders:
            - name: uint
",
        pid = child.pid
    );
    fs::write(dir.join("probes.yaml"), yaml).expect("write config");
    let exporter = start(&dir);
    let pid = child.pid.to_string();
    let both = |s: &Scrape| {
        (
            s.sum("ebpf_exporter_libc_syscall_calls_total", &[("pid", &pid)]),
            s.sum("ebpf_exporter_libc_syscall_returns_total", &[("pid", &pid)]),
        )
    };
    child.run();
    let s = wait_for(&exporter, "700 calls and returns", |s| {
        both(s) == (700.0, 700.0)
    });
    assert_eq!(both(&s), (700.0, 700.0), "{}", s.text);
    // A binary that is not there is refused in words, with the key.
    fs::write(
        dir.join("probes.yaml"),
        fs::read_to_string(dir.join("probes.yaml"))
            .expect("read")
            .replace(&format!("uprobe/{libc}:"), "uprobe/no/such/libc.so.6:"),
    )
    .expect("write");
    let check = config_check(&dir);
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(
        report.contains(
            "uprobe/no/such/libc.so.6:syscall: the binary \"no/such/libc.so.6\" it probes does not exist"
        ),
        "{report}"
    );
}

/// The two of the 20 tried that cannot serve here are refused with their
/// reasons, as the README says: readahead's Debian build probes
/// `__page_cache_alloc`, which the folio conversion (5.16) removed, and
/// llcstat's bare `SEC("perf_event")` programs count hardware cache
/// events, which `describe` leaves for the operator to name.
#[test]
fn readahead_and_llcstat_are_refused_with_their_reasons() {
    let dir = scratch_dir("lbt-refused");
    for tool in ["readahead", "llcstat"] {
        fs::write(dir.join(format!("{tool}.bpf.o")), tool_object(tool)).expect("write object");
        let (_, yaml) = describe(&dir, tool);
        fs::write(dir.join(format!("{tool}.yaml")), yaml).expect("write config");
    }
    let check = config_check(&dir);
    let report = String::from_utf8_lossy(&check.stdout);
    for program in ["on_cache_miss", "on_cache_ref"] {
        assert!(
            report.contains(&format!(
                "program {program} (perf_event): NOT ATTACHED: section \"perf_event\" names no attach target"
            )),
            "{report}"
        );
    }
    assert!(
        report.contains("config llcstat (")
            && report.contains("key `object`: none of its 2 program(s) loaded and attached"),
        "{report}"
    );
    if common::kernel_at_least(5, 16) {
        assert!(
            report.contains(
                "program page_cache_alloc_ret (fexit/__page_cache_alloc): NOT LOADED: fexit/__page_cache_alloc names \"__page_cache_alloc\", which this kernel's BTF does not have (ESRCH)"
            ),
            "{report}"
        );
    } else if common::in_kernel_matrix() {
        // Before the folios, every function it probes is there.
        assert!(
            report
                .lines()
                .any(|l| l.starts_with("config readahead (") && l.contains("): OK")),
            "{report}"
        );
    }
}
