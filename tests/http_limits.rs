//! Hostile clients against the real binary on loopback: idle-connection
//! floods under a 1024 fd limit, slow headers, wrong methods, and floods of
//! wrong passwords. Scrapes must keep succeeding throughout.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{http_get, scratch_dir, Running};
use ebpf_exporter::http::auth::basic_header as basic;

/// Sends `request` raw and returns the status code (0 if the connection
/// closed without an answer).
fn raw_status(addr: &str, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
    s.write_all(request.as_bytes()).expect("send");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn raise_own_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid rlimit pointers for both calls.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    assert!(
        lim.rlim_cur >= 4096,
        "the test needs 4096 fds, has {}",
        lim.rlim_cur
    );
}

#[test]
fn scrapes_succeed_while_1500_idle_connections_are_held_under_a_1024_fd_limit() {
    raise_own_fd_limit();
    let exporter = Running::try_start_with(&[], |cmd| {
        // SAFETY: setrlimit is async-signal-safe, as pre_exec requires.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: 1024,
                    rlim_max: 1024,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    })
    .unwrap_or_else(|log| panic!("exporter did not start:\n{log}"));
    let addr = exporter.addr.clone();
    let mut idle = Vec::new();
    for _ in 0..1500 {
        match TcpStream::connect(&addr) {
            Ok(s) => idle.push(s),
            Err(e) => panic!("connect {}: {e}", idle.len()),
        }
    }
    // Half of them start a request and never finish its headers.
    for s in idle.iter_mut().step_by(2) {
        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n");
    }
    for i in 0..5 {
        let t = Instant::now();
        let r = http_get(&addr, "/metrics", &[]);
        assert_eq!(r.status, 200, "scrape {i}");
        assert!(
            r.text().contains("ebpf_exporter_enabled_configs"),
            "scrape {i}"
        );
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "scrape {i} took {:?}",
            t.elapsed()
        );
    }
    let fds = std::fs::read_dir(format!("/proc/{}/fd", exporter.pid()))
        .expect("fd dir")
        .count();
    assert!(fds < 1024, "{fds} fds open");
    drop(idle);
    let log = exporter.log();
    assert!(!log.contains("accept:"), "accept never failed: {log}");
}

#[test]
fn slow_headers_are_cut_off_and_405_names_the_allowed_methods() {
    let exporter = Running::start(&[]);
    let health = http_get(&exporter.addr, "/healthz", &[]);
    assert_eq!((health.status, health.text().as_str()), (200, "ok\n"));
    let (status, text) = raw_status(
        &exporter.addr,
        "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 405, "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("\r\nallow: get, head\r\n"),
        "{text}"
    );

    // Headers that never end: the connection is closed by the header timer
    // (30 s), not held for ever.
    let mut s = TcpStream::connect(&exporter.addr).expect("connect");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .expect("send");
    s.set_read_timeout(Some(Duration::from_secs(45))).ok();
    let t = Instant::now();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_secs(25) && waited < Duration::from_secs(40),
        "closed after {waited:?}"
    );
    // hyper answers a header timeout with 408 or just closes.
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
}

/// Keeps `n` wrong-password requests in flight until `stop` is set; counts
/// the answers by status.
fn flood(
    addr: String,
    n: usize,
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..n)
        .map(|i| {
            let (addr, stop, answered) = (addr.clone(), stop.clone(), answered.clone());
            std::thread::spawn(move || {
                let mut k = 0;
                while !stop.load(Ordering::SeqCst) {
                    k += 1;
                    let auth = basic("prometheus", &format!("guess-{i}-{k}"));
                    let r = http_get(&addr, "/metrics", &[("Authorization", &auth)]);
                    assert!(
                        matches!(r.status, 401 | 429),
                        "wrong password got {}",
                        r.status
                    );
                    answered.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect()
}

#[test]
fn a_known_login_gets_in_fast_while_300_wrong_passwords_are_in_flight() {
    let dir = scratch_dir("auth-flood");
    let hash = bcrypt::hash("right", 10).expect("bcrypt");
    let web = dir.join("web.yml");
    std::fs::write(&web, format!("basic_auth_users:\n  prometheus: {hash}\n")).expect("write");
    let exporter = Running::start(&[&format!("--web.config.file={}", web.display())]);
    let addr = exporter.addr.clone();
    let good = basic("prometheus", "right");

    // Cold: the first login needs a bcrypt of its own.
    let r = http_get(&addr, "/metrics", &[("Authorization", &good)]);
    assert_eq!(r.status, 200);

    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let threads = flood(addr.clone(), 300, stop.clone(), answered.clone());
    std::thread::sleep(Duration::from_secs(1));
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        let t = Instant::now();
        let r = http_get(&addr, "/metrics", &[("Authorization", &good)]);
        assert_eq!(r.status, 200);
        slowest = slowest.max(t.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    }
    // A login never seen before is answered promptly too: at once with
    // 429 when the checks are saturated, never after a queue of guesses.
    let t = Instant::now();
    let r = http_get(
        &addr,
        "/metrics",
        &[("Authorization", &basic("prometheus", "new"))],
    );
    assert!(matches!(r.status, 401 | 429), "{}", r.status);
    let unknown_wait = t.elapsed();
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().expect("flood thread");
    }
    eprintln!(
        "slowest known login {slowest:?}; a new login answered in {unknown_wait:?}; {} flood answers",
        answered.load(Ordering::SeqCst)
    );
    assert!(
        slowest < Duration::from_secs(1),
        "slowest known login: {slowest:?}"
    );
    assert!(
        unknown_wait < Duration::from_secs(2),
        "a new login waited {unknown_wait:?}"
    );
    assert!(
        answered.load(Ordering::SeqCst) >= 300,
        "the flood was answered"
    );
    let r = http_get(&addr, "/metrics", &[("Authorization", &good)]);
    assert_eq!(r.status, 200, "still serving after the flood");
}
