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
