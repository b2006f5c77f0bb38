//! Live configuration, with real BPF on loopback: configs are added,
//! edited, broken, fixed and removed under a running exporter, by each
//! trigger (`POST /-/reload`, SIGHUP, the directory watcher, a ConfigMap
//! `..data` swap), while it is scraped.
//!
//! Tests here compare kernel-wide program and map counts, so they run one
//! at a time.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use common::{eventually, http_get, Running, Scrape, SYSCALLS_COUNTER, SYSCALL_ERRORS};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

const COUNTER: &str = "ebpf_exporter_syscalls_total";
const ERRORS: &str = "ebpf_exporter_syscall_errors_total";
/// The built-in `signals` config, under its own name so that it resolves
/// to the built-in object.
const SIGNALS: &str = "ebpf_exporter_signals_total";

fn write(dir: &Path, name: &str, text: &str) {
    // Written beside and renamed, as editors and config management do, so
    // the watcher never sees half a file.
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).expect("write config");
    std::fs::rename(&tmp, dir.join(name)).expect("rename config");
}

fn signals_config() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/signals.yaml"))
        .expect("built-in signals config")
}

/// A dir with a.yaml (syscall counts) and b.yaml (syscall errors).
fn two_configs(name: &str) -> std::path::PathBuf {
    let dir = common::scratch_dir(name);
    write(&dir, "a.yaml", SYSCALLS_COUNTER);
    write(&dir, "b.yaml", SYSCALL_ERRORS);
    dir
}

fn getppid(n: usize) {
    for _ in 0..n {
        // SAFETY: no arguments, no memory.
        unsafe { libc::getppid() };
    }
}

fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    s.sum(name, labels)
}

fn generation(s: &Scrape, config: &str) -> f64 {
    let found = s.find("ebpf_exporter_config_generation", &[("config", config)]);
    assert_eq!(found.len(), 1, "generation of {config}:\n{}", s.text);
    found[0].value
}

fn program_ids(s: &Scrape, config: &str) -> Vec<u32> {
    let mut ids: Vec<u32> = s
        .find("ebpf_exporter_ebpf_program_info", &[("config", config)])
        .iter()
        .filter_map(|p| p.labels.get("id")?.parse().ok())
        .collect();
    ids.sort();
    ids
}

/// Every series of `name`, by its labels.
fn series(s: &Scrape, name: &str) -> BTreeMap<String, f64> {
    s.find(name, &[])
        .into_iter()
        .map(|x| (format!("{:?}", x.labels), x.value))
        .collect()
}

/// No series of `name` went down from `before` to `after`.
fn assert_grew(before: &Scrape, after: &Scrape, name: &str) {
    let after = series(after, name);
    let before = series(before, name);
    assert!(!before.is_empty(), "{name} has series");
    for (labels, was) in &before {
        let now = after.get(labels).copied().unwrap_or(0.0);
        assert!(now >= *was, "{name}{labels} went from {was} to {now}");
    }
}

/// Whether the signals config serves: it has series once a signal was
/// generated, so signals are sent meanwhile (SIGUSR1 is ignored by the
/// exporter).
fn signals_served(e: &Running) -> bool {
    eventually(Duration::from_secs(5), || {
        e.signal(libc::SIGUSR1);
        e.scrape().has(SIGNALS)
    })
}

fn reload(e: &Running) -> common::Response {
    e.post("/-/reload")
}

fn assert_reloaded(e: &Running) -> String {
    let r = reload(e);
    assert_eq!(r.status, 200, "reload: {}\nlog:\n{}", r.text(), e.log());
    r.text()
}

fn bpftool(args: &[&str]) -> Option<String> {
    let out = Command::new("bpftool")
        .args(args)
        .output()
        .expect("bpftool runs");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The kernel frees a closed program or map after an RCU grace period, so
/// "gone" is checked for a few seconds.
fn prog_gone(id: u32) -> bool {
    eventually(Duration::from_secs(5), || {
        bpftool(&["prog", "show", "id", &id.to_string()]).is_none()
    })
}

fn map_gone(id: u32) -> bool {
    eventually(Duration::from_secs(5), || {
        bpftool(&["map", "show", "id", &id.to_string()]).is_none()
    })
}

/// Kernel-wide counts once nothing is being freed (an exporter of an
/// earlier test may still be going away).
fn stable_counts() -> (usize, usize) {
    let mut last = kernel_counts();
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = kernel_counts();
        if now == last {
            return now;
        }
        last = now;
    }
}

/// Kernel-wide counts settle to `expected` once freeing is done.
fn kernel_counts_settle(expected: (usize, usize)) -> (usize, usize) {
    let mut now = kernel_counts();
    eventually(Duration::from_secs(5), || {
        now = kernel_counts();
        now == expected
    });
    now
}

/// The maps a program uses, from bpftool's JSON.
fn map_ids(prog: u32) -> Vec<u32> {
    let json = bpftool(&["-j", "prog", "show", "id", &prog.to_string()])
        .unwrap_or_else(|| panic!("program {prog} exists"));
    let Some(start) = json.find("\"map_ids\":[") else {
        return Vec::new();
    };
    let rest = &json[start + 11..];
    let end = rest.find(']').expect("closing bracket");
    rest[..end]
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect()
}

/// Kernel-wide numbers of programs and maps.
fn kernel_counts() -> (usize, usize) {
    let count = |kind| {
        let list = bpftool(&[kind, "list"]).unwrap_or_default();
        list.lines()
            .filter(|l| l.chars().next().is_some_and(|c| c.is_ascii_digit()))
            .count()
    };
    (count("prog"), count("map"))
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn add_edit_break_fix_and_remove_over_the_lifecycle_endpoint() {
    let _serial = serial();
    let dir = two_configs("reload-lifecycle");
    let dir_arg = format!("--config.dir={}", dir.display());
    let e = Running::start(&[&dir_arg, "--web.enable-lifecycle", "--no-config.watch"]);
    getppid(3000);
    let first = e.scrape();
    assert!(value(&first, COUNTER, &[("syscall", "getppid")]) >= 3000.0);
    let a_programs = program_ids(&first, "a");
    let b_programs = program_ids(&first, "b");
    assert_eq!((a_programs.len(), b_programs.len()), (2, 2));
    assert_eq!(
        value(&first, "ebpf_exporter_config_last_reload_successful", &[]),
        1.0
    );

    // Add a third config: it appears, the first two keep counting.
    write(&dir, "signals.yaml", &signals_config());
    let body = assert_reloaded(&e);
    assert!(body.contains("1 started, 0 removed, 2 unchanged"), "{body}");
    assert!(signals_served(&e), "{}", e.log());
    let added = e.scrape();
    assert_grew(&first, &added, COUNTER);
    assert_grew(&first, &added, ERRORS);
    assert_eq!(program_ids(&added, "a"), a_programs, "same programs");
    assert_eq!(program_ids(&added, "b"), b_programs, "same programs");
    assert_eq!(
        value(
            &added,
            "ebpf_exporter_config_reloads_total",
            &[("result", "success")]
        ),
        1.0
    );

    // Edit one: its series reset, the others do not.
    let edited = SYSCALLS_COUNTER.replace("System calls by name", "System calls, by name");
    write(&dir, "a.yaml", &edited);
    assert_reloaded(&e);
    getppid(10);
    let after_edit = e.scrape();
    let ppid = value(&after_edit, COUNTER, &[("syscall", "getppid")]);
    assert!(
        (10.0..3000.0).contains(&ppid),
        "getppid after the edit: {ppid}"
    );
    assert_eq!(generation(&after_edit, "a"), 2.0);
    assert_eq!(generation(&after_edit, "b"), 1.0);
    assert_ne!(program_ids(&after_edit, "a"), a_programs, "a was rebuilt");
    assert_eq!(program_ids(&after_edit, "b"), b_programs);
    assert_grew(&added, &after_edit, ERRORS);
    assert!(after_edit
        .text
        .contains("# HELP ebpf_exporter_syscalls_total System calls, by name"));
    for id in &a_programs {
        assert!(prog_gone(*id), "the old version's program {id} is gone");
    }

    // Break it: the old version keeps serving, and the error is exact.
    write(
        &dir,
        "a.yaml",
        &edited.replace("          size: 4", "          sise: 4"),
    );
    let r = reload(&e);
    assert_eq!(r.status, 500, "{}", r.text());
    let path = dir.join("a.yaml");
    let expected = format!(
        "{}:9: key `metrics.counters[0].labels[0]`: unknown field `sise`",
        path.display()
    );
    assert!(r.text().contains(&expected), "{}", r.text());
    // The log reaches the test through a pipe and a reader thread, which
    // may lag the HTTP answer on a loaded machine.
    assert!(
        eventually(Duration::from_secs(5), || e.log().contains(&expected)),
        "{}",
        e.log()
    );
    getppid(10);
    let broken = e.scrape();
    assert_eq!(
        value(&broken, "ebpf_exporter_config_last_reload_successful", &[]),
        0.0
    );
    assert_eq!(
        value(
            &broken,
            "ebpf_exporter_config_last_load_successful",
            &[("config", "a")]
        ),
        0.0
    );
    assert_eq!(
        value(&broken, "ebpf_exporter_enabled_configs", &[("name", "a")]),
        1.0
    );
    assert_eq!(generation(&broken, "a"), 2.0);
    assert_grew(&after_edit, &broken, COUNTER);
    assert_eq!(
        value(
            &broken,
            "ebpf_exporter_config_reloads_total",
            &[("result", "failure")]
        ),
        1.0
    );
    let landing = e.get("/").text();
    assert!(landing.contains("unknown field `sise`"), "{landing}");
    // Without auth, the page names files but not where they live.
    assert!(landing.contains("a.yaml:9: key"), "{landing}");
    assert!(!landing.contains(&dir.display().to_string()), "{landing}");

    // Fix it back to what runs: it applies, and, being what already runs,
    // is not restarted.
    write(&dir, "a.yaml", &edited);
    let body = assert_reloaded(&e);
    assert!(body.contains("0 started, 0 removed, 3 unchanged"), "{body}");
    let fixed = e.scrape();
    assert_eq!(
        value(&fixed, "ebpf_exporter_config_last_reload_successful", &[]),
        1.0
    );
    assert_eq!(
        value(
            &fixed,
            "ebpf_exporter_config_last_load_successful",
            &[("config", "a")]
        ),
        1.0
    );
    assert_eq!(generation(&fixed, "a"), 2.0);
    assert_grew(&broken, &fixed, COUNTER);
    let success_at = value(
        &fixed,
        "ebpf_exporter_config_last_reload_success_timestamp_seconds",
        &[],
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert!((now - success_at).abs() < 60.0, "{success_at} vs {now}");

    // Remove one: its series go, and so do its programs and maps.
    let signal_programs = program_ids(&fixed, "signals");
    assert!(!signal_programs.is_empty());
    let signal_maps: Vec<u32> = signal_programs.iter().flat_map(|p| map_ids(*p)).collect();
    assert!(!signal_maps.is_empty());
    std::fs::remove_file(dir.join("signals.yaml")).expect("remove");
    let body = assert_reloaded(&e);
    assert!(body.contains("0 started, 1 removed, 2 unchanged"), "{body}");
    let removed = e.scrape();
    assert!(!removed.has(SIGNALS), "{}", removed.text);
    assert!(
        !removed.text.contains("config=\"signals\""),
        "{}",
        removed.text
    );
    assert!(
        !removed.text.contains("name=\"signals\""),
        "{}",
        removed.text
    );
    for id in &signal_programs {
        assert!(prog_gone(*id), "program {id} of the removed config");
    }
    for id in &signal_maps {
        assert!(map_gone(*id), "map {id} of the removed config");
    }
    assert_grew(&fixed, &removed, ERRORS);
}

#[test]
fn sighup_and_the_watcher_apply_changes_and_a_configmap_swap_is_seen() {
    let _serial = serial();
    // SIGHUP, with the watcher off: nothing applies until the signal.
    let dir = two_configs("reload-sighup");
    let dir_arg = format!("--config.dir={}", dir.display());
    let e = Running::start(&[&dir_arg, "--no-config.watch"]);
    write(&dir, "signals.yaml", &signals_config());
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!e.scrape().has(SIGNALS), "applied without a trigger");
    e.signal(libc::SIGHUP);
    assert!(signals_served(&e), "{}", e.log());
    assert!(
        eventually(Duration::from_secs(5), || e
            .log()
            .contains("reload (SIGHUP): 1 started")),
        "{}",
        e.log()
    );
    assert_eq!(
        e.post("/-/reload").status,
        403,
        "lifecycle API off by default"
    );
    drop(e);

    // The watcher, on by default: a new file applies by itself.
    let dir = two_configs("reload-watch");
    let dir_arg = format!("--config.dir={}", dir.display());
    let e = Running::start(&[&dir_arg]);
    let before = e.scrape();
    write(&dir, "signals.yaml", &signals_config());
    assert!(signals_served(&e), "{}", e.log());
    assert_grew(&before, &e.scrape(), COUNTER);
    std::fs::remove_file(dir.join("signals.yaml")).expect("remove");
    assert!(
        eventually(Duration::from_secs(5), || !e.scrape().has(SIGNALS)),
        "{}",
        e.log()
    );
    drop(e);

    // A ConfigMap volume, updated the way the kubelet does it.
    let dir = common::scratch_dir("reload-configmap");
    std::fs::create_dir(dir.join("..2026_12_01_1")).expect("mkdir");
    write(&dir.join("..2026_12_01_1"), "a.yaml", SYSCALLS_COUNTER);
    std::os::unix::fs::symlink("..2026_12_01_1", dir.join("..data")).expect("link");
    std::os::unix::fs::symlink("..data/a.yaml", dir.join("a.yaml")).expect("link");
    let dir_arg = format!("--config.dir={}", dir.display());
    let e = Running::start(&[&dir_arg]);
    assert!(e.scrape().has(COUNTER));
    let next = dir.join("..2026_12_01_2");
    std::fs::create_dir(&next).expect("mkdir");
    write(&next, "a.yaml", SYSCALLS_COUNTER);
    write(&next, "b.yaml", SYSCALL_ERRORS);
    std::os::unix::fs::symlink("..2026_12_01_2", dir.join("..data_tmp")).expect("link");
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).expect("swap");
    std::os::unix::fs::symlink("..data/b.yaml", dir.join("b.yaml")).expect("link");
    std::fs::remove_dir_all(dir.join("..2026_12_01_1")).expect("old version");
    assert!(
        eventually(Duration::from_secs(5), || e.scrape().has(ERRORS)),
        "{}",
        e.log()
    );
    let s = e.scrape();
    assert_eq!(generation(&s, "a"), 1.0, "a.yaml's content did not change");
    assert_eq!(generation(&s, "b"), 1.0);
}

#[test]
fn strict_reloads_apply_all_or_nothing() {
    let _serial = serial();
    let dir = two_configs("reload-strict");
    let dir_arg = format!("--config.dir={}", dir.display());
    let e = Running::start(&[
        &dir_arg,
        "--config.strict",
        "--web.enable-lifecycle",
        "--no-config.watch",
    ]);
    let (programs, maps) = stable_counts();
    write(&dir, "signals.yaml", &signals_config());
    write(&dir, "broken.yaml", "metrics: {counters: [{name: x}]}\n");
    let r = reload(&e);
    assert_eq!(r.status, 500);
    assert!(r.text().contains("nothing applied"), "{}", r.text());
    assert!(r.text().contains("broken.yaml:1"), "{}", r.text());
    let s = e.scrape();
    assert!(
        !s.has(SIGNALS),
        "a strict reload with a failure applies nothing"
    );
    assert_eq!(
        kernel_counts_settle((programs, maps)),
        (programs, maps),
        "the built config was released"
    );
    std::fs::remove_file(dir.join("broken.yaml")).expect("rm");
    assert_reloaded(&e);
    assert!(signals_served(&e), "{}", e.log());
}

#[test]
fn two_hundred_reloads_under_scrapes_leak_nothing() {
    let _serial = serial();
    let dir = two_configs("reload-loop");
    let dir_arg = format!("--config.dir={}", dir.display());
    let e = Running::start(&[&dir_arg, "--web.enable-lifecycle", "--no-config.watch"]);
    let stop = Arc::new(AtomicBool::new(false));
    let paused = Arc::new(AtomicBool::new(false));
    let (scrapes, failures) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let scraper = {
        let (addr, stop, paused) = (e.addr.clone(), Arc::clone(&stop), Arc::clone(&paused));
        let (scrapes, failures) = (Arc::clone(&scrapes), Arc::clone(&failures));
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if paused.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                let r = http_get(&addr, "/metrics", &[]);
                let text = r.text();
                // Never a half-built or missing config: both are always there.
                let whole = text.contains("# TYPE ebpf_exporter_syscalls_total counter")
                    && text.contains("# TYPE ebpf_exporter_syscall_errors_total counter");
                if r.status != 200 || !whole {
                    failures.fetch_add(1, Ordering::SeqCst);
                }
                scrapes.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let variants = [
        SYSCALLS_COUNTER.to_string(),
        SYSCALLS_COUNTER.replace("System calls by name", "System calls, by name"),
    ];
    let mut baseline = None;
    for i in 0..200 {
        write(&dir, "a.yaml", &variants[(i + 1) % 2]);
        let body = assert_reloaded(&e);
        assert!(body.contains("1 started"), "reload {i}: {body}");
        if i == 19 {
            // Measured with no scrape connection open.
            paused.store(true, Ordering::SeqCst);
            let counts = stable_counts();
            baseline = Some((common::rss_kib(e.pid(), "VmRSS"), fds(e.pid()), counts));
            paused.store(false, Ordering::SeqCst);
        }
    }
    stop.store(true, Ordering::SeqCst);
    scraper.join().expect("scraper");
    std::thread::sleep(Duration::from_millis(300));
    let (rss0, fds0, kernel0) = baseline.expect("baseline taken");
    let (rss1, fds1, kernel1) = (
        common::rss_kib(e.pid(), "VmRSS"),
        fds(e.pid()),
        kernel_counts_settle(kernel0),
    );
    let s = e.scrape();
    assert_eq!(generation(&s, "a"), 201.0);
    assert_eq!(generation(&s, "b"), 1.0);
    assert_eq!(
        value(
            &s,
            "ebpf_exporter_config_reloads_total",
            &[("result", "success")]
        ),
        200.0
    );
    assert!(
        scrapes.load(Ordering::SeqCst) >= 50,
        "scrapes ran alongside"
    );
    assert_eq!(
        failures.load(Ordering::SeqCst),
        0,
        "failed or partial scrapes"
    );
    assert_eq!(fds1, fds0, "file descriptors");
    assert_eq!(kernel1, kernel0, "kernel programs and maps");
    assert!(
        rss1 < rss0 + 4096,
        "RSS grew from {rss0} KiB to {rss1} KiB over 180 reloads"
    );
    eprintln!(
        "200 reloads: {} scrapes, 0 failed; RSS {rss0} -> {rss1} KiB; fds {fds0}; programs/maps {kernel0:?}",
        scrapes.load(Ordering::SeqCst)
    );
}

#[test]
fn systemd_hears_reloading_then_ready() {
    let _serial = serial();
    let dir = two_configs("reload-notify");
    let path = dir.join("notify");
    let socket = std::os::unix::net::UnixDatagram::bind(&path).expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let dir_arg = format!("--config.dir={}", dir.display());
    let e = Running::try_start_with(&[&dir_arg, "--no-config.watch"], |cmd| {
        cmd.env("NOTIFY_SOCKET", &path);
    })
    .unwrap_or_else(|log| panic!("{log}"));
    let mut buf = [0u8; 512];
    let recv = |buf: &mut [u8]| {
        let n = socket.recv(buf).expect("a notification arrives");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert!(recv(&mut buf).starts_with("READY=1\n"));
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let before = ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000;
    e.signal(libc::SIGHUP);
    let reloading = recv(&mut buf);
    let mut lines = reloading.lines();
    assert_eq!(lines.next(), Some("RELOADING=1"), "{reloading}");
    let usec: u64 = lines
        .next()
        .and_then(|l| l.strip_prefix("MONOTONIC_USEC="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("MONOTONIC_USEC in {reloading:?}"));
    assert!(
        usec >= before && usec < before + 10_000_000,
        "{usec} vs {before}"
    );
    let ready = recv(&mut buf);
    assert!(
        ready.starts_with("READY=1\nSTATUS=reloaded: 0 started"),
        "{ready}"
    );
}

fn cap_eff(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .expect("CapEff")
        .trim()
        .to_string()
}

#[test]
fn reload_keeps_what_loading_needs_and_only_when_on() {
    let _serial = serial();
    let dir = two_configs("reload-caps");
    let dir_arg = format!("--config.dir={}", dir.display());
    // On: CAP_BPF, CAP_PERFMON, CAP_SYSLOG, CAP_NET_ADMIN and
    // CAP_DAC_READ_SEARCH, and with them a new config loads after the drop.
    // Before 5.11, where BPF memory counts against RLIMIT_MEMLOCK, also
    // CAP_SYS_RESOURCE, to raise it.
    let e = Running::start(&[&dir_arg, "--web.enable-lifecycle", "--no-config.watch"]);
    let loading = if common::kernel_at_least(5, 11) {
        "000000c400001004"
    } else {
        "000000c401001004"
    };
    assert_eq!(cap_eff(e.pid()), loading);
    write(&dir, "signals.yaml", &signals_config());
    assert_reloaded(&e);
    assert!(signals_served(&e), "{}", e.log());
    drop(e);
    std::fs::remove_file(dir.join("signals.yaml")).expect("rm");
    // Off: only what serving needs (nothing for these configs, but CAP_BPF
    // where this kernel needs it to read maps), and SIGHUP is ignored.
    let e = Running::start(&[&dir_arg, "--no-config.reload"]);
    let serving = if common::map_reads_need_cap_bpf() {
        "0000008000000000"
    } else {
        "0000000000000000"
    };
    assert_eq!(cap_eff(e.pid()), serving);
    e.signal(libc::SIGHUP);
    assert!(
        eventually(Duration::from_secs(5), || e
            .log()
            .contains("SIGHUP: ignored")),
        "{}",
        e.log()
    );
    let out = Command::new(common::BIN)
        .args([
            "--no-config.reload",
            "--web.enable-lifecycle",
            "--config.names=syscalls",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--web.enable-lifecycle serves /-/reload, which --no-config.reload turns off"),
        "{err}"
    );
}

#[test]
fn a_metric_moves_between_configs_in_one_reload() {
    let _serial = serial();
    let dir = common::scratch_dir("reload-move");
    // z holds the counter; the edit hands it to a, which sorts first.
    write(&dir, "z.yaml", SYSCALLS_COUNTER);
    let dir_arg = format!("--config.dir={}", dir.display());
    let e = Running::start(&[&dir_arg, "--web.enable-lifecycle", "--no-config.watch"]);
    write(&dir, "z.yaml", SYSCALL_ERRORS);
    write(&dir, "a.yaml", SYSCALLS_COUNTER);
    let body = assert_reloaded(&e);
    assert!(body.contains("2 started"), "{body}");
    let s = e.scrape();
    assert!(s.has(COUNTER) && s.has(ERRORS), "{}", s.text);
    assert_eq!(generation(&s, "a"), 1.0);
    assert_eq!(generation(&s, "z"), 2.0);
    // A real clash is still refused, naming both, and the holder keeps it.
    write(&dir, "b.yaml", SYSCALLS_COUNTER);
    let r = reload(&e);
    assert_eq!(r.status, 500);
    assert!(
        r.text()
            .contains("metric \"syscalls_total\" is already defined by config \"a\""),
        "{}",
        r.text()
    );
}

#[test]
fn a_new_version_that_loses_programs_or_does_not_load_keeps_the_old_one() {
    let _serial = serial();
    let dir = common::scratch_dir("reload-worse");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bpf/reload_versions.bpf.c");
    common::compile_bpf(&src, &dir.join("v1.bpf.o"));
    common::compile_bpf_with(&src, &dir.join("lost.bpf.o"), &["NEW_PROGRAM_FAILS"]);
    common::compile_bpf_with(&src, &dir.join("refused.bpf.o"), &["VERIFIER_REFUSES"]);
    std::fs::write(dir.join("garbage.bpf.o"), b"\x7fELF not really").expect("write");
    let config = |object: &str| {
        format!(
            "object: ./{object}\nmetrics:\n  counters:\n    - name: reload_hits_total\n      help: Syscalls seen\n      labels:\n        - {{name: k, size: 4, decoders: [{{name: uint}}]}}\n"
        )
    };
    write(&dir, "a.yaml", &config("v1.bpf.o"));
    let dir_arg = format!("--config.dir={}", dir.display());
    let e = Running::start(&[&dir_arg, "--web.enable-lifecycle", "--no-config.watch"]);
    let first = e.scrape();
    let programs = program_ids(&first, "a");
    assert_eq!(programs.len(), 1);
    let mut last = first;
    for (object, expected) in [
        ("lost.bpf.o", &["program(s) on_missing did not load or attach"][..]),
        (
            "refused.bpf.o",
            &[
                "program(s) reads_null did not load or attach",
                "the verifier said: R0 invalid mem access 'map_value_or_null' (at reload_versions.bpf.c:",
            ][..],
        ),
        ("garbage.bpf.o", &["garbage.bpf.o"][..]),
    ] {
        write(&dir, "a.yaml", &config(object));
        let r = reload(&e);
        assert_eq!(r.status, 500, "{object}: {}", r.text());
        for needle in expected {
            assert!(r.text().contains(needle), "{object}: {needle}: {}", r.text());
        }
        assert!(
            r.text()
                .contains(&format!("{}:1: key `object`", dir.join("a.yaml").display())),
            "{object}: {}",
            r.text()
        );
        let now = e.scrape();
        assert_eq!(
            program_ids(&now, "a"),
            programs,
            "{object}: the old version runs"
        );
        assert_eq!(generation(&now, "a"), 1.0, "{object}");
        assert_grew(&last, &now, "ebpf_exporter_reload_hits_total");
        last = now;
    }
    // A version with every program attached applies.
    common::compile_bpf(&src, &dir.join("v2.bpf.o"));
    write(
        &dir,
        "a.yaml",
        &config("v2.bpf.o").replace("Syscalls seen", "Syscalls, seen"),
    );
    assert_reloaded(&e);
    assert_eq!(generation(&e.scrape(), "a"), 2.0);
}
