//! The shipped networking and uprobe programs (`docs/programs-network.md`),
//! end to end: each test starts the real exporter with one config, makes the
//! kernel fire that program's hooks over loopback, and checks the exported
//! metric names, label values the test itself caused (its own ports,
//! addresses, states, drop reasons), growth between scrapes, and promtool's
//! verdict on a scrape.
//!
//! These hooks are system-wide, so other processes (and the other tests of
//! this binary, running in parallel) add to the same series: every check
//! compares against a scrape taken just before the test's own trigger and
//! asks for at least the increase the trigger causes, or looks only at series
//! keyed by the test's own ports. Sockets close when dropped; scratch
//! directories and the exporter (and with it every attachment, including XDP
//! on lo) are removed by guards, pass or fail.

mod common;

use std::fs;
use std::io::{self, Read, Write};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket,
};
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{
    compile_bpf, eventually, kernel_at_least, kernel_has_kprobes, promtool_check, run, scratch_dir,
    Running, Scrape,
};

/// How long a test waits for a series to show up or grow.
const TIMEOUT: Duration = Duration::from_secs(15);

const LOCALHOST4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const LOCALHOST6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

// ---------------------------------------------------------------------------
// Exporter and scrape helpers

/// The exporter serving only the shipped config `name`.
fn start(name: &str) -> Running {
    let dir = format!("--config.dir={}/config", env!("CARGO_MANIFEST_DIR"));
    let names = format!("--config.names={name}");
    Running::start(&[&dir, &names])
}

/// The exporter's own series of a scrape (not the process_ ones), for messages.
fn ebpf_lines(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("ebpf_exporter_") && !l.starts_with('#'))
        .collect();
    let shown = lines.len().min(200);
    let mut out = lines[..shown].join("\n");
    if lines.len() > shown {
        out.push_str(&format!("\n... {} more lines", lines.len() - shown));
    }
    out
}

/// promtool accepts the scrape, every program of `config` is attached, and
/// no key of it failed to decode.
fn check_scrape(scrape: &Scrape, config: &str) {
    let complaints = promtool_check(&scrape.text);
    assert!(
        complaints.trim().is_empty(),
        "promtool check metrics: {complaints}\n{}",
        ebpf_lines(&scrape.text)
    );
    let attached = scrape.find("ebpf_exporter_ebpf_program_attached", &[("config", config)]);
    assert!(
        !attached.is_empty() && attached.iter().all(|s| s.value == 1.0),
        "every program of {config} attached: {attached:?}"
    );
    assert_eq!(
        scrape.sum("ebpf_exporter_enabled_configs", &[("name", config)]),
        1.0,
        "{config} enabled"
    );
    assert_eq!(
        scrape.sum("ebpf_exporter_decoder_errors_total", &[("config", config)]),
        0.0,
        "decoder errors\n{}",
        ebpf_lines(&scrape.text)
    );
}

/// A number read from a scrape.
type Measure = Box<dyn Fn(&Scrape) -> f64>;

/// Sum of the samples named `name` that carry all of `labels`.
fn series(name: &str, labels: &[(&str, &str)]) -> Measure {
    let name = name.to_string();
    let labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Box::new(move |s: &Scrape| {
        let l: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        s.sum(&name, &l)
    })
}

/// One expectation: `measure` must grow by at least `by`.
struct Want {
    what: String,
    measure: Measure,
    by: f64,
}

fn want(what: impl Into<String>, measure: Measure, by: f64) -> Want {
    Want {
        what: what.into(),
        measure,
        by,
    }
}

/// Scrapes, runs `trigger`, then scrapes until every `want` has grown by at
/// least its amount over the first scrape. Returns the scrape that showed it;
/// on timeout fails with each value before and after, the exporter's series
/// and its log.
fn grows(exporter: &Running, wants: &[Want], trigger: impl FnOnce()) -> Scrape {
    let before = exporter.scrape();
    let base: Vec<f64> = wants.iter().map(|w| (w.measure)(&before)).collect();
    trigger();
    let mut last = Scrape::default();
    let seen = eventually(TIMEOUT, || {
        last = exporter.scrape();
        wants
            .iter()
            .zip(&base)
            .all(|(w, b)| (w.measure)(&last) >= b + w.by)
    });
    if !seen {
        let report: Vec<String> = wants
            .iter()
            .zip(&base)
            .map(|(w, b)| {
                format!(
                    "  {}: before {b}, now {}, wanted +{}",
                    w.what,
                    (w.measure)(&last),
                    w.by
                )
            })
            .collect();
        panic!(
            "not seen within {TIMEOUT:?}:\n{}\nlast scrape:\n{}\nexporter log:\n{}",
            report.join("\n"),
            ebpf_lines(&last.text),
            exporter.log()
        );
    }
    last
}

/// A histogram's `+Inf` bucket equals its `_count`, and every bucket has an
/// `le` label, for the series with `labels`.
fn assert_histogram_consistent(scrape: &Scrape, histogram: &str, labels: &[(&str, &str)]) {
    scrape.assert_inf_is_count(histogram, labels);
    let buckets = scrape.find(&format!("{histogram}_bucket"), labels);
    assert!(
        buckets.len() > 2 && buckets.iter().all(|s| s.labels.contains_key("le")),
        "{histogram}{labels:?} buckets: {buckets:?}"
    );
    assert!(
        !scrape.find(&format!("{histogram}_sum"), labels).is_empty(),
        "{histogram}_sum{labels:?} present"
    );
}

/// The cumulative bucket of `histogram` whose `le` is `bound` (the exporter
/// writes large bounds in exponent form, e.g. `2.147483648e+09`).
fn bucket_le(scrape: &Scrape, histogram: &str, bound: f64) -> f64 {
    scrape
        .find(&format!("{histogram}_bucket"), &[])
        .iter()
        .filter(|s| s.labels.get("le").and_then(|l| l.parse::<f64>().ok()) == Some(bound))
        .map(|s| s.value)
        .sum()
}

// ---------------------------------------------------------------------------
// Socket helpers (loopback only)

fn loopback_v6_works() -> bool {
    UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)).is_ok()
}

fn check_rc(rc: libc::c_int, what: &str) {
    assert!(rc == 0, "{what}: {}", io::Error::last_os_error());
}

fn setsockopt_int(fd: &impl AsRawFd, level: i32, opt: i32, value: libc::c_int, what: &str) {
    // SAFETY: fd is an open socket; value lives for the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            &value as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    check_rc(rc, what);
}

/// Closing this stream sends an RST instead of a FIN (SO_LINGER with time 0).
fn set_linger_zero(stream: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: stream's fd is an open socket; linger lives for the call.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    check_rc(rc, "SO_LINGER");
}

fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; zero is a valid start.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            let sin = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in6.
            let sin6 = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

/// Waits until the background connect of `stream` has completed.
fn wait_connected(stream: &TcpStream) {
    let mut want = libc::pollfd {
        fd: stream.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: `want` is one valid pollfd for an fd the stream owns.
    let rc = unsafe { libc::poll(&mut want, 1, 10_000) };
    assert_eq!(
        rc,
        1,
        "connect did not complete: {}",
        io::Error::last_os_error()
    );
    assert_eq!(
        stream
            .take_error()
            .expect("SO_ERROR")
            .map(|e| e.to_string()),
        None,
        "connect failed"
    );
}

/// A TCP socket whose connect to `addr` was started without waiting for it
/// (std has no non-blocking connect). The connect goes on in the kernel while
/// the stream lives.
fn connect_in_background(addr: SocketAddr) -> TcpStream {
    let domain = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket(2) call.
    let fd = unsafe {
        libc::socket(
            domain,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    assert!(fd >= 0, "socket: {}", io::Error::last_os_error());
    // SAFETY: fd is a fresh socket we own; the stream closes it.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    let (ss, len) = sockaddr(&addr);
    // SAFETY: ss holds a valid sockaddr of length len.
    let rc = unsafe { libc::connect(fd, &ss as *const _ as *const libc::sockaddr, len) };
    if rc != 0 {
        let err = io::Error::last_os_error();
        assert_eq!(
            err.raw_os_error(),
            Some(libc::EINPROGRESS),
            "connect {addr}: {err}"
        );
    }
    stream
}

/// A loopback TCP port nobody listens on: bound by a socket that never
/// listens, so SYNs to it find no socket, and while it lives no other socket
/// can take the port (not even our own connect as its source port, which
/// would make a self-connect succeed).
struct ClosedTcpPort {
    _holder: TcpStream,
    addr: SocketAddr,
}

impl ClosedTcpPort {
    fn new(ip: IpAddr) -> ClosedTcpPort {
        let domain = if ip.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        // SAFETY: plain socket(2) call.
        let fd = unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        assert!(fd >= 0, "socket: {}", io::Error::last_os_error());
        // SAFETY: fd is a fresh socket we own; the stream closes it.
        let holder = unsafe { TcpStream::from_raw_fd(fd) };
        let (ss, len) = sockaddr(&SocketAddr::new(ip, 0));
        // SAFETY: ss holds a valid sockaddr of length len.
        let rc = unsafe { libc::bind(fd, &ss as *const _ as *const libc::sockaddr, len) };
        check_rc(rc, "bind");
        let addr = holder.local_addr().expect("bound address");
        ClosedTcpPort {
            _holder: holder,
            addr,
        }
    }
}

fn closed_udp_port(ip: IpAddr) -> SocketAddr {
    UdpSocket::bind((ip, 0))
        .and_then(|s| s.local_addr())
        .expect("bind a UDP port")
}

/// Connects to a port nobody listens on: the kernel answers the SYN with an
/// RST (no socket), and the connect fails with ECONNREFUSED.
fn refused_connects(ip: IpAddr, n: usize) {
    for _ in 0..n {
        let port = ClosedTcpPort::new(ip);
        let addr = port.addr;
        let err = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .expect_err("nobody listens on the closed port");
        assert_eq!(
            err.kind(),
            io::ErrorKind::ConnectionRefused,
            "{addr}: {err}"
        );
    }
}

/// `n` complete loopback TCP connections: connect, accept, exchange a byte,
/// close both ends (client first).
fn full_connections(ip: IpAddr, n: usize) {
    let listener = TcpListener::bind((ip, 0)).expect("bind listener");
    let addr = listener.local_addr().expect("listener address");
    for _ in 0..n {
        let mut client = TcpStream::connect(addr).expect("connect");
        let (mut server, _) = listener.accept().expect("accept");
        client.write_all(b"x").expect("send");
        let mut buf = [0u8; 1];
        server.read_exact(&mut buf).expect("receive");
        drop(client);
        // Wait for the client's FIN so the server end moves to CLOSE_WAIT
        // before it closes too.
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        assert_eq!(server.read(&mut buf).expect("read EOF"), 0);
        drop(server);
    }
}

/// Sends `n` datagrams of `size` bytes from a fresh socket to `to`.
fn send_datagrams(to: SocketAddr, n: usize, size: usize) {
    let from = if to.is_ipv4() { LOCALHOST4 } else { LOCALHOST6 };
    let sender = UdpSocket::bind((from, 0)).expect("bind sender");
    let payload = vec![0x5au8; size];
    for _ in 0..n {
        // A send to a closed port may see the ICMP error of an earlier one.
        match sender.send_to(&payload, to) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
            Err(e) => panic!("send to {to}: {e}"),
        }
    }
}

/// A UDP receiver on loopback with the smallest receive buffer, never read:
/// everything past the first datagram or two is dropped with ENOMEM.
fn tiny_udp_receiver(ip: IpAddr) -> UdpSocket {
    let sock = UdpSocket::bind((ip, 0)).expect("bind receiver");
    setsockopt_int(&sock, libc::SOL_SOCKET, libc::SO_RCVBUF, 1024, "SO_RCVBUF");
    sock
}

/// SYN retransmits from listen-queue overflow (the doc's trigger): a listener
/// with backlog 0 takes one connection; the SYNs of the others are dropped,
/// and their clients resend them with exponential backoff (1 s, 2 s, ...)
/// while they live.
struct SynBacklog {
    _listener: TcpListener,
    clients: Vec<TcpStream>,
    ip: IpAddr,
    port: u16,
}

impl SynBacklog {
    fn start(ip: IpAddr, clients: usize) -> SynBacklog {
        let listener = TcpListener::bind((ip, 0)).expect("bind listener");
        // listen(2) on a listening socket just sets the new backlog.
        // SAFETY: the listener's fd is an open, listening socket.
        check_rc(
            unsafe { libc::listen(listener.as_raw_fd(), 0) },
            "listen backlog 0",
        );
        let addr = listener.local_addr().expect("listener address");
        // The first connection must be established, filling the accept
        // queue, before the others send their SYNs. Were all SYNs in
        // before any handshake completed (softirqs late on a loaded
        // emulated CPU), every client would be answered, the listener
        // would drop the late ACKs instead, and only its SYN-ACKs would be
        // resent: no client retransmit at all.
        let first = connect_in_background(addr);
        wait_connected(&first);
        let clients = std::iter::once(first)
            .chain((1..clients).map(|_| connect_in_background(addr)))
            .collect();
        SynBacklog {
            _listener: listener,
            clients,
            ip,
            port: addr.port(),
        }
    }

    fn client_ports(&self) -> Vec<String> {
        self.clients
            .iter()
            .map(|c| c.local_addr().expect("client address").port().to_string())
            .collect()
    }

    /// Retransmits counted for this test's own connections: local and remote
    /// address loopback, remote port the listener's, local port a client's.
    fn retransmits(&self, metric: &str) -> Measure {
        let metric = metric.to_string();
        let ip = self.ip.to_string();
        let port = self.port.to_string();
        let family = if self.ip.is_ipv4() { "ipv4" } else { "ipv6" };
        let sports = self.client_ports();
        Box::new(move |s: &Scrape| {
            s.find(
                &metric,
                &[
                    ("saddr", ip.as_str()),
                    ("daddr", ip.as_str()),
                    ("dport", port.as_str()),
                    ("family", family),
                ],
            )
            .iter()
            .filter(|x| x.labels.get("sport").is_some_and(|p| sports.contains(p)))
            .map(|x| x.value)
            .sum()
        })
    }
}

// ---------------------------------------------------------------------------
// Other guards and helpers

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        Scratch(scratch_dir(&format!("progB-{name}")))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Whether the XDP program with kernel id `id` is attached to lo, per
/// `ip link` (`prog/xdp id N ...`).
fn xdp_on_lo(id: &str) -> bool {
    let out = run(Command::new("ip").args(["-details", "link", "show", "dev", "lo"]));
    out.contains(&format!("prog/xdp id {id} "))
}

// ---------------------------------------------------------------------------
// The programs

#[test]
fn tcp_retransmits_counts_syn_retransmits_per_connection() {
    const METRIC: &str = "ebpf_exporter_tcp_retransmits_total";
    let exporter = start("tcp_retransmits");
    let mut floods = Vec::new();
    let mut wants = Vec::new();
    let ips = if loopback_v6_works() {
        vec![LOCALHOST4, LOCALHOST6]
    } else {
        vec![LOCALHOST4]
    };
    for ip in ips {
        let flood = SynBacklog::start(ip, 4);
        wants.push(want(
            format!("{METRIC} to [{ip}]:{}", flood.port),
            flood.retransmits(METRIC),
            1.0,
        ));
        floods.push(flood);
    }
    // The first retransmits, after about a second ...
    let scrape = grows(&exporter, &wants, || {});
    check_scrape(&scrape, "tcp_retransmits");
    for flood in &floods {
        let ip = flood.ip.to_string();
        let ours = scrape.find(
            METRIC,
            &[("daddr", ip.as_str()), ("dport", &flood.port.to_string())],
        );
        assert!(!ours.is_empty());
        for s in &ours {
            assert_eq!(s.labels.get("saddr"), Some(&ip), "{s:?}");
            let family = if flood.ip.is_ipv4() { "ipv4" } else { "ipv6" };
            assert_eq!(s.labels.get("family").map(String::as_str), Some(family));
            assert!(
                flood.client_ports().contains(&s.labels["sport"]),
                "retransmits of our own clients only: {s:?}"
            );
        }
    }
    // ... then more as the clients keep resending their SYNs.
    grows(&exporter, &wants, || {});
}

#[test]
fn tcp_resets_counts_sent_and_received_by_state() {
    const METRIC: &str = "ebpf_exporter_tcp_resets_total";
    let exporter = start("tcp_resets");
    let refused = |dir: &str, state: &str| {
        want(
            format!("{dir} in {state}"),
            series(METRIC, &[("direction", dir), ("state", state)]),
            3.0,
        )
    };
    // The closed port's RST: received in SYN_SENT, and sent without a
    // socket, which tcp_send_reset reports since 6.10 (the kernel matrix's
    // 6.1 does not, its 6.12 does).
    let mut wants = vec![refused("received", "TCP_SYN_SENT")];
    if kernel_at_least(6, 10) {
        wants.push(refused("sent", "none"));
    }
    let scrape = grows(&exporter, &wants, || refused_connects(LOCALHOST4, 3));
    check_scrape(&scrape, "tcp_resets");
    grows(&exporter, &wants, || refused_connects(LOCALHOST4, 3));

    // An abortive close (SO_LINGER 0) of an established connection: the
    // peer receives the RST in ESTABLISHED. The closing socket is already in
    // CLOSE when it sends the RST; kernels before 6.10 do not trace resets
    // sent that way (tcp_send_active_reset).
    let mut wants = vec![want(
        "received in TCP_ESTABLISHED",
        series(
            METRIC,
            &[("direction", "received"), ("state", "TCP_ESTABLISHED")],
        ),
        2.0,
    )];
    if kernel_at_least(6, 10) {
        wants.push(want(
            "sent in TCP_CLOSE",
            series(METRIC, &[("direction", "sent"), ("state", "TCP_CLOSE")]),
            2.0,
        ));
    }
    let abort = || {
        let listener = TcpListener::bind((LOCALHOST4, 0)).expect("bind");
        let addr = listener.local_addr().expect("address");
        for _ in 0..2 {
            let client = TcpStream::connect(addr).expect("connect");
            let (mut server, _) = listener.accept().expect("accept");
            set_linger_zero(&client);
            drop(client);
            server
                .set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            let err = server.read(&mut [0u8; 1]).expect_err("reset by peer");
            assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
        }
    };
    grows(&exporter, &wants, abort);
    grows(&exporter, &wants, abort);
}

#[test]
fn tcp_state_counts_transitions_of_connections() {
    const METRIC: &str = "ebpf_exporter_tcp_state_transitions_total";
    const N: usize = 3;
    let exporter = start("tcp_state");
    let transition = |old: &str, new: &str, by: usize| {
        want(
            format!("{old} -> {new}"),
            series(METRIC, &[("old_state", old), ("new_state", new)]),
            by as f64,
        )
    };
    let wants = [
        // The listener.
        transition("TCP_CLOSE", "TCP_LISTEN", 1),
        transition("TCP_LISTEN", "TCP_CLOSE", 1),
        // Active opens, and the client closing first.
        transition("TCP_CLOSE", "TCP_SYN_SENT", N),
        transition("TCP_SYN_SENT", "TCP_ESTABLISHED", N),
        transition("TCP_ESTABLISHED", "TCP_FIN_WAIT1", N),
        transition("TCP_FIN_WAIT1", "TCP_FIN_WAIT2", N),
        // Passive opens, and the server closing second.
        transition("TCP_LISTEN", "TCP_SYN_RECV", N),
        transition("TCP_SYN_RECV", "TCP_ESTABLISHED", N),
        transition("TCP_ESTABLISHED", "TCP_CLOSE_WAIT", N),
        transition("TCP_CLOSE_WAIT", "TCP_LAST_ACK", N),
        transition("TCP_LAST_ACK", "TCP_CLOSE", N),
    ];
    let scrape = grows(&exporter, &wants, || full_connections(LOCALHOST4, N));
    check_scrape(&scrape, "tcp_state");
    for s in scrape.find(METRIC, &[]) {
        for label in ["old_state", "new_state"] {
            assert!(
                s.labels[label].starts_with("TCP_"),
                "{label} is a state name: {s:?}"
            );
        }
    }
    let ip = if loopback_v6_works() {
        LOCALHOST6
    } else {
        LOCALHOST4
    };
    grows(&exporter, &wants, || full_connections(ip, N));
}

#[test]
fn skb_drops_counts_drops_by_reason() {
    const METRIC: &str = "ebpf_exporter_skb_drops_total";
    // kfree_skb gave no reason before 5.17: there every drop is
    // NOT_SPECIFIED.
    let reasons = kernel_at_least(5, 17);
    let no_socket = if reasons {
        "NO_SOCKET"
    } else {
        "NOT_SPECIFIED"
    };
    let exporter = start("skb_drops");
    let wants = [want(
        no_socket,
        series(METRIC, &[("reason", no_socket)]),
        5.0,
    )];
    // UDP to a port nobody has bound: dropped on receive, no socket.
    let scrape = grows(&exporter, &wants, || {
        send_datagrams(closed_udp_port(LOCALHOST4), 5, 1)
    });
    check_scrape(&scrape, "skb_drops");
    let found = scrape.find(METRIC, &[]);
    assert!(
        found.iter().all(|s| {
            let r = &s.labels["reason"];
            r != "SKB_CONSUMED"
                && r != "SKB_NOT_DROPPED_YET"
                && !r.starts_with("unknown:")
                && (reasons || r == "NOT_SPECIFIED")
        }),
        "only real drop reasons, by name: {found:?}"
    );
    grows(&exporter, &wants, || {
        send_datagrams(closed_udp_port(LOCALHOST4), 5, 1)
    });

    // A full receive buffer is another reason.
    let receiver = tiny_udp_receiver(LOCALHOST4);
    let to = receiver.local_addr().expect("receiver address");
    let rcvbuff = if reasons {
        "SOCKET_RCVBUFF"
    } else {
        "NOT_SPECIFIED"
    };
    let wants = [want(rcvbuff, series(METRIC, &[("reason", rcvbuff)]), 50.0)];
    grows(&exporter, &wants, || send_datagrams(to, 100, 1000));
}

#[test]
fn netdev_xmit_times_transmits_on_lo() {
    const HIST: &str = "ebpf_exporter_netdev_xmit_latency_seconds";
    let exporter = start("netdev_xmit");
    let receiver = UdpSocket::bind((LOCALHOST4, 0)).expect("bind receiver");
    let to = receiver.local_addr().expect("receiver address");
    let wants = [
        want(
            "count on lo",
            series(&format!("{HIST}_count"), &[("device", "lo")]),
            5.0,
        ),
        want(
            "+Inf bucket on lo",
            series(
                &format!("{HIST}_bucket"),
                &[("device", "lo"), ("le", "+Inf")],
            ),
            5.0,
        ),
    ];
    let scrape = grows(&exporter, &wants, || send_datagrams(to, 5, 100));
    check_scrape(&scrape, "netdev_xmit");
    assert_histogram_consistent(&scrape, HIST, &[("device", "lo")]);
    let sum = scrape.sum(&format!("{HIST}_sum"), &[("device", "lo")]);
    assert!(sum > 0.0, "time was recorded: {sum}");
    grows(&exporter, &wants, || send_datagrams(to, 5, 100));
}

#[test]
fn xdp_packets_counts_packets_on_lo_by_protocol() {
    const PACKETS: &str = "ebpf_exporter_xdp_packets_total";
    const BYTES: &str = "ebpf_exporter_xdp_bytes_total";
    const N: usize = 5;
    const PAYLOAD: usize = 100;
    // Ethernet + IPv4 + UDP headers in front of each payload on lo.
    const FRAME4: usize = 14 + 20 + 8 + PAYLOAD;
    const FRAME6: usize = 14 + 40 + 8 + PAYLOAD;
    let exporter = start("xdp_packets");
    let scrape = exporter.scrape();
    check_scrape(&scrape, "xdp_packets");
    let prog = scrape.find(
        "ebpf_exporter_ebpf_program_attached",
        &[("config", "xdp_packets"), ("program", "xdp_count")],
    );
    assert_eq!(prog.len(), 1, "{}", ebpf_lines(&scrape.text));
    let id = prog[0].labels["id"].clone();
    assert!(
        xdp_on_lo(&id),
        "ip link shows program {id} as XDP on lo while the exporter runs"
    );

    let receiver4 = UdpSocket::bind((LOCALHOST4, 0)).expect("bind receiver");
    let to4 = receiver4.local_addr().expect("receiver address");
    let v6 = loopback_v6_works();
    let receiver6 = v6.then(|| UdpSocket::bind((LOCALHOST6, 0)).expect("bind v6 receiver"));
    let mut wants = vec![
        want(
            "ipv4 udp packets",
            series(PACKETS, &[("l3", "ipv4"), ("protocol", "udp")]),
            N as f64,
        ),
        want(
            "ipv4 udp bytes",
            series(BYTES, &[("l3", "ipv4"), ("protocol", "udp")]),
            (N * FRAME4) as f64,
        ),
        // Each echo request and its reply cross lo.
        want(
            "ipv4 icmp packets",
            series(PACKETS, &[("l3", "ipv4"), ("protocol", "icmp")]),
            6.0,
        ),
    ];
    if v6 {
        wants.push(want(
            "ipv6 udp packets",
            series(PACKETS, &[("l3", "ipv6"), ("protocol", "udp")]),
            N as f64,
        ));
        wants.push(want(
            "ipv6 udp bytes",
            series(BYTES, &[("l3", "ipv6"), ("protocol", "udp")]),
            (N * FRAME6) as f64,
        ));
    }
    let trigger = || {
        send_datagrams(to4, N, PAYLOAD);
        if let Some(r) = &receiver6 {
            send_datagrams(r.local_addr().expect("v6 address"), N, PAYLOAD);
        }
        run(Command::new("ping").args(["-c3", "-i0.05", "-w5", "-q", "127.0.0.1"]));
    };
    let scrape = grows(&exporter, &wants, trigger);
    check_scrape(&scrape, "xdp_packets");
    for s in scrape.find(PACKETS, &[]) {
        assert!(
            ["ipv4", "ipv6", "arp", "other"].contains(&s.labels["l3"].as_str()),
            "l3 is named: {s:?}"
        );
    }
    grows(&exporter, &wants, trigger);

    // Stopping the exporter takes XDP off lo again.
    let (status, log) = exporter.stop();
    assert!(status.success(), "clean exit: {status}\n{log}");
    assert!(
        eventually(Duration::from_secs(10), || !xdp_on_lo(&id)),
        "XDP program {id} detached from lo after the exporter stopped"
    );
}

#[test]
fn malloc_counts_calls_and_sizes_of_a_child_process() {
    const CALLS: &str = "ebpf_exporter_malloc_calls_total";
    const HIST: &str = "ebpf_exporter_malloc_size_bytes";
    let exporter = start("malloc");
    // 1.5 GiB requests fall in the (2^30, 2^31] bucket, which nothing else
    // on the machine is likely to hit.
    let in_bucket_2g: Measure = Box::new(|s: &Scrape| {
        bucket_le(s, HIST, 2f64.powi(31)) - bucket_le(s, HIST, 2f64.powi(30))
    });
    let wants = [
        want("requests of (1 GiB, 2 GiB]", in_bucket_2g, 3.0),
        want("calls", series(CALLS, &[]), 3.0),
        want("count", series(&format!("{HIST}_count"), &[]), 3.0),
    ];
    let child_mallocs = || {
        common::in_child(None, || {
            for _ in 0..3 {
                // SAFETY: glibc's malloc and free on a block of our own;
                // 1.5 GiB is mapped, never touched.
                unsafe { libc::free(std::hint::black_box(libc::malloc(3 << 29))) };
            }
        });
    };
    let scrape = grows(&exporter, &wants, child_mallocs);
    check_scrape(&scrape, "malloc");
    assert_histogram_consistent(&scrape, HIST, &[]);
    let les: Vec<f64> = scrape
        .find(&format!("{HIST}_bucket"), &[])
        .iter()
        .map(|s| s.labels["le"].parse().expect("le is a number"))
        .collect();
    let mut expected: Vec<f64> = (0..=32).map(|i| 2f64.powi(i)).collect();
    expected.push(f64::INFINITY);
    assert_eq!(
        les, expected,
        "exp2 buckets from 2^0 to 2^32 bytes, then +Inf"
    );
    grows(&exporter, &wants, child_mallocs);
}

#[test]
fn udp_drops_counts_full_receive_buffers_by_port() {
    const METRIC: &str = "ebpf_exporter_udp_drops_total";
    let exporter = start("udp_drops");
    let mut receivers = vec![tiny_udp_receiver(LOCALHOST4)];
    // udp_fail_queue_rcv_skb fires for IPv6 sockets since 6.10 (the kernel
    // matrix's 6.1 does not, its 6.12 does).
    if loopback_v6_works() && kernel_at_least(6, 10) {
        receivers.push(tiny_udp_receiver(LOCALHOST6));
    }
    let addrs: Vec<SocketAddr> = receivers
        .iter()
        .map(|r| r.local_addr().expect("receiver address"))
        .collect();
    let wants: Vec<Want> = addrs
        .iter()
        .map(|a| {
            let family = if a.is_ipv4() { "ipv4" } else { "ipv6" };
            want(
                format!("ENOMEM drops on {a}"),
                series(
                    METRIC,
                    &[
                        ("local_port", &a.port().to_string()),
                        ("family", family),
                        ("error", "ENOMEM"),
                    ],
                ),
                150.0,
            )
        })
        .collect();
    let flood = || {
        for a in &addrs {
            send_datagrams(*a, 200, 1000);
        }
    };
    let scrape = grows(&exporter, &wants, flood);
    check_scrape(&scrape, "udp_drops");
    for a in &addrs {
        let ours = scrape.find(METRIC, &[("local_port", &a.port().to_string())]);
        assert_eq!(ours.len(), 1, "one series for {a}: {ours:?}");
    }
    // The receivers never read, so their buffers stay full.
    grows(&exporter, &wants, flood);
}

#[test]
fn tcp_connect_latency_records_established_and_failed_connects() {
    const HIST: &str = "ebpf_exporter_tcp_connect_latency_seconds";
    const N: usize = 3;
    let exporter = start("tcp_connect_latency");
    let count = |result: &str| {
        want(
            format!("{result} connects"),
            series(&format!("{HIST}_count"), &[("result", result)]),
            N as f64,
        )
    };
    let wants = [count("established"), count("failed")];
    let listener = TcpListener::bind((LOCALHOST4, 0)).expect("bind");
    let addr = listener.local_addr().expect("address");
    let connects = || {
        for _ in 0..N {
            let c = TcpStream::connect(addr).expect("connect");
            let (s, _) = listener.accept().expect("accept");
            let _ = c.shutdown(Shutdown::Both);
            drop((c, s));
        }
        refused_connects(LOCALHOST4, N);
    };
    let scrape = grows(&exporter, &wants, connects);
    check_scrape(&scrape, "tcp_connect_latency");
    assert_histogram_consistent(&scrape, HIST, &[("result", "established")]);
    assert_histogram_consistent(&scrape, HIST, &[("result", "failed")]);
    for s in scrape.find(&format!("{HIST}_count"), &[]) {
        assert!(
            ["established", "failed"].contains(&s.labels["result"].as_str()),
            "{s:?}"
        );
    }
    grows(&exporter, &wants, connects);
}

// ---------------------------------------------------------------------------
// The kprobe and fentry examples, as external objects

/// Compiles `examples/NAME.bpf.c` next to a copy of its YAML in a scratch dir.
fn example(name: &str) -> Scratch {
    let dir = Scratch::new(name);
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    compile_bpf(
        &examples.join(format!("{name}.bpf.c")),
        &dir.0.join(format!("{name}.bpf.o")),
    );
    fs::copy(
        examples.join(format!("{name}.yaml")),
        dir.0.join(format!("{name}.yaml")),
    )
    .expect("copy example config");
    dir
}

fn start_example(dir: &Scratch, name: &str) -> Running {
    Running::start(&[
        &format!("--config.dir={}", dir.0.display()),
        &format!("--config.names={name}"),
    ])
}

/// On a kernel without the program's hook: the config, whose one program
/// cannot run, is refused with the kernel's reason and the program's name
/// (it would serve nothing), and with no other config the exporter does not
/// start; `--config.check` says FAILED.
fn assert_fails_clearly(dir: &Scratch, config: &str, program: &str, message: &str) {
    let log = Running::try_start(&[
        &format!("--config.dir={}", dir.0.display()),
        &format!("--config.names={config}"),
    ])
    .err()
    .expect("a config with no program running is refused");
    assert!(log.contains(message), "log says {message:?}:\n{log}");
    assert!(log.contains(program), "log names the program:\n{log}");
    assert!(
        log.contains("none of its 1 program(s) loaded and attached"),
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
    let check = std::process::Command::new(common::BIN)
        .args([
            &format!("--config.dir={}", dir.0.display()),
            &format!("--config.names={config}"),
            "--config.check",
        ])
        .output()
        .expect("runs");
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(!check.status.success(), "{report}");
    assert!(
        report.contains(&format!("config {config} (")) && report.contains("FAILED"),
        "{report}"
    );
}

/// On a kernel with the program's hook: attached, and it counts this test's
/// own SYN retransmits.
fn assert_attaches_and_counts(exporter: Running, config: &str, program: &str) {
    let scrape = exporter.scrape();
    check_scrape(&scrape, config);
    assert_eq!(
        scrape.sum(
            "ebpf_exporter_ebpf_program_attached",
            &[("config", config), ("program", program)]
        ),
        1.0
    );
    let flood = SynBacklog::start(LOCALHOST4, 4);
    let wants = [want(
        "retransmits",
        flood.retransmits("ebpf_exporter_tcp_retransmits_total"),
        1.0,
    )];
    grows(&exporter, &wants, || {});
}

#[test]
fn kprobe_and_fentry_examples_attach_or_fail_clearly() {
    const KPROBE: &str = "tcp_retransmits_kprobe";
    const FENTRY: &str = "tcp_retransmits_fentry";
    let kprobe_dir = example(KPROBE);
    let fentry_dir = example(FENTRY);

    if common::in_kernel_matrix() || kernel_has_kprobes() {
        let exporter = start_example(&kprobe_dir, KPROBE);
        assert_attaches_and_counts(exporter, KPROBE, "tcp_retransmit_kprobe");
    } else {
        assert_fails_clearly(
            &kprobe_dir,
            KPROBE,
            "tcp_retransmit_kprobe",
            "lacks kprobe support",
        );
    }

    // The kernel matrix's kernels all run BPF trampolines; elsewhere the
    // kernel's answer to an empty fentry program decides.
    let trampolines = *ebpf_exporter::host::kernel::trampolines()
        == ebpf_exporter::host::kernel::Trampolines::Available;
    if common::in_kernel_matrix() || trampolines {
        let exporter = start_example(&fentry_dir, FENTRY);
        assert_attaches_and_counts(exporter, FENTRY, "tcp_retransmit_fentry");
    } else {
        assert_fails_clearly(
            &fentry_dir,
            FENTRY,
            "tcp_retransmit_fentry",
            "runs no BPF trampoline programs",
        );
    }
}
