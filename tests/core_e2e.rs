//! End to end on the built-in default configs: real programs, real events,
//! scraped over HTTP and checked with promtool.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{eventually, promtool_check, Running};

fn failing_opens(n: usize) {
    for _ in 0..n {
        // A failing open gives an ENOENT error to count.
        let _ = std::fs::File::open("/nonexistent/ebpf-exporter-test");
    }
}

#[test]
fn defaults_serve_syscalls_block_io_and_run_queue_latency() {
    let exporter = Running::start(&[]);
    failing_opens(50);
    let first = exporter.scrape();
    assert!(first.has("ebpf_exporter_syscalls_total"), "{}", first.text);
    let openat_before = first.sum("ebpf_exporter_syscalls_total", &[("syscall", "openat")]);
    assert!(openat_before > 0.0, "openat counted");
    let enoent = first.sum(
        "ebpf_exporter_syscall_errors_total",
        &[("syscall", "openat"), ("errno", "ENOENT")],
    );
    assert!(
        enoent >= 50.0,
        "failed opens counted by errno name, got {enoent}"
    );

    // Block I/O on a loop device, so the device label is known exactly.
    let dir = common::scratch_dir("bio");
    let img = dir.join("disk.img");
    let f = std::fs::File::create(&img).expect("create image");
    f.set_len(32 << 20).expect("size image");
    let disk = common::LoopDev::attach(&img);
    let (loopdev, loopname) = (disk.dev.clone(), disk.name.clone());
    let dd = Command::new("dd")
        .args([
            "if=/dev/zero",
            &format!("of={loopdev}"),
            "bs=64k",
            "count=64",
            "oflag=direct,sync",
        ])
        .output()
        .expect("dd runs");
    assert!(
        dd.status.success(),
        "dd: {}",
        String::from_utf8_lossy(&dd.stderr)
    );
    // A disk that appeared after start-up resolves by name (majorminor
    // re-reads /proc/partitions on a miss), while the device still exists.
    let mut bio = 0.0;
    let named = eventually(Duration::from_secs(10), || {
        let s = exporter.scrape();
        bio = s.sum(
            "ebpf_exporter_bio_latency_seconds_count",
            &[("device", loopname.as_str()), ("operation", "write")],
        );
        let inf = s.sum(
            "ebpf_exporter_bio_latency_seconds_bucket",
            &[
                ("device", loopname.as_str()),
                ("operation", "write"),
                ("le", "+Inf"),
            ],
        );
        bio >= 64.0
            && inf == bio
            && s.sum(
                "ebpf_exporter_bio_latency_seconds_sum",
                &[("device", loopname.as_str())],
            ) > 0.0
    });
    drop(disk);
    assert!(
        named,
        "64 direct writes to {loopname} observed by name, got {bio}"
    );

    // Scheduler load: more runnable threads than CPUs.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hogs: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    x = x.wrapping_add(1);
                    std::hint::black_box(x);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in hogs {
        let _ = h.join();
    }

    failing_opens(10);
    let second = exporter.scrape();
    let openat_after = second.sum("ebpf_exporter_syscalls_total", &[("syscall", "openat")]);
    assert!(
        openat_after > openat_before,
        "counter grows: {openat_before} -> {openat_after}"
    );

    let rq_before = first.sum("ebpf_exporter_run_queue_latency_seconds_count", &[]);
    let rq_after = second.sum("ebpf_exporter_run_queue_latency_seconds_count", &[]);
    assert!(
        rq_after > rq_before,
        "run queue latency observed: {rq_before} -> {rq_after}"
    );
    assert!(!second
        .find(
            "ebpf_exporter_run_queue_latency_seconds_bucket",
            &[("le", "1e-06")]
        )
        .is_empty());

    for (name, value) in [
        ("ebpf_exporter_enabled_configs", 1.0),
        ("ebpf_exporter_build_info", 1.0),
    ] {
        assert!(
            second.find(name, &[]).iter().all(|s| s.value == value),
            "{name}"
        );
        assert!(second.has(name), "{name} present");
    }
    // The default set (config/DEFAULTS) has 11 programs in 6 configs.
    let attached = second.find("ebpf_exporter_ebpf_program_attached", &[]);
    assert_eq!(attached.len(), 11, "{attached:?}");
    assert!(
        attached.iter().all(|s| s.value == 1.0),
        "all programs attached: {attached:?}"
    );
    assert_eq!(second.find("ebpf_exporter_enabled_configs", &[]).len(), 6);
    assert!(second.has("process_resident_memory_bytes"));

    let complaints = promtool_check(&second.text);
    assert!(complaints.trim().is_empty(), "promtool: {complaints}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn http_endpoints_and_content_types() {
    let exporter = Running::start(&["--config.names=syscalls"]);
    let r = exporter.get("/metrics");
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let om = exporter.get_with(
        "/metrics",
        &[("Accept", "application/openmetrics-text;version=1.0.0")],
    );
    assert_eq!(
        om.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let text = om.text();
    assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    assert!(
        text.contains("# TYPE ebpf_exporter_syscalls counter\n"),
        "family without _total"
    );
    assert!(
        text.contains("\nebpf_exporter_syscalls_total{syscall="),
        "samples with _total"
    );

    let gz = exporter.get_with("/metrics", &[("Accept-Encoding", "gzip")]);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    let mut plain = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz.body[..]), &mut plain)
        .expect("gunzip");
    assert!(plain.contains("ebpf_exporter_syscalls_total"));

    let landing = exporter.get("/");
    assert_eq!(landing.status, 200);
    assert!(landing.text().contains("syscalls_exit") && landing.text().contains("attached"));
    assert_eq!(exporter.get("/healthz").text(), "ok\n");
    assert_eq!(exporter.get("/nope").status, 404);
}

#[test]
fn sigterm_detaches_programs() {
    let exporter = Running::start(&["--config.names=syscalls"]);
    let ids: Vec<String> = exporter
        .scrape()
        .find("ebpf_exporter_ebpf_program_info", &[])
        .iter()
        .map(|s| s.labels["id"].clone())
        .collect();
    assert!(!ids.is_empty());
    let (status, log) = exporter.stop();
    assert!(status.success(), "clean exit on SIGTERM: {log}");
    assert!(log.contains("programs detached"), "{log}");
    // The kernel frees programs once their links and fds are gone.
    assert!(eventually(Duration::from_secs(5), || {
        ids.iter().all(|id| !bpftool_has_prog(id))
    }));
}

fn bpftool_has_prog(id: &str) -> bool {
    Command::new("bpftool")
        .args(["prog", "show", "id", id])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Sets `kernel.bpf_stats_enabled` and puts the old value back on drop, so
/// a failed assertion does not leave the kernel counting.
struct BpfStats(String);

impl BpfStats {
    const PATH: &'static str = "/proc/sys/kernel/bpf_stats_enabled";

    fn set(on: bool) -> Self {
        let old = std::fs::read_to_string(Self::PATH).expect("read bpf_stats_enabled");
        std::fs::write(Self::PATH, if on { "1" } else { "0" }).expect("write bpf_stats_enabled");
        Self(old.trim().to_string())
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        let _ = std::fs::write(Self::PATH, &self.0);
    }
}

/// Program statistics are self-metrics read at scrape time: absent while
/// the kernel does not count, one series per running program while it does.
#[test]
fn program_statistics_follow_bpf_stats_enabled() {
    const RUN_TIME: &str = "ebpf_exporter_ebpf_program_run_time_seconds";
    const RUN_COUNT: &str = "ebpf_exporter_ebpf_program_run_count_total";
    let exporter = Running::start(&["--config.names=syscalls"]);
    let off = BpfStats::set(false);
    let scrape = exporter.scrape();
    assert!(
        !scrape.has(RUN_TIME) && !scrape.has(RUN_COUNT),
        "{}",
        scrape.text
    );

    drop(off);
    let _on = BpfStats::set(true);
    failing_opens(100);
    let scrape = exporter.scrape();
    let mut ids: Vec<String> = scrape
        .find("ebpf_exporter_ebpf_program_info", &[])
        .iter()
        .map(|s| s.labels["id"].clone())
        .collect();
    ids.sort();
    assert_eq!(ids.len(), 2, "syscalls has two programs: {ids:?}");
    for family in [RUN_TIME, RUN_COUNT] {
        let mut seen: Vec<String> = scrape
            .find(family, &[])
            .iter()
            .map(|s| s.labels["id"].clone())
            .collect();
        seen.sort();
        assert_eq!(seen, ids, "{family}: one series per program");
    }
    // The program at sys_exit runs for every syscall; the other only as
    // tasks exit.
    let per_syscall = scrape.find(
        "ebpf_exporter_ebpf_program_info",
        &[("program", "syscalls_exit")],
    );
    let id = per_syscall
        .first()
        .map(|s| s.labels["id"].clone())
        .expect("syscalls_exit is loaded");
    assert!(
        scrape.sum(RUN_COUNT, &[("id", id.as_str())]) >= 100.0,
        "syscalls_exit ran for each failed open: {}",
        scrape.text
    );
    assert!(
        scrape.sum(RUN_TIME, &[("id", id.as_str())]) > 0.0,
        "{}",
        scrape.text
    );
    // The one lint this family draws is filtered by promtool_check (the
    // reference's name, kept for switching).
    let complaints = promtool_check(&scrape.text);
    assert!(complaints.trim().is_empty(), "promtool: {complaints}");
}
