//! Opens the listening socket.

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

/// Connections the kernel may queue before `accept`; it caps this at
/// `net.core.somaxconn` (4096 by default). 128, what a plain `listen()`
/// gets from some runtimes, overflows under a burst of reconnects.
const BACKLOG: u32 = 4096;

/// Binds `addr`; `[::]` falls back to `0.0.0.0` on hosts without IPv6, as
/// Go's listener does.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    match bind_exact(addr) {
        Err(_) if addr.ip().is_unspecified() && addr.is_ipv6() => {
            bind_exact(SocketAddr::from(([0, 0, 0, 0], addr.port())))
        }
        other => other,
    }
}

fn bind_exact(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv6() {
        TcpSocket::new_v6()?
    } else {
        TcpSocket::new_v4()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}
