//! `tracepoint/` programs need tracefs to resolve event ids. Minimal hosts
//! and containers often lack the mount, so it is mounted on demand.

use std::path::Path;

const TRACEFS: &str = "/sys/kernel/tracing";
const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";

pub fn is_available() -> bool {
    Path::new(TRACEFS).join("events").exists() || Path::new(DEBUGFS_TRACING).join("events").exists()
}

/// tracefs is not mounted, and mounting it failed with this errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountError {
    pub errno: i32,
}

impl std::fmt::Display for MountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "tracefs is not mounted and mounting it failed ({}); mount it with: mount -t tracefs tracefs {TRACEFS}",
            std::io::Error::from_raw_os_error(self.errno)
        )
    }
}

impl std::error::Error for MountError {}

/// Mounts tracefs at /sys/kernel/tracing if no tracing events are visible.
pub fn ensure_mounted() -> Result<(), MountError> {
    if is_available() {
        return Ok(());
    }
    let target = c"/sys/kernel/tracing";
    let fstype = c"tracefs";
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        return Err(MountError { errno });
    }
    log::info!("mounted tracefs at {TRACEFS}");
    Ok(())
}
