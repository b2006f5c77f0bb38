//! Remembers what each raw key decoded to, so scraping an unchanged map does
//! no decoding work, and interns the rendered label sets into small slot
//! numbers, so aggregation indexes a vector instead of hashing strings.
//!
//! The reference exporter keeps every key it has ever seen, which grows
//! without bound under churn (short-lived cgroups, ephemeral ports). Here an
//! entry not seen for `max_idle` scrapes is dropped, and rows holding a
//! not-found stand-in (`unknown:…`) are decoded afresh on the next scrape so
//! they heal when the thing they name appears. Even good rows are decoded
//! again every `REDECODE_AFTER` to twice that many scrapes (spread by entry,
//! so one scrape never re-decodes a whole map), so renames (an interface, a
//! cgroup path reused) show up on keys that never go idle; unless every
//! decoder of the metric is pure (`Decoder::pure`), when nothing can be
//! renamed and an unchanged map costs no decoding at all.

use ahash::RandomState;
use hashbrown::HashTable;

/// Scrapes after which a cached row is decoded afresh. Decoders keep their
/// own tables, so a re-decode costs a lookup, not a file read.
const REDECODE_AFTER: u32 = 60;

/// What a cached key stands for: a label-set slot, plus a per-metric number
/// (for histograms, the bucket's position among the exported buckets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachedRow {
    pub slot: u32,
    pub extra: u32,
}

/// The longest a key may go unseen before it is forgotten, in scrapes:
/// well inside the 16-bit generations of `Entry`.
const MAX_IDLE: u32 = 16_384;

/// Marks a cached entry whose row is dropped (a `regexp` miss).
const DROPPED: u32 = u32::MAX;

/// 16 bytes per key: at hundreds of thousands of keys, this struct is most
/// of the cache's memory. Generations are kept in 16 bits: an entry is
/// forgotten after `max_idle` unseen scrapes (at most `MAX_IDLE`) and
/// decoded again within `2 * REDECODE_AFTER`, so no age it is compared at
/// comes near the wrap.
struct Entry {
    /// `slot == DROPPED` remembers a dropped row.
    row: CachedRow,
    last_seen: u16,
    decoded_at: u16,
    /// Valid for the scrape it was decoded in only.
    volatile: bool,
    live: bool,
}

const _: () = assert!(std::mem::size_of::<Entry>() == 16);

impl Entry {
    fn outcome(&self) -> Option<CachedRow> {
        (self.row.slot != DROPPED).then_some(self.row)
    }
}

/// Label texts by slot, each stored once in one arena and found by hash:
/// no allocation per label set.
#[derive(Default)]
struct Interner {
    table: HashTable<u32>,
    arena: String,
    /// (offset, length) of each slot's text in `arena`.
    spans: Vec<(u32, u32)>,
    refs: Vec<u32>,
    free: Vec<u32>,
    /// Arena bytes no live slot uses; compacted away when they dominate.
    garbage: usize,
    hasher: RandomState,
}

impl Interner {
    fn text(&self, id: u32) -> &str {
        let (off, len) = self.spans[id as usize];
        &self.arena[off as usize..(off + len) as usize]
    }

    fn acquire(&mut self, text: &str) -> u32 {
        let hash = self.hasher.hash_one(text);
        let (arena, spans) = (&self.arena, &self.spans);
        let found = self.table.find(hash, |&i| {
            let (off, len) = spans[i as usize];
            &arena[off as usize..(off + len) as usize] == text
        });
        if let Some(&id) = found {
            self.refs[id as usize] += 1;
            return id;
        }
        let span = (self.arena.len() as u32, text.len() as u32);
        self.arena.push_str(text);
        let id = match self.free.pop() {
            Some(id) => {
                self.spans[id as usize] = span;
                self.refs[id as usize] = 1;
                id
            }
            None => {
                self.spans.push(span);
                self.refs.push(1);
                (self.spans.len() - 1) as u32
            }
        };
        let (arena, spans, hasher) = (&self.arena, &self.spans, &self.hasher);
        self.table.insert_unique(hash, id, |&i| {
            let (off, len) = spans[i as usize];
            hasher.hash_one(&arena[off as usize..(off + len) as usize])
        });
        id
    }

    fn release(&mut self, id: u32) {
        let i = id as usize;
        self.refs[i] -= 1;
        if self.refs[i] == 0 {
            let hash = self.hasher.hash_one(self.text(id));
            if let Ok(entry) = self.table.find_entry(hash, |&j| j == id) {
                entry.remove();
            }
            self.garbage += self.spans[i].1 as usize;
            self.spans[i] = (0, 0);
            self.free.push(id);
        }
    }

    /// Rewrites the arena without released texts once they make up most
    /// of it, so churn cannot grow it without bound.
    fn compact(&mut self) {
        if self.garbage < 64 * 1024 || self.garbage * 2 < self.arena.len() {
            return;
        }
        let mut arena = String::with_capacity(self.arena.len() - self.garbage);
        for (i, span) in self.spans.iter_mut().enumerate() {
            if self.refs[i] == 0 {
                continue;
            }
            let (off, len) = *span;
            *span = (arena.len() as u32, len);
            arena.push_str(&self.arena[off as usize..(off + len) as usize]);
        }
        self.arena = arena;
        self.garbage = 0;
    }
}

/// Cached rows of one map. All keys of a map have the same size, so they
/// live in one flat arena (no allocation per key), indexed by a hash table
/// of entry numbers. Maps are read in the same order scrape after scrape, so
/// `hints` remembers which entry sat at each position last time: a byte
/// compare against it replaces most hash lookups.
pub struct KeyCache {
    key_size: usize,
    keys: Vec<u8>,
    entries: Vec<Entry>,
    free: Vec<u32>,
    table: HashTable<u32>,
    hasher: RandomState,
    hints: Vec<u32>,
    interner: Interner,
    generation: u16,
    max_idle: u32,
    /// Rows cannot change for a key (pure decoders): no periodic re-decode.
    pure: bool,
}

impl KeyCache {
    /// `max_idle`: scrapes a key may go unseen before it is forgotten.
    pub fn new(max_idle: u32) -> Self {
        Self {
            key_size: 0,
            keys: Vec::new(),
            entries: Vec::new(),
            free: Vec::new(),
            table: HashTable::new(),
            hasher: RandomState::new(),
            hints: Vec::new(),
            interner: Interner::default(),
            generation: 0,
            max_idle: max_idle.clamp(1, MAX_IDLE),
            pure: false,
        }
    }

    /// For rows from pure decoders only: keys are decoded once while they
    /// stay, not again every `REDECODE_AFTER` scrapes.
    pub fn pure(mut self, pure: bool) -> Self {
        self.pure = pure;
        self
    }

    fn key_at(&self, idx: u32) -> &[u8] {
        let start = idx as usize * self.key_size;
        &self.keys[start..start + self.key_size]
    }

    fn find(&mut self, key: &[u8], position: usize) -> Option<u32> {
        if key.len() != self.key_size {
            return None;
        }
        if let Some(&idx) = self.hints.get(position) {
            if self.entries.get(idx as usize).is_some_and(|e| e.live) && self.key_at(idx) == key {
                return Some(idx);
            }
        }
        let hash = self.hasher.hash_one(key);
        let (keys, ks) = (&self.keys, self.key_size);
        let idx = *self.table.find(hash, |&i| {
            &keys[i as usize * ks..(i as usize + 1) * ks] == key
        })?;
        self.remember_position(position, idx);
        Some(idx)
    }

    fn remember_position(&mut self, position: usize, idx: u32) {
        if self.hints.len() <= position {
            self.hints.resize(position + 1, u32::MAX);
        }
        self.hints[position] = idx;
    }

    /// The cached outcome for the key at `position` in this scrape's read:
    /// `Some(Some(row))` for a row, `Some(None)` for a dropped row, `None`
    /// when the key must be decoded.
    pub fn get(&mut self, key: &[u8], position: usize) -> Option<Option<CachedRow>> {
        let idx = self.find(key, position)?;
        let generation = self.generation;
        let entry = &mut self.entries[idx as usize];
        let age = u32::from(generation.wrapping_sub(entry.decoded_at));
        // Each entry's period is offset by its index, so keys first seen
        // together (every key of a new map) are re-decoded spread over
        // REDECODE_AFTER scrapes, not all in one.
        let period = REDECODE_AFTER + idx % REDECODE_AFTER;
        if (entry.volatile && age != 0) || (!self.pure && age >= period) {
            return None;
        }
        entry.last_seen = generation;
        Some(entry.outcome())
    }

    /// Stores what the key at `position` decoded to: its rendered label
    /// text and extra number, or `None` for a dropped row.
    pub fn put(
        &mut self,
        key: &[u8],
        position: usize,
        decoded: Option<(String, u32)>,
        volatile: bool,
    ) -> Option<CachedRow> {
        if self.entries.is_empty() && self.free.is_empty() {
            self.key_size = key.len();
        }
        if key.len() != self.key_size {
            // Keys of one map never change size; this only guards misuse.
            return None;
        }
        // Release the old row first, so a re-decoded row can reuse its slot.
        let existing = self.find(key, position);
        if let Some(old) = existing.and_then(|idx| self.entries[idx as usize].outcome()) {
            self.interner.release(old.slot);
        }
        let row = decoded.map(|(text, extra)| CachedRow {
            slot: self.interner.acquire(&text),
            extra,
        });
        let entry = Entry {
            row: row.unwrap_or(CachedRow {
                slot: DROPPED,
                extra: 0,
            }),
            last_seen: self.generation,
            decoded_at: self.generation,
            volatile,
            live: true,
        };
        if let Some(idx) = existing {
            self.entries[idx as usize] = entry;
            return row;
        }
        let idx = match self.free.pop() {
            Some(idx) => {
                let start = idx as usize * self.key_size;
                self.keys[start..start + self.key_size].copy_from_slice(key);
                self.entries[idx as usize] = entry;
                idx
            }
            None => {
                self.keys.extend_from_slice(key);
                self.entries.push(entry);
                (self.entries.len() - 1) as u32
            }
        };
        let hash = self.hasher.hash_one(key);
        let (keys, ks, hasher) = (&self.keys, self.key_size, &self.hasher);
        self.table.insert_unique(hash, idx, |&i| {
            hasher.hash_one(&keys[i as usize * ks..(i as usize + 1) * ks])
        });
        self.remember_position(position, idx);
        row
    }

    /// Every cached row is decoded again when next seen: what a decoder
    /// answered may have changed (`Decoder::changes`).
    pub fn redecode_all(&mut self) {
        for e in &mut self.entries {
            e.volatile = true;
        }
    }

    /// Ends a scrape: forgets keys idle for longer than `max_idle` scrapes.
    pub fn end_scrape(&mut self, entries_read: usize) {
        let generation = self.generation;
        for idx in 0..self.entries.len() {
            let e = &self.entries[idx];
            if !e.live || u32::from(generation.wrapping_sub(e.last_seen)) < self.max_idle {
                continue;
            }
            if let Some(row) = e.outcome() {
                self.interner.release(row.slot);
            }
            self.entries[idx].live = false;
            let hash = self.hasher.hash_one(self.key_at(idx as u32));
            if let Ok(entry) = self.table.find_entry(hash, |&i| i as usize == idx) {
                entry.remove();
            }
            self.free.push(idx as u32);
        }
        self.hints.truncate(entries_read);
        self.interner.compact();
        self.generation = self.generation.wrapping_add(1);
    }

    /// The rendered label text of a slot handed out by `put`.
    pub fn slot_text(&self, slot: u32) -> &str {
        if (slot as usize) < self.interner.spans.len() {
            self.interner.text(slot)
        } else {
            ""
        }
    }

    /// One past the highest slot number in use: the size for per-slot arrays.
    pub fn slot_capacity(&self) -> usize {
        self.interner.spans.len()
    }

    pub fn len(&self) -> usize {
        self.entries.len() - self.free.len()
    }

    /// Heap bytes held, by what for: the raw keys and what finds them
    /// (the key arena, entries, hash index, position hints), and the
    /// interned label text with its index. Capacities, not lengths: that is
    /// what the process holds.
    pub fn memory(&self) -> (usize, usize) {
        use std::mem::size_of;
        // hashbrown's table: a u32 and a control byte per bucket.
        let table = |t: &HashTable<u32>| t.capacity() * (size_of::<u32>() + 1);
        let keys = self.keys.capacity()
            + self.entries.capacity() * size_of::<Entry>()
            + self.free.capacity() * size_of::<u32>()
            + table(&self.table)
            + self.hints.capacity() * size_of::<u32>();
        let i = &self.interner;
        let labels = i.arena.capacity()
            + i.spans.capacity() * size_of::<(u32, u32)>()
            + i.refs.capacity() * size_of::<u32>()
            + i.free.capacity() * size_of::<u32>()
            + table(&i.table);
        (keys, labels)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_label_text_shares_a_slot() {
        let mut c = KeyCache::new(3);
        let a = c
            .put(b"k1", 0, Some(("x=\"1\"".into(), 0)), false)
            .expect("row");
        let b = c
            .put(b"k2", 1, Some(("x=\"1\"".into(), 5)), false)
            .expect("row");
        assert_eq!(a.slot, b.slot);
        assert_eq!(b.extra, 5);
        assert_eq!(c.slot_text(a.slot), "x=\"1\"");
        assert_eq!(c.get(b"k1", 0), Some(Some(a)));
    }

    #[test]
    fn idle_keys_are_forgotten_and_slots_reused() {
        let mut c = KeyCache::new(2);
        let first = c.put(b"old", 0, Some(("a".into(), 0)), false).expect("row");
        c.end_scrape(1); // the scrape that saw it
        c.end_scrape(1); // unseen once
        assert_eq!(c.len(), 1, "unseen for 1 scrape only");
        c.end_scrape(1); // unseen twice
        assert_eq!(c.len(), 0, "unseen for 2 scrapes");
        assert_eq!(c.get(b"old", 0), None);
        let next = c.put(b"new", 0, Some(("b".into(), 0)), false).expect("row");
        assert_eq!(next.slot, first.slot, "freed slot is reused");
        assert_eq!(c.slot_capacity(), 1);
    }

    #[test]
    fn seen_keys_stay() {
        let mut c = KeyCache::new(2);
        c.put(b"k", 0, Some(("a".into(), 0)), false);
        for _ in 0..10 {
            assert!(c.get(b"k", 0).is_some());
            c.end_scrape(1);
        }
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn volatile_rows_are_decoded_again_next_scrape() {
        let mut c = KeyCache::new(5);
        c.put(b"k", 0, Some(("unknown".into(), 0)), true);
        assert!(c.get(b"k", 0).is_some(), "same scrape");
        c.end_scrape(1);
        assert_eq!(c.get(b"k", 0), None, "next scrape re-decodes");
        c.put(b"k", 0, Some(("healed".into(), 0)), false);
        assert_eq!(c.slot_capacity(), 1, "replaced row released its slot");
    }

    #[test]
    fn long_lived_rows_are_decoded_again_eventually() {
        let mut c = KeyCache::new(1000);
        c.put(b"k", 0, Some(("eth0".into(), 0)), false);
        for _ in 0..REDECODE_AFTER {
            assert!(c.get(b"k", 0).is_some());
            c.end_scrape(1);
        }
        assert_eq!(
            c.get(b"k", 0),
            None,
            "re-decoded after {REDECODE_AFTER} scrapes"
        );
    }

    #[test]
    fn rows_of_pure_decoders_are_never_decoded_again_but_stand_ins_still_heal() {
        let mut c = KeyCache::new(1000).pure(true);
        c.put(b"k", 0, Some(("42".into(), 0)), false);
        c.put(b"u", 1, Some(("unknown".into(), 0)), true);
        c.end_scrape(2);
        for _ in 0..4 * REDECODE_AFTER {
            assert!(c.get(b"k", 0).is_some(), "kept as decoded");
            assert_eq!(c.get(b"u", 1), None, "a stand-in is tried again");
            c.put(b"u", 1, Some(("unknown".into(), 0)), true);
            c.end_scrape(2);
        }
    }

    #[test]
    fn keys_seen_together_are_re_decoded_spread_out() {
        let mut c = KeyCache::new(1000);
        let n = 600u32;
        for k in 0..n {
            c.put(
                &k.to_ne_bytes(),
                k as usize,
                Some((format!("k{k}"), 0)),
                false,
            );
        }
        c.end_scrape(n as usize);
        let mut redecoded = vec![0u32; n as usize];
        let mut most_in_one_scrape = 0;
        for _ in 0..2 * REDECODE_AFTER {
            let mut this_scrape = 0;
            for k in 0..n {
                if c.get(&k.to_ne_bytes(), k as usize).is_none() {
                    c.put(
                        &k.to_ne_bytes(),
                        k as usize,
                        Some((format!("k{k}"), 0)),
                        false,
                    );
                    redecoded[k as usize] += 1;
                    this_scrape += 1;
                }
            }
            most_in_one_scrape = most_in_one_scrape.max(this_scrape);
            c.end_scrape(n as usize);
        }
        assert!(redecoded.iter().all(|&r| r >= 1), "every key re-decoded");
        assert_eq!(
            most_in_one_scrape,
            n / REDECODE_AFTER,
            "at most a 60th of the keys per scrape"
        );
    }

    #[test]
    fn arena_is_compacted_under_churn() {
        let mut c = KeyCache::new(1);
        for round in 0u64..50 {
            for k in 0u64..1000 {
                let key = (round * 1000 + k).to_ne_bytes();
                c.put(
                    &key,
                    k as usize,
                    Some((format!("key=\"{}\"", round * 1000 + k), 0)),
                    false,
                );
            }
            c.end_scrape(1000);
        }
        assert!(c.len() <= 2000, "idle keys forgotten: {}", c.len());
        assert!(
            c.interner.arena.len() < 200_000,
            "arena bounded: {}",
            c.interner.arena.len()
        );
        let live = c
            .get(&49_999u64.to_ne_bytes(), 999)
            .expect("cached")
            .expect("row");
        assert_eq!(c.slot_text(live.slot), "key=\"49999\"");
    }

    #[test]
    fn dropped_rows_are_remembered() {
        let mut c = KeyCache::new(2);
        c.put(b"k", 0, None, false);
        assert_eq!(c.get(b"k", 0), Some(None));
    }
}
