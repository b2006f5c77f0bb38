//! The reference's command lines start this exporter: its flags, hostnames
//! in --web.listen-address, several addresses, and systemd socket
//! activation (`fd://0`).

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use common::{http_get, scratch_dir, Running, BIN};

#[test]
fn reference_flags_hostnames_and_several_addresses() {
    let dir = scratch_dir("cli-compat");
    std::fs::write(dir.join("syscalls.yaml"), common::SYSCALLS_COUNTER).expect("write");
    let exporter = Running::start(&[
        &format!("--config.dir={}", dir.display()),
        "--config.names=syscalls",
        "--capabilities.keep=none",
        "--log.no-timestamps",
        "--config.skip-cache-size=1024",
        "--web.listen-address=localhost:0",
    ]);
    let both = common::eventually(std::time::Duration::from_secs(5), || {
        exporter.log().matches("listening on http://").count() == 2
    });
    let log = exporter.log();
    assert!(both, "{log}");
    let listening: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("listening on http://"))
        .collect();
    assert_eq!(
        listening.len(),
        2,
        "the harness's address and localhost: {log}"
    );
    // Both are loopback IPv4: localhost resolves to 127.0.0.1 first.
    for line in &listening {
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .expect("addr");
        assert!(addr.starts_with("127.0.0.1:"), "{line}");
        assert_eq!(http_get(addr, "/metrics", &[]).status, 200);
    }
    assert!(
        log.lines().all(|l| !l.starts_with("[20")),
        "no timestamps: {log}"
    );
    assert!(
        log.contains("--config.skip-cache-size is accepted for compatibility"),
        "{log}"
    );
}

#[test]
fn systemd_socket_activation_serves_on_the_passed_socket() {
    let socket = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = socket.local_addr().expect("addr").to_string();
    let fd = socket.as_raw_fd();
    let mut cmd = Command::new(BIN);
    cmd.args(["--web.listen-address=fd://0", "--config.names=syscalls"])
        .env("LISTEN_FDS", "1")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: dup2 is async-signal-safe; it puts the socket at fd 3, where
    // systemd passes the first one.
    unsafe {
        cmd.pre_exec(move || {
            // dup2 onto itself keeps close-on-exec, so clear it then.
            let ok = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0) == 0
            } else {
                libc::dup2(fd, 3) == 3
            };
            if !ok {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let listening = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("listening on") || l.contains("ERROR"))
        .expect("a listening line");
    assert!(
        listening.contains(&format!("http://{addr}/metrics")),
        "{listening}"
    );
    drop(socket);
    let r = http_get(&addr, "/metrics", &[]);
    assert_eq!(r.status, 200);
    assert!(r.text().contains("ebpf_exporter_syscalls_total"));
    let _ = child.kill();
    let _ = child.wait();

    // fd://1 when only one socket was passed is refused with the reason.
    let out = Command::new(BIN)
        .arg("--web.listen-address=fd://1")
        .env("LISTEN_FDS", "1")
        .output()
        .expect("run");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        log.contains("fd://1: systemd passed only 1 socket(s)"),
        "{log}"
    );
}
