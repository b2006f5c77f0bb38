//! A large map's batch lookups shared by two threads: whichever is free
//! reads the next batch. The scrape's thread consumes batches in order and
//! reads one itself whenever none is ready and nobody is reading, so it
//! never waits for the helper thread to be scheduled (on a busy or idle
//! vCPU that can take milliseconds); the helper reads ahead while the
//! scrape's thread decodes. Either way the batches come out in the map's
//! order, because the kernel's position token is held by one reader at a
//! time.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

/// Entries a shared walk's buffers hold in all: two batches of a plain
/// read, so the helper can run that far ahead of the decoding.
pub(super) const WALK_BUDGET: usize = 8192;

/// The smallest batch of a shared walk.
pub(super) const WALK_BATCH: usize = 1024;

/// Entries per batch for a walk of a map that held `entries` last time: a
/// sixteenth of the map, from 1024 to 4096. The last batch, decoded after
/// the read ends, is all of a walk that cannot overlap, so small maps take
/// small batches; large ones take large batches, which cost the kernel
/// less per entry (100k keys: 22.8 ms in batches of 4096, 24.7 in 1024).
pub(super) fn walk_batch(entries: usize) -> usize {
    (entries / 16)
        .next_power_of_two()
        .clamp(WALK_BATCH, WALK_BUDGET / 2)
}

/// Where a walk of a map by batch lookups is: the kernel's opaque
/// position token (a u32 for hash maps, a key for others), before the
/// first call and after each.
pub(super) struct Cursor {
    fd: i32,
    key_size: usize,
    stride: usize,
    in_token: Vec<u8>,
    out_token: Vec<u8>,
    /// No call has succeeded yet: the walk starts at the map's beginning.
    pub(super) first: bool,
    opts: libbpf_sys::bpf_map_batch_opts,
}

impl Cursor {
    pub(super) fn new(fd: i32, key_size: usize, stride: usize) -> Self {
        let token_size = key_size.max(8);
        Self {
            fd,
            key_size,
            stride,
            in_token: vec![0u8; token_size],
            out_token: vec![0u8; token_size],
            first: true,
            opts: libbpf_sys::bpf_map_batch_opts {
                sz: std::mem::size_of::<libbpf_sys::bpf_map_batch_opts>() as _,
                elem_flags: 0,
                flags: 0,
            },
        }
    }

    /// Up to `chunk` entries from the current position into `keys` and
    /// `values`: how many came (never more than `chunk`), and the errno
    /// the call ended with (0 when more may follow). The position moves
    /// only with `advance`, so a call can be repeated with a larger chunk.
    pub(super) fn lookup(
        &mut self,
        keys: &mut [u8],
        values: &mut [u8],
        chunk: usize,
    ) -> (usize, i32) {
        if keys.len() < chunk * self.key_size || values.len() < chunk * self.stride {
            return (0, libc::EINVAL);
        }
        let mut n = chunk as u32;
        let in_ptr = if self.first {
            std::ptr::null_mut()
        } else {
            self.in_token.as_mut_ptr()
        };
        // SAFETY: keys and values hold at least `chunk` entries (checked
        // above); both tokens hold at least key_size bytes; all of them
        // outlive the call.
        let rc = unsafe {
            libbpf_sys::bpf_map_lookup_batch(
                self.fd,
                in_ptr.cast(),
                self.out_token.as_mut_ptr().cast(),
                keys.as_mut_ptr().cast(),
                values.as_mut_ptr().cast(),
                &mut n,
                &self.opts,
            )
        };
        let errno = if rc < 0 { -rc } else { 0 };
        ((n as usize).min(chunk), errno)
    }

    /// The next batch into `keys` and `values` from entry `at` on, growing
    /// them to hold `chunk` entries there, and `chunk` itself while a hash
    /// bucket holds more than a batch (ENOSPC with nothing returned): how
    /// many came and the errno, as `lookup`. A refusal of the command
    /// itself returns no entries. The position does not move (`advance`).
    pub(super) fn fetch(
        &mut self,
        keys: &mut Vec<u8>,
        values: &mut Vec<u8>,
        at: usize,
        chunk: &mut usize,
    ) -> (usize, i32) {
        loop {
            let (need_k, need_v) = ((at + *chunk) * self.key_size, (at + *chunk) * self.stride);
            if keys.len() < need_k {
                keys.resize(need_k, 0);
            }
            if values.len() < need_v {
                values.resize(need_v, 0);
            }
            let (n, errno) = self.lookup(
                &mut keys[at * self.key_size..],
                &mut values[at * self.stride..],
                *chunk,
            );
            // A refusal of the command leaves `n` as passed in.
            if self.first && super::read::refuses_batching(errno) {
                return (0, errno);
            }
            if errno == libc::ENOSPC && n == 0 {
                *chunk *= 2;
                continue;
            }
            return (n, errno);
        }
    }

    /// Moves past what the last `lookup` returned.
    pub(super) fn advance(&mut self) {
        self.first = false;
        std::mem::swap(&mut self.in_token, &mut self.out_token);
    }
}

/// One batch's buffers.
#[derive(Default)]
pub(super) struct Batch {
    pub(super) keys: Vec<u8>,
    pub(super) values: Vec<u8>,
}

/// A batch as read: `n` entries, and how the read went (`errno` below
/// zero: more to come; 0 or ENOENT: the map's end; anything else: the
/// error it ended on).
struct Filled {
    batch: Batch,
    n: usize,
    errno: i32,
}

/// What a walk needs of the map.
pub(super) struct Shape {
    pub(super) key_size: usize,
    pub(super) stride: usize,
    pub(super) max_entries: usize,
    pub(super) hash: bool,
}

struct State {
    /// `None` while a thread is reading with it.
    cursor: Option<Cursor>,
    chunk: usize,
    /// Entries read so far, by either thread.
    read: usize,
    free: Vec<Batch>,
    filled: VecDeque<Filled>,
    /// The last batch has been read: the map's end or an error.
    ended: bool,
    /// The consumer is done (or gone): the helper leaves.
    closed: bool,
}

/// One read of a map by batches, shared by the consuming thread and a
/// helper.
pub struct Walk {
    /// The walk's own copy of the map's fd: the helper may still be in a
    /// lookup when the consumer is done, and the map's reader may be gone
    /// by then (a reload).
    _fd: OwnedFd,
    shape: Shape,
    state: Mutex<State>,
    changed: Condvar,
    /// The walk that comes after this one in the scrape: its consumer,
    /// idle while the helper reads this one, reads ahead in it.
    next: OnceLock<Arc<Walk>>,
}

/// How a shared walk ended: the errno of its last batch (0 or ENOENT at
/// the map's end), and the buffers, for the reader to keep.
pub(super) struct Ended {
    pub(super) errno: i32,
    /// Entries handed to `each`.
    pub(super) count: usize,
    pub(super) buffers: Vec<Batch>,
}

impl Walk {
    /// A walk of the map behind `fd` from its start, `chunk` entries a
    /// batch, into `buffers` (`WALK_BUDGET / chunk` of them); `None` when
    /// the fd cannot be duplicated (out of fds).
    pub(super) fn new(
        fd: BorrowedFd<'_>,
        shape: Shape,
        chunk: usize,
        buffers: Vec<Batch>,
    ) -> Option<Self> {
        let fd = fd.try_clone_to_owned().ok()?;
        let cursor = Cursor::new(fd.as_raw_fd(), shape.key_size, shape.stride);
        Some(Self {
            _fd: fd,
            shape,
            state: Mutex::new(State {
                cursor: Some(cursor),
                chunk,
                read: 0,
                free: buffers,
                filled: VecDeque::new(),
                ended: false,
                closed: false,
            }),
            changed: Condvar::new(),
            next: OnceLock::new(),
        })
    }

    /// Sets the walk after this one (`next`), once.
    pub fn then(&self, next: Arc<Walk>) {
        let _ = self.next.set(next);
    }

    /// Reads one batch of this walk if nobody is reading it and a buffer is
    /// free: work for the consumer of an earlier walk while it waits.
    /// Returns whether it read one.
    fn read_one_if_free(&self) -> bool {
        let state = self.lock();
        let can = Self::can_read(&state);
        drop(self.read_next(state));
        can
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned one still
        // holds consistent state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed.wait(guard).unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a thread holding the lock may read the next batch now.
    fn can_read(state: &State) -> bool {
        !state.ended && state.cursor.is_some() && !state.free.is_empty()
    }

    /// Reads the next batch, with the lock released during the syscall,
    /// and queues it. Does nothing unless `can_read`.
    fn read_next<'a>(&'a self, mut state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        if !Self::can_read(&state) {
            return state;
        }
        let (Some(mut cursor), Some(mut batch)) = (state.cursor.take(), state.free.pop()) else {
            return state;
        };
        let mut chunk = state.chunk;
        drop(state);
        let shape = &self.shape;
        let (n, errno) = cursor.fetch(&mut batch.keys, &mut batch.values, 0, &mut chunk);
        cursor.advance();
        let mut state = self.lock();
        state.chunk = chunk;
        state.read += n;
        // Arrays report ENOENT only on the call after the last index.
        let ended = errno != 0 || (state.read >= shape.max_entries && !shape.hash);
        state.ended = ended;
        state.cursor = Some(cursor);
        let errno = if ended { errno } else { -1 };
        state.filled.push_back(Filled { batch, n, errno });
        self.changed.notify_all();
        state
    }

    /// The helper's part: reads batches while there is a free buffer and
    /// the walk goes on, until the consumer is done. Only syscalls and
    /// lock hand-offs: nothing here can panic.
    pub fn help(&self) {
        let mut state = self.lock();
        while !state.closed && !state.ended {
            state = if Self::can_read(&state) {
                self.read_next(state)
            } else {
                self.wait(state)
            };
        }
    }

    /// Lets the helper go: the walk will not be consumed (its map is read
    /// another way this scrape, or the scrape is over).
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// The consumer's part: hands every entry to `each` in the map's
    /// order, with its position, reading batches itself whenever none is
    /// ready and nobody is reading. Returns how the walk ended and every
    /// buffer.
    pub(super) fn consume(&self, each: super::read::Consume<'_>) -> Ended {
        // Lets the helper go however this ends, a panic in `each` included.
        struct Close<'a>(&'a Walk);
        impl Drop for Close<'_> {
            fn drop(&mut self) {
                self.0.close();
            }
        }
        let _close = Close(self);
        let (ks, vs) = (self.shape.key_size, self.shape.stride);
        let mut position = 0;
        let mut state = self.lock();
        loop {
            if let Some(Filled { batch, n, errno }) = state.filled.pop_front() {
                drop(state);
                for i in 0..n {
                    each(
                        position + i,
                        &batch.keys[i * ks..(i + 1) * ks],
                        &batch.values[i * vs..(i + 1) * vs],
                    );
                }
                position += n;
                state = self.lock();
                state.free.push(batch);
                if errno >= 0 {
                    // The read that ended the walk returned the cursor as
                    // it queued this batch, and none starts after the end:
                    // every buffer is here. `_close` lets the helper go.
                    let mut buffers = std::mem::take(&mut state.free);
                    buffers.extend(state.filled.drain(..).map(|f| f.batch));
                    return Ended {
                        errno,
                        count: position,
                        buffers,
                    };
                }
                self.changed.notify_all();
                continue;
            }
            if Self::can_read(&state) {
                state = self.read_next(state);
                continue;
            }
            // The helper is reading this walk: read ahead in the next one
            // meanwhile, so two large maps are read side by side.
            if state.cursor.is_none() {
                if let Some(next) = self.next.get() {
                    drop(state);
                    let read = next.read_one_if_free();
                    state = self.lock();
                    // While this thread was away the helper may have queued
                    // a batch or ended the walk, and moved on to the next:
                    // its news came before this wait, so look again.
                    if read || !state.filled.is_empty() || state.cursor.is_some() {
                        continue;
                    }
                }
            }
            state = self.wait(state);
        }
    }
}

/// Hands walks to the process's read-ahead thread, which helps each in
/// turn. One thread, started on first use and kept: a thread woken from a
/// wait runs within tens of microseconds, where a new one is placed on its
/// parent's CPU and, with the parent busy reading, can wait there a
/// millisecond or more (measured on a 2-vCPU VM: 14 µs against 600 µs at
/// the median). Nothing depends on it running: the consumer reads what
/// the helper has not, so a thread that could not be started only costs
/// the help.
pub fn hand_over(walks: Vec<Arc<Walk>>) {
    /// Where walks go to the read-ahead thread.
    type Handoff = Sender<Vec<Arc<Walk>>>;
    static HELPER: OnceLock<Option<Handoff>> = OnceLock::new();
    let helper = HELPER.get_or_init(|| {
        let (tx, rx) = channel::<Vec<Arc<Walk>>>();
        std::thread::Builder::new()
            .name("ee-read-ahead".into())
            .spawn(move || {
                for walks in rx {
                    for walk in walks {
                        walk.help();
                    }
                }
            })
            .map_err(|e| log::warn!("no read-ahead thread: {e}; large maps are read in turn"))
            .ok()
            .map(|_| tx)
    });
    if let Some(tx) = helper {
        // The thread never ends while the sender lives.
        let _ = tx.send(walks);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libbpf_rs::{MapCore, MapFlags, MapHandle, MapType};
    use std::os::fd::AsFd;
    use std::time::Duration;

    /// Buffers of the tests' walks, in batches of `WALK_BATCH`.
    const BUFFERS: usize = WALK_BUDGET / WALK_BATCH;

    #[test]
    fn batches_grow_with_the_map_within_the_budget() {
        assert_eq!(walk_batch(5_000), 1024);
        assert_eq!(walk_batch(16_384), 1024);
        assert_eq!(walk_batch(40_000), 4096);
        assert_eq!(walk_batch(10_000_000), 4096);
    }

    /// A HASH of `n` u32 keys, key k holding 3k: the unit tests need a real
    /// map, and these run as root.
    fn hash_of(n: u32) -> MapHandle {
        let opts = libbpf_sys::bpf_map_create_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_map_create_opts>() as _,
            ..Default::default()
        };
        let map = MapHandle::create(MapType::Hash, Some("walk_test"), 4, 8, n.max(1), &opts)
            .expect("creating a hash map needs root (CAP_BPF)");
        for k in 0..n {
            map.update(
                &k.to_ne_bytes(),
                &(u64::from(k) * 3).to_ne_bytes(),
                MapFlags::ANY,
            )
            .expect("update");
        }
        map
    }

    /// A helper thread on `walk`, as the read-ahead thread would be.
    fn helper_of(walk: &Arc<Walk>) -> std::thread::JoinHandle<()> {
        let walk = walk.clone();
        std::thread::spawn(move || walk.help())
    }

    fn walk_of(map: &MapHandle) -> Walk {
        let shape = Shape {
            key_size: 4,
            stride: 8,
            max_entries: map.max_entries() as usize,
            hash: true,
        };
        let buffers = (0..BUFFERS).map(|_| Batch::default()).collect();
        Walk::new(map.as_fd(), shape, WALK_BATCH, buffers).expect("dup the map's fd")
    }

    /// Consumes `walk`, checking every key comes once, in positions 0.., with
    /// its value; `pause` runs after each entry.
    fn consume_all(walk: &Walk, n: u32, pause: impl Fn()) -> Ended {
        let mut seen = vec![false; n as usize];
        let mut next = 0;
        let ended = walk.consume(&mut |position, key, value| {
            assert_eq!(position, next, "positions in order");
            next += 1;
            let k = u32::from_ne_bytes(key.try_into().expect("u32 key"));
            assert!(
                !std::mem::replace(&mut seen[k as usize], true),
                "key {k} twice"
            );
            let v = u64::from_ne_bytes(value.try_into().expect("u64 value"));
            assert_eq!(v, u64::from(k) * 3, "key {k}'s value");
            pause();
        });
        assert_eq!(next, n as usize, "every entry");
        assert_eq!(ended.count, n as usize);
        ended
    }

    #[test]
    fn the_consumer_reads_everything_itself_when_no_helper_comes() {
        let map = hash_of(5000);
        let walk = walk_of(&map);
        let ended = consume_all(&walk, 5000, || {});
        assert_eq!(ended.errno, libc::ENOENT, "the map's end");
        assert_eq!(ended.buffers.len(), BUFFERS, "every buffer back");
    }

    #[test]
    fn a_helper_reads_ahead_of_a_slow_consumer_and_every_entry_comes_once() {
        let map = hash_of(6000);
        let walk = Arc::new(walk_of(&map));
        let helper = helper_of(&walk);
        // Slow enough that the helper fills every buffer while the first
        // batch is consumed.
        let ended = consume_all(&walk, 6000, || {
            std::thread::sleep(Duration::from_micros(20))
        });
        helper.join().expect("the helper ends with the walk");
        assert_eq!(ended.errno, libc::ENOENT);
        assert_eq!(ended.buffers.len(), BUFFERS, "every buffer back");
    }

    #[test]
    fn a_walk_closed_unconsumed_lets_its_helper_go() {
        let map = hash_of(3 * WALK_BATCH as u32 * BUFFERS as u32);
        let walk = Arc::new(walk_of(&map));
        let helper = helper_of(&walk);
        // The helper fills every buffer, then waits for a consumer.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !walk.lock().free.is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the helper reads ahead"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(!helper.is_finished(), "waiting for a consumer");
        walk.close();
        helper.join().expect("the helper leaves once closed");
        // Helping a closed walk returns at once.
        walk.help();
    }

    #[test]
    fn a_panic_while_consuming_lets_the_helper_go() {
        let map = hash_of(3 * WALK_BATCH as u32 * BUFFERS as u32);
        let walk = Arc::new(walk_of(&map));
        let helper = helper_of(&walk);
        let consumer = {
            let walk = walk.clone();
            std::thread::spawn(move || {
                walk.consume(&mut |position, _, _| assert!(position < 100, "a decoder bug"));
            })
        };
        assert!(
            consumer.join().is_err(),
            "the panic reaches the consumer's caller"
        );
        helper.join().expect("the helper leaves");
        assert!(walk.lock().closed);
    }

    #[test]
    fn the_consumer_reads_ahead_in_the_next_walk_while_the_helper_reads_this_one() {
        let (first, second) = (hash_of(20_000), hash_of(9_000));
        let (a, b) = (Arc::new(walk_of(&first)), Arc::new(walk_of(&second)));
        a.then(b.clone());
        let helper = helper_of(&a);
        consume_all(&a, 20_000, || {});
        helper.join().expect("the helper ends with the walk");
        let read_ahead = b.lock().read;
        assert!(read_ahead <= WALK_BATCH * BUFFERS, "within its buffers");
        let ended = consume_all(&b, 9_000, || {});
        assert_eq!(ended.errno, libc::ENOENT);
        assert_eq!(ended.buffers.len(), BUFFERS, "every buffer back");
    }

    #[test]
    fn a_walk_the_helper_ends_while_the_consumer_looks_at_the_next_is_still_consumed() {
        // The consumer of `a` finds the helper reading it (its cursor out)
        // and looks at `b`, the next walk, while the helper's read ends `a`.
        // The helper then moves on to `b`, so no more news of `a` comes:
        // the consumer must see what changed while it was away.
        let (first, second) = (hash_of(10), hash_of(10));
        let (a, b) = (Arc::new(walk_of(&first)), Arc::new(walk_of(&second)));
        a.then(b.clone());
        let cursor = a.lock().cursor.take().expect("the helper's read");
        let spare: Vec<Batch> = b.lock().free.drain(..).collect();
        let held = b.lock();
        let consumer = {
            let a = a.clone();
            std::thread::spawn(move || a.consume(&mut |_, _, _| {}))
        };
        // The consumer is now waiting for b's lock, in its look at b.
        std::thread::sleep(Duration::from_millis(200));
        {
            let mut state = a.lock();
            state.cursor = Some(cursor);
            let batch = state.free.pop().expect("a free buffer");
            state.ended = true;
            state.filled.push_back(Filled {
                batch,
                n: 0,
                errno: libc::ENOENT,
            });
            a.changed.notify_all();
        }
        drop(held);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !consumer.is_finished() {
            assert!(
                std::time::Instant::now() < deadline,
                "the consumer waits for news of a walk that has ended"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let ended = consumer.join().expect("consumer");
        assert_eq!((ended.errno, ended.count), (libc::ENOENT, 0));
        assert_eq!(ended.buffers.len(), BUFFERS, "every buffer back");
        drop(spare);
    }
}
