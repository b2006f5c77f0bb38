//! libbpf-tools objects as Debian ships them (the `libbpf-tools`
//! package, which `scripts/setup.sh` installs), and what their tests share:
//! config directories, `describe`, and a child whose syscalls a config can
//! single out by pid.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{eventually, scratch_dir, Running, Scrape, BIN};

const TIMEOUT: Duration = Duration::from_secs(15);

/// The BPF object a libbpf-tools binary embeds (its skeleton holds the
/// ELF bytes): the first ELF image for machine EM_BPF (247) after the
/// binary's own header, cut at the end of its section headers. Kept in the
/// tests' object cache, which the kernel matrix's guests carry (they have
/// no libbpf-tools package). Fails the test when neither has it: these
/// tests must not pass silently.
pub fn tool_object(tool: &str) -> Vec<u8> {
    let cached = super::compile::cache_dir()
        .join("libbpf-tools")
        .join(format!("{tool}.bpf.o"));
    if let Ok(bytes) = fs::read(&cached) {
        return bytes;
    }
    let path = Path::new("/usr/sbin").join(tool);
    let data = fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; Debian's libbpf-tools package provides it (scripts/setup.sh installs it)",
            path.display()
        )
    });
    let object = embedded_bpf(&data)
        .unwrap_or_else(|| panic!("{}: no embedded BPF object found", path.display()));
    if let Some(dir) = cached.parent() {
        let _ = fs::create_dir_all(dir);
        let _ = fs::write(&cached, &object);
    }
    object
}

pub fn embedded_bpf(data: &[u8]) -> Option<Vec<u8>> {
    let mut at = 1;
    while let Some(i) = data[at..].windows(4).position(|w| w == b"\x7fELF") {
        let start = at + i;
        let h = &data[start..];
        let machine = h.get(18..20).map(|b| u16::from_le_bytes([b[0], b[1]]));
        if h.get(4) == Some(&2) && h.get(5) == Some(&1) && machine == Some(247) {
            let word = |o: usize, n: usize| {
                let mut b = [0u8; 8];
                b[..n].copy_from_slice(&h[o..o + n]);
                u64::from_le_bytes(b) as usize
            };
            let end = word(0x28, 8) + word(0x3a, 2) * word(0x3c, 2);
            return h.get(..end).map(<[u8]>::to_vec);
        }
        at = start + 1;
    }
    None
}

/// A directory on a real disk: /var/tmp where it exists (the kernel
/// matrix's guests mount their disk there; their /tmp is RAM), so that
/// direct I/O reaches a block device.
pub fn disk_dir(name: &str) -> PathBuf {
    let base = Path::new("/var/tmp");
    let base = if base.is_dir() {
        base.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("ee-test-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create a directory on disk");
    dir
}

/// A config directory holding `tool.bpf.o` and `tool.yaml`.
pub fn tool_dir(test: &str, tool: &str, yaml: &str) -> PathBuf {
    let dir = scratch_dir(&format!("lbt-{test}"));
    fs::write(dir.join(format!("{tool}.bpf.o")), tool_object(tool)).expect("write object");
    fs::write(dir.join(format!("{tool}.yaml")), yaml).expect("write config");
    dir
}

pub fn start(dir: &Path) -> Running {
    Running::start(&[
        &format!("--config.dir={}", dir.display()),
        "--config.strict",
    ])
}

pub fn wait_for(exporter: &Running, what: &str, mut pred: impl FnMut(&Scrape) -> bool) -> Scrape {
    let mut last = None;
    let ok = eventually(TIMEOUT, || {
        let s = exporter.scrape();
        let done = pred(&s);
        last = Some(s);
        done
    });
    let last = last.expect("scraped at least once");
    assert!(ok, "{what}; last scrape:\n{}", last.text);
    last
}

/// A forked child that makes `n` calls of one raw syscall when told to,
/// and exits: its pid is known before it runs, so a config can filter on
/// it. The child of a multi-threaded process only reads, makes raw
/// syscalls and exits; the kernel matrix's guests have no interpreter to
/// run instead. Pointer arguments must point at memory the parent made
/// before `spawn`, which the child's copy of it holds too.
pub struct SyscallChild {
    pub pid: libc::pid_t,
    go: std::os::fd::OwnedFd,
    waited: bool,
}

/// A child never told to go (its test failed first) is killed, not left
/// behind holding the test's output open.
impl Drop for SyscallChild {
    fn drop(&mut self) {
        if !self.waited {
            // SAFETY: signalling and reaping our own child.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                libc::waitpid(self.pid, std::ptr::null_mut(), 0);
            }
        }
    }
}

impl SyscallChild {
    /// A child that will call getpid() `n` times.
    pub fn getpid(n: usize) -> SyscallChild {
        SyscallChild::spawn(n, libc::SYS_getpid, [0; 4])
    }

    pub fn spawn(n: usize, nr: libc::c_long, args: [libc::c_long; 4]) -> SyscallChild {
        use std::os::fd::FromRawFd;
        let mut fds = [0; 2];
        // SAFETY: pipe fills two fds, which are owned below.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
        // SAFETY: the child only calls read, syscall and _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork");
        if pid == 0 {
            let mut byte = 0u8;
            // SAFETY: async-signal-safe calls on fds this process owns;
            // the syscall's arguments are the caller's to make valid.
            unsafe {
                // Other tests' children may hold this pipe's write end
                // (forks copy every fd), so a parent gone without a word
                // may never close it: wait a bounded time.
                let mut go = libc::pollfd {
                    fd: fds[0],
                    events: libc::POLLIN,
                    revents: 0,
                };
                if libc::poll(&mut go, 1, 60_000) != 1 {
                    libc::_exit(3);
                }
                libc::read(fds[0], (&mut byte as *mut u8).cast(), 1);
                for _ in 0..n {
                    libc::syscall(nr, args[0], args[1], args[2], args[3]);
                }
                libc::_exit(0);
            }
        }
        // SAFETY: fds[0] is ours, and only the child reads it.
        unsafe { libc::close(fds[0]) };
        // SAFETY: fds[1] is ours alone from here on.
        let go = unsafe { std::os::fd::OwnedFd::from_raw_fd(fds[1]) };
        SyscallChild {
            pid,
            go,
            waited: false,
        }
    }

    /// Lets it make its calls, and waits for it to exit.
    pub fn run(mut self) {
        use std::os::fd::AsRawFd;
        self.waited = true;
        // SAFETY: a one-byte write to our pipe, then waiting for our child.
        unsafe {
            assert_eq!(
                libc::write(self.go.as_raw_fd(), [1u8].as_ptr().cast(), 1),
                1
            );
            let mut status = 0;
            assert_eq!(libc::waitpid(self.pid, &mut status, 0), self.pid);
            assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        }
    }
}

pub fn describe(dir: &Path, tool: &str) -> (bool, String) {
    let out = Command::new(BIN)
        .current_dir(dir)
        .args(["describe", &format!("./{tool}.bpf.o")])
        .output()
        .expect("runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A file on the machine's own disk, written and read with O_DIRECT, so
/// that its I/O reaches the device and raises its interrupts.
pub fn direct_io(name: &str, blocks: usize) {
    let dir = disk_dir(name);
    let file = dir.join("data");
    super::run(Command::new("dd").args([
        "if=/dev/zero",
        &format!("of={}", file.display()),
        "bs=64k",
        &format!("count={blocks}"),
        "oflag=direct",
        "status=none",
    ]));
    super::run(Command::new("dd").args([
        &format!("if={}", file.display()),
        "of=/dev/null",
        "bs=64k",
        "iflag=direct",
        "status=none",
    ]));
    let _ = fs::remove_dir_all(dir);
}

/// `ebpf-exporter --config.dir=DIR --config.check`, run to its end.
pub fn config_check(dir: &Path) -> std::process::Output {
    Command::new(BIN)
        .args([&format!("--config.dir={}", dir.display()), "--config.check"])
        .output()
        .expect("runs")
}

/// Checks that each bad config of `dir` is refused with its message (by
/// `--config.check`, stdout and stderr together), and that the good ones
/// beside them run: a refusal takes down nothing else.
pub fn assert_refusals_leave_the_good_running(dir: &Path, wants: &[(&str, &str)]) {
    let check = config_check(dir);
    let report = String::from_utf8_lossy(&check.stdout).into_owned()
        + &String::from_utf8_lossy(&check.stderr);
    for (name, want) in wants {
        assert!(report.contains(want), "{name}: want {want:?} in:\n{report}");
    }
    let exporter = Running::start(&[&format!("--config.dir={}", dir.display())]);
    assert!(
        exporter.scrape().text.contains("config=\"good\""),
        "the good config runs"
    );
}

/// The C library the tests run with, from their own mappings: what a
/// uprobe on its functions names.
pub fn libc_path() -> String {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps");
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.contains("/libc.so") || p.contains("/libc-"))
        .expect("the tests link the C library")
        .to_string()
}
