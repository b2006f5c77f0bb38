//! `tracepoint/` programs need tracefs to resolve event ids. Minimal hosts
//! and containers often lack the mount, so it is mounted on demand.

use std::ffi::CString;
use std::path::Path;

const TRACEFS: &str = "/sys/kernel/tracing";
const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";

pub fn is_available() -> bool {
    Path::new(TRACEFS).join("events").exists() || Path::new(DEBUGFS_TRACING).join("events").exists()
}

/// Mounts tracefs at /sys/kernel/tracing if no tracing events are visible.
pub fn ensure_mounted() -> Result<(), String> {
    if is_available() {
        return Ok(());
    }
    let hint = format!("mount it with: mount -t tracefs tracefs {TRACEFS}");
    let target = CString::new(TRACEFS).map_err(|e| e.to_string())?;
    let fstype = CString::new("tracefs").map_err(|e| e.to_string())?;
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
        let err = std::io::Error::last_os_error();
        return Err(format!(
            "tracefs is not mounted and mounting it failed ({err}); {hint}"
        ));
    }
    log::info!("mounted tracefs at {TRACEFS}");
    Ok(())
}
