//! Opens the listening sockets: `host:port` or `:port` (hostnames are
//! resolved), or `fd://N` for a socket passed by systemd socket activation,
//! as exporter-toolkit accepts them. Several may be given.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{FromRawFd, RawFd};

use tokio::net::{TcpListener, TcpSocket};

/// Connections the kernel may queue before `accept`; it caps this at
/// `net.core.somaxconn` (4096 by default). 128, what a plain `listen()`
/// gets from some runtimes, overflows under a burst of reconnects.
const BACKLOG: u32 = 4096;

/// systemd passes activated sockets from fd 3 on (sd_listen_fds(3)).
const SD_LISTEN_FDS_START: RawFd = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `host:port`; an empty host (`:9435`) means every address.
    Addr(String),
    /// `fd://N`: the Nth socket systemd passed.
    Activated(u32),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Addr(a) => f.write_str(a),
            Target::Activated(n) => write!(f, "fd://{n}"),
        }
    }
}

/// A `--web.listen-address` or `--web.systemd-socket` that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenError {
    /// `fd://` without a number after it.
    BadSocketIndex(String),
    /// Neither `host:port`, `:port` nor `fd://N`.
    NotAnAddress(String),
    BadPort {
        value: String,
        port: String,
    },
    UnbalancedBrackets(String),
    /// `--web.systemd-socket` in a process systemd did not start.
    NotActivated,
}

impl std::fmt::Display for ListenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadSocketIndex(s) => write!(
                f,
                "--web.listen-address {s:?}: fd://N needs a socket index such as fd://0"
            ),
            Self::NotAnAddress(s) => write!(
                f,
                "--web.listen-address {s:?}: expected host:port, :port or fd://N"
            ),
            Self::BadPort { value, port } => {
                write!(f, "--web.listen-address {value:?}: {port:?} is not a port")
            }
            Self::UnbalancedBrackets(s) => {
                write!(f, "--web.listen-address {s:?}: unbalanced brackets")
            }
            Self::NotActivated => f.write_str(
                "--web.systemd-socket: no LISTEN_FDS; not started by systemd socket activation",
            ),
        }
    }
}

impl std::error::Error for ListenError {}

/// Parses one `--web.listen-address` value, without resolving it.
pub fn parse_target(s: &str) -> Result<Target, ListenError> {
    if let Some(n) = s.strip_prefix("fd://") {
        return n
            .parse()
            .map(Target::Activated)
            .map_err(|_| ListenError::BadSocketIndex(s.to_string()));
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(ListenError::NotAnAddress(s.to_string()));
    };
    if port.parse::<u16>().is_err() {
        return Err(ListenError::BadPort {
            value: s.to_string(),
            port: port.to_string(),
        });
    }
    if host.starts_with('[') != host.ends_with(']') {
        return Err(ListenError::UnbalancedBrackets(s.to_string()));
    }
    Ok(Target::Addr(s.to_string()))
}

/// The addresses a target binds: `:port` is `[::]:port` (with a fallback
/// to IPv4 where IPv6 is off); a hostname binds its first address,
/// preferring IPv4 as Go's resolver does for `localhost`.
fn resolve(addr: &str) -> io::Result<SocketAddr> {
    if let Some(port) = addr.strip_prefix(':') {
        let port: u16 = port
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "bad port"))?;
        return Ok(SocketAddr::from(([0u16; 8], port)));
    }
    let all: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    all.iter()
        .find(|a| a.is_ipv4())
        .or(all.first())
        .copied()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))
}

/// Opens `target`. Must run inside the runtime (the listener registers
/// with its reactor).
pub fn open(target: &Target) -> io::Result<TcpListener> {
    match target {
        Target::Addr(a) => {
            let addr = resolve(a).map_err(|e| io::Error::new(e.kind(), format!("{a}: {e}")))?;
            match bind(addr) {
                Err(_) if addr.ip().is_unspecified() && addr.is_ipv6() => {
                    bind(SocketAddr::from(([0, 0, 0, 0], addr.port())))
                }
                other => other,
            }
            .map_err(|e| io::Error::new(e.kind(), format!("{a}: {e}")))
        }
        Target::Activated(n) => activated(*n),
    }
}

fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv6() {
        TcpSocket::new_v6()?
    } else {
        TcpSocket::new_v4()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Every socket systemd passed (`--web.systemd-socket`).
pub fn all_activated() -> Result<Vec<Target>, ListenError> {
    let count: u32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .ok_or(ListenError::NotActivated)?;
    Ok((0..count).map(Target::Activated).collect())
}

fn activated(n: u32) -> io::Result<TcpListener> {
    let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
    let count: u32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            invalid(format!(
                "fd://{n}: no LISTEN_FDS; not started by systemd socket activation"
            ))
        })?;
    if let Some(pid) = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    {
        if pid != std::process::id() {
            return Err(invalid(format!(
                "fd://{n}: LISTEN_PID is {pid}, not this process"
            )));
        }
    }
    if n >= count {
        return Err(invalid(format!(
            "fd://{n}: systemd passed only {count} socket(s)"
        )));
    }
    let fd = SD_LISTEN_FDS_START + n as RawFd;
    let mut kind: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `kind`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut kind as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 || kind != libc::SOCK_STREAM {
        return Err(invalid(format!(
            "fd://{n} (fd {fd}) is not a stream socket"
        )));
    }
    // SAFETY: systemd passed this fd to this process for it to own, and it
    // is a stream socket (checked above); nothing else here uses fds >= 3
    // from the environment.
    let std_listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
    std_listener.set_nonblocking(true)?;
    TcpListener::from_std(std_listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_as_the_toolkit_spells_them() {
        assert_eq!(parse_target(":9435"), Ok(Target::Addr(":9435".into())));
        assert_eq!(
            parse_target("localhost:9435"),
            Ok(Target::Addr("localhost:9435".into()))
        );
        assert_eq!(
            parse_target("[::1]:80"),
            Ok(Target::Addr("[::1]:80".into()))
        );
        assert_eq!(parse_target("fd://0"), Ok(Target::Activated(0)));
        assert!(parse_target("fd://x").is_err());
        assert!(parse_target("nope").is_err());
        assert!(parse_target("host:99999").is_err());
        let show = |a: &str| resolve(a).ok().map(|a| a.to_string());
        assert_eq!(show("localhost:9435").as_deref(), Some("127.0.0.1:9435"));
        assert_eq!(show(":80").as_deref(), Some("[::]:80"));
    }
}
