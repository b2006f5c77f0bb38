//! A large map's batch lookups shared by two threads: whichever is free
//! reads the next batch. The scrape's thread consumes batches in order and
//! reads one itself whenever none is ready and nobody is reading, so it
//! never waits for the helper thread to be scheduled (on a busy or idle
//! vCPU that can take milliseconds); the helper reads ahead while the
//! scrape's thread decodes. A hash map is walked in two parts, from its
//! first bucket and from its middle one, which the two threads read at
//! once (`Split`). Within a part the batches come out in the map's order,
//! because the kernel's position token is held by one reader at a time;
//! the parts take turns a batch at a time.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

/// Entries a shared walk's buffers hold in all: two batches of a plain
/// read, so the helper can run that far ahead of the decoding.
pub(super) const WALK_BUDGET: usize = 8192;

/// Buffers of a split walk (`Split`) at least: one batch being read by
/// each thread, one being decoded and one ready.
pub(super) const SPLIT_BUFFERS: usize = 4;

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
    /// No call has succeeded yet.
    pub(super) first: bool,
    /// The next call passes no token: the walk starts at the map's
    /// beginning.
    at_start: bool,
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
            at_start: true,
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
        let in_ptr = if self.at_start {
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
        self.at_start = false;
        std::mem::swap(&mut self.in_token, &mut self.out_token);
    }

    /// A cursor placed at `token`: for the four hash map types the index of
    /// the bucket the next call starts at, for an array the index before
    /// the next call's first.
    fn at_token(mut self, token: u32) -> Self {
        self.at_start = false;
        self.in_token[..4].copy_from_slice(&token.to_ne_bytes());
        self
    }

    /// The bucket a hash map's next call starts at.
    fn bucket(&self) -> u32 {
        if self.at_start {
            return 0;
        }
        let mut token = [0u8; 4];
        token.copy_from_slice(&self.in_token[..4]);
        u32::from_ne_bytes(token)
    }
}

/// One batch's buffers.
#[derive(Default)]
pub(super) struct Batch {
    pub(super) keys: Vec<u8>,
    pub(super) values: Vec<u8>,
}

/// A batch as read: `n` entries of part `part`, and how that part's read
/// ended with it (`None`: more to come; 0 or ENOENT: the part's end;
/// anything else: the error it ended on).
struct Filled {
    batch: Batch,
    n: usize,
    part: usize,
    end: Option<i32>,
}

/// What a walk needs of the map.
pub(super) struct Shape {
    pub(super) key_size: usize,
    pub(super) stride: usize,
    pub(super) max_entries: usize,
    pub(super) hash: bool,
}

/// A walk cut in two, so that both threads can read at once: the first
/// part from the start to the cut, the second from it to the end. The hash
/// walk is bound by memory latency, not by one CPU, so two readers take
/// about half the time (a 100k-key map on two vCPUs: 0.49–0.59× one
/// reader's).
///
/// A hash map is cut at a bucket. The kernel's calls end only between
/// buckets it has filled the count with, so the first part's last call
/// can run past the cut. What it read from there on, the second part reads
/// too; the first part's last batch leaves that out (`overlap_start`). Its
/// calls shrink as the cut nears, so little is read twice. An array is cut
/// at an index, which its parts' counts reach exactly.
#[derive(Clone, Copy)]
pub(super) struct Split {
    at: u32,
    by: Cut,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// The kernel's token is the bucket the next call starts at.
    Bucket,
    /// The token is the last index read (the key before the next call's).
    Index,
}

impl Split {
    /// The split of a map of `shape`: a hash map at the middle of its
    /// buckets, which it has as many of as its largest size rounded up to
    /// a power of two; an array (u32 keys, every index present) at its
    /// middle index.
    pub(super) fn of(shape: &Shape) -> Option<Split> {
        let (at, by) = if shape.hash {
            let buckets = shape.max_entries.checked_next_power_of_two()?;
            (buckets / 2, Cut::Bucket)
        } else if shape.key_size == 4 {
            (shape.max_entries / 2, Cut::Index)
        } else {
            return None;
        };
        let at = u32::try_from(at).ok()?;
        (at > 0).then_some(Split { at, by })
    }
}

/// Of the first part's last batch (`keys`, `n` entries), where the entries
/// the second part read begin (`theirs`: its first batch's keys), so that
/// none is handed over twice; `n` when none is. Both read buckets in order
/// and the kernel keeps a bucket's entries together, so everything from
/// the first key the second part also read on lies past the cut. A key
/// added or moved to a bucket's head between the two reads is not in
/// `theirs` and stays; one added past the cut after the second part read
/// its bucket is left out, as any walk misses keys added behind it.
fn overlap_start(keys: &[u8], n: usize, key_size: usize, theirs: &[u8]) -> usize {
    if n == 0 || key_size == 0 || theirs.is_empty() {
        return n;
    }
    let mut at: std::collections::HashMap<&[u8], usize, ahash::RandomState> =
        std::collections::HashMap::with_capacity_and_hasher(n, ahash::RandomState::new());
    for (i, key) in keys[..n * key_size].chunks_exact(key_size).enumerate() {
        at.entry(key).or_insert(i);
    }
    theirs
        .chunks_exact(key_size)
        .filter_map(|key| at.get(key).copied())
        .min()
        .unwrap_or(n)
}

struct Part {
    /// `None` while a thread is reading with it.
    cursor: Option<Cursor>,
    /// Entries this part has read.
    read: usize,
    /// Entries after which it ends: an array's, which reports its end only
    /// on the call after the last index.
    limit: usize,
    /// Buffers this part's batches are in: being read, queued or being
    /// consumed.
    held: usize,
    /// The part's last batch has been read: its end or an error.
    ended: bool,
}

struct State {
    /// One part, or two for a split walk.
    parts: Vec<Part>,
    chunk: usize,
    /// Buffers the walk was given.
    buffers: usize,
    free: Vec<Batch>,
    filled: VecDeque<Filled>,
    /// The keys of the second part's first batch, once it is read.
    second_first: Option<Vec<u8>>,
    /// Batches queued so far: news for a consumer that looked away.
    queued: u64,
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
    split: Option<Split>,
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

/// The part the consumer reads first; the helper starts on the other.
const CONSUMER_PART: usize = 0;
const HELPER_PART: usize = 1;

/// The fewest entries the first part's calls ask for near the cut.
const APPROACH_MIN: usize = 32;

impl Walk {
    /// A walk of the map behind `fd` from its start, `chunk` entries a
    /// batch, into `buffers`, in two parts with `split`; `None` when the fd
    /// cannot be duplicated (out of fds).
    pub(super) fn new(
        fd: BorrowedFd<'_>,
        shape: Shape,
        chunk: usize,
        buffers: Vec<Batch>,
        split: Option<Split>,
    ) -> Option<Self> {
        let fd = fd.try_clone_to_owned().ok()?;
        let cursor = || Cursor::new(fd.as_raw_fd(), shape.key_size, shape.stride);
        let part = |cursor, limit| Part {
            cursor: Some(cursor),
            read: 0,
            limit,
            held: 0,
            ended: false,
        };
        let whole = if shape.hash {
            usize::MAX
        } else {
            shape.max_entries
        };
        let parts = match split {
            None => vec![part(cursor(), whole)],
            Some(Split {
                at,
                by: Cut::Bucket,
            }) => {
                vec![part(cursor(), whole), part(cursor().at_token(at), whole)]
            }
            Some(Split { at, by: Cut::Index }) => {
                let at_index = at as usize;
                vec![
                    part(cursor(), at_index),
                    part(cursor().at_token(at - 1), whole.saturating_sub(at_index)),
                ]
            }
        };
        Some(Self {
            _fd: fd,
            shape,
            split,
            state: Mutex::new(State {
                parts,
                chunk,
                buffers: buffers.len(),
                free: buffers,
                filled: VecDeque::new(),
                second_first: None,
                queued: 0,
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
        let can = Self::readable(&state, CONSUMER_PART).is_some();
        drop(self.read_next(state, CONSUMER_PART));
        can
    }

    /// Entries read so far, by either thread, in every part.
    #[cfg(test)]
    fn read(&self) -> usize {
        self.lock().parts.iter().map(|p| p.read).sum()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned one still
        // holds consistent state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed.wait(guard).unwrap_or_else(|p| p.into_inner())
    }

    /// The part a thread holding the lock may read the next batch of now,
    /// `prefer` if it can. While both parts of a split walk go on, each
    /// holds at most half the buffers, so that neither can fill them all
    /// while the consumer waits for the other's next batch.
    fn readable(state: &State, prefer: usize) -> Option<usize> {
        if state.free.is_empty() {
            return None;
        }
        let parts = state.parts.len();
        let going = state.parts.iter().filter(|p| !p.ended).count();
        let cap = state.buffers / going.max(1);
        (0..parts).map(|i| (prefer + i) % parts).find(|&p| {
            let part = &state.parts[p];
            !part.ended && part.cursor.is_some() && part.held < cap
        })
    }

    /// The helper's choice: the part with the fewest batches ahead of the
    /// consumer, so that the one it takes next is the likelier to be read.
    fn helper_prefers(state: &State) -> usize {
        let held = |p: usize| state.parts.get(p).map_or(usize::MAX, |p| p.held);
        if held(0) < held(HELPER_PART) {
            0
        } else {
            HELPER_PART.min(state.parts.len() - 1)
        }
    }

    /// Whether every part's last batch has been read.
    fn all_read(state: &State) -> bool {
        state.parts.iter().all(|p| p.ended)
    }

    /// Entries to ask for in part `p`'s next call: the batch size, no more
    /// than an array's part has left, and in the first part of a split
    /// hash walk, near the cut, about three quarters of what the buckets
    /// left before it should hold at the density read so far, so that the
    /// last call runs little past it.
    fn ask(&self, p: usize, part: &Part, cursor: &Cursor, chunk: usize) -> usize {
        let chunk = chunk.min(part.limit.saturating_sub(part.read).max(1));
        let Some(split) = self
            .split
            .filter(|s| p == 0 && s.by == Cut::Bucket && !cursor.at_start)
        else {
            return chunk;
        };
        let passed = cursor.bucket().max(1) as f64;
        let left = f64::from(split.at.saturating_sub(cursor.bucket()));
        let expected = left * part.read as f64 / passed;
        ((expected * 0.75) as usize).clamp(APPROACH_MIN.min(chunk), chunk)
    }

    /// Reads the next batch of a part (`prefer` if it can), with the lock
    /// released during the syscall, and queues it. Does nothing unless a
    /// part is `readable`.
    fn read_next<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
        prefer: usize,
    ) -> MutexGuard<'a, State> {
        let Some(p) = Self::readable(&state, prefer) else {
            return state;
        };
        let (Some(mut cursor), Some(mut batch)) = (state.parts[p].cursor.take(), state.free.pop())
        else {
            return state;
        };
        state.parts[p].held += 1;
        let asked = self.ask(p, &state.parts[p], &cursor, state.chunk);
        drop(state);
        let shape = &self.shape;
        let mut chunk = asked;
        let first = cursor.first;
        let (n, errno) = cursor.fetch(&mut batch.keys, &mut batch.values, 0, &mut chunk);
        cursor.advance();
        // The first part's last batch needs these to leave out what both
        // parts read.
        let by_bucket = self.split.is_some_and(|s| s.by == Cut::Bucket);
        let second_first =
            (by_bucket && p == 1 && first).then(|| batch.keys[..n * shape.key_size].to_vec());
        let past_cut = by_bucket && p == 0 && self.split.is_some_and(|s| cursor.bucket() >= s.at);
        let mut state = self.lock();
        if chunk > asked {
            // A bucket held more than a batch.
            state.chunk = state.chunk.max(chunk);
        }
        state.parts[p].read += n;
        let end = if errno != 0 {
            Some(errno)
        } else if past_cut || state.parts[p].read >= state.parts[p].limit {
            Some(0)
        } else {
            None
        };
        state.parts[p].ended = end.is_some();
        state.parts[p].cursor = Some(cursor);
        if second_first.is_some() {
            state.second_first = second_first;
        }
        state.filled.push_back(Filled {
            batch,
            n,
            part: p,
            end,
        });
        state.queued += 1;
        self.changed.notify_all();
        state
    }

    /// The helper's part: reads batches while there is a free buffer and
    /// the walk goes on, until the consumer is done. Only syscalls and
    /// lock hand-offs: nothing here can panic.
    pub fn help(&self) {
        let mut state = self.lock();
        while !state.closed && !Self::all_read(&state) {
            let prefer = Self::helper_prefers(&state);
            state = if Self::readable(&state, prefer).is_some() {
                self.read_next(state, prefer)
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

    /// The consumer's part: hands every entry to `each`, with its position
    /// (a count), reading batches itself whenever none is ready and nobody
    /// is reading. A split walk's parts take turns a batch at a time, so
    /// an unchanged map comes out in the same order every time. Returns
    /// how the walk ended and every buffer.
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
        // The part whose batch comes next, the parts whose last batch has
        // been handed over, and how the map's end was reported.
        let (mut turn, mut done, mut end_errno) = (0, [false; 2], 0);
        let mut state = self.lock();
        let parts = state.parts.len();
        loop {
            let ready = state
                .filled
                .iter()
                .position(|f| f.part == turn)
                .filter(|&i| {
                    // The first part's last batch waits for the second's first
                    // keys.
                    !(self.last_of_first(&state.filled[i]) && state.second_first.is_none())
                });
            if let Some(filled) = ready.and_then(|i| state.filled.remove(i)) {
                let keep = match &state.second_first {
                    Some(theirs) if self.last_of_first(&filled) => {
                        overlap_start(&filled.batch.keys, filled.n, ks, theirs)
                    }
                    _ => filled.n,
                };
                let Filled {
                    batch, part, end, ..
                } = filled;
                drop(state);
                for i in 0..keep {
                    each(
                        position + i,
                        &batch.keys[i * ks..(i + 1) * ks],
                        &batch.values[i * vs..(i + 1) * vs],
                    );
                }
                position += keep;
                state = self.lock();
                state.free.push(batch);
                state.parts[part].held -= 1;
                match end {
                    None => {}
                    Some(e @ (0 | libc::ENOENT)) => {
                        done[part] = true;
                        end_errno = end_errno.max(e);
                    }
                    Some(e) => return Self::ended(state, e, position),
                }
                if done[..parts].iter().all(|d| *d) {
                    // Every part's last read has returned its cursor and
                    // none starts after a part's end: every buffer is
                    // here. `_close` lets the helper go.
                    return Self::ended(state, end_errno, position);
                }
                let other = (part + 1) % parts;
                turn = if done[other] { part } else { other };
                self.changed.notify_all();
                continue;
            }
            if let Some(p) = Self::readable(&state, turn) {
                state = self.read_next(state, p);
                continue;
            }
            // The helper is reading this walk: read ahead in the next one
            // meanwhile, so two large maps are read side by side.
            if state.parts.iter().any(|p| p.cursor.is_none()) {
                if let Some(next) = self.next.get() {
                    let queued = state.queued;
                    drop(state);
                    let read = next.read_one_if_free();
                    state = self.lock();
                    // While this thread was away the helper may have queued
                    // a batch, and moved on to the next walk: its news came
                    // before this wait, so look again.
                    if read || state.queued != queued {
                        continue;
                    }
                }
            }
            state = self.wait(state);
        }
    }

    /// Whether `filled` is the last batch of a split hash walk's first part.
    fn last_of_first(&self, filled: &Filled) -> bool {
        filled.part == 0
            && self.split.is_some_and(|s| s.by == Cut::Bucket)
            && matches!(filled.end, Some(0 | libc::ENOENT))
    }

    /// The walk's end as `consume` returns it, with the buffers it holds.
    fn ended(mut state: MutexGuard<'_, State>, errno: i32, count: usize) -> Ended {
        let mut buffers = std::mem::take(&mut state.free);
        buffers.extend(state.filled.drain(..).map(|f| f.batch));
        Ended {
            errno,
            count,
            buffers,
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
        hash_in(n, n.max(1))
    }

    /// `hash_of` in a map of `max` entries.
    fn hash_in(n: u32, max: u32) -> MapHandle {
        map_in(MapType::Hash, n, max)
    }

    /// `hash_in` for another map type with 8-byte values.
    fn map_in(kind: MapType, n: u32, max: u32) -> MapHandle {
        let opts = libbpf_sys::bpf_map_create_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_map_create_opts>() as _,
            ..Default::default()
        };
        let map = MapHandle::create(kind, Some("walk_test"), 4, 8, max, &opts)
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
        Walk::new(map.as_fd(), shape, WALK_BATCH, buffers, None).expect("dup the map's fd")
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
        let read_ahead = b.read();
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
        let cursor = a.lock().parts[0].cursor.take().expect("the helper's read");
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
            state.parts[0].cursor = Some(cursor);
            let batch = state.free.pop().expect("a free buffer");
            state.parts[0].held += 1;
            state.parts[0].ended = true;
            state.filled.push_back(Filled {
                batch,
                n: 0,
                part: 0,
                end: Some(libc::ENOENT),
            });
            state.queued += 1;
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

    /// A split walk of `map`, `chunk` entries a batch.
    fn split_walk_of(map: &MapHandle, chunk: usize) -> Walk {
        let shape = Shape {
            key_size: 4,
            stride: 8,
            max_entries: map.max_entries() as usize,
            hash: true,
        };
        let split = Split::of(&shape);
        assert_eq!(
            split.map(|s| s.at),
            Some(map.max_entries().next_power_of_two() / 2),
            "cut at the middle bucket"
        );
        let buffers = (0..SPLIT_BUFFERS).map(|_| Batch::default()).collect();
        Walk::new(map.as_fd(), shape, chunk, buffers, split).expect("dup the map's fd")
    }

    #[test]
    fn hash_maps_are_cut_at_their_middle_bucket_and_arrays_at_their_middle_index() {
        let shape = Shape {
            key_size: 4,
            stride: 8,
            max_entries: 1000,
            hash: true,
        };
        let cut = |shape: &Shape| Split::of(shape).map(|s| (s.at, s.by == Cut::Bucket));
        assert_eq!(cut(&shape), Some((512, true)));
        let array = Shape {
            hash: false,
            ..shape
        };
        assert_eq!(cut(&array), Some((500, false)));
        // Not an array's u32 index: not cut.
        let other = Shape {
            key_size: 8,
            ..array
        };
        assert_eq!(cut(&other), None);
        let one = Shape {
            max_entries: 1,
            ..shape
        };
        assert_eq!(cut(&one), None);
    }

    #[test]
    fn a_split_array_reads_each_index_once_and_no_more() {
        let n = 12_345u32;
        let map = map_in(MapType::Array, n, n);
        let shape = Shape {
            key_size: 4,
            stride: 8,
            max_entries: n as usize,
            hash: false,
        };
        let split = Split::of(&shape);
        let buffers = (0..SPLIT_BUFFERS).map(|_| Batch::default()).collect();
        let walk = Arc::new(
            Walk::new(map.as_fd(), shape, WALK_BATCH, buffers, split).expect("dup the map's fd"),
        );
        let helper = helper_of(&walk);
        let ended = consume_all(&walk, n, || {});
        helper.join().expect("the helper ends with the walk");
        assert_eq!(ended.errno, 0, "an array's parts end on their counts");
        assert_eq!(ended.buffers.len(), SPLIT_BUFFERS, "every buffer back");
        assert_eq!(walk.read(), n as usize, "nothing read twice");
        let state = walk.lock();
        let parts: Vec<usize> = state.parts.iter().map(|p| p.read).collect();
        assert_eq!(parts, vec![6172, 6173]);
    }

    #[test]
    fn the_overlap_starts_at_the_first_key_both_parts_read() {
        let keys = |ks: &[u32]| ks.iter().flat_map(|k| k.to_ne_bytes()).collect::<Vec<u8>>();
        let tail = keys(&[1, 2, 3, 4]);
        assert_eq!(overlap_start(&tail, 4, 4, &keys(&[3, 4, 5])), 2);
        // A key moved to its bucket's head between the two reads comes
        // later in one than in the other: the earliest in this batch counts.
        assert_eq!(overlap_start(&tail, 4, 4, &keys(&[9, 4, 3])), 2);
        assert_eq!(overlap_start(&tail, 4, 4, &keys(&[7, 8])), 4);
        assert_eq!(overlap_start(&tail, 4, 4, &[]), 4);
        assert_eq!(overlap_start(&tail, 0, 4, &keys(&[1])), 0);
        // Only the batch's `n` entries count.
        assert_eq!(overlap_start(&tail, 2, 4, &keys(&[3])), 2);
    }

    #[test]
    fn a_split_walk_hands_each_key_over_once_where_its_first_part_runs_past_the_cut() {
        // 1500 keys in 2048 buckets, cut at 1024: the first call asks for a
        // batch of 1024 entries, about 1400 buckets' worth.
        let map = hash_in(1500, 2048);
        let walk = split_walk_of(&map, WALK_BATCH);
        let ended = consume_all(&walk, 1500, || {});
        assert_eq!(ended.errno, libc::ENOENT, "the map's end");
        assert_eq!(ended.buffers.len(), SPLIT_BUFFERS, "every buffer back");
        let read = walk.read();
        assert!(read > 1500, "the first part ran past the cut: {read} read");
    }

    #[test]
    fn a_split_walk_read_by_both_threads_reads_little_twice() {
        let map = hash_in(60_000, 65_536);
        let walk = Arc::new(split_walk_of(&map, WALK_BATCH));
        let helper = helper_of(&walk);
        let ended = consume_all(&walk, 60_000, || {});
        helper.join().expect("the helper ends with the walk");
        assert_eq!(ended.errno, libc::ENOENT);
        assert_eq!(ended.buffers.len(), SPLIT_BUFFERS, "every buffer back");
        let twice = walk.read() - 60_000;
        let state = walk.lock();
        assert!(twice < 8 * APPROACH_MIN, "{twice} entries read twice");
        assert!(
            state.parts.iter().all(|p| p.read > 20_000),
            "both parts read about half: {:?}",
            state.parts.iter().map(|p| p.read).collect::<Vec<_>>()
        );
    }

    #[test]
    fn an_lru_hash_is_split_and_read_alike() {
        // An LRU hash's batch token is a bucket index too.
        let map = map_in(MapType::LruHash, 30_000, 40_000);
        let walk = Arc::new(split_walk_of(&map, WALK_BATCH));
        let helper = helper_of(&walk);
        let ended = consume_all(&walk, 30_000, || {});
        helper.join().expect("the helper ends with the walk");
        assert_eq!(ended.errno, libc::ENOENT);
        assert!(walk.lock().parts.iter().all(|p| p.read > 10_000));
    }

    #[test]
    fn keys_updated_during_split_walks_come_once_each() {
        // An update replaces a hash map's element with a new one at its
        // bucket's head, so keys move within buckets between the two
        // parts' reads.
        let (n, max) = (20_000u32, 32_768);
        let map = hash_in(n, max);
        let fd = map.as_fd().as_raw_fd();
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut k = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    k = (k + 7919) % n;
                    let v = u64::from(k) * 3;
                    // SAFETY: key and value are the map's 4 and 8 bytes and
                    // outlive the call.
                    let rc = unsafe {
                        libbpf_sys::bpf_map_update_elem(
                            fd,
                            (&k as *const u32).cast(),
                            (&v as *const u64).cast(),
                            0,
                        )
                    };
                    assert_eq!(rc, 0, "update");
                }
            });
            for _ in 0..40 {
                let walk = Arc::new(split_walk_of(&map, WALK_BATCH));
                let helper = helper_of(&walk);
                consume_all(&walk, n, || {});
                helper.join().expect("the helper ends with the walk");
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
    }
}
