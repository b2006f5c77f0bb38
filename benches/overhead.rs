//! Kernel-side overhead benchmark: what a BPF program built from our shared
//! helpers (bpf/include/exporter.bpf.h) adds to every event it traces.
//!
//! A tight getpid() loop is timed with nothing attached, then with one
//! program at a time attached to `tracepoint/syscalls/sys_enter_getpid` and to
//! `raw_tp/sys_enter`: an empty program, a counter with a simple key, one with
//! a complex key, and an exp2 histogram (benches/bpf/overhead.bpf.c). The
//! difference to the bare loop is the cost per event. Some shipped programs
//! are measured the same way on events a loop can drive: `syscalls` on the
//! getpid loop, `signals` on a kill() loop, and the scheduler programs on a
//! two-thread pipe ping-pong.
//!
//! Variants are interleaved: every round runs each of them once, in an order
//! rotated per round, each right after a run of the same workload with
//! nothing attached. The cost reported is the median over rounds of those
//! paired differences: load on a shared machine drifts over seconds, so a
//! difference between neighbours is much steadier than one between separate
//! medians. The loop is pinned to one CPU and timed by its thread's CPU time,
//! not wall time, so time spent preempted by other work does not count.
//!
//! The contention table counts one key from every CPU: the getpid loop runs
//! on one thread (on each of two CPUs in turn) and on two threads at once,
//! with and without the program, against one loaded object per round and in
//! an order symmetric in time. Its ratio is the median of the rounds' own
//! 2-thread/1-thread ratios, so drift between rounds does not enter it.
//!
//! Run as root: `cargo bench --bench overhead`. Options after `--`:
//! `--rounds N` (7), `--calls N` getpid calls per measurement (1M; the kill
//! loop and the ping-pong scale from it), `--contention-rounds N` (31) and
//! `--contention-calls N` (calls / 4), `--cpu N` (the last CPU),
//! `--only WORD` (rows or hooks containing WORD), `--verbose` (every sample),
//! `--prog-stats` (one extra pass with the kernel's BPF stats on, printing
//! each program's own run time per run), `--object PATH --program
//! NAME[,NAME]` (a program of your own in the contention table),
//! `--bio-reads N` (4000 direct reads per side and round for biolatency,
//! whose completions run in interrupt context and are timed by the
//! kernel's BPF run-time statistics instead).

#[path = "../tests/common/mod.rs"]
mod common;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use libbpf_rs::{Link, MapCore, MapFlags, Object, ObjectBuilder};

/// The reference exporter's published tracepoint overhead (its benchmark, its
/// machine): empty, simple key, complex key, in ns per event.
const REFERENCE: &str = "tracepoint +15 ns (empty), +35 ns (simple key), +96 ns (complex key)";

const HIST_MAX_BUCKET: u64 = 26;

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Makes sure tracefs is mounted: libbpf resolves syscall tracepoints there.
fn ensure_tracefs() {
    if Path::new("/sys/kernel/tracing/events/syscalls").exists()
        || Path::new("/sys/kernel/debug/tracing/events/syscalls").exists()
    {
        return;
    }
    let status = Command::new("mount")
        .args(["-t", "tracefs", "nodev", "/sys/kernel/tracing"])
        .status()
        .expect("run mount");
    assert!(
        status.success() && Path::new("/sys/kernel/tracing/events/syscalls").exists(),
        "tracefs is not mounted and mounting it at /sys/kernel/tracing failed"
    );
}

// --- workloads -----------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Workload {
    /// `syscall(SYS_getpid)` in a loop: one sys_enter_getpid event per op.
    Getpid,
    /// `kill(self, SIGUSR1)` with SIGUSR1 ignored: one signal_generate per op.
    Kill,
    /// A one-byte round trip between two threads on the same CPU through two
    /// pipes: about two context switches and wakeups per op.
    PingPong,
}

impl Workload {
    fn describe(self) -> &'static str {
        match self {
            Workload::Getpid => "getpid() loop",
            Workload::Kill => "kill(self, ignored SIGUSR1) loop",
            Workload::PingPong => "pipe ping-pong, 2 threads on 1 CPU",
        }
    }
}

fn getpid_loop(n: u64) {
    for _ in 0..n {
        // SAFETY: a plain syscall, no arguments.
        std::hint::black_box(unsafe { libc::syscall(libc::SYS_getpid) });
    }
}

fn kill_loop(n: u64) {
    // SAFETY: plain getters and signal sends to ourselves, ignored.
    unsafe {
        let pid = libc::getpid();
        for _ in 0..n {
            libc::kill(pid, libc::SIGUSR1);
        }
    }
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0i32; 2];
    // SAFETY: fds has room for two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both were just opened and are owned here.
    unsafe {
        use std::os::fd::FromRawFd;
        (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
    }
}

fn thread_switches() -> u64 {
    // SAFETY: zeroed rusage is valid output space.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: ru outlives the call.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    (ru.ru_nvcsw + ru.ru_nivcsw) as u64
}

/// Runs `warm` untimed then `n` timed round trips; returns the CPU time both
/// threads used and the context switches they made during the timed part.
fn ping_pong(warm: u64, n: u64) -> (f64, u64) {
    const TRIP: u8 = 1;
    const MARK: u8 = 2; // the peer starts counting its switches
    const END: u8 = 3; // the peer returns its switches since MARK
    let (a_rx, a_tx) = pipe();
    let (b_rx, b_tx) = pipe();
    // The thread inherits this thread's affinity: the same single CPU.
    let peer = std::thread::spawn(move || {
        let mut byte = [0u8; 1];
        let (mut start, mut start_cpu) = (0, 0.0);
        loop {
            // SAFETY: one-byte reads and writes on our own pipes.
            let r = unsafe { libc::read(a_rx.as_raw_fd(), byte.as_mut_ptr().cast(), 1) };
            assert_eq!(r, 1, "ping-pong read");
            match byte[0] {
                MARK => (start, start_cpu) = (thread_switches(), common::thread_cpu_ns()),
                END => {
                    return (
                        thread_switches() - start,
                        common::thread_cpu_ns() - start_cpu,
                    )
                }
                _ => {}
            }
            // SAFETY: as above.
            unsafe { libc::write(b_tx.as_raw_fd(), byte.as_ptr().cast(), 1) };
        }
    });
    let trip = |v: u8| {
        let mut byte = [v];
        // SAFETY: as above.
        unsafe {
            libc::write(a_tx.as_raw_fd(), byte.as_ptr().cast(), 1);
            if v != END {
                libc::read(b_rx.as_raw_fd(), byte.as_mut_ptr().cast(), 1);
            }
        }
    };
    for _ in 0..warm {
        trip(TRIP);
    }
    trip(MARK);
    let (mine, t) = (thread_switches(), common::thread_cpu_ns());
    for _ in 0..n {
        trip(TRIP);
    }
    let (mine, cpu) = (thread_switches() - mine, common::thread_cpu_ns() - t);
    trip(END);
    let (theirs, their_cpu) = peer.join().expect("ping-pong peer");
    (cpu + their_cpu, mine + theirs)
}

/// The getpid loop on each of `cpus` at once, one thread pinned to each,
/// `n` calls per thread after a warm-up, all starting together; thread CPU
/// ns per call over all of them.
fn getpid_on(cpus: &[usize], n: u64) -> f64 {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(cpus.len()));
    let threads: Vec<_> = cpus
        .iter()
        .map(|&c| {
            let barrier = std::sync::Arc::clone(&barrier);
            std::thread::spawn(move || {
                common::pin_to_cpu(c);
                getpid_loop(n / 20);
                barrier.wait();
                let t = common::thread_cpu_ns();
                getpid_loop(n);
                common::thread_cpu_ns() - t
            })
        })
        .collect();
    let total: f64 = threads
        .into_iter()
        .map(|t| t.join().expect("getpid thread"))
        .sum();
    total / (cpus.len() as u64 * n) as f64
}

/// Runs the workload once untimed (warm-up) and once timed; CPU ns per op,
/// and for the ping-pong the context switches per op.
fn run(w: Workload, n: u64) -> (f64, f64) {
    match w {
        Workload::Getpid | Workload::Kill => {
            let f = if w == Workload::Getpid {
                getpid_loop
            } else {
                kill_loop
            };
            f(n / 20);
            let t = common::thread_cpu_ns();
            f(n);
            ((common::thread_cpu_ns() - t) / n as f64, 1.0)
        }
        Workload::PingPong => {
            let (ns, switches) = ping_pong(n / 20, n);
            (ns / n as f64, switches as f64 / n as f64)
        }
    }
}

// --- programs ------------------------------------------------------------

#[derive(Clone, Copy)]
enum Source {
    /// benches/bpf/overhead.bpf.c, compiled at bench time.
    Bench,
    /// A built-in object, by name.
    Shipped(&'static str),
    /// `--object PATH`: a `.bpf.o` of the user's, measured beside ours.
    External,
    /// A `probe:` config (its YAML): the generic probe program, loaded
    /// through the exporter's own load path as a config's would be.
    Probe(&'static str),
    /// The exporter itself, running with these flags (none: the default
    /// set), as an operator runs it.
    Exporter(&'static [&'static str]),
}

/// How to check that the program really fired once per op.
#[derive(Clone, Copy)]
enum Check {
    Skip,
    /// Sum of all values of the map.
    Sum(&'static str),
    /// Sum of a histogram map's bucket counts (its _sum bucket left out).
    HistCount(&'static str),
}

struct Job {
    /// Table row: the variant, or the shipped program's name.
    row: &'static str,
    /// "tp" or "raw" for the bench variants; the hooks for shipped programs.
    column: &'static str,
    workload: Workload,
    source: Source,
    progs: &'static [&'static str],
    check: Check,
    /// ns per op with the program attached, one per round.
    with: Vec<f64>,
    /// ns per op with nothing attached, measured just before each of `with`:
    /// noise on this machine drifts over seconds, so a difference between
    /// neighbours is far steadier than one between separate medians.
    base: Vec<f64>,
    /// Events per op seen in the baseline runs (context switches for the
    /// ping-pong, 1 for the loops).
    events: Vec<f64>,
}

impl Job {
    fn new(
        row: &'static str,
        column: &'static str,
        workload: Workload,
        source: Source,
        progs: &'static [&'static str],
        check: Check,
    ) -> Job {
        Job {
            row,
            column,
            workload,
            source,
            progs,
            check,
            with: Vec::new(),
            base: Vec::new(),
            events: Vec::new(),
        }
    }

    fn deltas(&self) -> Vec<f64> {
        self.with
            .iter()
            .zip(&self.base)
            .map(|(w, b)| w - b)
            .collect()
    }

    /// Median of the paired differences: the cost the program adds per op.
    fn delta(&self) -> f64 {
        common::median(self.deltas())
    }

    /// Half the interquartile range of the paired differences.
    fn noise(&self) -> f64 {
        let mut d = self.deltas();
        d.sort_by(|a, b| a.total_cmp(b));
        (d[d.len() * 3 / 4] - d[d.len() / 4]) / 2.0
    }
}

fn open_load(source: Source, bench_obj: &Path, progs: &[&str]) -> Object {
    let mut builder = ObjectBuilder::default();
    let mut open = match source {
        Source::Bench => builder.open_file(bench_obj),
        Source::Shipped(name) => {
            let bytes = ebpf_exporter::object::embedded::find(name)
                .unwrap_or_else(|| panic!("no built-in object {name}"));
            builder.open_memory(bytes)
        }
        Source::External => {
            let path: String = arg("--object", String::new());
            builder.open_file(&path)
        }
        Source::Probe(_) | Source::Exporter(_) => {
            unreachable!("probes and the exporter load their own way")
        }
    }
    .expect("open BPF object");
    for mut p in open.progs_mut() {
        let wanted = progs.iter().any(|w| p.name() == *w);
        p.set_autoload(wanted);
    }
    open.load().expect("load BPF object")
}

fn attach(obj: &Object, progs: &[&str]) -> Vec<Link> {
    let links: Vec<Link> = obj
        .progs_mut()
        .filter(|p| progs.iter().any(|w| p.name() == *w))
        .map(|p| {
            p.attach()
                .unwrap_or_else(|e| panic!("attach {:?}: {e:#}", p.name()))
        })
        .collect();
    assert_eq!(links.len(), progs.len(), "programs {progs:?} found");
    links
}

fn map_sum(obj: &Object, name: &str, keep: impl Fn(&[u8]) -> bool) -> u64 {
    let map = obj
        .maps()
        .find(|m| m.name() == name)
        .unwrap_or_else(|| panic!("map {name}"));
    map.keys()
        .filter(|k| keep(k))
        .filter_map(|k| map.lookup(&k, MapFlags::ANY).ok().flatten())
        .map(|v| u64::from_ne_bytes(v[..8].try_into().expect("u64 value")))
        .sum()
}

/// The kernel's run count and total run time of a loaded program, counted
/// while BPF stats are enabled.
fn prog_stats(fd: i32) -> (u64, u64) {
    // SAFETY: zeroed info is valid output space.
    let mut info: libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
    // SAFETY: info and len outlive the call.
    let rc =
        unsafe { libbpf_sys::bpf_prog_get_info_by_fd(fd, &mut info as *mut _ as *mut _, &mut len) };
    assert_eq!(rc, 0, "bpf_prog_get_info_by_fd");
    (info.run_cnt, info.run_time_ns)
}

/// Each of `obj`'s programs named in `progs`: its name, run count and run
/// time (zero unless BPF stats are enabled).
fn stats_of(obj: &Object, progs: &[&str]) -> Vec<(String, u64, u64)> {
    obj.progs()
        .filter(|p| progs.iter().any(|w| p.name() == *w))
        .map(|p| {
            let (cnt, time) = prog_stats(p.as_fd().as_raw_fd());
            (p.name().to_string_lossy().into_owned(), cnt, time)
        })
        .collect()
}

/// Turns the kernel's BPF run-time statistics on, for as long as the
/// returned fd is held: they add two clock reads to every program run.
fn enable_stats() -> OwnedFd {
    // SAFETY: a plain syscall wrapper; the fd is owned below.
    let fd = unsafe { libbpf_sys::bpf_enable_stats(libbpf_sys::BPF_STATS_RUN_TIME) };
    assert!(fd >= 0, "BPF_ENABLE_STATS");
    // SAFETY: fd was just opened and is owned here.
    unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
}

/// The median of `v`, with its range: "1.05x (0.95-1.10)".
fn spread(v: &[f64]) -> String {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    format!(
        "{:.2}x ({:.2}-{:.2})",
        common::median(v.clone()),
        v[0],
        v[v.len() - 1]
    )
}

/// Loads the job's program(s), attaches them, runs the workload and checks
/// the program saw every op. Returns ns per op and, per program, its run
/// count and run time (zero unless BPF stats are enabled).
/// Plans a probe config and loads it as the exporter does, attached.
fn load_probe(yaml: &str) -> ebpf_exporter::object::LoadedObject {
    use ebpf_exporter::config::load::{parse_config, ConfigSource};
    let config = parse_config("probe", "<bench>", ConfigSource::Embedded, yaml)
        .unwrap_or_else(|e| panic!("probe config: {e}"));
    let planned = ebpf_exporter::probes::plan(&config).unwrap_or_else(|e| panic!("probe: {e}"));
    let programs = planned.config.spec.programs.clone().unwrap_or_default();
    let opts = ebpf_exporter::object::load::LoadOptions {
        kaddrs: &std::collections::HashMap::new(),
        btf_path: None,
        alternatives: &[],
        include: &[],
        exclude: &programs.exclude,
        attach: &programs.attach,
        constants: &std::collections::BTreeMap::new(),
        maps: &planned.config.spec.maps,
        entries: None,
        typed_globals: &planned.globals,
    };
    let bytes = ebpf_exporter::object::source::ObjectBytes {
        origin: "built-in:probe".into(),
        bytes: std::borrow::Cow::Borrowed(ebpf_exporter::object::embedded::PROBE),
        path: None,
    };
    ebpf_exporter::object::load_object(&bytes, &opts).unwrap_or_else(|e| panic!("probe load: {e}"))
}

fn measure(job: &Job, bench_obj: &Path, n: u64) -> (f64, Vec<(String, u64, u64)>) {
    if let Source::Exporter(args) = job.source {
        // Started (every config attached) before the loop, stopped after.
        let exporter = common::Running::start(args);
        let (ns, _) = run(job.workload, n);
        drop(exporter);
        return (ns, Vec::new());
    }
    if let Source::Probe(yaml) = job.source {
        let loaded = load_probe(yaml);
        let (ns, _) = run(job.workload, n);
        let stats = stats_of(&loaded.object, job.progs);
        if let Check::Sum(m) = job.check {
            let seen = map_sum(&loaded.object, m, |_| true);
            assert!(
                seen >= n,
                "{}: the probe recorded {seen} events for {n} calls",
                job.row
            );
        }
        return (ns, stats);
    }
    let obj = open_load(job.source, bench_obj, job.progs);
    let links = attach(&obj, job.progs);
    let (ns, _) = run(job.workload, n);
    let stats = stats_of(&obj, job.progs);
    drop(links);
    let seen = match job.check {
        Check::Skip => None,
        Check::Sum(m) => Some(map_sum(&obj, m, |_| true)),
        Check::HistCount(m) => Some(map_sum(&obj, m, |k| {
            u64::from_ne_bytes(k[8..16].try_into().expect("bucket")) <= HIST_MAX_BUCKET
        })),
    };
    if let Some(seen) = seen {
        assert!(
            seen >= n,
            "{} / {}: the program recorded {seen} events for {n} calls",
            job.row,
            job.column
        );
    }
    (ns, stats)
}

/// The shipped `syscalls` program's count, as a probe.
const PROBE_SYSCALLS: &str = "metrics:
  counters:
    - name: syscalls_total
      help: Syscalls by number
      probe: {hook: tracepoint/raw_syscalls/sys_enter}
      labels:
        - {name: syscall, field: id, decoders: [{name: uint}]}
";

/// The same, on the raw tracepoint the shipped program uses.
const PROBE_SYSCALLS_RAW: &str = "metrics:
  counters:
    - name: syscalls_total
      help: Syscalls by number
      probe: {hook: raw_tp/sys_enter}
      labels:
        - {name: syscall, field: id, decoders: [{name: uint}]}
";

/// `runqlat` as probes: run-queue latency from a wakeup (or a new task's
/// wakeup) to the switch that runs the task, paired by pid.
const PROBE_RUNQLAT: &str = "metrics:
  histograms:
    - name: runqlat_seconds
      help: Run queue latency
      bucket_type: exp2
      bucket_max: 26
      bucket_multiplier: 0.000001
      probe:
        start: {hook: tracepoint/sched/sched_wakeup, match: [pid]}
        end: {hook: tracepoint/sched/sched_switch, match: [next_pid]}
        value: latency_us
    - name: runqlat_new_seconds
      help: Run queue latency of new tasks
      bucket_type: exp2
      bucket_max: 26
      bucket_multiplier: 0.000001
      probe:
        start: {hook: tracepoint/sched/sched_wakeup_new, match: [pid]}
        end: {hook: tracepoint/sched/sched_switch, match: [next_pid]}
        value: latency_us
";

/// The same on BTF-typed tracepoints, as the shipped program hooks them,
/// matched on the tasks themselves: paired through task storage.
const PROBE_RUNQLAT_BTF: &str = "metrics:
  histograms:
    - name: runqlat_seconds
      help: Run queue latency
      bucket_type: exp2
      bucket_max: 26
      bucket_multiplier: 0.000001
      probe:
        start: {hook: tp_btf/sched_wakeup, match: [task]}
        end: {hook: tp_btf/sched_switch, match: [next]}
        value: latency_us
    - name: runqlat_new_seconds
      help: Run queue latency of new tasks
      bucket_type: exp2
      bucket_max: 26
      bucket_multiplier: 0.000001
      probe:
        start: {hook: tp_btf/sched_wakeup_new, match: [task]}
        end: {hook: tp_btf/sched_switch, match: [next]}
        value: latency_us
";

/// One latency pair on tracefs tracepoints, wakeup to switch-in matched on
/// pid fields, beside the same job in C (`tp_pair_*`).
const PROBE_WAKEUP_PAIR: &str = "metrics:
  histograms:
    - name: wakeup_latency_seconds
      help: Wakeup to switch-in
      bucket_type: exp2
      bucket_max: 26
      bucket_multiplier: 0.000001
      probe:
        start: {hook: tracepoint/sched/sched_wakeup, match: [pid]}
        end: {hook: tracepoint/sched/sched_switch, match: [next_pid]}
        value: latency_us
";

/// The bench's simple-key counter (a count per process), as a probe.
const PROBE_BY_PID: &str = "metrics:
  counters:
    - name: getpid_by_pid_total
      help: getpid() calls by process
      probe: {hook: tracepoint/syscalls/sys_enter_getpid}
      labels:
        - {name: pid, decoders: [{name: uint}]}
";

fn jobs() -> Vec<Job> {
    use Check::*;
    use Source::*;
    use Workload::*;
    vec![
        Job::new("empty program", "tp", Getpid, Bench, &["tp_empty"], Skip),
        Job::new("empty program", "raw", Getpid, Bench, &["raw_empty"], Skip),
        Job::new(
            "counter, simple key (pid)",
            "tp",
            Getpid,
            Bench,
            &["tp_simple"],
            Sum("ovh_simple"),
        ),
        Job::new(
            "counter, simple key (pid)",
            "raw",
            Getpid,
            Bench,
            &["raw_simple"],
            Sum("ovh_simple"),
        ),
        Job::new(
            "counter, complex key (comm+pid+u64)",
            "tp",
            Getpid,
            Bench,
            &["tp_complex"],
            Sum("ovh_complex"),
        ),
        Job::new(
            "counter, complex key (comm+pid+u64)",
            "raw",
            Getpid,
            Bench,
            &["raw_complex"],
            Sum("ovh_complex"),
        ),
        Job::new(
            "exp2 histogram (ee_hist_exp2)",
            "tp",
            Getpid,
            Bench,
            &["tp_hist"],
            HistCount("ovh_hist"),
        ),
        Job::new(
            "exp2 histogram (ee_hist_exp2)",
            "raw",
            Getpid,
            Bench,
            &["raw_hist"],
            HistCount("ovh_hist"),
        ),
        // Shipped programs, from the objects built into the binary.
        Job::new(
            "syscalls",
            "tp_btf/sys_exit (+ sched_process_exit), as shipped",
            Getpid,
            Shipped("syscalls"),
            &["syscalls_exit", "syscalls_exit_task"],
            Skip,
        ),
        // What an operator would quote: the whole default set, as the
        // exporter runs it with no flags, per syscall.
        Job::new(
            "default set",
            "the exporter, no flags",
            Getpid,
            Exporter(&[]),
            &[],
            Skip,
        ),
        Job::new(
            "signals",
            "tp_btf/signal_generate",
            Kill,
            Shipped("signals"),
            &["signal_generate"],
            Skip,
        ),
        // The same jobs as probes: config only, run by the generic program.
        Job::new(
            "syscalls (probe)",
            "tracepoint/raw_syscalls/sys_enter, by id",
            Getpid,
            Probe(PROBE_SYSCALLS),
            &["tracepoint0"],
            Skip,
        ),
        Job::new(
            "syscalls (probe)",
            "raw_tp/sys_enter, by id",
            Getpid,
            Probe(PROBE_SYSCALLS_RAW),
            &["raw_tp0"],
            Skip,
        ),
        Job::new(
            "pid count (probe)",
            "tracepoint/syscalls/sys_enter_getpid",
            Getpid,
            Probe(PROBE_BY_PID),
            &["tracepoint0"],
            Skip,
        ),
        Job::new(
            "pid count (C)",
            "tracepoint/syscalls/sys_enter_getpid",
            Getpid,
            Bench,
            &["tp_simple"],
            Sum("ovh_simple"),
        ),
        Job::new(
            "context_switches",
            "tp_btf/sched_switch + sched_migrate_task",
            PingPong,
            Shipped("context_switches"),
            &["context_switch", "sched_migrate"],
            Skip,
        ),
        Job::new(
            "runqlat",
            "tp_btf/sched_wakeup(_new) + sched_switch",
            PingPong,
            Shipped("runqlat"),
            &["runqlat_wakeup", "runqlat_wakeup_new", "runqlat_switch"],
            Skip,
        ),
        Job::new(
            "runqlat (probe)",
            "tracepoint sched_wakeup(_new) → sched_switch",
            PingPong,
            Probe(PROBE_RUNQLAT),
            &["start0", "tracepoint0", "start1", "tracepoint1"],
            Skip,
        ),
        Job::new(
            "runqlat (probe)",
            "tp_btf sched_wakeup(_new) → sched_switch",
            PingPong,
            Probe(PROBE_RUNQLAT_BTF),
            &["btf_start0", "tp_btf0", "btf_start1", "tp_btf1"],
            Skip,
        ),
        Job::new(
            "wakeup pair (probe)",
            "tracepoint sched_wakeup → sched_switch",
            PingPong,
            Probe(PROBE_WAKEUP_PAIR),
            &["start0", "tracepoint0"],
            Skip,
        ),
        Job::new(
            "wakeup pair (C)",
            "tracepoint sched_wakeup → sched_switch",
            PingPong,
            Bench,
            &["tp_pair_wakeup", "tp_pair_switch"],
            Skip,
        ),
        Job::new(
            "cgroup_cpu",
            "tp_btf/sched_switch",
            PingPong,
            Shipped("cgroup_cpu"),
            &["cgroup_cpu_switch"],
            Skip,
        ),
    ]
}

/// What a probe config costs to start, as a config's start does it:
/// planning (tracefs or BTF), load (verifier) and attach; ms, median of 5.
fn start_ms(yaml: &str) -> f64 {
    let times: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let loaded = load_probe(yaml);
            let ms = t.elapsed().as_secs_f64() * 1e3;
            // Detaching waits out an RCU grace period (tens of ms): a
            // stop's cost, not a start's.
            drop(loaded);
            ms
        })
        .collect();
    common::median(times)
}

// --- block I/O -------------------------------------------------------------

/// `biolatency` as a probe: issue to completion, paired by the request as
/// the shipped program pairs them, labelled by the disk and the request's
/// flags read through the request, as the shipped program reads them.
const PROBE_BIOLATENCY: &str = "metrics:
  histograms:
    - name: bio_latency_seconds
      help: Block I/O latency from issue to completion
      bucket_type: exp2
      bucket_max: 27
      bucket_multiplier: 0.000001
      probe:
        start: {hook: raw_tp/block_rq_issue, match: [rq]}
        end: {hook: raw_tp/block_rq_complete, match: [rq]}
        value: latency_us
      labels:
        - {name: major, field: rq.q.disk.major, decoders: [{name: uint}]}
        - {name: minor, field: rq.q.disk.first_minor, decoders: [{name: uint}]}
        - {name: flags, field: rq.cmd_flags, decoders: [{name: uint}]}
";

/// A file on a disk, for reads that each become a block request.
struct DiskFile {
    dir: std::path::PathBuf,
    file: std::fs::File,
    blocks: u64,
}

impl DiskFile {
    /// 16 MiB under /var/tmp (a disk, where /tmp may be memory), opened
    /// with O_DIRECT so that no read is served from the page cache.
    fn new() -> DiskFile {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = Path::new("/var/tmp").join(format!("ee-bench-bio-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory on disk");
        let path = dir.join("data");
        std::fs::write(&path, vec![1u8; 16 << 20]).expect("write the file");
        std::fs::File::open(&path)
            .and_then(|f| f.sync_all())
            .expect("sync the file");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(&path)
            .expect("open with O_DIRECT");
        DiskFile {
            dir,
            file,
            blocks: (16 << 20) / 4096,
        }
    }

    /// `n` 4 KiB reads at spread offsets.
    fn read(&self, n: u64) {
        use std::os::unix::fs::FileExt;
        // O_DIRECT wants the buffer aligned to the block size.
        let mut buf = vec![0u8; 8192];
        let at = buf.as_ptr().align_offset(4096);
        let block = &mut buf[at..at + 4096];
        for i in 0..n {
            let offset = (i * 37 % self.blocks) * 4096;
            self.file.read_exact_at(block, offset).expect("direct read");
        }
    }
}

impl Drop for DiskFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// BPF run time per block request of a pair of programs (`stats_of`):
/// the and the completion's run times over the completions, which
/// must be at least the `reads` made.
fn per_request(stats: &[(String, u64, u64)], complete: &str, reads: u64) -> f64 {
    let done = stats
        .iter()
        .find(|(n, _, _)| n == complete)
        .map_or(0, |(_, cnt, _)| *cnt);
    assert!(
        done >= reads,
        "{complete} ran {done} times for {reads} reads"
    );
    stats.iter().map(|(_, _, time)| *time as f64).sum::<f64>() / done as f64
}

/// Per round, the shipped `biolatency` and the probe on the same reads:
/// ns of BPF run time per request, each. A request's completion runs in
/// interrupt context on any CPU, beyond a thread's CPU clock, so the
/// kernel's own run-time statistics measure both sides here.
fn biolatency_rounds(rounds: usize, reads: u64) -> Vec<(f64, f64)> {
    let _stats = enable_stats();
    let disk = DiskFile::new();
    let mut out = Vec::new();
    for round in 0..rounds {
        let shipped = || {
            let progs = ["bio_issue", "bio_complete"];
            let obj = open_load(Source::Shipped("biolatency"), Path::new(""), &progs);
            let _links = attach(&obj, &progs);
            disk.read(reads);
            per_request(&stats_of(&obj, &progs), "bio_complete", reads)
        };
        let probe = || {
            let loaded = load_probe(PROBE_BIOLATENCY);
            disk.read(reads);
            let stats = stats_of(&loaded.object, &["raw_start0", "raw_tp0"]);
            per_request(&stats, "raw_tp0", reads)
        };
        // Alternate which goes first, so drift over a round hits both.
        let (a, b) = if round % 2 == 0 {
            let a = shipped();
            (a, probe())
        } else {
            let b = probe();
            (shipped(), b)
        };
        out.push((a, b));
    }
    out
}

// --- contention ----------------------------------------------------------

/// A program that counts one key from every CPU, timed with one thread and
/// with two threads on two CPUs.
struct Contended {
    row: &'static str,
    source: Source,
    progs: &'static [&'static str],
    check: Check,
    /// Per round: ns the program adds per call with one thread at a time
    /// (on each of the two CPUs in turn, averaged) ...
    one: Vec<f64>,
    /// ... and with both threads at once, and the ratio of the two.
    two: Vec<f64>,
    ratio: Vec<f64>,
    /// Per round: the bare loop's ns per call with two threads over one.
    /// When both vCPUs are busy a VM's host may run each of them slower
    /// (SMT siblings, frequency), which stretches every instruction,
    /// program or not; this is that stretch.
    speed: Vec<f64>,
}

impl Contended {
    fn new(
        row: &'static str,
        source: Source,
        progs: &'static [&'static str],
        check: Check,
    ) -> Contended {
        Contended {
            row,
            source,
            progs,
            check,
            one: Vec::new(),
            two: Vec::new(),
            ratio: Vec::new(),
            speed: Vec::new(),
        }
    }

    /// One round. The 1-thread figure runs on each of the two CPUs the
    /// 2-thread figure uses, so both cover the same CPUs (CPU 0 takes most
    /// interrupts here). Everything is measured against the same loaded
    /// object, in the order base 1, base 2, with 2, with 1, with 1, with 2,
    /// base 2, base 1: symmetric in time, so a linear drift in machine
    /// speed over the round cancels out of both differences instead of
    /// landing in their ratio.
    fn round(&mut self, bench_obj: &Path, n: u64, cpus: [usize; 2]) {
        let obj = open_load(self.source, bench_obj, self.progs);
        let one = || (getpid_on(&cpus[..1], n) + getpid_on(&cpus[1..], n)) / 2.0;
        let two = || getpid_on(&cpus, n);
        let (b1, b2) = (one(), two());
        let links = attach(&obj, self.progs);
        let (w2, w1) = (two(), one());
        let (w1b, w2b) = (one(), two());
        drop(links);
        let (b2b, b1b) = (two(), one());
        let d1 = (w1 + w1b - b1 - b1b) / 2.0;
        let d2 = (w2 + w2b - b2 - b2b) / 2.0;
        if let Check::Sum(m) = self.check {
            // 2 × (one thread on each CPU) + 2 × (two threads): 8n calls.
            let seen = map_sum(&obj, m, |_| true);
            assert!(
                seen >= 8 * n,
                "{}: the program recorded {seen} events for {} calls",
                self.row,
                8 * n
            );
        }
        self.one.push(d1);
        self.two.push(d2);
        self.ratio.push(d2 / d1.max(0.1));
        self.speed.push((b2 + b2b) / (b1 + b1b));
    }
}

fn contended() -> Vec<Contended> {
    use Check::*;
    use Source::*;
    vec![
        Contended::new(
            "shared hash, atomic add",
            Bench,
            &["raw_shared"],
            Sum("ovh_shared"),
        ),
        Contended::new("per-CPU hash (ee_percpu_add)", Bench, &["raw_percpu"], Skip),
        Contended::new("empty raw_tp", Bench, &["raw_empty"], Skip),
        Contended::new(
            "syscalls (shipped)",
            Shipped("syscalls"),
            &["syscalls_exit"],
            Skip,
        ),
    ]
}

/// `--object PATH --program NAME[,NAME]`: the user's programs, attached as
/// their sections say, in the contention table (one thread and two) beside
/// ours.
fn external() -> Vec<Contended> {
    let path: String = arg("--object", String::new());
    if path.is_empty() {
        return Vec::new();
    }
    let names: String = arg("--program", String::new());
    assert!(!names.is_empty(), "--object needs --program NAME[,NAME]");
    let progs: &'static [&'static str] = Box::leak(
        names
            .split(',')
            .map(|n| &*Box::leak(n.to_string().into_boxed_str()))
            .collect::<Vec<&'static str>>()
            .into_boxed_slice(),
    );
    let row: &'static str = Box::leak(format!("{path}: {names}").into_boxed_str());
    vec![Contended::new(row, Source::External, progs, Check::Skip)]
}

fn main() {
    // SAFETY: a plain getter.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("the overhead benchmark loads and attaches BPF programs: run it as root");
        std::process::exit(1);
    }
    let started = Instant::now();
    let rounds: usize = arg("--rounds", 7);
    let calls: u64 = arg("--calls", 1_000_000);
    let kills: u64 = arg("--kills", calls / 4);
    let trips: u64 = arg("--trips", calls / 10);
    // SAFETY: a plain getter.
    let ncpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
    let cpu: usize = arg("--cpu", ncpus - 1);
    ensure_tracefs();

    let dir = common::scratch_dir("overhead");
    let bench_obj = dir.join("overhead.bpf.o");
    common::compile_bpf(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/bpf/overhead.bpf.c"),
        &bench_obj,
    );
    common::pin_to_cpu(cpu);
    // SAFETY: ignoring a signal we send ourselves in the kill loop.
    unsafe { libc::signal(libc::SIGUSR1, libc::SIG_IGN) };

    let mut jobs = jobs();
    let mut contention = contended();
    contention.extend(external());
    // `--only WORD`: just the rows or programs containing WORD.
    let only: String = arg("--only", String::new());
    jobs.retain(|j| j.row.contains(only.as_str()) || j.column.contains(only.as_str()));
    contention.retain(|c| c.row.contains(only.as_str()));
    assert!(
        !jobs.is_empty() || !contention.is_empty() || "biolatency".contains(only.as_str()),
        "--only {only} matches nothing"
    );
    // The contention table needs two CPUs: the bench CPU and the one below.
    let pair = if cpu >= 1 {
        Some([cpu, cpu - 1])
    } else if ncpus >= 2 {
        Some([cpu, cpu + 1])
    } else {
        None
    };

    for round in 0..rounds {
        let len = jobs.len();
        // Rotate the order so drift in machine load hits every variant alike.
        for step in 0..len {
            let job = &mut jobs[(round * 3 + step) % len];
            let n = match job.workload {
                Workload::Getpid => calls,
                Workload::Kill => kills,
                Workload::PingPong => trips,
            };
            let (base, events) = run(job.workload, n);
            let (with, _) = measure(job, &bench_obj, n);
            job.base.push(base);
            job.events.push(events);
            job.with.push(with);
        }
    }
    // Contention rounds are shorter and many more: every round yields its
    // own ratio, and a median of many short ratios rides out the bursts of
    // host noise that a few long ones catch.
    let contention_rounds: usize = arg("--contention-rounds", 31);
    let contention_calls: u64 = arg("--contention-calls", calls / 4);
    if let Some(cpus) = pair {
        for round in 0..contention_rounds {
            let len = contention.len();
            for step in 0..len {
                contention[(round + step) % len].round(&bench_obj, contention_calls, cpus);
            }
        }
    }

    if std::env::args().any(|a| a == "--verbose") {
        for j in &jobs {
            let f = |v: &[f64]| v.iter().map(|v| format!("{v:.0}")).collect::<Vec<_>>();
            println!(
                "{:?} {} / {}: with {:?} base {:?}",
                j.workload,
                j.row,
                j.column,
                f(&j.with),
                f(&j.base)
            );
        }
    }

    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default();
    println!(
        "ebpf-exporter kernel-side overhead: {ncpus} CPUs ({model}), kernel {}, pinned to CPU {cpu}",
        kernel.trim()
    );
    println!(
        "{rounds} rounds; per op: median thread CPU time; +ns: median over rounds of (with program - no program run just before)"
    );
    println!("{calls} getpid calls, {kills} kills, {trips} ping-pong round trips per measurement");
    println!();

    let getpid_base: Vec<f64> = jobs
        .iter()
        .filter(|j| j.workload == Workload::Getpid)
        .flat_map(|j| j.base.iter().copied())
        .collect();
    if !getpid_base.is_empty() {
        println!(
            "{:<36} | {:>18} | {:>14} | {:>14} | {:>14}",
            "variant (getpid loop)",
            "tracepoint ns/call",
            "tracepoint +ns",
            "raw_tp ns/call",
            "raw_tp +ns"
        );
        println!("{}", "-".repeat(36 + 18 + 3 * 14 + 12));
        let base = common::median(getpid_base);
        println!(
            "{:<36} | {:>18.1} | {:>14} | {:>14.1} | {:>14}",
            "no program", base, "-", base, "-"
        );
        let find = |row: &str, col: &str| {
            jobs.iter()
                .find(|j| j.row == row && j.column == col)
                .map(|j| {
                    (
                        format!("{:.1}", common::median(j.with.clone())),
                        format!("{:+.1}", j.delta()),
                    )
                })
                .unwrap_or(("-".into(), "-".into()))
        };
        let mut rows: Vec<&str> = Vec::new();
        for j in jobs
            .iter()
            .filter(|j| matches!(j.source, Source::Bench) && !j.row.ends_with("(C)"))
        {
            if !rows.contains(&j.row) {
                rows.push(j.row);
            }
        }
        for row in rows {
            let (tp, tpd) = find(row, "tp");
            let (raw, rawd) = find(row, "raw");
            println!("{row:<36} | {tp:>18} | {tpd:>14} | {raw:>14} | {rawd:>14}");
        }
        let noise: Vec<f64> = jobs
            .iter()
            .filter(|j| matches!(j.source, Source::Bench) && !j.row.ends_with("(C)"))
            .map(Job::noise)
            .collect();
        if !noise.is_empty() {
            println!(
                "noise: half the interquartile range of the paired differences, median over variants: {:.1} ns",
                common::median(noise)
            );
        }
        println!(
            "reference exporter, as published (its own benchmark, measured on a different machine and kernel): \"{REFERENCE}\""
        );
        println!();
    }

    // Contention: the cost per event with one thread and with two threads
    // on two CPUs counting the same key, and their ratio.
    if !contention.is_empty() {
        match pair {
            None => {
                println!("contention: not measurable, this machine has {ncpus} CPU (it needs two)")
            }
            Some([a, b]) => {
                println!(
                    "same key from every CPU: getpid loop, 1 thread (on CPU {a}, then on CPU {b}) and 2 threads (CPUs {a} and {b} at once);"
                );
                println!(
                    "{contention_rounds} rounds of {contention_calls} calls per thread and measurement; +ns: median over rounds; 2 / 1: median over rounds of that round's ratio (its range)"
                );
                println!(
                    "bare loop 2 / 1: the loop's own ns per call with two threads over one, that round; 2 / 1 over bare: their quotient"
                );
                println!(
                    "{:<44} | {:>12} | {:>13} | {:>20} | {:>14} | {:>16}",
                    "program (ours: on every syscall)",
                    "1 thread +ns",
                    "2 threads +ns",
                    "2 / 1 (range)",
                    "bare loop 2/1",
                    "2 / 1 over bare"
                );
                println!("{}", "-".repeat(44 + 12 + 13 + 20 + 14 + 16 + 15));
                for c in &contention {
                    let over: Vec<f64> = c.ratio.iter().zip(&c.speed).map(|(r, s)| r / s).collect();
                    println!(
                        "{:<44} | {:>+12.1} | {:>+13.1} | {:>20} | {:>13.2}x | {:>15.2}x",
                        c.row,
                        common::median(c.one.clone()),
                        common::median(c.two.clone()),
                        spread(&c.ratio),
                        common::median(c.speed.clone()),
                        common::median(over)
                    );
                }
            }
        }
        let one_thread = |row: &str| {
            contention
                .iter()
                .find(|c| c.row == row && !c.one.is_empty())
                .map(|c| common::median(c.one.clone()))
        };
        if let (Some(e), Some(s)) = (one_thread("empty raw_tp"), one_thread("syscalls (shipped)")) {
            println!(
                "syscalls (tp_btf/sys_exit) vs an empty raw_tp program, 1 thread: {:.2}x",
                s / e.max(0.1)
            );
        }
        println!();
    }

    let shipped: Vec<&Job> = jobs
        .iter()
        .filter(|j| {
            matches!(
                j.source,
                Source::Shipped(_) | Source::Probe(_) | Source::Exporter(_)
            ) || j.row.ends_with("(C)")
        })
        .collect();
    if !shipped.is_empty() {
        println!(
            "{:<16} | {:<40} | {:<34} | {:>8} | {:>8} | {:>7} | {:>5} | {:>9} | {:>6}",
            "shipped program",
            "hooks",
            "workload",
            "base ns",
            "with ns",
            "+ns/op",
            "ev/op",
            "+ns/event",
            "noise"
        );
        println!("{}", "-".repeat(16 + 40 + 34 + 8 + 8 + 7 + 5 + 9 + 6 + 24));
        for j in shipped {
            let events = common::median(j.events.clone()).max(1.0);
            println!(
                "{:<16} | {:<40} | {:<34} | {:>8.1} | {:>8.1} | {:>+7.1} | {:>5.2} | {:>+9.1} | {:>6.1}",
                j.row,
                j.column,
                j.workload.describe(),
                common::median(j.base.clone()),
                common::median(j.with.clone()),
                j.delta(),
                events,
                j.delta() / events,
                j.noise()
            );
        }
        println!("ev/op: events per op (context switches per ping-pong round trip, counted in the baseline runs)");
        // Per syscall, against the reference's own yardstick: an empty
        // raw tracepoint program, measured in this same run.
        let delta = |row: &str, column: &str| {
            jobs.iter()
                .find(|j| j.row == row && j.column.starts_with(column) && !j.with.is_empty())
                .map(Job::delta)
        };
        // A probe against the same job in C, on the same hooks.
        for (probe, hand) in [
            ("wakeup pair (probe)", "wakeup pair (C)"),
            ("pid count (probe)", "pid count (C)"),
        ] {
            if let (Some(p), Some(h)) = (delta(probe, ""), delta(hand, "")) {
                println!(
                    "{probe}: {p:+.1} ns per op against C's {h:+.1} ns: {:.2}x",
                    p / h.max(0.1)
                );
            }
        }
        if let Some(empty) = delta("empty program", "raw") {
            for (row, column) in [("syscalls", "tp_btf"), ("default set", "the exporter")] {
                if let Some(d) = delta(row, column) {
                    println!(
                        "{row} per getpid(): {d:+.1} ns, {:.2}x an empty raw_tp program's {empty:+.1} ns",
                        d / empty.max(0.1)
                    );
                }
            }
        }
    }
    // biolatency, shipped and as a probe, on block requests: `--bio-reads`
    // direct reads per side and round.
    if "biolatency".contains(only.as_str()) {
        let reads: u64 = arg("--bio-reads", 4000);
        let costs = biolatency_rounds(rounds, reads);
        let ratios: Vec<f64> = costs.iter().map(|(s, p)| p / s.max(0.1)).collect();
        println!(
            "biolatency, per block request (BPF run time of issue + completion, {reads} 4 KiB O_DIRECT reads per side, {rounds} rounds, medians): shipped {:.1} ns, probe {:.1} ns, probe / shipped {} over rounds",
            common::median(costs.iter().map(|c| c.0).collect()),
            common::median(costs.iter().map(|c| c.1).collect()),
            spread(&ratios),
        );
        println!(
            "biolatency (probe): planned, loaded and attached in {:.1} ms (median of 5)",
            start_ms(PROBE_BIOLATENCY)
        );
    }
    // What a probe costs to start: planning (tracefs or BTF), load
    // (verifier) and attach, as a config's start does it, median of 5.
    for job in jobs.iter() {
        if let Source::Probe(yaml) = job.source {
            println!(
                "{}: planned, loaded and attached in {:.1} ms (median of 5)",
                job.row,
                start_ms(yaml)
            );
        }
    }
    if std::env::args().any(|a| a == "--prog-stats") {
        // One more pass with the kernel's BPF stats on (only while the fd is
        // held): each program's own run time, without the hook's dispatch
        // cost. Stats add two clock reads per run, so this pass is kept
        // apart from the timed rounds. Counts include other processes'
        // events on hooks that fire system-wide.
        let stats_fd = enable_stats();
        println!();
        println!(
            "{:<36} | {:<7} | {:<20} | {:>10} | {:>8}",
            "program body (BPF stats)", "column", "program", "runs", "ns/run"
        );
        for job in &jobs {
            let n = match job.workload {
                Workload::Getpid => calls,
                Workload::Kill => kills,
                Workload::PingPong => trips,
            };
            let (_, stats) = measure(job, &bench_obj, n);
            for (name, cnt, time) in stats {
                println!(
                    "{:<36} | {:<7} | {:<20} | {:>10} | {:>8.1}",
                    job.row,
                    job.column.split('/').next().unwrap_or(""),
                    name,
                    cnt,
                    time as f64 / cnt.max(1) as f64
                );
            }
        }
        drop(stats_fd);
    }
    println!("total time: {:.1} s", started.elapsed().as_secs_f64());
    let _ = std::fs::remove_dir_all(dir);
}
