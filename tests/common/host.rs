//! Processes, cgroups and CPUs: running work in a cgroup, pinning threads,
//! and reading CPU time and memory of processes.

use super::*;

/// Where the cgroup v2 hierarchy is mounted: `/sys/fs/cgroup` on pure v2
/// hosts, `/sys/fs/cgroup/unified` on hybrid ones (the exporter's own
/// finder, so tests and exporter agree).
pub fn cgroup2_mount() -> PathBuf {
    ebpf_exporter::host::cgroups::host_cgroup2_mount().expect("a cgroup2 filesystem is mounted")
}

/// Pins the calling thread to `cpu`.
pub fn pin_to_cpu(cpu: usize) {
    set_affinity(cpu).unwrap_or_else(|e| panic!("sched_setaffinity to CPU {cpu}: {e}"));
}

/// Pins task `pid` (a thread or process of ours) to `cpu`.
pub fn pin_task_to_cpu(pid: libc::pid_t, cpu: usize) {
    set_affinity_of(pid, cpu)
        .unwrap_or_else(|e| panic!("sched_setaffinity of {pid} to CPU {cpu}: {e}"));
}

/// Binds the calling thread to `cpu`. It allocates nothing and makes one
/// syscall, so a child can call it between fork and exec (`pre_exec`).
pub fn set_affinity(cpu: usize) -> std::io::Result<()> {
    set_affinity_of(0, cpu)
}

/// Binds task `pid` (0: the calling thread) to `cpu`, allocating nothing.
pub fn set_affinity_of(pid: libc::pid_t, cpu: usize) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is empty; CPU_SET stays within it, and the
    // set outlives the call.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// CPU time of the calling thread, in ns. Timing by CPU time rather than
/// wall time keeps the time the thread spends preempted by other work out of
/// the measurement, which on a loaded machine is most of the noise.
pub fn thread_cpu_ns() -> f64 {
    // SAFETY: zeroed timespec is valid output space.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: ts outlives the call.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e9 + ts.tv_nsec as f64
}

/// CPU time a process has used so far, all its threads (those that exited
/// too), in seconds: utime plus stime from `/proc/PID/stat`, which the
/// kernel scales to the scheduler's exact runtime but reports in clock
/// ticks, so time spans of a second or more.
pub fn process_cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/stat: {e}"));
    // Fields after the command name, which may hold spaces: state is 3.
    let fields = ebpf_exporter::host::procstat::stat_fields(&stat);
    let ticks = |i: usize| -> f64 {
        fields
            .get(i - 3)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("field {i} of /proc/{pid}/stat"))
    };
    // SAFETY: a plain getter.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(14) + ticks(15)) / hz
}

/// The inotify watches a process holds, from its fds' fdinfo: what counts
/// against `fs.inotify.max_user_watches`.
pub fn inotify_watches(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .unwrap_or_else(|e| panic!("fdinfo of process {pid}: {e}"))
        .flatten()
        .filter_map(|f| std::fs::read_to_string(f.path()).ok())
        .map(|info| {
            info.lines()
                .filter(|l| l.starts_with("inotify wd:"))
                .count()
        })
        .sum()
}

/// A `/proc/PID/status` memory field in KiB (`VmRSS:`, `VmHWM:`).
pub fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or_else(|| panic!("{field} of process {pid}"))
}

/// Runs `work` in a forked child that first moves itself into cgroup `cg`
/// (when given), and fails the test if the child fails. The child is a copy
/// of a multi-threaded process, so `work` may only make syscalls and use
/// glibc's malloc (which glibc keeps usable across fork); it needs no
/// interpreter, which the kernel matrix's guests do not have.
pub fn in_child(cg: Option<&Path>, work: impl FnOnce()) {
    use std::os::unix::ffi::OsStrExt;
    let procs = cg.map(|cg| {
        std::ffi::CString::new(cg.join("cgroup.procs").as_os_str().as_bytes())
            .expect("cgroup path has no NUL")
    });
    // SAFETY: the child makes only the syscalls below and `work`'s, then
    // leaves with _exit, so nothing of the parent's state is unwound twice.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        if let Some(procs) = &procs {
            // SAFETY: a NUL-terminated path; "0" moves the writer itself.
            let ok = unsafe {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                fd >= 0 && libc::write(fd, b"0".as_ptr().cast(), 1) == 1 && libc::close(fd) == 0
            };
            if !ok {
                // SAFETY: leaving the child without unwinding.
                unsafe { libc::_exit(2) };
            }
        }
        let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).is_ok();
        // SAFETY: leaving the child without unwinding.
        unsafe { libc::_exit(if done { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child; status outlives the call.
    let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(rc, pid, "waitpid: {}", std::io::Error::last_os_error());
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child (in {cg:?}) failed: wait status {status:#x} (exit 2: could not join the cgroup)"
    );
}

/// Runs `python` (a `python3 -c` program) in a child moved into cgroup
/// `cg` first, and fails the test if it fails.
pub fn python_in_cgroup(cg: &Path, python: &str) {
    let script = format!(
        "echo $$ > {}/cgroup.procs && exec python3 -c \"{python}\"",
        cg.display()
    );
    let status = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .status()
        .expect("child runs");
    assert!(status.success(), "{script}");
}

/// losetup picks the first free device; tests of one binary running in
/// parallel threads attach one at a time.
static LOSETUP: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A loop device over an image file, detached on drop: a disk whose every
/// request is the test's.
pub struct LoopDev {
    /// `/dev/loopN`
    pub dev: String,
    /// `loopN`, as `/proc/partitions`, `/proc/diskstats` and the
    /// majorminor decoder name it.
    pub name: String,
}

impl LoopDev {
    pub fn attach(image: &Path) -> LoopDev {
        let _one_at_a_time = LOSETUP.lock().unwrap_or_else(|p| p.into_inner());
        let dev = run(Command::new("losetup").args(["-f", "--show"]).arg(image))
            .trim()
            .to_string();
        assert!(dev.starts_with("/dev/loop"), "losetup printed {dev:?}");
        let name = dev.trim_start_matches("/dev/").to_string();
        LoopDev { dev, name }
    }

    /// Its kernel dev_t (`MKDEV`: major << 20 | minor), as block
    /// tracepoints report it.
    pub fn kdev(&self) -> u32 {
        let name = &self.name;
        let dev = std::fs::read_to_string(format!("/sys/block/{name}/dev")).expect("read its dev");
        let (major, minor) = dev
            .trim()
            .split_once(':')
            .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
            .unwrap_or_else(|| panic!("/sys/block/{name}/dev is {dev:?}"));
        (major << 20) | minor
    }
}

impl Drop for LoopDev {
    fn drop(&mut self) {
        let _one_at_a_time = LOSETUP.lock().unwrap_or_else(|p| p.into_inner());
        let _ = Command::new("losetup")
            .args(["-d", &self.dev])
            .stderr(Stdio::null())
            .status();
    }
}
