//! Capabilities: checked before anything is loaded, and dropped once every
//! program is attached, so that a bug in the scrape path (which parses
//! whatever the maps hold and serves whoever connects) cannot be turned into
//! root on the host.
//!
//! What each feature needs, and when:
//! - loading programs and creating maps: CAP_BPF (CAP_SYS_ADMIN before 5.8);
//! - attaching tracepoints, kprobes, uprobes and perf events: CAP_PERFMON;
//!   some attach types and older kernels: CAP_SYS_ADMIN;
//! - XDP and other network attachments: CAP_NET_ADMIN;
//! - `kaddrs` and the `ksym`/`kstack` decoders read real addresses from
//!   /proc/kallsyms, which shows zeros without CAP_SYSLOG; the decoders
//!   re-read it while serving, so they keep CAP_SYSLOG;
//! - the `cgroup` decoder and `cgroup_id_map` walk the cgroup tree, which
//!   containers may make unreadable to root without CAP_DAC_READ_SEARCH;
//! - reading maps through fds already open needs nothing on kernels since
//!   6.5; before that, `kernel.unprivileged_bpf_disabled` makes every bpf()
//!   call need CAP_BPF, which a probe at drop time detects.
//!
//! Capabilities belong to threads, not processes, and capset() changes only
//! the calling thread. Threads started during start-up (event readers, the
//! cgroup watcher) are made to drop theirs by a signal whose handler makes
//! the same raw syscalls, as glibc does for setuid().

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::host::kernel::Version;
use crate::host::{Privilege, Privileges};

pub const CAP_DAC_READ_SEARCH: u32 = 2;
pub const CAP_SETPCAP: u32 = 8;
pub const CAP_NET_ADMIN: u32 = 12;
pub const CAP_SYS_ADMIN: u32 = 21;
pub const CAP_SYS_RESOURCE: u32 = 24;
pub const CAP_SYSLOG: u32 = 34;
pub const CAP_PERFMON: u32 = 38;
pub const CAP_BPF: u32 = 39;

/// capabilities(7) names, by number.
const NAMES: &[&str] = &[
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// A set of capabilities, bit `n` for capability `n`.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct CapSet(pub u64);

impl CapSet {
    pub fn of(caps: &[u32]) -> Self {
        Self(caps.iter().fold(0, |s, &c| s | 1 << c))
    }

    pub fn has(self, cap: u32) -> bool {
        self.0 & (1 << cap) != 0
    }

    pub fn with(self, cap: u32) -> Self {
        Self(self.0 | 1 << cap)
    }

    pub fn and(self, other: CapSet) -> Self {
        Self(self.0 & other.0)
    }
}

impl fmt::Display for CapSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = (0..64)
            .filter(|&c| self.has(c))
            .map(|c| match NAMES.get(c as usize) {
                Some(n) => format!("cap_{n}"),
                None => format!("cap_{c}"),
            })
            .collect();
        if names.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&names.join(","))
        }
    }
}

impl fmt::Debug for CapSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `--capabilities.keep`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keep {
    /// What the running configs need while serving (the default).
    Auto,
    /// Keep everything (the reference's behaviour without the flag).
    All,
    /// Exactly these.
    Only(CapSet),
}

/// A `--capabilities.keep` name that is not a capability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCapability(pub String);

impl std::fmt::Display for UnknownCapability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--capabilities.keep: unknown capability {:?}; use all, none, auto, \
             or names such as cap_syslog,cap_bpf",
            self.0
        )
    }
}

impl std::error::Error for UnknownCapability {}

pub fn parse_keep(s: &str) -> Result<Keep, UnknownCapability> {
    match s.trim() {
        "auto" => return Ok(Keep::Auto),
        "all" => return Ok(Keep::All),
        "none" | "" => return Ok(Keep::Only(CapSet::default())),
        _ => {}
    }
    let mut set = CapSet::default();
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let lower = name.to_ascii_lowercase();
        let bare = lower.strip_prefix("cap_").unwrap_or(&lower);
        let cap = NAMES
            .iter()
            .position(|n| *n == bare)
            .ok_or_else(|| UnknownCapability(name.to_string()))?;
        set = set.with(cap as u32);
    }
    Ok(Keep::Only(set))
}

/// What the running configs need from the host while serving.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// What their decoders and cgroup_id_maps read (from the decoder
    /// registry): real addresses from /proc/kallsyms, cgroup directories.
    pub serving: Privileges,
    /// Re-reading certificate files for rotation.
    pub tls_files: bool,
    /// Live reload: loading and attaching programs of configs that are not
    /// written yet, so whatever any config might need.
    pub reload: bool,
}

impl Needs {
    pub fn caps(self) -> CapSet {
        let mut set = CapSet::default();
        if self.reload {
            set = reload_caps(last_cap() >= CAP_BPF, crate::host::kernel::version());
        }
        if self.serving.has(Privilege::ReadKernelAddresses) {
            set = set.with(CAP_SYSLOG);
        }
        if self.serving.has(Privilege::ReadAnyDirectory) || self.tls_files {
            set = set.with(CAP_DAC_READ_SEARCH);
        }
        set
    }
}

/// What loading and attaching any config takes: CAP_BPF and CAP_PERFMON
/// (CAP_SYS_ADMIN on kernels older than 5.8, which have neither),
/// CAP_NET_ADMIN for XDP, tc and cgroup socket programs, CAP_SYSLOG for
/// `kaddrs` and symbol decoders, CAP_DAC_READ_SEARCH for cgroup decoders and
/// objects under restricted directories, and on kernels before 5.11, which
/// charge BPF memory to RLIMIT_MEMLOCK, CAP_SYS_RESOURCE to raise it.
pub fn reload_caps(knows_bpf: bool, release: Option<Version>) -> CapSet {
    let mut set = CapSet::default()
        .with(CAP_NET_ADMIN)
        .with(CAP_SYSLOG)
        .with(CAP_DAC_READ_SEARCH);
    set = if knows_bpf {
        set.with(CAP_BPF).with(CAP_PERFMON)
    } else {
        set.with(CAP_SYS_ADMIN)
    };
    if release.is_some_and(|r| r < Version::new(5, 11)) {
        set = set.with(CAP_SYS_RESOURCE);
    }
    set
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_V3: u32 = 0x2008_0522;

/// The calling thread's (effective, permitted) sets.
pub fn current() -> std::io::Result<(CapSet, CapSet)> {
    let mut header = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and data are the v3 layout capget expects, and live
    // across the call.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let join = |lo: u32, hi: u32| CapSet(lo as u64 | (hi as u64) << 32);
    Ok((
        join(data[0].effective, data[1].effective),
        join(data[0].permitted, data[1].permitted),
    ))
}

/// The highest capability this kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Why capabilities could not be checked or dropped. Each carries the
/// system call's error (and so its errno) where one failed.
#[derive(Debug)]
pub enum CapError {
    /// Reading this process's capabilities from /proc.
    Read(std::io::Error),
    /// Too few to load BPF programs; `predates_bpf` when the kernel has no
    /// CAP_BPF and CAP_PERFMON, so CAP_SYS_ADMIN is the only way.
    Missing {
        effective: CapSet,
        predates_bpf: bool,
    },
    /// capset(2) refused the new sets.
    Set(std::io::Error),
    /// The signal handler that carries the drop to other threads.
    Handler(std::io::Error),
    /// This thread's drop failed.
    Drop(std::io::Error),
    /// Threads still above the target after the drop.
    Threads { tids: Vec<i32>, keep: CapSet },
}

impl std::fmt::Display for CapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Read(e) => write!(f, "reading capabilities: {e}"),
            Self::Missing {
                effective,
                predates_bpf: false,
            } => write!(
                f,
                "missing privileges: loading and attaching BPF programs needs CAP_BPF and CAP_PERFMON \
                 (or CAP_SYS_ADMIN); this process has {effective}. Run as root, or grant them, e.g. \
                 systemd AmbientCapabilities=CAP_BPF CAP_PERFMON or container capabilities BPF, PERFMON"
            ),
            Self::Missing {
                effective,
                predates_bpf: true,
            } => write!(
                f,
                "missing privileges: this kernel predates CAP_BPF and CAP_PERFMON, so loading BPF \
                 programs needs CAP_SYS_ADMIN; this process has {effective}"
            ),
            Self::Set(e) => write!(f, "setting capabilities: {e}"),
            Self::Handler(e) => {
                write!(f, "installing the capability-drop signal handler: {e}")
            }
            Self::Drop(e) => write!(f, "dropping capabilities: {e}"),
            Self::Threads { tids, keep } => write!(
                f,
                "threads {tids:?} still hold capabilities beyond {keep} after the drop"
            ),
        }
    }
}

impl std::error::Error for CapError {}

/// Checked before loading: without these nothing can load, and libbpf's
/// own messages (about RLIMIT_MEMLOCK, once per program) would bury that.
pub fn check_can_load() -> Result<(), CapError> {
    let (effective, _) = current().map_err(CapError::Read)?;
    let admin = effective.has(CAP_SYS_ADMIN);
    let knows_bpf = last_cap() >= CAP_BPF;
    let bpf = admin || (knows_bpf && effective.has(CAP_BPF));
    let perfmon = admin || (knows_bpf && effective.has(CAP_PERFMON));
    if bpf && perfmon {
        return Ok(());
    }
    Err(CapError::Missing {
        effective,
        predates_bpf: !knows_bpf,
    })
}

/// The set a drop keeps, effective, permitted and bounding alike; read by
/// the signal handler. A 64-bit atomic is lock-free on every target this
/// builds for, so reading it is signal-safe.
static TARGET: AtomicU64 = AtomicU64::new(0);
static LAST_CAP: AtomicU32 = AtomicU32::new(40);
static DONE: AtomicUsize = AtomicUsize::new(0);
static FAILED: AtomicUsize = AtomicUsize::new(0);

/// Drops this thread's capabilities to the target. Only raw syscalls and
/// atomics, so it is safe in a signal handler and cannot panic.
fn drop_this_thread() -> bool {
    let keep = CapSet(TARGET.load(Ordering::SeqCst));
    let mut ok = true;
    // SAFETY: prctl with integer arguments only.
    ok &= unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } == 0;
    for cap in 0..=LAST_CAP.load(Ordering::SeqCst) {
        if !keep.has(cap) {
            // SAFETY: prctl with integer arguments only. Dropping from the
            // bounding set needs CAP_SETPCAP, which is still effective here.
            unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        }
    }
    // SAFETY: as above; clears every ambient capability.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    ok &= capset(keep, keep);
    ok
}

extern "C" fn on_drop_signal(_: libc::c_int) {
    if drop_this_thread() {
        DONE.fetch_add(1, Ordering::SeqCst);
    } else {
        FAILED.fetch_add(1, Ordering::SeqCst);
    }
}

/// The signal that carries the drop to other threads: one of the real-time
/// signals, which nothing else here uses.
fn drop_signal() -> libc::c_int {
    libc::SIGRTMIN() + 3
}

#[derive(Debug)]
pub struct DropReport {
    pub kept: CapSet,
    /// Capabilities added to what was asked, because this kernel needs
    /// them to read maps.
    pub added_for_maps: CapSet,
    pub threads: usize,
}

/// Drops every capability not in `keep`, in every thread, sets NoNewPrivs,
/// and checks the result in /proc. `probe` makes a bpf() call on an open
/// fd; with `widen`, it is run with the reduced set still only effective,
/// so that a kernel that needs CAP_BPF for map reads is found, and CAP_BPF
/// kept, before the drop is final. An explicit list is not widened.
pub fn drop_to(
    keep: CapSet,
    widen: bool,
    probe: &dyn Fn() -> bool,
) -> Result<DropReport, CapError> {
    let last = last_cap();
    let (effective, permitted) = current().map_err(CapError::Read)?;
    let mut keep = keep.and(permitted);
    let mut added = CapSet::default();
    // Try the reduced set as effective only (permitted kept), so it can be
    // widened again if map reads fail under it.
    set_effective(keep, permitted)?;
    if widen && !probe() {
        for cap in [CAP_BPF, CAP_SYS_ADMIN] {
            if cap > last || !permitted.has(cap) {
                continue;
            }
            keep = keep.with(cap);
            added = added.with(cap);
            set_effective(keep, permitted)?;
            if probe() {
                break;
            }
        }
    }
    // Back to full effective: dropping the bounding set needs CAP_SETPCAP.
    set_effective(effective, permitted)?;

    TARGET.store(keep.0, Ordering::SeqCst);
    LAST_CAP.store(last, Ordering::SeqCst);

    let me = gettid();
    let others: Vec<i32> = tasks().into_iter().filter(|&t| t != me).collect();
    if !others.is_empty() {
        install_handler()?;
        DONE.store(0, Ordering::SeqCst);
        FAILED.store(0, Ordering::SeqCst);
        let pid = std::process::id() as i32;
        for &tid in &others {
            // SAFETY: tgkill with our own pid and a tid of this process; a
            // thread that has exited meanwhile gives ESRCH, which is fine.
            unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, drop_signal()) };
        }
    }
    if !drop_this_thread() {
        return Err(CapError::Drop(std::io::Error::last_os_error()));
    }
    // Every thread must now show the target; threads that have exited
    // simply no longer appear.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let wrong: Vec<i32> = tasks()
            .into_iter()
            .filter(|&t| thread_effective(t).is_some_and(|e| e != keep))
            .collect();
        if wrong.is_empty() {
            break;
        }
        if Instant::now() > deadline || FAILED.load(Ordering::SeqCst) > 0 {
            return Err(CapError::Threads { tids: wrong, keep });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(DropReport {
        kept: keep,
        added_for_maps: added,
        threads: others.len() + 1,
    })
}

fn set_effective(effective: CapSet, permitted: CapSet) -> Result<(), CapError> {
    if !capset(effective, permitted) {
        return Err(CapError::Set(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// capset(2) for this thread, with an empty inheritable set. A raw syscall
/// on stack data only, so the signal handler can use it too.
fn capset(effective: CapSet, permitted: CapSet) -> bool {
    let mut header = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let word = |s: CapSet, hi: bool| if hi { (s.0 >> 32) as u32 } else { s.0 as u32 };
    let data = [false, true].map(|hi| CapData {
        effective: word(effective, hi),
        permitted: word(permitted, hi),
        inheritable: 0,
    });
    // SAFETY: header and data are the v3 layout capset expects, and live
    // across the call.
    unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) == 0 }
}

fn install_handler() -> Result<(), CapError> {
    // SAFETY: a zeroed sigaction with a handler that only makes raw
    // syscalls and touches atomics; SA_RESTART so that interrupted reads
    // and waits in the signalled threads resume.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_drop_signal as extern "C" fn(libc::c_int) as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(drop_signal(), &action, std::ptr::null_mut()) != 0 {
            return Err(CapError::Handler(std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

fn gettid() -> i32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

fn tasks() -> Vec<i32> {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// A thread's effective set from /proc, or `None` if it has exited.
pub fn thread_effective(tid: i32) -> Option<CapSet> {
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).ok()?;
    status_field(&status, "CapEff:")
}

/// A `Cap*:` hex field of a /proc status file.
pub fn status_field(status: &str, field: &str) -> Option<CapSet> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .map(CapSet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_lists_parse_like_the_reference() {
        assert_eq!(parse_keep("all"), Ok(Keep::All));
        assert_eq!(parse_keep("auto"), Ok(Keep::Auto));
        assert_eq!(parse_keep("none"), Ok(Keep::Only(CapSet(0))));
        assert_eq!(
            parse_keep("cap_syslog, CAP_BPF,perfmon"),
            Ok(Keep::Only(CapSet::of(&[CAP_SYSLOG, CAP_BPF, CAP_PERFMON])))
        );
        let e = parse_keep("cap_sysadmin").expect_err("typo");
        assert_eq!(e, UnknownCapability("cap_sysadmin".into()));
        assert!(e
            .to_string()
            .contains("unknown capability \"cap_sysadmin\""));
        assert_eq!(
            CapSet::of(&[CAP_SYSLOG, CAP_DAC_READ_SEARCH]).to_string(),
            "cap_dac_read_search,cap_syslog"
        );
        assert_eq!(NAMES.len(), 41);
        assert_eq!(NAMES[CAP_BPF as usize], "bpf");
        assert_eq!(NAMES[CAP_SYS_ADMIN as usize], "sys_admin");
    }

    #[test]
    fn reloads_keep_what_loading_needs_on_each_kernel() {
        let modern = reload_caps(true, Some(Version::new(6, 18)));
        assert_eq!(
            modern,
            CapSet::of(&[
                CAP_DAC_READ_SEARCH,
                CAP_NET_ADMIN,
                CAP_SYSLOG,
                CAP_PERFMON,
                CAP_BPF
            ])
        );
        assert!(!modern.has(CAP_SYS_ADMIN));
        // 5.4: no CAP_BPF yet, and BPF memory is charged to RLIMIT_MEMLOCK.
        let old = reload_caps(false, Some(Version::new(5, 4)));
        assert!(old.has(CAP_SYS_ADMIN) && old.has(CAP_SYS_RESOURCE) && !old.has(CAP_BPF));
        // 5.10 knows CAP_BPF but still charges memlock.
        assert!(reload_caps(true, Some(Version::new(5, 10))).has(CAP_SYS_RESOURCE));
        assert!(!reload_caps(true, Some(Version::new(5, 11))).has(CAP_SYS_RESOURCE));
        let serving = Needs {
            serving: Privileges::default().with(Privilege::ReadKernelAddresses),
            tls_files: false,
            reload: false,
        };
        assert_eq!(serving.caps(), CapSet::of(&[CAP_SYSLOG]));
    }

    #[test]
    fn status_fields_parse() {
        let s = "Name:\tx\nCapEff:\t0000000000000004\nCapBnd:\t000001ffffffffff\n";
        assert_eq!(status_field(s, "CapEff:"), Some(CapSet::of(&[2])));
        assert_eq!(status_field(s, "CapBnd:"), Some(CapSet((1 << 41) - 1)));
    }
}
