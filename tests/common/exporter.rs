//! The exporter under test: the real binary, started as root on an
//! ephemeral loopback port, with the configs tests share.

use super::*;

pub const BIN: &str = env!("CARGO_BIN_EXE_ebpf-exporter");

/// A config on the built-in syscalls object's counter map, in block style
/// so that tests can break one line of it at a time.
pub const SYSCALLS_COUNTER: &str = "object: syscalls
metrics:
  counters:
    - name: syscalls_total
      help: System calls by name
      omit_zero: true
      labels:
        - name: syscall
          size: 4
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
