//! One cgroup monitor for the process: cgroup v2 id → path, kept current
//! for the `cgroup` decoder and for `cgroup_id_map`.
//!
//! A cgroup v2 id (`bpf_get_current_cgroup_id`) is the inode number of the
//! cgroup's directory in the cgroup2 filesystem, so the table is built by
//! walking that mount. The mount is found in mountinfo, because on hybrid
//! hosts `/sys/fs/cgroup` is a tmpfs of v1 hierarchies, whose inodes would
//! collide with v2 ids, and cgroup2 sits at `/sys/fs/cgroup/unified`.
//!
//! After one walk the table follows inotify events (`mkdir`/`rmdir` in
//! cgroupfs go through the VFS, so they are reported like on any other
//! filesystem): a node with thousands of cgroups is walked once, not once a
//! second. A slow safety walk catches anything an event queue overflow
//! lost. Where inotify is unavailable (no watches left, a seccomp profile),
//! the monitor falls back to walking: on a decoder's miss at most once per
//! `rescan_interval`, and on that interval while `cgroup_id_map` needs it.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};

use super::inotify::{Event, Inotify};
use std::time::{Duration, Instant};

/// In polling mode, a cgroup created after the last walk resolves on its
/// first miss after this; an id that never resolves costs at most one walk
/// per interval.
pub const RESCAN_INTERVAL: Duration = Duration::from_secs(1);
/// Even with events, the tree is walked again this often, in case the
/// kernel's event queue overflowed unnoticed or a watch could not be added.
pub const SAFETY_WALK: Duration = Duration::from_secs(300);

/// id → path of every live cgroup.
pub type CgroupPaths = HashMap<u64, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    NotStarted,
    /// Kept current by inotify events.
    Watching,
    /// Kept current by walks.
    Polling,
    /// No cgroup2 filesystem is mounted.
    Unavailable,
}

pub struct CgroupMonitor {
    /// Fixed by tests; otherwise found in mountinfo.
    mount_override: Option<PathBuf>,
    rescan_interval: Duration,
    inner: Mutex<Inner>,
    changed: Condvar,
    /// Users that need the table kept current without asking (cgroup_id_map).
    subscribers: AtomicUsize,
    /// Directories watched by inotify: one per live cgroup while watching.
    watches: AtomicUsize,
}

/// How long a removed cgroup's path is remembered: long enough for every
/// config to scrape (and export, and forget) what it counted once more
/// under its name.
const GONE_FOR: Duration = Duration::from_secs(600);

/// The most removed cgroups remembered at once. Without it the table
/// would hold `GONE_FOR` of removals, a size set by the churn rate: at
/// 50 removals a second, 30,000 paths. Past it the oldest are forgotten
/// first; a map that still holds one of their ids decodes it as vanished
/// (the kernel is asked), which `delete_gone` and `fold_unknown` handle.
const GONE_MAX: usize = 8192;

/// Paths of removed cgroups, oldest first out, bounded in time and count.
#[derive(Default)]
struct Removed {
    paths: HashMap<u64, Box<str>>,
    /// Ids in order of removal, with when.
    order: std::collections::VecDeque<(u64, Instant)>,
}

impl Removed {
    fn get(&self, id: u64) -> Option<&str> {
        self.paths.get(&id).map(|p| &**p)
    }

    fn insert(&mut self, id: u64, path: &str, now: Instant) {
        if self.paths.insert(id, path.into()).is_none() {
            self.order.push_back((id, now));
        }
    }

    /// Forgets what is too old, or too many, and gives back what a burst
    /// of removals took.
    fn prune(&mut self, now: Instant) {
        while let Some(&(id, at)) = self.order.front() {
            if now.duration_since(at) < GONE_FOR && self.order.len() <= GONE_MAX {
                break;
            }
            self.paths.remove(&id);
            self.order.pop_front();
        }
        if give_back(&mut self.paths) {
            self.order.shrink_to(self.order.len() * 2);
        }
    }
}

/// Shrinks a table a burst left mostly empty (hash tables keep their
/// capacity otherwise); true if it did.
fn give_back<K: std::hash::Hash + Eq, V>(table: &mut HashMap<K, V>) -> bool {
    let sparse = table.capacity() > 64 && table.len() * 4 < table.capacity();
    if sparse {
        table.shrink_to(table.len() * 2);
    }
    sparse
}

struct Inner {
    mode: Mode,
    mount: Option<PathBuf>,
    paths: Arc<CgroupPaths>,
    /// Cgroups removed while the monitor ran. Cgroup ids are never
    /// reused, so an id here stays dead.
    gone: Removed,
    /// Bumped each time a cgroup is removed.
    removals: u64,
    /// Bumped each time `paths` changes.
    generation: u64,
    walked_at: Option<Instant>,
    warned: bool,
}

impl Default for CgroupMonitor {
    fn default() -> Self {
        Self::new(None, RESCAN_INTERVAL)
    }
}

impl CgroupMonitor {
    /// A monitor over `mount` (the host's cgroup2 mount when `None`). It
    /// starts on first use, so processes that never need cgroups pay nothing.
    pub fn new(mount: Option<PathBuf>, rescan_interval: Duration) -> Self {
        Self {
            mount_override: mount,
            rescan_interval,
            inner: Mutex::new(Inner {
                mode: Mode::NotStarted,
                mount: None,
                paths: Arc::default(),
                gone: Removed::default(),
                removals: 0,
                generation: 0,
                walked_at: None,
                warned: false,
            }),
            changed: Condvar::new(),
            subscribers: AtomicUsize::new(0),
            watches: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn mode(self: &Arc<Self>) -> Mode {
        self.started().mode
    }

    /// The path of the live cgroup with this id.
    pub fn resolve(self: &Arc<Self>, id: u64) -> Option<String> {
        let mut inner = self.started();
        if let Some(path) = inner.paths.get(&id) {
            return Some(path.clone());
        }
        if inner.mode == Mode::Polling
            && inner
                .walked_at
                .is_none_or(|t| t.elapsed() >= self.rescan_interval)
        {
            self.walk_into(&mut inner, None);
        }
        inner.paths.get(&id).cloned()
    }

    /// The path of a cgroup with this id, and whether it has been removed
    /// (while its path is remembered, `GONE_FOR`).
    pub fn resolve_any(self: &Arc<Self>, id: u64) -> Option<(String, bool)> {
        if let Some(path) = self.resolve(id) {
            return Some((path, false));
        }
        let inner = self.lock();
        inner.gone.get(id).map(|path| (path.to_owned(), true))
    }

    /// Whether a cgroup with this id exists now, asked of the kernel by
    /// file handle: an id the tree never showed may be of a cgroup
    /// removed before the monitor started, or between two of its walks,
    /// and nothing else can tell that from one not seen yet. `None`
    /// when the kernel cannot be asked (no cgroup2 mount, or no
    /// CAP_DAC_READ_SEARCH, which `open_by_handle_at` needs).
    pub fn exists(self: &Arc<Self>, id: u64) -> Option<bool> {
        let mount = self.started().mount.clone()?;
        cgroup_exists(&mount, id)
    }

    /// Directories watched for changes: the live cgroups while events
    /// keep the table current, 0 otherwise.
    pub fn watches(&self) -> usize {
        self.watches.load(Ordering::Relaxed)
    }

    /// A count that moves each time a cgroup is removed: decoded rows
    /// naming one may now name a dead cgroup.
    pub fn removals(&self) -> u64 {
        self.lock().removals
    }

    /// The table now, with its generation.
    pub fn snapshot(self: &Arc<Self>) -> (u64, Arc<CgroupPaths>) {
        let inner = self.started();
        (inner.generation, Arc::clone(&inner.paths))
    }

    /// Waits until the table's generation passes `seen` or `timeout` ends;
    /// returns the generation then.
    pub fn wait_for_change(self: &Arc<Self>, seen: u64, timeout: Duration) -> u64 {
        let inner = self.started();
        let (inner, _) = self
            .changed
            .wait_timeout_while(inner, timeout, |i| i.generation <= seen)
            .unwrap_or_else(|p| p.into_inner());
        inner.generation
    }

    /// Keeps the table current while the returned guard lives, even in
    /// polling mode where nobody resolves ids.
    pub fn subscribe(self: &Arc<Self>) -> Subscription {
        self.subscribers.fetch_add(1, Ordering::SeqCst);
        drop(self.started());
        Subscription {
            monitor: Arc::clone(self),
        }
    }

    /// Starts the monitor on first use; returns the locked state.
    fn started(self: &Arc<Self>) -> MutexGuard<'_, Inner> {
        let mut inner = self.lock();
        if inner.mode != Mode::NotStarted {
            return inner;
        }
        let mount = self.mount_override.clone().or_else(host_cgroup2_mount);
        let Some(mount) = mount else {
            log::warn!("cgroup: no cgroup2 filesystem in /proc/self/mountinfo; cgroup labels read unknown_cgroup_id and cgroup_id_map maps stay empty");
            inner.mode = Mode::Unavailable;
            return inner;
        };
        inner.mount = Some(mount);
        let mut watcher = match Watcher::new() {
            Ok(w) => Some(w),
            Err(e) => {
                log::info!("cgroup: inotify unavailable ({e}); walking the cgroup tree instead");
                None
            }
        };
        self.walk_into(&mut inner, watcher.as_mut());
        let watching = watcher.as_ref().is_some_and(|w| !w.exhausted);
        inner.mode = if watching {
            Mode::Watching
        } else {
            Mode::Polling
        };
        let weak = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("cgroup-monitor".into())
            .spawn(move || match watcher.filter(|_| watching) {
                Some(w) => watch_loop(weak, w),
                None => poll_loop(weak),
            });
        if let Err(e) = spawned {
            log::warn!("cgroup: cannot start the monitor thread ({e}); cgroups are found by walks on misses only");
            inner.mode = Mode::Polling;
        }
        if inner.mode != Mode::Watching {
            // The watcher, and its watches, went with the closure.
            self.watches.store(0, Ordering::Relaxed);
        }
        inner
    }

    /// Replaces the table with a fresh walk.
    fn walk_into(&self, inner: &mut Inner, watcher: Option<&mut Watcher>) {
        inner.walked_at = Some(Instant::now());
        let Some(mount) = inner.mount.clone() else {
            return;
        };
        let mut watcher = watcher;
        match walk(&mount, watcher.as_deref_mut()) {
            Ok(paths) => {
                inner.warned = false;
                if let Some(w) = watcher {
                    w.keep_only(&paths);
                    self.watches.store(w.dirs.len(), Ordering::Relaxed);
                }
                self.publish(inner, paths);
            }
            Err(e) => {
                if !inner.warned {
                    inner.warned = true;
                    log::warn!("cgroup: walking {}: {e}", mount.display());
                }
            }
        }
    }

    fn publish(&self, inner: &mut Inner, paths: CgroupPaths) {
        if *inner.paths != paths {
            let now = Instant::now();
            let mut removed = false;
            for (id, path) in inner.paths.iter() {
                if !paths.contains_key(id) {
                    inner.gone.insert(*id, path, now);
                    removed = true;
                }
            }
            inner.gone.prune(now);
            if removed {
                inner.removals += 1;
            }
            inner.paths = Arc::new(paths);
            inner.generation += 1;
            self.changed.notify_all();
        }
    }
}

pub struct Subscription {
    monitor: Arc<CgroupMonitor>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.monitor.subscribers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Polling mode: walks on the interval while someone subscribes. Ends when
/// the monitor is dropped.
fn poll_loop(monitor: Weak<CgroupMonitor>) {
    loop {
        let Some(m) = monitor.upgrade() else { return };
        let interval = m.rescan_interval;
        if m.subscribers.load(Ordering::SeqCst) > 0 {
            let mut inner = m.lock();
            m.walk_into(&mut inner, None);
        }
        drop(m);
        std::thread::sleep(interval);
    }
}

/// Watching mode: applies inotify events as they come. Ends when the
/// monitor is dropped.
fn watch_loop(monitor: Weak<CgroupMonitor>, mut watcher: Watcher) {
    let mut last_walk = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let events = watcher.read(&mut buf, Duration::from_secs(1));
        let Some(m) = monitor.upgrade() else { return };
        let mut inner = m.lock();
        let (overflow, broken) = match events {
            Ok(events) if events.is_empty() => (false, None),
            Ok(events) => {
                let mut paths = (*inner.paths).clone();
                let overflow = watcher.apply(&events, &mut paths);
                m.watches.store(watcher.dirs.len(), Ordering::Relaxed);
                if !overflow {
                    m.publish(&mut inner, paths);
                }
                (overflow, None)
            }
            Err(e) => (false, Some(format!("reading inotify events: {e}"))),
        };
        // Events that can no longer be trusted: walk from now on.
        let broken = broken.or_else(|| {
            watcher
                .exhausted
                .then(|| "out of inotify watches (fs.inotify.max_user_watches)".to_string())
        });
        if let Some(why) = broken {
            log::warn!("cgroup: {why}; walking instead");
            inner.mode = Mode::Polling;
            m.watches.store(0, Ordering::Relaxed);
            m.walk_into(&mut inner, None);
            drop(inner);
            drop(m);
            return poll_loop(monitor);
        }
        if overflow || last_walk.elapsed() >= SAFETY_WALK {
            m.walk_into(&mut inner, Some(&mut watcher));
            last_walk = Instant::now();
        }
    }
}

/// An inotify instance watching cgroup directories for children coming
/// and going.
struct Watcher {
    inotify: Inotify,
    /// Watch descriptor → the directory it watches.
    dirs: HashMap<i32, PathBuf>,
    /// A watch could not be added for lack of watches: events would miss
    /// part of the tree.
    exhausted: bool,
}

const WATCH_MASK: u32 = libc::IN_CREATE
    | libc::IN_DELETE
    | libc::IN_MOVED_FROM
    | libc::IN_MOVED_TO
    | libc::IN_ONLYDIR
    | libc::IN_DONT_FOLLOW;

impl Watcher {
    fn new() -> std::io::Result<Self> {
        Ok(Self {
            inotify: Inotify::new()?,
            dirs: HashMap::new(),
            exhausted: false,
        })
    }

    fn add(&mut self, dir: &Path) {
        match self.inotify.add(dir, WATCH_MASK) {
            Ok(wd) => {
                self.dirs.insert(wd, dir.to_path_buf());
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => self.exhausted = true,
            // Other errors: the directory went away meanwhile.
            Err(_) => {}
        }
    }

    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> std::io::Result<Vec<Event>> {
        self.inotify.read(buf, timeout)
    }

    /// Applies events to `paths`; true when the queue overflowed and only
    /// a full walk can say what the tree looks like.
    fn apply(&mut self, events: &[Event], paths: &mut CgroupPaths) -> bool {
        for ev in events {
            if ev.mask & libc::IN_Q_OVERFLOW != 0 {
                return true;
            }
            if ev.mask & libc::IN_IGNORED != 0 {
                self.dirs.remove(&ev.wd);
                continue;
            }
            if ev.mask & libc::IN_ISDIR == 0 {
                continue;
            }
            let Some(parent) = self.dirs.get(&ev.wd) else {
                continue;
            };
            let path = parent.join(std::ffi::OsStr::from_bytes(&ev.name));
            if ev.mask & (libc::IN_CREATE | libc::IN_MOVED_TO) != 0 {
                if let Ok(found) = walk(&path, Some(self)) {
                    paths.extend(found);
                }
            } else if ev.mask & (libc::IN_DELETE | libc::IN_MOVED_FROM) != 0 {
                let gone = path.to_string_lossy().into_owned();
                let under = format!("{gone}/");
                paths.retain(|_, p| *p != gone && !p.starts_with(&under));
                self.unwatch(|dir| dir.starts_with(&path));
            }
        }
        false
    }

    /// Removes the watches of directories a walk no longer found: removals
    /// an overflowed queue lost.
    fn keep_only(&mut self, paths: &CgroupPaths) {
        if self.dirs.len() <= paths.len() {
            return;
        }
        let live: std::collections::HashSet<&str> = paths.values().map(String::as_str).collect();
        self.unwatch(|dir| !live.contains(&*dir.to_string_lossy()));
    }

    /// Removes the watches of the directories `gone` picks (a removed
    /// directory and, when it was moved away, everything under it).
    fn unwatch(&mut self, gone: impl Fn(&Path) -> bool) {
        let inotify = &self.inotify;
        self.dirs.retain(|&wd, dir| {
            if !gone(dir) {
                return true;
            }
            // EINVAL: the kernel dropped it already (its IN_IGNORED is
            // queued), which is what was wanted.
            let _ = inotify.remove(wd);
            false
        });
        give_back(&mut self.dirs);
    }
}

/// The handle type of kernfs nodes (`FILEID_KERNFS`): its 8 bytes are the
/// node's id, which is the cgroup id BPF programs see.
const FILEID_KERNFS: libc::c_int = 0xfe;

/// A `struct file_handle` holding one kernfs id.
#[repr(C)]
struct KernfsHandle {
    handle_bytes: libc::c_uint,
    handle_type: libc::c_int,
    id: u64,
}

fn cgroup_exists(mount: &Path, id: u64) -> Option<bool> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(mount)
        .ok()?;
    let mut handle = KernfsHandle {
        handle_bytes: 8,
        handle_type: FILEID_KERNFS,
        id,
    };
    // SAFETY: `handle` is a file_handle header followed by the 8 bytes its
    // handle_bytes says; the kernel only reads it. `dir` stays open for the
    // call.
    let fd = unsafe {
        libc::open_by_handle_at(
            dir.as_raw_fd(),
            (&mut handle as *mut KernfsHandle).cast::<libc::file_handle>(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd >= 0 {
        // SAFETY: `fd` was just opened by us and is closed once.
        unsafe { libc::close(fd) };
        return Some(true);
    }
    match std::io::Error::last_os_error().raw_os_error() {
        // No node has this id any more (or ever did).
        Some(libc::ESTALE) | Some(libc::ENOENT) => Some(false),
        _ => None,
    }
}

/// This host's cgroup2 mount, from /proc/self/mountinfo.
pub fn host_cgroup2_mount() -> Option<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .ok()
        .and_then(|text| cgroup2_mount(&text))
}

/// The cgroup2 mount point: `/sys/fs/cgroup` or `/sys/fs/cgroup/unified`
/// if present, else the first cgroup2 mount of the whole hierarchy.
fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    let mounts: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| {
            // id parent dev root mountpoint options [optional...] - fstype source super
            let (left, right) = line.split_once(" - ")?;
            let fields: Vec<&str> = left.split(' ').collect();
            let fstype = right.split(' ').next()?;
            let (root, mountpoint) = (fields.get(3)?, fields.get(4)?);
            (fstype == "cgroup2" && *root == "/").then(|| PathBuf::from(unescape(mountpoint)))
        })
        .collect();
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .iter()
        .find_map(|want| mounts.iter().find(|m| m.as_path() == Path::new(want)))
        .or(mounts.first())
        .cloned()
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        match octal {
            Some(b) => {
                out.push(b);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every directory under `root` on the same filesystem, by inode, watching
/// each with `watcher` before reading it (so a child created meanwhile is
/// either read or reported). Entries vanishing mid-walk are skipped.
fn walk(root: &Path, mut watcher: Option<&mut Watcher>) -> std::io::Result<CgroupPaths> {
    let top = std::fs::symlink_metadata(root)?;
    let mut paths = HashMap::new();
    paths.insert(top.ino(), root.to_string_lossy().into_owned());
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        if let Some(w) = watcher.as_deref_mut() {
            w.add(&dir);
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.dev() != top.dev() {
                continue;
            }
            paths.insert(meta.ino(), path.to_string_lossy().into_owned());
            pending.push(path);
        }
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
30 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:29 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu
32 30 0:30 / /sys/fs/cgroup/unified rw,relatime shared:10 - cgroup2 cgroup2 rw
";

    /// Removed paths are forgotten oldest first once there are too many
    /// or they are too old, and a burst's table does not keep its size.
    #[test]
    fn removed_paths_are_bounded_in_count_and_time() {
        let start = Instant::now();
        let mut r = Removed::default();
        let n = GONE_MAX as u64 + 100;
        for id in 0..n {
            r.insert(id, &format!("/burst/{id}"), start);
        }
        r.prune(start);
        assert_eq!(r.paths.len(), GONE_MAX);
        assert_eq!(r.get(99), None, "the oldest went first");
        assert_eq!(r.get(100), Some("/burst/100"));
        assert_eq!(r.get(n - 1), Some(&*format!("/burst/{}", n - 1)));
        let later = start + GONE_FOR;
        r.insert(n, "/late", later - Duration::from_secs(1));
        r.prune(later);
        assert_eq!(r.paths.len(), 1, "all but the one removed inside GONE_FOR");
        assert_eq!(r.get(n), Some("/late"));
        assert!(
            r.paths.capacity() < 64 && r.order.capacity() < 64,
            "capacity {} / {} kept after the burst",
            r.paths.capacity(),
            r.order.capacity()
        );
    }

    #[test]
    fn finds_the_cgroup2_mount() {
        assert_eq!(
            cgroup2_mount(HYBRID),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let pure =
            "29 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n\
                    40 29 0:26 /x /mnt/x rw - cgroup2 cgroup2 rw\n";
        assert_eq!(cgroup2_mount(pure), Some(PathBuf::from("/sys/fs/cgroup")));
        let odd = "29 23 0:26 / /run/my\\040cg rw - cgroup2 none rw\n";
        assert_eq!(cgroup2_mount(odd), Some(PathBuf::from("/run/my cg")));
        assert_eq!(
            cgroup2_mount("30 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"),
            None
        );
    }

    /// The test suite runs as root on a host with cgroup2: anything else
    /// is a failure, not a skip.
    fn mount() -> PathBuf {
        host_cgroup2_mount().expect("a cgroup2 filesystem is mounted (see /proc/self/mountinfo)")
    }

    fn within(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        f()
    }

    #[test]
    fn events_track_created_nested_and_removed_cgroups() {
        let mount = mount();
        // A long rescan interval: only events can explain a quick update.
        let m = Arc::new(CgroupMonitor::new(None, Duration::from_secs(3600)));
        let root_ino = std::fs::metadata(&mount).expect("stat mount").ino();
        assert_eq!(
            m.resolve(root_ino),
            Some(mount.to_string_lossy().into_owned())
        );
        assert_eq!(m.mode(), Mode::Watching);

        let dir = mount.join(format!("ee-mon-{}", std::process::id()));
        let nested = dir.join("inner");
        std::fs::create_dir_all(&nested).expect("create cgroups (root)");
        let id = std::fs::metadata(&dir).expect("stat").ino();
        let nested_id = std::fs::metadata(&nested).expect("stat").ino();
        let (gen0, _) = m.snapshot();
        let seen = within(Duration::from_secs(2), || {
            m.resolve(id).is_some() && m.resolve(nested_id).is_some()
        });
        let removed = std::fs::remove_dir(&nested).and_then(|_| std::fs::remove_dir(&dir));
        assert!(seen, "created cgroups resolve from events");
        removed.expect("remove test cgroups");
        assert!(
            within(Duration::from_secs(2), || m.resolve(id).is_none()
                && m.resolve(nested_id).is_none()),
            "removed cgroups are forgotten"
        );
        assert!(m.wait_for_change(gen0, Duration::ZERO) > gen0);
        // ...as live ones; their paths are remembered as gone.
        let path = |p: &Path| p.to_string_lossy().into_owned();
        assert_eq!(m.resolve_any(id), Some((path(&dir), true)));
        assert_eq!(m.resolve_any(nested_id), Some((path(&nested), true)));
        assert_eq!(m.resolve_any(root_ino), Some((path(&mount), false)));
        assert!(m.removals() >= 1, "a removal is counted");
    }

    /// A removed cgroup's inotify watch is removed with it. The kernel
    /// keeps a watch on kernfs for as long as the watch pins the inode,
    /// so watches once piled up by one per cgroup ever created, until
    /// `max_user_watches` ran out and the monitor fell back to walks.
    #[test]
    fn removed_cgroups_leave_no_watches_behind() {
        let mount = mount();
        let top = mount.join(format!("ee-watches-{}", std::process::id()));
        std::fs::create_dir(&top).expect("create cgroup (root)");
        let m = Arc::new(CgroupMonitor::new(
            Some(top.clone()),
            Duration::from_secs(3600),
        ));
        assert_eq!(m.mode(), Mode::Watching);
        assert_eq!(m.watches(), 1, "the top directory");
        let kept = top.join("kept");
        std::fs::create_dir(&kept).expect("create cgroup");
        for round in 0..40 {
            let dir = top.join(format!("c{round}"));
            let nested = dir.join("inner");
            std::fs::create_dir_all(&nested).expect("create cgroups");
            let id = std::fs::metadata(&nested).expect("stat").ino();
            assert!(
                within(Duration::from_secs(2), || m.resolve(id).is_some()),
                "round {round}: the nested cgroup is seen"
            );
            std::fs::remove_dir(&nested).expect("remove cgroup");
            std::fs::remove_dir(&dir).expect("remove cgroup");
        }
        let kept_id = std::fs::metadata(&kept).expect("stat").ino();
        let settled = within(Duration::from_secs(2), || m.watches() == 2);
        let watches = m.watches();
        let resolved = m.resolve(kept_id);
        let _ = std::fs::remove_dir(&kept);
        let _ = std::fs::remove_dir(&top);
        assert!(
            settled,
            "{watches} watches for 2 live directories after 40 rounds"
        );
        assert_eq!(resolved, Some(kept.to_string_lossy().into_owned()));
    }

    #[test]
    fn polling_mode_walks_on_a_rate_limited_miss() {
        let mount = mount();
        let interval = Duration::from_millis(200);
        let m = Arc::new(CgroupMonitor::new(Some(mount.clone()), interval));
        {
            // Force polling: what a host without inotify gets.
            let mut inner = m.lock();
            inner.mode = Mode::Polling;
            inner.mount = Some(mount.clone());
        }
        let dir = mount.join(format!("ee-poll-{}", std::process::id()));
        std::fs::create_dir(&dir).expect("create cgroup (root)");
        let id = std::fs::metadata(&dir).expect("stat").ino();
        let first = m.resolve(id);
        std::thread::sleep(interval + Duration::from_millis(50));
        let healed = m.resolve(id);
        let _ = std::fs::remove_dir(&dir);
        assert_eq!(
            first,
            Some(dir.to_string_lossy().into_owned()),
            "never walked: walks now"
        );
        assert_eq!(healed, first);
        std::thread::sleep(interval + Duration::from_millis(50));
        assert_eq!(m.resolve(u64::MAX), None, "a miss walks again");
        assert_eq!(m.resolve(id), None, "removed cgroup is gone after the walk");
    }

    #[test]
    fn no_mount_means_unknown_not_failure() {
        let m = Arc::new(CgroupMonitor::new(
            Some(PathBuf::from("/nonexistent-cgroup2")),
            RESCAN_INTERVAL,
        ));
        assert_eq!(m.resolve(7), None);
    }
}
