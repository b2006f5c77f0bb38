//! systemd's readiness protocol (sd_notify(3)): with `Type=notify`, systemd
//! starts dependent units and reports the service as running only once the
//! exporter says it serves, instead of as soon as it was forked, which for a
//! daemon that loads and attaches programs first is too early.

use std::os::unix::net::UnixDatagram;

/// Sends `state` (e.g. `READY=1`) to `$NOTIFY_SOCKET`, if systemd set one.
/// Failure is logged, never fatal: the protocol is advisory.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let bytes = path.as_encoded_bytes();
    let sent = UnixDatagram::unbound().and_then(|socket| {
        if let Some(name) = bytes.strip_prefix(b"@") {
            // An abstract socket: its name starts with a NUL byte.
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.send_to_addr(state.as_bytes(), &addr)
        } else {
            socket.send_to(state.as_bytes(), std::path::Path::new(&path))
        }
    });
    if let Err(e) = sent {
        log::warn!("sd_notify {state:?} to {}: {e}", path.to_string_lossy());
    }
}

/// The message that starts a reload: systemd (`Type=notify-reload`, or
/// any notify service) shows the unit as reloading until the next
/// `READY=1`, and uses the timestamp to tell this reload from an earlier
/// one.
pub fn reloading() -> String {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let usec = ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000;
    format!("RELOADING=1\nMONOTONIC_USEC={usec}\nSTATUS=reloading configs")
}

#[cfg(test)]
mod tests {
    #[test]
    fn sends_to_a_path_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify");
        let socket = std::os::unix::net::UnixDatagram::bind(&path).expect("bind");
        std::env::set_var("NOTIFY_SOCKET", &path);
        super::notify("READY=1\nSTATUS=test");
        std::env::remove_var("NOTIFY_SOCKET");
        let mut buf = [0u8; 64];
        let n = socket.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=test");
    }
}
