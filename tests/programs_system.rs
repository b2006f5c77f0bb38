//! The shipped system programs (block I/O, CPU, memory, processes;
//! `docs/programs-system.md`), end to end:
//! each test starts the real exporter with one config, makes the kernel fire
//! that program's hooks, and checks the exported metric names, label values
//! the test itself caused, growth, and promtool's verdict on the scrape.
//!
//! Everything a test creates (loop devices, mounts, cgroups, files, child
//! processes) is owned by a guard whose `Drop` removes it, so a failing
//! assertion leaves nothing behind. Names carry the test name and our pid.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::net::UdpSocket;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use common::{
    cgroup2_mount, eventually, promtool_check, run, scratch_dir, LoopDev, Running, Scrape,
};

/// How long a test waits for a series to show up or reach a value.
const TIMEOUT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------
// Exporter and scrape helpers

/// The exporter serving only the shipped config `name`.
fn start(name: &str) -> Running {
    let dir = format!("--config.dir={}/config", env!("CARGO_MANIFEST_DIR"));
    let names = format!("--config.names={name}");
    Running::start(&[&dir, &names])
}

/// Scrapes until `pred` holds and returns that scrape; on timeout fails with
/// the last scrape's exporter series and the exporter's log.
fn wait_for(exporter: &Running, what: &str, mut pred: impl FnMut(&Scrape) -> bool) -> Scrape {
    let mut last = Scrape::default();
    let seen = eventually(TIMEOUT, || {
        last = exporter.scrape();
        pred(&last)
    });
    assert!(
        seen,
        "{what}: not seen within {TIMEOUT:?}\nlast scrape:\n{}\nexporter log:\n{}",
        ebpf_lines(&last.text),
        exporter.log()
    );
    last
}

/// The exporter's own series of a scrape (not the process_ ones), for messages.
fn ebpf_lines(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("ebpf_exporter_"))
        .collect();
    let shown = lines.len().min(300);
    let mut out = lines[..shown].join("\n");
    if lines.len() > shown {
        out.push_str(&format!("\n... {} more lines", lines.len() - shown));
    }
    out
}

/// promtool accepts the scrape, every program of the config is attached, and
/// no label failed to decode.
fn check_scrape(scrape: &Scrape) {
    let complaints = promtool_check(&scrape.text);
    assert!(
        complaints.trim().is_empty(),
        "promtool check metrics: {complaints}\n{}",
        ebpf_lines(&scrape.text)
    );
    let attached = scrape.find("ebpf_exporter_ebpf_program_attached", &[]);
    assert!(
        !attached.is_empty() && attached.iter().all(|s| s.value == 1.0),
        "every program attached: {attached:?}"
    );
    let errors = scrape.sum("ebpf_exporter_decoder_errors_total", &[]);
    assert_eq!(errors, 0.0, "decoder errors\n{}", ebpf_lines(&scrape.text));
}

fn dd(args: &[&str]) {
    let mut cmd = Command::new("dd");
    cmd.args(args).arg("status=none");
    run(&mut cmd);
}

/// Online CPU numbers, from `/sys/devices/system/cpu/online` (`0-1,4`).
fn online_cpus() -> Vec<u32> {
    let text = fs::read_to_string("/sys/devices/system/cpu/online").expect("read online cpus");
    let mut cpus = Vec::new();
    for part in text.trim().split(',') {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let (lo, hi): (u32, u32) = (lo.parse().expect("cpu"), hi.parse().expect("cpu"));
        cpus.extend(lo..=hi);
    }
    cpus
}

/// Every symbol name in `/proc/kallsyms`.
fn kallsyms_names() -> BTreeSet<String> {
    fs::read_to_string("/proc/kallsyms")
        .expect("read /proc/kallsyms")
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
        .collect()
}

// ---------------------------------------------------------------------------
// Guards: everything a test creates goes away on drop, pass or fail.

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        Scratch(scratch_dir(&format!("progA-{name}")))
    }

    /// A sparse file of `size` bytes in the scratch directory.
    fn image(&self, name: &str, size: u64) -> PathBuf {
        let path = self.0.join(name);
        fs::File::create(&path)
            .and_then(|f| f.set_len(size))
            .expect("create image file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A file on a disk-backed filesystem (`/var/tmp`, as in the doc's
/// triggers, since `/tmp` may be a tmpfs with no page cache or block I/O),
/// removed on drop.
struct DiskFile(PathBuf);

impl DiskFile {
    fn new(name: &str) -> DiskFile {
        let dir = Path::new("/var/tmp");
        let dir = if dir.is_dir() {
            dir.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let path = dir.join(format!("ee-test-progA-{name}-{}", std::process::id()));
        let _ = fs::remove_file(&path);
        DiskFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 path")
    }

    /// Writes `mib` MiB of zeros with O_DIRECT, so none of it stays cached.
    fn write_direct(&self, mib: u32) {
        dd(&[
            "if=/dev/zero",
            &format!("of={}", self.path()),
            "bs=1M",
            &format!("count={mib}"),
            "oflag=direct",
        ]);
    }
}

impl Drop for DiskFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// A mounted filesystem, unmounted on drop.
struct Mounted(PathBuf);

impl Mounted {
    fn new(dev: &str, at: PathBuf) -> Mounted {
        fs::create_dir_all(&at).expect("create mount point");
        run(Command::new("mount").arg(dev).arg(&at));
        Mounted(at)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// A child process in its own process group; the group is killed and the
/// child reaped on drop.
struct ChildGuard(Child);

impl ChildGuard {
    fn spawn(cmd: &mut Command) -> ChildGuard {
        let child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        ChildGuard(child)
    }

    fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    fn signal(&self, sig: i32) {
        // SAFETY: signalling our own, not yet reaped, child.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill({}, {sig})", self.pid());
    }

    fn wait(&mut self) -> std::process::ExitStatus {
        self.0.wait().expect("wait child")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // While the leader is unreaped its pid, and so its group id, cannot
        // be reused: the group is still ours.
        if let Ok(None) = self.0.try_wait() {
            // SAFETY: signalling the process group this guard created.
            unsafe { libc::kill(-self.pid(), libc::SIGKILL) };
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Threads running `work` in a loop until dropped; drop stops and joins them.
struct Workers {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<()>>,
}

impl Workers {
    fn start(n: usize, work: impl Fn(usize) + Send + Sync + 'static) -> Workers {
        let stop = Arc::new(AtomicBool::new(false));
        let work = Arc::new(work);
        let handles = (0..n)
            .map(|i| {
                let (stop, work) = (stop.clone(), work.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        work(i);
                    }
                })
            })
            .collect();
        Workers { stop, handles }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// Fresh anonymous memory, unmapped on drop.
struct Mapping {
    ptr: *mut u8,
    len: usize,
}

impl Mapping {
    /// `pages` base pages, never backed by huge pages, so that first touches
    /// fault once per page.
    fn new(pages: usize) -> Mapping {
        let len = pages * page_size();
        // SAFETY: a fresh private anonymous mapping; checked below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(ptr, libc::MAP_FAILED, "mmap {len} bytes");
        // SAFETY: advising our own mapping.
        unsafe { libc::madvise(ptr, len, libc::MADV_NOHUGEPAGE) };
        Mapping {
            ptr: ptr.cast(),
            len,
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping this guard made.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

// ---------------------------------------------------------------------------
// cgroups

struct Mount {
    point: PathBuf,
    root: String,
    fstype: String,
    super_opts: String,
}

fn mounts() -> Vec<Mount> {
    fs::read_to_string("/proc/self/mountinfo")
        .expect("read mountinfo")
        .lines()
        .filter_map(|line| {
            // id parent dev root mountpoint options [optional...] - fstype source super
            let (left, right) = line.split_once(" - ")?;
            let fields: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            Some(Mount {
                point: PathBuf::from(fields.get(4)?.replace("\\040", " ")),
                root: fields.get(3)?.to_string(),
                fstype: right.first()?.to_string(),
                super_opts: right.get(2).unwrap_or(&"").to_string(),
            })
        })
        .collect()
}

/// Where the cgroup v1 memory controller is mounted, if it is.
fn memcg_v1_mount() -> Option<PathBuf> {
    mounts()
        .into_iter()
        .find(|m| {
            m.fstype == "cgroup" && m.root == "/" && m.super_opts.split(',').any(|o| o == "memory")
        })
        .map(|m| m.point)
}

/// A cgroup directory made by the test; its processes (only ever the test's
/// own children) are killed and the directory removed on drop.
struct CgroupDir {
    path: PathBuf,
}

impl CgroupDir {
    fn create(parent: &Path, name: &str) -> CgroupDir {
        let path = parent.join(format!("ee-test-{name}-{}", std::process::id()));
        let _ = fs::remove_dir(&path);
        fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        CgroupDir { path }
    }

    /// The path as the `cgroup` decoder prints it.
    fn label(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn write(&self, name: &str, value: &str) {
        fs::write(self.file(name), value)
            .unwrap_or_else(|e| panic!("write {value:?} to {}: {e}", self.file(name).display()));
    }

    fn read(&self, name: &str) -> String {
        fs::read_to_string(self.file(name))
            .unwrap_or_else(|e| panic!("read {}: {e}", self.file(name).display()))
    }

    fn procs(&self) -> String {
        self.file("cgroup.procs").to_string_lossy().into_owned()
    }
}

impl Drop for CgroupDir {
    fn drop(&mut self) {
        for _ in 0..50 {
            for pid in fs::read_to_string(self.file("cgroup.procs"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse::<i32>().ok())
            {
                // SAFETY: only the test's children were put in this cgroup.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            if fs::remove_dir(&self.path).is_ok() || !self.path.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("warning: could not remove cgroup {}", self.path.display());
    }
}

/// A memory cgroup with a limit: the v1 memory controller where it is
/// mounted (hybrid hosts, as in the doc's scripts), else a v2 cgroup with
/// `memory.max`.
struct MemCg {
    dir: CgroupDir,
    v1: bool,
}

impl MemCg {
    fn new(name: &str, limit: u64) -> MemCg {
        if let Some(v1) = memcg_v1_mount() {
            let dir = CgroupDir::create(&v1, name);
            dir.write("memory.limit_in_bytes", &limit.to_string());
            // Never swap: on a host with swap the limit must still bite.
            let _ = fs::write(dir.file("memory.swappiness"), "0");
            return MemCg { dir, v1: true };
        }
        let root = cgroup2_mount();
        // Already enabled on most v2 hosts; harmless if so.
        let _ = fs::write(root.join("cgroup.subtree_control"), "+memory");
        let dir = CgroupDir::create(&root, name);
        dir.write("memory.max", &limit.to_string());
        let _ = fs::write(dir.file("memory.swap.max"), "0");
        MemCg { dir, v1: false }
    }

    /// A v2 cgroup whose tasks can be charged to this memcg: beside it at
    /// the v2 root on hybrid hosts, under it on pure v2 ones.
    fn v2_member(&self, name: &str) -> CgroupDir {
        if self.v1 {
            CgroupDir::create(&cgroup2_mount(), name)
        } else {
            CgroupDir::create(&self.dir.path, name)
        }
    }

    /// Shell commands moving the shell (`$$`) into this memcg, and into the
    /// v2 cgroup `member` if given.
    fn join_script(&self, member: Option<&CgroupDir>) -> String {
        match (self.v1, member) {
            (true, Some(m)) => format!("echo $$ > {} && echo $$ > {}", self.dir.procs(), m.procs()),
            (false, Some(m)) => format!("echo $$ > {}", m.procs()),
            (_, None) => format!("echo $$ > {}", self.dir.procs()),
        }
    }

    fn usage(&self) -> u64 {
        let file = if self.v1 {
            "memory.usage_in_bytes"
        } else {
            "memory.current"
        };
        self.dir.read(file).trim().parse().expect("memory usage")
    }
}

// ---------------------------------------------------------------------------
// Block I/O

#[test]
fn bio_size_counts_requests_by_loop_device_and_operation() {
    let scratch = Scratch::new("bio-size");
    let disk = LoopDev::attach(&scratch.image("disk.img", 32 << 20));
    let exporter = start("bio_size");
    let dev = disk.name.as_str();
    let count = |s: &Scrape, op: &str| {
        s.sum(
            "ebpf_exporter_bio_size_bytes_count",
            &[("device", dev), ("operation", op)],
        )
    };
    let before = exporter.scrape();

    // 64 direct writes of 64 KiB, 16 direct reads, and an fsync of the
    // device, which sends its (file-backed, write-cached) queue a flush.
    let of = format!("of={}", disk.dev);
    let iff = format!("if={}", disk.dev);
    dd(&["if=/dev/zero", &of, "bs=64k", "count=64", "oflag=direct"]);
    dd(&[&iff, "of=/dev/null", "bs=64k", "count=16", "iflag=direct"]);
    dd(&["if=/dev/null", &of, "count=0", "conv=notrunc,fsync"]);

    let after = wait_for(&exporter, "64 writes, 16 reads and a flush", |s| {
        count(s, "write") >= count(&before, "write") + 64.0
            && count(s, "read") >= count(&before, "read") + 16.0
            && count(s, "flush") > count(&before, "flush")
    });
    check_scrape(&after);
    let write = [("device", dev), ("operation", "write")];
    let bytes = after.sum("ebpf_exporter_bio_size_bytes_sum", &write);
    assert!(
        bytes >= (64 << 16) as f64,
        "at least 4 MiB written to {dev}, got {bytes}"
    );
    // 64 KiB is 2^16: above the le=32768 bound, within le=65536.
    let le = |bound: &str| {
        after.sum(
            "ebpf_exporter_bio_size_bytes_bucket",
            &[("device", dev), ("operation", "write"), ("le", bound)],
        )
    };
    assert!(
        le("65536") - le("32768") >= 64.0,
        "64 KiB requests in the (32768, 65536] bucket: {} - {}",
        le("65536"),
        le("32768")
    );
    after.assert_inf_is_count("ebpf_exporter_bio_size_bytes", &write);
    // A flush carries no data: bucket 0 (le=1).
    let flush_le1 = after.sum(
        "ebpf_exporter_bio_size_bytes_bucket",
        &[("device", dev), ("operation", "flush"), ("le", "1")],
    );
    assert!(flush_le1 >= 1.0, "flushes are 0 bytes: {flush_le1}");
}

#[test]
fn bio_inflight_gauge_rises_under_load_and_returns_to_zero() {
    let scratch = Scratch::new("bio-inflight");
    let disk = LoopDev::attach(&scratch.image("disk.img", 32 << 20));
    let exporter = start("bio_inflight");
    let dev = disk.name.clone();
    let gauge = |s: &Scrape| {
        s.find("ebpf_exporter_bio_inflight_requests", &[("device", &dev)])
            .first()
            .map(|x| x.value)
    };
    let before = exporter.scrape();
    assert!(
        gauge(&before).unwrap_or(0.0) == 0.0,
        "nothing in flight on a fresh {dev}"
    );

    // Four writers, each on its own 8 MiB of the disk, until the gauge has
    // been seen above zero.
    let busy = {
        let target = disk.dev.clone();
        let _writers = Workers::start(4, move |i| {
            dd(&[
                "if=/dev/zero",
                &format!("of={target}"),
                "bs=64k",
                "count=128",
                &format!("seek={}", i * 128),
                "oflag=direct",
            ]);
        });
        wait_for(&exporter, "requests in flight during the writes", |s| {
            gauge(s).unwrap_or(0.0) > 0.0
        })
    };
    check_scrape(&busy);
    assert!(
        busy.text
            .contains("# TYPE ebpf_exporter_bio_inflight_requests gauge"),
        "exported as a gauge"
    );
    let idle = wait_for(&exporter, "the gauge back at 0 after the writes", |s| {
        gauge(s) == Some(0.0)
    });
    check_scrape(&idle);
}

#[test]
fn fsync_latency_by_ext4_loop_device() {
    let scratch = Scratch::new("fsync");
    let disk = LoopDev::attach(&scratch.image("fs.img", 64 << 20));
    run(Command::new("mkfs.ext4").args(["-q", "-F", &disk.dev]));
    let mnt = Mounted::new(&disk.dev, scratch.0.join("mnt"));
    let exporter = start("fsync");
    let dev = disk.name.as_str();
    let labels = [("device", dev)];
    let count = |s: &Scrape| s.sum("ebpf_exporter_ext4_fsync_latency_seconds_count", &labels);
    let before = exporter.scrape();

    // 10 fsyncs and 2 fdatasyncs of a file on the loop device's ext4.
    let path = mnt.0.join("f");
    for i in 0..12 {
        let mut f = fs::File::create(&path).expect("create file on ext4");
        f.write_all(&[i as u8; 64 << 10]).expect("write");
        if i < 10 {
            f.sync_all().expect("fsync");
        } else {
            f.sync_data().expect("fdatasync");
        }
    }
    let after = wait_for(&exporter, "12 fsyncs on the loop device", |s| {
        count(s) >= count(&before) + 12.0
    });
    check_scrape(&after);
    after.assert_inf_is_count("ebpf_exporter_ext4_fsync_latency_seconds", &labels);
    let sum = after.sum("ebpf_exporter_ext4_fsync_latency_seconds_sum", &labels);
    assert!(sum > 0.0, "fsync time adds up: {sum}");
}

/// Total count per IRQ number from `/proc/interrupts`.
fn irq_counts() -> BTreeMap<String, u64> {
    fs::read_to_string("/proc/interrupts")
        .expect("read /proc/interrupts")
        .lines()
        .filter_map(|line| {
            let (irq, rest) = line.split_once(':')?;
            let irq = irq.trim();
            if !irq.chars().all(|c| c.is_ascii_digit()) || irq.is_empty() {
                return None;
            }
            let total = rest
                .split_whitespace()
                .map_while(|w| w.parse::<u64>().ok())
                .sum();
            Some((irq.to_string(), total))
        })
        .collect()
}

/// Handler (action) names of an IRQ: the directories in `/proc/irq/N/`.
fn irq_handlers(irq: &str) -> Vec<String> {
    fs::read_dir(format!("/proc/irq/{irq}"))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn hardirqs_counts_disk_interrupts_by_handler_name() {
    let exporter = start("hardirqs");
    let value = |s: &Scrape, h: &str| s.sum("ebpf_exporter_hardirqs_total", &[("handler", h)]);
    let before = exporter.scrape();
    let irqs_before = irq_counts();

    // Direct I/O reaches the disk, whose completions are interrupts.
    let file = DiskFile::new("hardirqs");
    file.write_direct(8);
    dd(&[
        &format!("if={}", file.path()),
        "of=/dev/null",
        "bs=1M",
        "iflag=direct",
    ]);
    let irqs_after = irq_counts();
    let fired: Vec<String> = irqs_after
        .iter()
        .filter(|(irq, n)| irqs_before.get(*irq).is_some_and(|b| *n > b))
        .flat_map(|(irq, _)| irq_handlers(irq))
        .collect();
    assert!(
        !fired.is_empty(),
        "disk I/O raised device interrupts: {irqs_before:?} -> {irqs_after:?}"
    );

    let after = wait_for(
        &exporter,
        &format!("one of {fired:?} counted by name"),
        |s| fired.iter().any(|h| value(s, h) > value(&before, h)),
    );
    check_scrape(&after);
    // Every handler label is a whole /proc/irq name (cut to 31 bytes).
    let names: BTreeSet<String> = irq_counts().keys().flat_map(|i| irq_handlers(i)).collect();
    for s in after.find("ebpf_exporter_hardirqs_total", &[]) {
        let h = &s.labels["handler"];
        assert!(
            names
                .iter()
                .any(|n| n == h || (h.len() == 31 && n.starts_with(h.as_str()))),
            "handler {h:?} is a registered handler name ({names:?})"
        );
    }
}

// ---------------------------------------------------------------------------
// Scheduler, interrupts, timers

/// Busy threads, more than CPUs, for `dur`: preemption and load balancing.
fn hog_cpus(threads: usize, dur: Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let hogs: Vec<_> = (0..threads)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            })
        })
        .collect();
    std::thread::sleep(dur);
    stop.store(true, Ordering::Relaxed);
    for h in hogs {
        let _ = h.join();
    }
}

#[test]
fn context_switches_by_kind_and_cpu_and_migrations() {
    let exporter = start("context_switches");
    let switches =
        |s: &Scrape, kind: &str| s.sum("ebpf_exporter_context_switches_total", &[("kind", kind)]);
    let migrations = |s: &Scrape| s.sum("ebpf_exporter_sched_migrations_total", &[]);
    let before = exporter.scrape();

    // Each sleep blocks this thread once: 200 voluntary switches.
    for _ in 0..200 {
        std::thread::sleep(Duration::from_millis(1));
    }
    hog_cpus(2 * online_cpus().len() + 1, Duration::from_millis(300));

    let after = wait_for(
        &exporter,
        "voluntary, involuntary switches and migrations",
        |s| {
            switches(s, "voluntary") >= switches(&before, "voluntary") + 200.0
                && switches(s, "involuntary") > switches(&before, "involuntary")
                && migrations(s) > migrations(&before)
        },
    );
    check_scrape(&after);
    for kind in ["voluntary", "involuntary"] {
        for cpu in online_cpus() {
            let cpu = cpu.to_string();
            assert_eq!(
                after
                    .find(
                        "ebpf_exporter_context_switches_total",
                        &[("kind", kind), ("cpu", &cpu)],
                    )
                    .len(),
                1,
                "one {kind} series for cpu {cpu}\n{}",
                ebpf_lines(&after.text)
            );
        }
    }
    let m = after.find("ebpf_exporter_sched_migrations_total", &[]);
    assert!(
        m.len() == 1 && m[0].labels.is_empty(),
        "one unlabelled migrations series: {m:?}"
    );
}

#[test]
fn cgroup_cpu_charges_a_busy_loop_to_its_cgroup_path() {
    let cg = CgroupDir::create(&cgroup2_mount(), "cgcpu");
    let label = cg.label();
    let exporter = start("cgroup_cpu");
    let value = |s: &Scrape| {
        s.sum(
            "ebpf_exporter_cgroup_cpu_seconds_total",
            &[("cgroup", &label)],
        )
    };
    assert_eq!(
        value(&exporter.scrape()),
        0.0,
        "a new cgroup has used no CPU"
    );

    let mut hog = ChildGuard::spawn(Command::new("sh").args(["-c", "while :; do :; done"]));
    cg.write("cgroup.procs", &hog.pid().to_string());
    let first = wait_for(&exporter, &format!("CPU time charged to {label}"), |s| {
        value(s) > 0.0
    });
    let v1 = value(&first);
    let running = wait_for(&exporter, &format!("{label} growing while busy"), |s| {
        value(s) > v1
    });
    check_scrape(&running);
    hog.signal(libc::SIGKILL);
    hog.wait();

    // Seconds that agree with the kernel's own count for the cgroup.
    let usage_s = cg
        .read("cpu.stat")
        .lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .expect("usage_usec in cpu.stat")
        / 1e6;
    let last = wait_for(&exporter, "the whole run charged", |s| {
        value(s) >= 0.5 * usage_s
    });
    let charged = value(&last);
    assert!(
        charged <= 2.0 * usage_s,
        "{charged} s charged vs cpu.stat usage {usage_s} s"
    );
}

/// Sends `n` UDP datagrams to ourselves over loopback and receives them.
fn udp_roundtrips(n: usize) {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    sock.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let addr = sock.local_addr().expect("local addr");
    let mut buf = [0u8; 64];
    for i in 0..n {
        sock.send_to(&[i as u8; 32], addr).expect("send");
        sock.recv_from(&mut buf).expect("datagram comes back");
    }
}

/// `n` receive timeouts on an idle socket, one after the other: each is a
/// schedule_timeout(), a timer wheel timer whose callback is
/// process_timeout and which expires in the TIMER softirq.
fn wheel_timeouts(n: usize) {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    sock.set_read_timeout(Some(Duration::from_millis(5)))
        .expect("set timeout");
    for _ in 0..n {
        let mut buf = [0u8; 8];
        assert!(sock.recv(&mut buf).is_err(), "nothing to receive");
    }
}

#[test]
fn softirqs_count_loopback_traffic_as_net_rx() {
    let exporter = start("softirqs");
    let net_rx = [("vector", "net_rx")];
    let count = |s: &Scrape| s.sum("ebpf_exporter_softirqs_total", &net_rx);
    let runs = |s: &Scrape| s.sum("ebpf_exporter_softirq_duration_seconds_count", &net_rx);
    let timer = |s: &Scrape| s.sum("ebpf_exporter_softirqs_total", &[("vector", "timer")]);
    let before = exporter.scrape();

    // Every loopback transmit raises NET_RX to deliver the packet.
    udp_roundtrips(50);
    wheel_timeouts(5);
    let after = wait_for(&exporter, "50 net_rx and 5 timer softirqs", |s| {
        count(s) >= count(&before) + 50.0
            && runs(s) >= runs(&before) + 50.0
            && timer(s) >= timer(&before) + 5.0
    });
    check_scrape(&after);
    after.assert_inf_is_count("ebpf_exporter_softirq_duration_seconds", &net_rx);
    let per_cpu = after.find("ebpf_exporter_softirqs_total", &net_rx);
    let cpus: BTreeSet<String> = per_cpu.iter().map(|s| s.labels["cpu"].clone()).collect();
    let online: BTreeSet<String> = online_cpus().iter().map(u32::to_string).collect();
    assert!(
        online.is_subset(&cpus),
        "a net_rx series per online cpu {online:?}: {cpus:?}"
    );
}

#[test]
fn timers_count_expirations_by_callback_symbol() {
    let exporter = start("timers");
    let hr = |s: &Scrape| {
        s.sum(
            "ebpf_exporter_hrtimer_expirations_total",
            &[("function", "hrtimer_wakeup")],
        )
    };
    let wheel = |s: &Scrape| {
        s.sum(
            "ebpf_exporter_timer_expirations_total",
            &[("function", "process_timeout")],
        )
    };
    let before = exporter.scrape();

    // nanosleep arms an hrtimer that wakes us with hrtimer_wakeup.
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(1));
    }
    wheel_timeouts(10);

    let after = wait_for(
        &exporter,
        "100 hrtimer_wakeup and 10 process_timeout",
        |s| hr(s) >= hr(&before) + 100.0 && wheel(s) >= wheel(&before) + 10.0,
    );
    check_scrape(&after);
    // Labels are exact kallsyms names.
    let syms = kallsyms_names();
    for metric in [
        "ebpf_exporter_timer_expirations_total",
        "ebpf_exporter_hrtimer_expirations_total",
    ] {
        let samples = after.find(metric, &[]);
        let named = samples
            .iter()
            .filter(|s| syms.contains(&s.labels["function"]))
            .count();
        assert!(
            named > 0 && named * 10 >= samples.len() * 9,
            "{metric}: {named} of {} functions are kernel symbols\n{}",
            samples.len(),
            ebpf_lines(&after.text)
        );
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn page_faults_by_user_and_kernel_mode() {
    let exporter = start("page_faults");
    let faults =
        |s: &Scrape, mode: &str| s.sum("ebpf_exporter_page_faults_total", &[("mode", mode)]);
    let before = exporter.scrape();

    // 4096 first touches from user space.
    let user_pages = 4096;
    {
        let m = Mapping::new(user_pages);
        for page in 0..user_pages {
            // SAFETY: within the mapping.
            unsafe { m.ptr.add(page * page_size()).write_volatile(1) };
        }
    }
    // 1024 pages first touched by the kernel, copying a read into them.
    let kernel_pages = 1024;
    {
        let m = Mapping::new(kernel_pages);
        let mut zero = fs::File::open("/dev/zero").expect("open /dev/zero");
        // SAFETY: the mapping is ours, writable and `len` bytes long.
        let buf = unsafe { std::slice::from_raw_parts_mut(m.ptr, m.len) };
        zero.read_exact(buf).expect("read /dev/zero");
    }

    let after = wait_for(&exporter, "user and kernel faults", |s| {
        faults(s, "user") >= faults(&before, "user") + user_pages as f64
            && faults(s, "kernel") >= faults(&before, "kernel") + kernel_pages as f64
    });
    check_scrape(&after);
}

// ---------------------------------------------------------------------------
// Memory

#[test]
fn reclaim_memcg_reclaim_and_compaction_latency() {
    let exporter = start("reclaim");
    let memcg = [("kind", "memcg")];
    let sync_bg = [("mode", "sync"), ("caller", "background")];
    let reclaims = |s: &Scrape| s.sum("ebpf_exporter_reclaim_latency_seconds_count", &memcg);
    let compactions =
        |s: &Scrape| s.sum("ebpf_exporter_compaction_latency_seconds_count", &sync_bg);
    let before = exporter.scrape();

    // Reading 64 MiB of uncached file in a 16 MiB memcg: its page cache
    // must be reclaimed from the cgroup as it goes.
    let file = DiskFile::new("reclaim");
    file.write_direct(64);
    {
        let cg = MemCg::new("reclaim", 16 << 20);
        let script = format!(
            "{} && exec dd if={} of=/dev/null bs=1M status=none",
            cg.join_script(None),
            file.path()
        );
        let mut reader = ChildGuard::spawn(Command::new("sh").args(["-c", &script]));
        assert!(reader.wait().success(), "reader in the memcg: {script}");
    }
    // A manual compaction: one sync run per populated zone, by no allocator.
    fs::write("/proc/sys/vm/compact_memory", "1").expect("write compact_memory");

    let after = wait_for(&exporter, "memcg reclaim and sync compaction", |s| {
        reclaims(s) > reclaims(&before) && compactions(s) > compactions(&before)
    });
    check_scrape(&after);
    after.assert_inf_is_count("ebpf_exporter_reclaim_latency_seconds", &memcg);
    after.assert_inf_is_count("ebpf_exporter_compaction_latency_seconds", &sync_bg);
}

#[test]
fn oom_kills_count_the_victims_cgroup_not_the_killers() {
    const MIB: u64 = 1 << 20;
    let memcg = MemCg::new("oom", 64 * MIB);
    let victim_cg = memcg.v2_member("oomA");
    let killer_cg = memcg.v2_member("oomB");
    let (victim, killer) = (victim_cg.label(), killer_cg.label());
    let exporter = start("oom_kills");
    let kills = |s: &Scrape, cg: &str| s.sum("ebpf_exporter_oom_kills_total", &[("cgroup", cg)]);
    let before = exporter.scrape();
    assert_eq!(kills(&before, &victim), 0.0);

    // The victim holds 48 MiB: dd fills its buffer, then blocks writing it
    // to a pipe nobody reads.
    let holder = format!(
        "{} && dd if=/dev/zero bs=48M count=1 status=none | sleep 60",
        memcg.join_script(Some(&victim_cg))
    );
    // (Its shell reports the kill on stderr: not an error here.)
    let _victim_proc = ChildGuard::spawn(
        Command::new("sh")
            .args(["-c", &holder])
            .stderr(Stdio::null()),
    );
    assert!(
        eventually(TIMEOUT, || memcg.usage() >= 48 * MIB),
        "the holder allocated its 48 MiB (usage {})",
        memcg.usage()
    );
    // The killer then needs another 48 MiB in the same 64 MiB memcg: the
    // OOM killer runs in the killer and picks the biggest task, the holder.
    let grab = format!(
        "{} && exec dd if=/dev/zero of=/dev/null bs=48M count=1 status=none",
        memcg.join_script(Some(&killer_cg))
    );
    let mut killer_proc = ChildGuard::spawn(Command::new("sh").args(["-c", &grab]));
    let status = killer_proc.wait();
    assert!(status.success(), "the killer survives: {status}");

    let after = wait_for(&exporter, &format!("an OOM kill in {victim}"), |s| {
        kills(s, &victim) >= 1.0
    });
    check_scrape(&after);
    assert_eq!(
        kills(&after, &killer),
        0.0,
        "the killer's cgroup is not blamed\n{}",
        ebpf_lines(&after.text)
    );
}

#[test]
fn page_cache_adds_removes_dirties_and_waits() {
    let exporter = start("page_cache");
    let metric = |s: &Scrape, what: &str| s.sum(&format!("ebpf_exporter_page_cache_{what}"), &[]);
    let before = exporter.scrape();
    for what in [
        "added_pages_total",
        "removed_pages_total",
        "dirtied_pages_total",
        "writeback_waits_total",
    ] {
        assert!(
            before.has(&format!("ebpf_exporter_page_cache_{what}")),
            "{what} exported\n{}",
            ebpf_lines(&before.text)
        );
    }
    let pages = |bytes: usize| (bytes / page_size()) as f64;

    // 16 MiB read from an uncached file are added; deleting it removes them.
    let file = DiskFile::new("page-cache");
    file.write_direct(16);
    let mut data = Vec::new();
    fs::File::open(&file.0)
        .and_then(|mut f| f.read_to_end(&mut data))
        .expect("read file");
    assert_eq!(data.len(), 16 << 20);
    fs::remove_file(&file.0).expect("remove file");

    // 4 MiB buffered writes dirty pages; fsync waits for writeback of
    // those still in flight. Repeated until a wait is seen.
    let dirty = DiskFile::new("page-cache-dirty");
    let buf = vec![7u8; 4 << 20];
    let mut writes = 0;
    let mut last = Scrape::default();
    let waited = eventually(TIMEOUT, || {
        let mut f = fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&dirty.0)
            .expect("open file");
        f.write_all(&buf).expect("write");
        f.sync_all().expect("fsync");
        writes += 1;
        last = exporter.scrape();
        metric(&last, "writeback_waits_total") > metric(&before, "writeback_waits_total")
    });
    assert!(
        waited,
        "a writeback wait after {writes} write+fsync rounds\n{}",
        ebpf_lines(&last.text)
    );

    let after = wait_for(&exporter, "added, removed and dirtied pages", |s| {
        metric(s, "added_pages_total") >= metric(&before, "added_pages_total") + pages(16 << 20)
            && metric(s, "removed_pages_total")
                >= metric(&before, "removed_pages_total") + pages(16 << 20)
            && metric(s, "dirtied_pages_total")
                >= metric(&before, "dirtied_pages_total") + pages(4 << 20)
    });
    check_scrape(&after);
}

// ---------------------------------------------------------------------------
// Processes

#[test]
fn exec_counts_commands_with_versions_folded() {
    let scratch = Scratch::new("exec");
    // A command's name is the name it was executed by. The links lead to
    // the exporter binary (run with --version), not to `true`, which may be
    // a busybox applet that takes its name from the link.
    let python = scratch.0.join("python3.99");
    let clang = scratch.0.join("clang-99");
    for link in [&python, &clang] {
        std::os::unix::fs::symlink(common::BIN, link).expect("symlink to the exporter");
    }
    let exporter = start("exec");
    let execs = |s: &Scrape, c: &str| s.sum("ebpf_exporter_execs_total", &[("command", c)]);
    let before = exporter.scrape();

    for _ in 0..3 {
        run(&mut Command::new("true"));
    }
    run(Command::new(&python).arg("--version"));
    run(Command::new(&clang).arg("--version"));

    let after = wait_for(&exporter, "execs of true, python3.99 and clang-99", |s| {
        execs(s, "true") >= execs(&before, "true") + 3.0
            && execs(s, "python") > execs(&before, "python")
            && execs(s, "clang") > execs(&before, "clang")
    });
    check_scrape(&after);
    for raw in ["python3.99", "clang-99"] {
        assert!(
            after
                .find("ebpf_exporter_execs_total", &[("command", raw)])
                .is_empty(),
            "{raw} is folded\n{}",
            ebpf_lines(&after.text)
        );
    }
}

#[test]
fn signals_by_name_and_result() {
    let exporter = start("signals");
    let signals = |s: &Scrape, sig: &str, result: &str| {
        s.sum(
            "ebpf_exporter_signals_total",
            &[("signal", sig), ("result", result)],
        )
    };
    let before = exporter.scrape();

    // Three SIGUSR1s queued to children, which they die of.
    for _ in 0..3 {
        let mut child = ChildGuard::spawn(Command::new("sleep").arg("60"));
        child.signal(libc::SIGUSR1);
        let status = child.wait();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGUSR1), "killed by SIGUSR1");
    }
    // A SIGUSR2 that a shell sends itself while ignoring it.
    run(Command::new("sh").args(["-c", "trap '' USR2; kill -USR2 $$"]));

    let after = wait_for(&exporter, "3 delivered SIGUSR1, 1 ignored SIGUSR2", |s| {
        signals(s, "SIGUSR1", "delivered") >= signals(&before, "SIGUSR1", "delivered") + 3.0
            && signals(s, "SIGUSR2", "ignored") > signals(&before, "SIGUSR2", "ignored")
    });
    check_scrape(&after);
}

#[test]
fn workqueue_latency_by_work_function_symbol() {
    let exporter = start("workqueue");
    let func = [("function", "refresh_vm_stats")];
    let count = |s: &Scrape| s.sum("ebpf_exporter_workqueue_latency_seconds_count", &func);
    let before = exporter.scrape();

    // Each write to stat_refresh queues refresh_vm_stats on every online
    // CPU and waits for them to run.
    let writes = 5;
    for _ in 0..writes {
        fs::write("/proc/sys/vm/stat_refresh", "1").expect("write stat_refresh");
    }
    let expected = (writes * online_cpus().len()) as f64;
    let after = wait_for(&exporter, "refresh_vm_stats work items", |s| {
        count(s) >= count(&before) + expected
    });
    check_scrape(&after);
    after.assert_inf_is_count("ebpf_exporter_workqueue_latency_seconds", &func);
    let syms = kallsyms_names();
    let functions: BTreeSet<String> = after
        .find("ebpf_exporter_workqueue_latency_seconds_count", &[])
        .iter()
        .map(|s| s.labels["function"].clone())
        .collect();
    let named = functions.iter().filter(|f| syms.contains(*f)).count();
    assert!(
        named * 10 >= functions.len() * 9,
        "work functions are kernel symbols: {functions:?}"
    );
}

/// `syscalls` counts each call once at its exit: a raw fork()'s two
/// returns (parent and child) are one call, and exit_group(), which never
/// returns, is counted when its task exits. 30 forks whose children call
/// exit_group() give exactly 30 forks (nobody else calls the fork syscall:
/// the C library forks with clone) and at least 30 exit_groups, and
/// errors keep their errno.
#[test]
fn syscalls_counts_each_call_once_at_its_exit() {
    let exporter = start("syscalls");
    let before = exporter.scrape();
    let calls =
        |s: &Scrape, name: &str| s.sum("ebpf_exporter_syscalls_total", &[("syscall", name)]);
    for _ in 0..30 {
        // SAFETY: the child makes raw syscalls only, then leaves with
        // exit_group, so nothing of the parent's state runs twice.
        let pid = unsafe { libc::syscall(libc::SYS_fork) };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            // SAFETY: leaving the child at once.
            unsafe { libc::syscall(libc::SYS_exit_group, 0) };
        }
        let mut status = 0;
        // SAFETY: waiting for our own child; status outlives the call.
        let rc = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
        assert_eq!(rc as libc::c_long, pid);
    }
    // A failing call: close() of a descriptor nobody has, EBADF.
    for _ in 0..7 {
        // SAFETY: closing a descriptor number that is not open.
        assert_eq!(unsafe { libc::close(987_657) }, -1);
    }
    let s = wait_for(&exporter, "30 forks and their children's exits", |s| {
        calls(s, "fork") - calls(&before, "fork") >= 30.0
            && calls(s, "exit_group") - calls(&before, "exit_group") >= 30.0
    });
    assert_eq!(calls(&s, "fork") - calls(&before, "fork"), 30.0);
    let ebadf = |s: &Scrape| {
        s.sum(
            "ebpf_exporter_syscall_errors_total",
            &[("syscall", "close"), ("errno", "EBADF")],
        )
    };
    assert!(ebadf(&s) - ebadf(&before) >= 7.0, "{}", ebpf_lines(&s.text));
}

/// Churn: cgroups that come and go leave no series behind. Each of three
/// rounds makes 5 cgroups, charges CPU time to each, and removes them:
/// their series show under their paths, then end within a few scrapes,
/// never turn into `unknown_cgroup_id:N`, and their map entries are
/// deleted (`delete_gone`, set in the shipped config).
#[test]
fn series_of_removed_cgroups_end_and_their_entries_are_deleted() {
    use std::os::unix::fs::MetadataExt;
    let exporter = start("cgroup_cpu");
    let root = cgroup2_mount();
    let deleted = |s: &Scrape| {
        s.sum(
            "ebpf_exporter_map_gone_entries_deleted_total",
            &[("map", "cgroup_cpu_seconds_total")],
        )
    };
    let cpu = |s: &Scrape, label: &str| {
        s.sum(
            "ebpf_exporter_cgroup_cpu_seconds_total",
            &[("cgroup", label)],
        )
    };
    let mut deleted_before = deleted(&exporter.scrape());
    for round in 0..3 {
        let cgroups: Vec<CgroupDir> = (0..5)
            .map(|i| CgroupDir::create(&root, &format!("churn{round}x{i}")))
            .collect();
        let ids: Vec<u64> = cgroups
            .iter()
            .map(|c| fs::metadata(&c.path).expect("stat").ino())
            .collect();
        for cg in &cgroups {
            common::in_child(Some(&cg.path), || {
                let t = std::time::Instant::now();
                while t.elapsed() < Duration::from_millis(20) {
                    std::hint::spin_loop();
                }
            });
        }
        let labels: Vec<String> = cgroups.iter().map(CgroupDir::label).collect();
        wait_for(&exporter, "CPU time charged to each new cgroup", |s| {
            labels.iter().all(|l| cpu(s, l) > 0.0)
        });
        drop(cgroups);
        let s = wait_for(&exporter, "the removed cgroups' series gone", |s| {
            labels.iter().all(|l| {
                s.find("ebpf_exporter_cgroup_cpu_seconds_total", &[("cgroup", l)])
                    .is_empty()
            })
        });
        for id in &ids {
            let unknown = format!("unknown_cgroup_id:{id}");
            assert!(
                s.find(
                    "ebpf_exporter_cgroup_cpu_seconds_total",
                    &[("cgroup", &unknown)]
                )
                .is_empty(),
                "round {round}: {unknown} exported"
            );
        }
        let now = deleted(&s);
        assert!(
            now - deleted_before >= 5.0,
            "round {round}: {} entries deleted for 5 removed cgroups",
            now - deleted_before
        );
        deleted_before = now;
    }
}
