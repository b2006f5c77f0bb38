//! A hash index of `u32` ids whose keys live elsewhere (the key cache's key
//! arena, the interned label values), sized for memory rather than speed.
//!
//! hashbrown keeps its buckets a power of two and at most 7/8 full, so a
//! table of 1M ids has 2M buckets: 10.5 bytes an id, twice over in the key
//! cache (keys and label texts), about a fifth of what a series costs at a
//! million. Here the bucket count grows by half at a time and is used to
//! 7/8, so an id costs 5.7 to 8.6 bytes, and a resize holds 2.5 tables'
//! worth for a moment instead of three. Lookups stay cheap by scanning a
//! byte of hash per bucket (linear probing keeps the scan in one cache
//! line) and comparing keys only where that byte matches.

/// The tag of an empty bucket; a full bucket's tag is never 0.
const EMPTY: u8 = 0;

/// The fewest buckets a table that holds anything has.
const MIN_BUCKETS: usize = 16;

#[derive(Default)]
pub struct Index {
    tags: Vec<u8>,
    ids: Vec<u32>,
    len: usize,
}

/// Where a hash starts probing among `buckets`: the high half of the hash
/// scaled to the table, so any bucket count works without a modulo.
fn home(hash: u64, buckets: usize) -> usize {
    (((hash >> 32) * buckets as u64) >> 32) as usize
}

/// The bucket after `i` among `n`, wrapping at the end.
fn next(i: usize, n: usize) -> usize {
    if i + 1 == n {
        0
    } else {
        i + 1
    }
}

/// The byte of the hash a bucket keeps, from bits `home` does not use.
fn tag(hash: u64) -> u8 {
    (hash as u8).max(1)
}

impl Index {
    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }

    /// Heap bytes held.
    pub fn bytes(&self) -> usize {
        self.tags.capacity() + self.ids.capacity() * std::mem::size_of::<u32>()
    }

    /// The id whose key hashes to `hash` and for which `eq` holds.
    #[inline]
    pub fn find(&self, hash: u64, eq: impl Fn(u32) -> bool) -> Option<u32> {
        self.bucket_of(hash, eq).map(|i| self.ids[i])
    }

    /// The bucket holding the id whose key hashes to `hash` and for which
    /// `eq` holds.
    #[inline]
    fn bucket_of(&self, hash: u64, eq: impl Fn(u32) -> bool) -> Option<usize> {
        let n = self.tags.len();
        if n == 0 {
            return None;
        }
        let want = tag(hash);
        let mut i = home(hash, n);
        loop {
            match self.tags[i] {
                EMPTY => return None,
                t if t == want && eq(self.ids[i]) => return Some(i),
                _ => {}
            }
            i = next(i, n);
        }
    }

    /// Adds `id`, which must not be in the index. `rehash` gives the hash
    /// of any id already in it, for when the table grows.
    pub fn insert(&mut self, hash: u64, id: u32, rehash: impl Fn(u32) -> u64) {
        if (self.len + 1) * 8 > self.tags.len() * 7 {
            self.grow(&rehash);
        }
        self.place(hash, id);
        self.len += 1;
    }

    fn place(&mut self, hash: u64, id: u32) {
        let n = self.tags.len();
        let mut i = home(hash, n);
        while self.tags[i] != EMPTY {
            i = next(i, n);
        }
        self.tags[i] = tag(hash);
        self.ids[i] = id;
    }

    fn grow(&mut self, rehash: &impl Fn(u32) -> u64) {
        let buckets = (self.tags.len() + self.tags.len() / 2).max(MIN_BUCKETS);
        let tags = std::mem::replace(&mut self.tags, vec![EMPTY; buckets]);
        let ids = std::mem::replace(&mut self.ids, vec![0; buckets]);
        for (t, id) in tags.into_iter().zip(ids) {
            if t != EMPTY {
                self.place(rehash(id), id);
            }
        }
    }

    /// Removes `id`, found by its `hash`; whether it was there. The buckets
    /// after it move back to close the gap (no tombstones to pile up), which
    /// is what `rehash` is for.
    pub fn remove(&mut self, hash: u64, id: u32, rehash: impl Fn(u32) -> u64) -> bool {
        let Some(mut hole) = self.bucket_of(hash, |x| x == id) else {
            return false;
        };
        let n = self.tags.len();
        self.len -= 1;
        let mut j = hole;
        loop {
            j = next(j, n);
            if self.tags[j] == EMPTY {
                self.tags[hole] = EMPTY;
                return true;
            }
            // The id at j may fill the hole unless its home lies
            // cyclically in (hole, j]: then it would sit before its home.
            let h = home(rehash(self.ids[j]), n);
            let stays = if hole <= j {
                hole < h && h <= j
            } else {
                hole < h || h <= j
            };
            if !stays {
                self.tags[hole] = self.tags[j];
                self.ids[hole] = self.ids[j];
                hole = j;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hash with only a few distinct homes, so probes run long, wrap
    /// around the table's end and removals shift long runs.
    fn crowded(id: u32) -> u64 {
        (u64::from(id % 3) << 62) | u64::from(id)
    }

    #[test]
    fn finds_what_was_inserted_and_nothing_else() {
        let mut ix = Index::default();
        for id in 0..10_000u32 {
            ix.insert(crowded(id), id, crowded);
        }
        assert_eq!(ix.len(), 10_000);
        for id in 0..10_000u32 {
            assert_eq!(ix.find(crowded(id), |x| x == id), Some(id));
        }
        assert_eq!(ix.find(crowded(10_000), |x| x == 10_000), None);
    }

    #[test]
    fn removals_keep_every_other_id_findable() {
        let mut ix = Index::default();
        for id in 0..5_000u32 {
            ix.insert(crowded(id), id, crowded);
        }
        for id in (0..5_000u32).filter(|i| i % 3 != 1) {
            assert!(ix.remove(crowded(id), id, crowded), "{id}");
        }
        assert!(!ix.remove(crowded(0), 0, crowded), "already gone");
        for id in 0..5_000u32 {
            let want = (id % 3 == 1).then_some(id);
            assert_eq!(ix.find(crowded(id), |x| x == id), want, "{id}");
        }
        assert_eq!(ix.len(), 5_000 / 3 + 1);
    }

    #[test]
    fn agrees_with_a_set_under_random_inserts_and_removals() {
        let mut ix = Index::default();
        let mut model = std::collections::HashSet::new();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200_000 {
            // xorshift: a fixed sequence, so a failure repeats.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = (x % 3_000) as u32;
            if model.contains(&id) {
                assert!(ix.remove(crowded(id), id, crowded));
                model.remove(&id);
            } else {
                ix.insert(crowded(id), id, crowded);
                model.insert(id);
            }
        }
        assert_eq!(ix.len(), model.len());
        for id in 0..3_000u32 {
            let want = model.contains(&id).then_some(id);
            assert_eq!(ix.find(crowded(id), |x| x == id), want, "{id}");
        }
    }

    #[test]
    fn a_million_ids_take_under_seven_bytes_each() {
        let hasher = ahash::RandomState::with_seeds(1, 2, 3, 4);
        let hash = |id: u32| hasher.hash_one(id);
        let mut ix = Index::default();
        for id in 0..1_000_000u32 {
            ix.insert(hash(id), id, hash);
        }
        // 1,347,984 buckets of 5 bytes; hashbrown would hold 2^21.
        assert_eq!(ix.bytes(), 1_347_984 * 5);
        assert!(ix.find(hash(999_999), |x| x == 999_999).is_some());
    }
}
