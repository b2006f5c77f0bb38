//! Remembers what each raw key decoded to, so scraping an unchanged map does
//! no decoding work, and interns the rendered label sets into small slot
//! numbers, so aggregation indexes a vector instead of hashing strings.
//!
//! The reference exporter keeps every key it has ever seen, which grows
//! without bound under churn (short-lived cgroups, ephemeral ports). Here an
//! entry not seen for `max_idle` scrapes is dropped, and rows holding a
//! not-found stand-in (`unknown:…`) are decoded afresh on the next scrape so
//! they heal when the thing they name appears. Even good rows are decoded
//! again every `REDECODE_AFTER` scrapes, so renames (an interface, a
//! cgroup path reused) show up on keys that never go idle.

use ahash::RandomState;
use hashbrown::HashTable;

/// Scrapes after which a cached row is decoded afresh. Decoders keep their
/// own tables, so a re-decode costs a lookup, not a file read.
const REDECODE_AFTER: u32 = 60;

/// What a cached key stands for: a label-set slot, plus a per-metric number
/// (the bucket index, for histograms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachedRow {
    pub slot: u32,
    pub extra: u64,
}

struct Entry {
    /// `None` remembers that the row is dropped (a `regexp` miss).
    row: Option<CachedRow>,
    last_seen: u32,
    decoded_at: u32,
    /// Valid for the scrape it was decoded in only.
    volatile: bool,
    live: bool,
}

/// Label texts by slot, each stored once, found by hash.
#[derive(Default)]
struct Interner {
    table: HashTable<u32>,
    texts: Vec<Box<str>>,
    refs: Vec<u32>,
    free: Vec<u32>,
    hasher: RandomState,
}

impl Interner {
    fn acquire(&mut self, text: String) -> u32 {
        let hash = self.hasher.hash_one(text.as_str());
        let texts = &self.texts;
        if let Some(&id) = self
            .table
            .find(hash, |&i| &*texts[i as usize] == text.as_str())
        {
            self.refs[id as usize] += 1;
            return id;
        }
        let id = match self.free.pop() {
            Some(id) => {
                self.texts[id as usize] = text.into_boxed_str();
                self.refs[id as usize] = 1;
                id
            }
            None => {
                self.texts.push(text.into_boxed_str());
                self.refs.push(1);
                (self.texts.len() - 1) as u32
            }
        };
        let (texts, hasher) = (&self.texts, &self.hasher);
        self.table
            .insert_unique(hash, id, |&i| hasher.hash_one(&*texts[i as usize]));
        id
    }

    fn release(&mut self, id: u32) {
        let i = id as usize;
        self.refs[i] -= 1;
        if self.refs[i] == 0 {
            let hash = self.hasher.hash_one(&*self.texts[i]);
            if let Ok(entry) = self.table.find_entry(hash, |&j| j == id) {
                entry.remove();
            }
            self.texts[i] = Box::from("");
            self.free.push(id);
        }
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
    generation: u32,
    max_idle: u32,
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
            max_idle: max_idle.max(1),
        }
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
        let age = generation.wrapping_sub(entry.decoded_at);
        if (entry.volatile && age != 0) || age >= REDECODE_AFTER {
            return None;
        }
        entry.last_seen = generation;
        Some(entry.row)
    }

    /// Stores what the key at `position` decoded to: its rendered label
    /// text and extra number, or `None` for a dropped row.
    pub fn put(
        &mut self,
        key: &[u8],
        position: usize,
        decoded: Option<(String, u64)>,
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
        if let Some(old) = existing.and_then(|idx| self.entries[idx as usize].row) {
            self.interner.release(old.slot);
        }
        let row = decoded.map(|(text, extra)| CachedRow {
            slot: self.interner.acquire(text),
            extra,
        });
        let entry = Entry {
            row,
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

    /// Ends a scrape: forgets keys idle for longer than `max_idle` scrapes.
    pub fn end_scrape(&mut self, entries_read: usize) {
        let generation = self.generation;
        for idx in 0..self.entries.len() {
            let e = &self.entries[idx];
            if !e.live || generation.wrapping_sub(e.last_seen) < self.max_idle {
                continue;
            }
            if let Some(row) = e.row {
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
        self.generation = self.generation.wrapping_add(1);
    }

    /// The rendered label text of a slot handed out by `put`.
    pub fn slot_text(&self, slot: u32) -> &str {
        self.interner.texts.get(slot as usize).map_or("", |t| t)
    }

    /// One past the highest slot number in use: the size for per-slot arrays.
    pub fn slot_capacity(&self) -> usize {
        self.interner.texts.len()
    }

    pub fn len(&self) -> usize {
        self.entries.len() - self.free.len()
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
    fn dropped_rows_are_remembered() {
        let mut c = KeyCache::new(2);
        c.put(b"k", 0, None, false);
        assert_eq!(c.get(b"k", 0), Some(None));
    }
}
