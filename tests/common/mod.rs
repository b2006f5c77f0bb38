//! Shared integration-test harness: runs the real binary as root against real
//! BPF programs, scrapes it over HTTP, and parses the exposition.
#![allow(dead_code)]

pub mod compile;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_ebpf-exporter");

/// A config on the built-in syscalls object's counter map, in block style
/// so that tests can break one line of it at a time.
pub const SYSCALLS_COUNTER: &str = "object: syscalls
metrics:
  counters:
    - name: syscalls_total
      help: System calls by name
      labels:
        - name: syscall
          size: 8
          decoders:
            - name: uint
            - name: syscall
";

/// A healthy config on the syscalls object's other map: the neighbour that
/// must keep serving beside broken configs.
pub const SYSCALL_ERRORS: &str = "object: syscalls
metrics:
  counters:
    - name: syscall_errors_total
      help: Failed system calls
      labels:
        - {name: syscall, size: 4, decoders: [{name: uint}, {name: syscall}]}
        - {name: errno, size: 4, decoders: [{name: uint}, {name: errno}]}
";

/// A running exporter on an ephemeral loopback port; killed on drop.
pub struct Running {
    child: Child,
    pub addr: String,
    /// Everything the exporter logged so far (stderr), collected in the background.
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Running {
    /// The map `name` of the object that loaded `program`, by the program's
    /// map ids (the kernel keeps 15 characters of a map's name).
    pub fn map_of(&self, program: &str, name: &str) -> libbpf_rs::MapHandle {
        use libbpf_rs::MapCore;
        let fd = prog_fd(self.program_id(program));
        for id in prog_map_ids(&fd) {
            let Ok(h) = libbpf_rs::MapHandle::from_map_id(id) else {
                continue;
            };
            let kernel = h.name().to_string_lossy().into_owned();
            if !kernel.is_empty() && name.starts_with(&kernel) {
                return h;
            }
        }
        panic!("program {program} uses no map {name}");
    }

    /// Starts the binary with `args` plus a loopback listen address, and
    /// waits until it serves.
    pub fn start(args: &[&str]) -> Running {
        Self::try_start(args)
            .unwrap_or_else(|log| panic!("exporter did not start; its log:\n{log}"))
    }

    /// Like `start`, but returns the log instead of panicking when the
    /// exporter exits or never listens.
    pub fn try_start(args: &[&str]) -> Result<Running, String> {
        Self::try_start_with(args, |_| {})
    }

    /// Like `try_start`, with `configure` applied to the command first
    /// (resource limits, environment).
    pub fn try_start_with(
        args: &[&str],
        configure: impl FnOnce(&mut Command),
    ) -> Result<Running, String> {
        Self::try_start_binary(BIN, args, configure)
    }

    /// Like `try_start_with`, running the exporter binary at `bin` (another
    /// build, for benches that compare builds).
    pub fn try_start_binary(
        bin: &str,
        args: &[&str],
        configure: impl FnOnce(&mut Command),
    ) -> Result<Running, String> {
        let mut cmd = Command::new(bin);
        configure(&mut cmd);
        if !cmd.get_envs().any(|(k, _)| k == "RUST_LOG") {
            cmd.env("RUST_LOG", "info");
        }
        let mut child = cmd
            .args(args)
            .arg("--web.listen-address=127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn exporter");
        let stderr = child.stderr.take().expect("stderr piped");
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let log_w = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let served = line
                    .split("listening on http://")
                    .nth(1)
                    .or_else(|| line.split("listening on https://").nth(1));
                if let Some(rest) = served {
                    let addr = rest.split('/').next().unwrap_or("").to_string();
                    let _ = tx.send(addr);
                }
                let mut l = log_w.lock().unwrap_or_else(|p| p.into_inner());
                l.push_str(&line);
                l.push('\n');
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(addr) = rx.recv_timeout(Duration::from_millis(100)) {
                return Ok(Running { child, addr, log });
            }
            if let Ok(Some(_)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(200));
                return Err(log.lock().map(|l| l.clone()).unwrap_or_default());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(log.lock().map(|l| l.clone()).unwrap_or_default());
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn get(&self, path: &str) -> Response {
        http_get(&self.addr, path, &[])
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        http_get(&self.addr, path, headers)
    }

    pub fn post(&self, path: &str) -> Response {
        http_request(&self.addr, "POST", path, &[])
    }

    /// Sends `sig` to the exporter.
    pub fn signal(&self, sig: i32) {
        // SAFETY: signalling our own child process.
        assert_eq!(unsafe { libc::kill(self.pid() as i32, sig) }, 0);
    }

    /// The kernel id of loaded program `name`, from the exporter's own
    /// `ebpf_exporter_ebpf_program_info` (for BPF_PROG_TEST_RUN-driven tests).
    pub fn program_id(&self, name: &str) -> u32 {
        self.scrape()
            .find("ebpf_exporter_ebpf_program_info", &[("program", name)])
            .first()
            .and_then(|s| s.labels.get("id")?.parse().ok())
            .unwrap_or_else(|| panic!("program {name} is not loaded"))
    }

    pub fn scrape(&self) -> Scrape {
        let r = self.get("/metrics");
        assert_eq!(r.status, 200, "scrape failed: {}", r.text());
        Scrape::parse(&r.text())
    }

    /// Stops with SIGTERM and returns the exit status and the full log.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().expect("wait exporter");
        std::thread::sleep(Duration::from_millis(100));
        (status, self.log())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.1 GET, so tests need no HTTP client crate.
pub fn http_get(addr: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    http_request(addr, "GET", path, headers)
}

/// A minimal HTTP/1.1 request without a body.
pub fn http_request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut s = TcpStream::connect(addr).expect("connect to exporter");
    s.set_read_timeout(Some(Duration::from_secs(60))).ok();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("send request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body,
    }
}

/// Times a GET to its last byte, the way a scraper that parses as it reads
/// sees it: the response is read into one reused buffer and only counted,
/// so the client's own copying is not billed to the server. Returns the
/// time and the bytes received (headers and chunk framing included).
pub fn timed_get(addr: &str, path: &str, buf: &mut Vec<u8>) -> (Duration, usize) {
    buf.resize(1 << 20, 0);
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).expect("connect to exporter");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).expect("send request");
    let mut total = 0;
    loop {
        match s.read(buf) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read response: {e}"),
        }
    }
    (started.elapsed(), total)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
    out
}

/// The length-delimited `MetricFamily` messages of a protobuf exposition,
/// parsed with the `prometheus` crate's generated code.
pub fn parse_protobuf(mut bytes: &[u8]) -> Vec<prometheus::proto::MetricFamily> {
    use protobuf::Message;
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let mut stream = protobuf::CodedInputStream::from_bytes(bytes);
        let len = stream.read_raw_varint64().expect("a length prefix") as usize;
        let at = stream.pos() as usize;
        let body = bytes.get(at..at + len).expect("a whole message");
        out.push(prometheus::proto::MetricFamily::parse_from_bytes(body).expect("a family"));
        bytes = &bytes[at + len..];
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed text-format scrape.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    pub text: String,
    pub samples: Vec<Sample>,
}

impl Scrape {
    pub fn parse(text: &str) -> Scrape {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| parse_sample(l).unwrap_or_else(|| panic!("unparsable sample line: {l:?}")))
            .collect();
        Scrape {
            text: text.to_string(),
            samples,
        }
    }

    /// Samples named `name` whose labels include all of `labels`.
    pub fn find(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// Sum of the matching samples' values.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.find(name, labels).iter().map(|s| s.value).sum()
    }

    /// Asserts that `histogram` has observations for `labels` and that
    /// each matching series adds up: its bucket rows, taken in `le` order,
    /// never decrease; the rows' own total (the highest finite bucket, since
    /// rows outside the configured range are not exported) is the `+Inf`
    /// bucket; and `_count` is that total.
    pub fn assert_inf_is_count(&self, histogram: &str, labels: &[(&str, &str)]) {
        let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for s in self.find(&format!("{histogram}_bucket"), labels) {
            let mut id = s.labels.clone();
            let le = id.remove("le").expect("bucket has le");
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap_or_else(|_| panic!("bad le {le:?}"))
            };
            series
                .entry(format!("{id:?}"))
                .or_default()
                .push((bound, s.value));
        }
        assert!(!series.is_empty(), "{histogram}{labels:?} has no buckets");
        let mut total = 0.0;
        for (id, rows) in &mut series {
            rows.sort_by(|a, b| a.0.total_cmp(&b.0));
            let Some((inf, finite)) = rows.split_last() else {
                continue;
            };
            assert_eq!(inf.0, f64::INFINITY, "{histogram}{id}: +Inf bucket");
            assert!(
                finite.windows(2).all(|w| w[0].1 <= w[1].1),
                "{histogram}{id}: buckets are cumulative: {rows:?}"
            );
            let rows_total = finite.last().map_or(0.0, |b| b.1);
            assert_eq!(
                inf.1, rows_total,
                "{histogram}{id}: +Inf is the rows' total"
            );
            total += rows_total;
        }
        assert!(total > 0.0, "{histogram}{labels:?} has observations");
        let count = self.sum(&format!("{histogram}_count"), labels);
        assert_eq!(
            count, total,
            "{histogram}{labels:?}: _count is the rows' total"
        );
    }

    pub fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|s| s.name == name)
    }
}

fn parse_sample(line: &str) -> Option<Sample> {
    let (name_labels, value) = line.rsplit_once(' ')?;
    let value: f64 = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    let (name, labels) = match name_labels.split_once('{') {
        None => (name_labels.to_string(), BTreeMap::new()),
        Some((n, rest)) => (n.to_string(), parse_labels(rest.strip_suffix('}')?)?),
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

fn parse_labels(mut s: &str) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    while !s.is_empty() {
        let (k, rest) = s.split_once("=\"")?;
        let mut v = String::new();
        let mut chars = rest.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => v.push('\n'),
                    c => v.push(c),
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                c => v.push(c),
            }
        }
        let end = end?;
        out.insert(k.trim_start_matches(',').to_string(), v);
        s = rest[end + 1..].trim_start_matches(',');
    }
    Some(out)
}

/// Runs `promtool check metrics` on a scrape; returns its complaints.
pub fn promtool_check(text: &str) -> String {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (apt-get install prometheus)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool runs");
    let mut msg = String::from_utf8_lossy(&out.stdout).into_owned();
    msg.push_str(&String::from_utf8_lossy(&out.stderr));
    if !out.status.success() && msg.trim().is_empty() {
        msg = format!("promtool exited with {}", out.status);
    }
    msg
}

/// Compiles a BPF C source the way an operator would for an external object
/// (through the build cache of `compile`).
pub fn compile_bpf(src: &Path, out: &Path) {
    compile_bpf_with(src, out, &[]);
}

/// `compile_bpf` with extra `-D` definitions, for variants of one source.
pub fn compile_bpf_with(src: &Path, out: &Path, defines: &[&str]) {
    let built = compile::bpf_object(src, defines);
    std::fs::copy(&built, out)
        .unwrap_or_else(|e| panic!("copy {} to {}: {e}", built.display(), out.display()));
}

/// Whether the running kernel is at least `major.minor`.
pub fn kernel_at_least(major: u32, minor: u32) -> bool {
    use ebpf_exporter::host::kernel::{version, Version};
    version().expect("the kernel release parses") >= Version::new(major, minor)
}

/// Whether these tests run in one of the kernel matrix's guests
/// (`scripts/kernel-matrix.sh`), on Debian's cloud kernels, which are built
/// with kprobes, BPF trampolines and everything else the tests use. There a
/// feature that fails is a bug, never the kernel's choice; elsewhere tests
/// accept a documented failure where the kernel shows it lacks the feature.
pub fn in_kernel_matrix() -> bool {
    std::env::var_os("EE_KERNEL_MATRIX").is_some_and(|v| v == "1")
}

/// Whether the kernel has kprobes (its kprobe PMU is registered).
pub fn kernel_has_kprobes() -> bool {
    Path::new("/sys/bus/event_source/devices/kprobe").exists()
}

/// Whether this kernel refuses map reads to a process without CAP_BPF, even
/// through an fd it holds (kernels before 6.5 with
/// kernel.unprivileged_bpf_disabled set, unless that change was backported),
/// asked of the kernel itself: a child creates a map, drops every
/// capability, and reads it. The exporter finds its answer by another
/// route, so tests compare the two.
pub fn map_reads_need_cap_bpf() -> bool {
    // SAFETY: the child makes raw syscalls only, then leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: raw syscalls on values on this stack.
        unsafe {
            let fd = libbpf_sys::bpf_map_create(
                libbpf_sys::BPF_MAP_TYPE_HASH,
                std::ptr::null(),
                4,
                8,
                1,
                std::ptr::null(),
            );
            if fd < 0 {
                libc::_exit(2);
            }
            // capset(2), v3: no capability in any set.
            let header: [u32; 2] = [0x2008_0522, 0];
            let data = [0u32; 6];
            if libc::syscall(libc::SYS_capset, header.as_ptr(), data.as_ptr()) != 0 {
                libc::_exit(3);
            }
            let mut key = [0u8; 4];
            let rc =
                libbpf_sys::bpf_map_get_next_key(fd, std::ptr::null(), key.as_mut_ptr().cast());
            libc::_exit(if rc == 0 || rc == -libc::ENOENT { 0 } else { 1 });
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "probe child: {status:#x}");
    match libc::WEXITSTATUS(status) {
        0 => false,
        1 => true,
        other => panic!("probe child failed to set up: exit {other}"),
    }
}

/// The names of the shipped configs (`config/*.yaml`), sorted.
pub fn shipped_configs() -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("config"))
            .expect("config/")
            .filter_map(|e| {
                e.ok()?
                    .file_name()
                    .into_string()
                    .ok()?
                    .strip_suffix(".yaml")
                    .map(str::to_string)
            })
            .collect();
    names.sort();
    names
}

/// A scratch directory for a test's configs and objects.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ee-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs a command to completion and fails the test if it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} runs: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Where the cgroup v2 hierarchy is mounted: `/sys/fs/cgroup` on pure v2
/// hosts, `/sys/fs/cgroup/unified` on hybrid ones (the exporter's own
/// finder, so tests and exporter agree).
pub fn cgroup2_mount() -> PathBuf {
    ebpf_exporter::host::cgroups::host_cgroup2_mount().expect("a cgroup2 filesystem is mounted")
}

/// An fd of loaded program `id` (from `Running::program_id`).
pub fn prog_fd(id: u32) -> std::os::fd::OwnedFd {
    // SAFETY: plain syscall wrapper; a negative return is an error.
    let fd = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(id) };
    assert!(fd >= 0, "program {id} not found");
    // SAFETY: fd was just opened and is owned here.
    unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
}

/// Runs a program once with BPF_PROG_TEST_RUN (programs that fill maps).
pub fn test_run(fd: &std::os::fd::OwnedFd) {
    use std::os::fd::AsRawFd;
    // SAFETY: zeroed opts with sz set is the documented way to call test_run.
    let mut opts: libbpf_sys::bpf_test_run_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<libbpf_sys::bpf_test_run_opts>() as _;
    // SAFETY: opts outlives the call.
    let rc = unsafe { libbpf_sys::bpf_prog_test_run_opts(fd.as_raw_fd(), &mut opts) };
    assert_eq!(
        rc,
        0,
        "BPF_PROG_TEST_RUN: {}",
        std::io::Error::last_os_error()
    );
}

/// The median of benchmark samples (the upper one of an even count).
pub fn median<T: PartialOrd + Copy>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

/// Pins the calling thread to `cpu`.
pub fn pin_to_cpu(cpu: usize) {
    set_affinity(cpu).unwrap_or_else(|e| panic!("sched_setaffinity to CPU {cpu}: {e}"));
}

/// Binds the calling thread to `cpu`. It allocates nothing and makes one
/// syscall, so a child can call it between fork and exec (`pre_exec`).
pub fn set_affinity(cpu: usize) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is empty; CPU_SET stays within it, and the
    // set outlives the call.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
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

/// Ids of the maps a program uses (a fill program references every map of
/// its object).
pub fn prog_map_ids(fd: &std::os::fd::OwnedFd) -> Vec<u32> {
    use std::os::fd::AsRawFd;
    let mut ids = vec![0u32; 64];
    // SAFETY: zeroed info is valid; the kernel writes at most nr_map_ids ids.
    let mut info: libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
    info.nr_map_ids = ids.len() as u32;
    info.map_ids = ids.as_mut_ptr() as u64;
    let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
    // SAFETY: info, ids and len outlive the call.
    let rc = unsafe {
        libbpf_sys::bpf_prog_get_info_by_fd(fd.as_raw_fd(), &mut info as *mut _ as *mut _, &mut len)
    };
    assert_eq!(rc, 0, "prog info: {}", std::io::Error::last_os_error());
    ids.truncate((info.nr_map_ids as usize).min(64));
    ids
}
