//! Watches a config directory and says when what the configs read has
//! changed, so that editing a file is enough to apply it.
//!
//! Events only wake the watcher; the decision is a stat fingerprint of the
//! files configs read, compared with the last one. An editor's swap file or
//! a touched unrelated file then costs one stat pass, not a reload. Paths
//! are followed through symlinks, so a Kubernetes ConfigMap volume, whose
//! `NAME.yaml -> ..data/NAME.yaml` links stay put while the kubelet swaps
//! the `..data` link to a new directory, is seen to change: the swap is a
//! rename in the watched directory, and each file's inode changes with it.
//! A slow poll catches what events cannot show: objects named by path
//! outside the directory, a directory replaced under its name, or inotify
//! being unavailable.

use crate::worker::{OnDrop, StopFlag, Worker};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::host::files::FileStamp;
use crate::host::inotify::Inotify;

/// What the watcher checks after events stop for this long: a burst of
/// writes (an editor, `kubectl cp`, the kubelet's swap) makes one reload.
pub const DEBOUNCE: Duration = Duration::from_millis(500);
/// How often the fingerprint is taken without any event.
pub const POLL: Duration = Duration::from_secs(10);

/// Names in the directory that can matter to a config: configs, objects,
/// and the ConfigMap's `..data` link.
fn relevant(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".o") || name == "..data"
}

/// Identity and version of each relevant file, following symlinks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fingerprint(Vec<(PathBuf, Option<FileStamp>)>);

impl Fingerprint {
    /// The relevant files of `dir`, plus `extra` files wherever they are.
    pub fn take(dir: &Path, extra: &[PathBuf]) -> Self {
        let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_str().is_some_and(relevant))
                .map(|e| e.path())
                .collect(),
            Err(_) => Vec::new(),
        };
        paths.extend(extra.iter().cloned());
        paths.sort();
        paths.dedup();
        // The directory by identity only: its times change with every
        // file created in it, relevant or not.
        let identity = FileStamp::of(dir).map(FileStamp::identity);
        let mut stamps = vec![(dir.to_path_buf(), identity)];
        stamps.extend(paths.into_iter().map(|p| {
            let stamp = FileStamp::of(&p);
            (p, stamp)
        }));
        Self(stamps)
    }
}

/// A running watcher; stops when dropped.
pub struct DirWatch {
    _worker: Worker,
}

/// Files outside the directory that configs read, updated after each
/// reload by whoever applies configs.
pub type Extra = Arc<Mutex<Vec<PathBuf>>>;

impl DirWatch {
    /// Watches `dir`, comparing against `seen` (taken before the configs
    /// were read, so a change made while they loaded is not missed), and
    /// calls `changed` on each change.
    pub fn start(
        dir: PathBuf,
        extra: Extra,
        seen: Fingerprint,
        debounce: Duration,
        poll: Duration,
        changed: impl Fn() + Send + 'static,
    ) -> std::io::Result<Self> {
        let inotify = match Inotify::new().and_then(|i| {
            i.add(&dir, WATCH_MASK)?;
            Ok(i)
        }) {
            Ok(i) => Some(i),
            Err(e) => {
                log::warn!(
                    "config watch: cannot watch {} ({e}); checking it every {}s instead",
                    dir.display(),
                    poll.as_secs()
                );
                None
            }
        };
        // Joined on drop: the thread holds `changed`, which must not fire
        // once the watch is gone.
        let worker = Worker::spawn("config-watch", OnDrop::Join, move |stop| {
            let mut w = Loop {
                dir,
                extra,
                seen,
                debounce,
                poll,
                inotify,
                stop,
            };
            w.run(&changed)
        })?;
        Ok(Self { _worker: worker })
    }
}

const WATCH_MASK: u32 = libc::IN_CREATE
    | libc::IN_DELETE
    | libc::IN_MODIFY
    | libc::IN_CLOSE_WRITE
    | libc::IN_ATTRIB
    | libc::IN_MOVED_FROM
    | libc::IN_MOVED_TO
    | libc::IN_DELETE_SELF
    | libc::IN_MOVE_SELF;

/// The longest the loop sleeps, so that a stop request is seen promptly.
const TICK: Duration = Duration::from_millis(200);

struct Loop {
    dir: PathBuf,
    extra: Extra,
    seen: Fingerprint,
    debounce: Duration,
    poll: Duration,
    inotify: Option<Inotify>,
    stop: StopFlag,
}

impl Loop {
    fn run(&mut self, changed: &dyn Fn()) {
        let mut buf = vec![0u8; 16 * 1024];
        let mut last_check = Instant::now();
        // When events were last seen, while waiting for them to stop.
        let mut pending: Option<Instant> = None;
        while !self.stop.is_set() {
            let events = match &self.inotify {
                Some(i) => match i.read(&mut buf, TICK) {
                    Ok(events) => events,
                    Err(e) => {
                        log::warn!("config watch: reading events: {e}; polling instead");
                        self.inotify = None;
                        Vec::new()
                    }
                },
                None => {
                    std::thread::sleep(TICK);
                    Vec::new()
                }
            };
            if !events.is_empty() {
                // The directory itself went away or was moved: watch the
                // name again when it comes back.
                if events
                    .iter()
                    .any(|e| e.mask & (libc::IN_IGNORED | libc::IN_DELETE_SELF) != 0)
                {
                    self.rewatch();
                }
                pending = Some(Instant::now());
                continue;
            }
            let due = match pending {
                Some(at) => at.elapsed() >= self.debounce,
                None => last_check.elapsed() >= self.poll,
            };
            if !due {
                continue;
            }
            pending = None;
            last_check = Instant::now();
            let extra = self.extra.lock().map(|e| e.clone()).unwrap_or_default();
            let now = Fingerprint::take(&self.dir, &extra);
            if now != self.seen {
                self.seen = now;
                if self.inotify.is_none() {
                    self.rewatch();
                }
                changed();
            }
        }
    }

    fn rewatch(&mut self) {
        let again = Inotify::new().and_then(|i| {
            i.add(&self.dir, WATCH_MASK)?;
            Ok(i)
        });
        self.inotify = again.ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn watch(dir: &Path) -> (DirWatch, Arc<AtomicUsize>) {
        let count = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&count);
        let w = DirWatch::start(
            dir.to_path_buf(),
            Extra::default(),
            Fingerprint::take(dir, &[]),
            Duration::from_millis(100),
            Duration::from_secs(3600),
            move || {
                c.fetch_add(1, Ordering::SeqCst);
            },
        )
        .expect("watch");
        (w, count)
    }

    fn settle() {
        std::thread::sleep(Duration::from_millis(600));
    }

    #[test]
    fn a_burst_of_writes_is_one_change_and_unrelated_files_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_w, count) = watch(dir.path());
        for i in 0..5 {
            std::fs::write(dir.path().join("a.yaml"), format!("v{i}")).expect("write");
        }
        settle();
        assert_eq!(count.load(Ordering::SeqCst), 1);
        std::fs::write(dir.path().join(".a.yaml.swp"), "x").expect("write");
        std::fs::write(dir.path().join("notes.txt"), "x").expect("write");
        settle();
        assert_eq!(count.load(Ordering::SeqCst), 1, "unrelated files");
        std::fs::remove_file(dir.path().join("a.yaml")).expect("rm");
        settle();
        assert_eq!(count.load(Ordering::SeqCst), 2, "removal");
    }

    #[test]
    fn a_configmap_data_swap_is_a_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::create_dir(d.join("..v1")).expect("mkdir");
        std::fs::write(d.join("..v1/a.yaml"), "one").expect("write");
        std::os::unix::fs::symlink("..v1", d.join("..data")).expect("link");
        std::os::unix::fs::symlink("..data/a.yaml", d.join("a.yaml")).expect("link");
        let (_w, count) = watch(d);
        // What the kubelet does: a new directory, a new link, renamed over
        // the old one, the old directory removed.
        std::fs::create_dir(d.join("..v2")).expect("mkdir");
        std::fs::write(d.join("..v2/a.yaml"), "two").expect("write");
        std::os::unix::fs::symlink("..v2", d.join("..data_tmp")).expect("link");
        std::fs::rename(d.join("..data_tmp"), d.join("..data")).expect("swap");
        std::fs::remove_dir_all(d.join("..v1")).expect("rm old");
        settle();
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert_eq!(
            std::fs::read_to_string(d.join("a.yaml")).expect("read"),
            "two"
        );
    }

    #[test]
    fn extra_files_are_polled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        let object = outside.path().join("x.bpf.o");
        std::fs::write(&object, "1").expect("write");
        let extra = Extra::default();
        extra.lock().expect("lock").push(object.clone());
        let count = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&count);
        let _w = DirWatch::start(
            dir.path().to_path_buf(),
            Arc::clone(&extra),
            Fingerprint::take(dir.path(), std::slice::from_ref(&object)),
            Duration::from_millis(100),
            Duration::from_millis(300),
            move || {
                c.fetch_add(1, Ordering::SeqCst);
            },
        )
        .expect("watch");
        settle();
        assert_eq!(count.load(Ordering::SeqCst), 0);
        std::fs::write(&object, "22").expect("write");
        settle();
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }
}
