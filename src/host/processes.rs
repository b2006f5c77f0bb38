//! Whether a process id still names a task, for labels keyed by pid: the
//! `pid` decoder says a reaped process is gone, so its entries can be
//! deleted (`delete_gone`) instead of lingering as series of nothing.
//!
//! BPF programs see pids of the initial pid namespace. An exporter in
//! another one (a container without `hostPID`) sees none of them, so there
//! it never claims a process is gone.

use std::os::unix::fs::MetadataExt;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The inode of the initial pid namespace (`PROC_PID_INIT_INO`), fixed by
/// the kernel's ABI.
const INIT_PID_NS_INO: u64 = 0xEFFF_FFFC;

/// Exits are not announced to us, so liveness is checked again on this
/// period: a process's series end within this, plus one scrape.
pub const CHECK_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    /// No task has this id: the process exited and was reaped.
    Gone,
    /// This process cannot tell (not in the initial pid namespace).
    Unknowable,
}

/// Whether the exporter sees the pids BPF programs record.
fn in_initial_pid_namespace() -> bool {
    static IN_INIT: OnceLock<bool> = OnceLock::new();
    *IN_INIT.get_or_init(|| {
        let init = std::fs::metadata("/proc/self/ns/pid")
            .map(|m| m.ino() == INIT_PID_NS_INO)
            .unwrap_or(false);
        if !init {
            log::info!(
                "not in the initial pid namespace: pid labels are never taken as gone (run with hostPID to have them deleted when processes exit)"
            );
        }
        init
    })
}

/// Whether `pid` (a process or thread id) names a task now.
pub fn liveness(pid: u64) -> Liveness {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return Liveness::Gone;
    };
    if pid <= 0 || !in_initial_pid_namespace() {
        return Liveness::Unknowable;
    }
    // SAFETY: signal 0 only checks that the target exists and may be
    // signalled; nothing is sent.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return Liveness::Alive;
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::ESRCH) => Liveness::Gone,
        // EPERM: it exists, and we may not signal it.
        _ => Liveness::Alive,
    }
}

/// A number that moves every `CHECK_EVERY`: decoders of pids return it as
/// their `changes()`, so cached rows are checked again on that period.
pub fn check_epoch() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    (start.elapsed().as_secs() / CHECK_EVERY.as_secs()).saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_and_reaped_processes() {
        assert!(
            in_initial_pid_namespace(),
            "tests run in the host pid namespace"
        );
        assert_eq!(liveness(std::process::id() as u64), Liveness::Alive);
        assert_eq!(liveness(1), Liveness::Alive, "init exists");
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id() as u64;
        child.wait().expect("reap true");
        assert_eq!(liveness(pid), Liveness::Gone);
        assert_eq!(liveness(0), Liveness::Unknowable);
        assert_eq!(liveness(u64::MAX), Liveness::Gone, "no pid is that large");
    }
}
