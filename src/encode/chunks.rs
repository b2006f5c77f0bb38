//! Buffers for the chunks of a streamed exposition, kept from one scrape
//! for the next. A fresh 256 KiB buffer per chunk costs its page faults and
//! the kernel's zeroing on every scrape, and glibc maps and unmaps buffers
//! of that size, so each scrape also paid an munmap with its TLB shootdown
//! across the threads that had touched it: about 5% of the exporter's CPU
//! at 10k series. A chunk shared with the clients of a flight comes back
//! here when the last of them has been sent it, and up to `keep` are kept.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

use super::Spill;

pub struct ChunkPool {
    /// Bytes per chunk: a writer hands its buffer over at the first line
    /// (or message) end past this many bytes.
    size: usize,
    /// Buffers kept when idle; past that, returned buffers are freed.
    keep: usize,
    free: Mutex<Vec<Vec<u8>>>,
}

impl ChunkPool {
    pub fn new(size: usize, keep: usize) -> Arc<Self> {
        Arc::new(Self {
            size,
            keep,
            free: Mutex::new(Vec::new()),
        })
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// Room for one chunk and the line that takes it past the mark, so a
    /// chunk never reallocates while it fills.
    pub fn capacity(&self) -> usize {
        self.size.saturating_add(4096).min(1 << 24)
    }

    /// An empty buffer of at least `capacity()` bytes.
    pub fn take(&self) -> Vec<u8> {
        let kept = self
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        kept.unwrap_or_else(|| Vec::with_capacity(self.capacity()))
    }

    /// Takes a buffer back once its bytes are no longer needed. One that
    /// grew far past a chunk (a single huge line) is freed rather than kept,
    /// so the pool stays `keep` chunks of memory at most.
    pub fn give(&self, mut text: Vec<u8>) {
        let cap = text.capacity();
        if cap < self.capacity() || cap > 2 * self.capacity() {
            return;
        }
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        if free.len() < self.keep {
            text.clear();
            free.push(text);
        }
    }

    /// The chunk as shared bytes, without a copy; its buffer comes back to
    /// the pool when the last clone is dropped.
    pub fn share(self: &Arc<Self>, text: Vec<u8>) -> Bytes {
        if text.is_empty() {
            self.give(text);
            return Bytes::new();
        }
        Bytes::from_owner(Returning {
            text,
            pool: Arc::clone(self),
        })
    }

    #[cfg(test)]
    fn kept(&self) -> usize {
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// A chunk's bytes while clients hold it.
struct Returning {
    text: Vec<u8>,
    pool: Arc<ChunkPool>,
}

impl AsRef<[u8]> for Returning {
    fn as_ref(&self) -> &[u8] {
        &self.text
    }
}

impl Drop for Returning {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.text));
    }
}

/// A streaming writer's hand-over: where its full buffers go, where its
/// next ones come from, and how much it has handed over. Each writer
/// decides where a buffer may be cut (a line end, a family end); this
/// does the rest. Without a spill, nothing is ever due.
pub struct Spiller {
    spill: Option<Spill>,
    at: usize,
    spilled: usize,
    pool: Option<Arc<ChunkPool>>,
}

impl Default for Spiller {
    fn default() -> Self {
        Self {
            spill: None,
            at: usize::MAX,
            spilled: 0,
            pool: None,
        }
    }
}

impl Spiller {
    /// Hands buffers of the pool's chunk size to `spill`. `current` is the
    /// writer's buffer so far (empty at the start): its allocation goes to
    /// the pool, and the pooled buffer returned replaces it.
    pub fn new(pool: Arc<ChunkPool>, spill: Spill, current: Vec<u8>) -> (Self, Vec<u8>) {
        let mut first = pool.take();
        first.clear();
        pool.give(current);
        let spiller = Self {
            spill: Some(spill),
            at: pool.size(),
            spilled: 0,
            pool: Some(pool),
        };
        (spiller, first)
    }

    /// Whether a buffer of `len` bytes is due to be handed over.
    pub fn due(&self, len: usize) -> bool {
        len >= self.at && self.spill.is_some()
    }

    /// Hands `full` over; returns an empty buffer to carry on in.
    pub fn hand_over(&mut self, full: Vec<u8>) -> Vec<u8> {
        let Some(spill) = &mut self.spill else {
            return full;
        };
        let mut next = self.pool.as_ref().map(|p| p.take()).unwrap_or_default();
        next.clear();
        self.spilled += full.len();
        spill(full);
        next
    }

    /// Bytes handed over so far.
    pub fn spilled(&self) -> usize {
        self.spilled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_chunk_comes_back_when_its_last_clone_goes() {
        let pool = ChunkPool::new(1000, 2);
        let mut text = pool.take();
        let at = text.as_ptr();
        text.extend_from_slice(b"a_total 1\n");
        let bytes = pool.share(text);
        let copy = bytes.clone();
        assert_eq!(&copy[..], b"a_total 1\n");
        drop(bytes);
        assert_eq!(pool.kept(), 0, "a client still holds it");
        drop(copy);
        assert_eq!(pool.kept(), 1);
        let again = pool.take();
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), at, "the same buffer, not a new one");
    }

    #[test]
    fn keeps_at_most_keep_buffers_of_about_a_chunk() {
        let pool = ChunkPool::new(1000, 2);
        let taken: Vec<Vec<u8>> = (0..4).map(|_| pool.take()).collect();
        for t in taken {
            pool.give(t);
        }
        assert_eq!(pool.kept(), 2);
        let pool = ChunkPool::new(1000, 2);
        pool.give(Vec::with_capacity(100 * pool.capacity()));
        pool.give(Vec::with_capacity(10));
        assert_eq!(pool.kept(), 0, "grown and foreign buffers are freed");
        assert!(pool.share(Vec::new()).is_empty());
    }
}
