//! Signals: SIGHUP and SIGUSR1 are logged and ignored, SIGTERM, SIGINT and
//! SIGQUIT stop the exporter cleanly with its programs detached.

mod common;

use std::time::Duration;

use common::{eventually, Running};

fn signal(e: &Running, sig: i32) {
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(e.pid() as i32, sig) }, 0);
}

#[test]
fn hangup_and_usr1_do_not_kill_and_quit_stops_cleanly() {
    let e = Running::start(&["--config.names=syscalls"]);
    signal(&e, libc::SIGHUP);
    signal(&e, libc::SIGUSR1);
    assert!(
        eventually(Duration::from_secs(5), || e
            .log()
            .contains("SIGUSR1: ignored")),
        "{}",
        e.log()
    );
    assert!(e.log().contains("SIGHUP: ignored"), "{}", e.log());
    assert!(
        e.scrape().has("ebpf_exporter_syscalls_total"),
        "still serving"
    );

    signal(&e, libc::SIGQUIT);
    assert!(
        eventually(Duration::from_secs(10), || e
            .log()
            .contains("programs detached")),
        "{}",
        e.log()
    );
    assert!(e.log().contains("SIGQUIT: shutting down"));
}

/// With `NOTIFY_SOCKET` set (systemd `Type=notify`), READY=1 is sent once
/// the exporter serves, and STOPPING=1 when SIGTERM starts the shutdown.
#[test]
fn sd_notify_reports_ready_and_stopping() {
    let dir = common::scratch_dir("sd-notify");
    let path = dir.join("notify");
    let socket = std::os::unix::net::UnixDatagram::bind(&path).expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let e = Running::try_start_with(&["--config.names=syscalls"], |cmd| {
        cmd.env("NOTIFY_SOCKET", &path);
    })
    .unwrap_or_else(|log| panic!("{log}"));
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf).expect("READY=1 arrives");
    assert_eq!(
        std::str::from_utf8(&buf[..n]),
        Ok("READY=1\nSTATUS=serving 1 config(s)")
    );
    assert_eq!(e.get("/metrics").status, 200, "ready means serving");
    signal(&e, libc::SIGTERM);
    let n = socket.recv(&mut buf).expect("STOPPING=1 arrives");
    assert_eq!(std::str::from_utf8(&buf[..n]), Ok("STOPPING=1"));
    let (status, log) = e.stop();
    assert!(status.success(), "{log}");
}
