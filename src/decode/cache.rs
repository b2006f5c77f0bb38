//! Remembers what each raw key decoded to, so scraping an unchanged map does
//! no decoding work, and interns the rendered label sets into small slot
//! numbers, so aggregation indexes a vector instead of hashing strings.
//!
//! The reference exporter keeps every key it has ever seen, which grows
//! without bound under churn (short-lived cgroups, ephemeral ports). Here an
//! entry not seen for `max_idle` scrapes is dropped, and rows holding a
//! not-found stand-in (`unknown:…`) are decoded afresh on the next scrape so
//! they heal when the thing they name appears.

use std::sync::Arc;

use ahash::AHashMap;

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
    /// Valid for the scrape it was decoded in only.
    volatile: bool,
}

#[derive(Default)]
struct Interner {
    ids: AHashMap<Arc<str>, u32>,
    texts: Vec<Option<Arc<str>>>,
    refs: Vec<u32>,
    free: Vec<u32>,
}

impl Interner {
    fn acquire(&mut self, text: String) -> u32 {
        if let Some(&id) = self.ids.get(text.as_str()) {
            self.refs[id as usize] += 1;
            return id;
        }
        let text: Arc<str> = Arc::from(text);
        let id = match self.free.pop() {
            Some(id) => {
                self.texts[id as usize] = Some(text.clone());
                self.refs[id as usize] = 1;
                id
            }
            None => {
                self.texts.push(Some(text.clone()));
                self.refs.push(1);
                (self.texts.len() - 1) as u32
            }
        };
        self.ids.insert(text, id);
        id
    }

    fn release(&mut self, id: u32) {
        let i = id as usize;
        self.refs[i] -= 1;
        if self.refs[i] == 0 {
            if let Some(text) = self.texts[i].take() {
                self.ids.remove(&text);
            }
            self.free.push(id);
        }
    }
}

pub struct KeyCache {
    entries: AHashMap<Box<[u8]>, Entry>,
    interner: Interner,
    generation: u32,
    max_idle: u32,
}

impl KeyCache {
    /// `max_idle`: scrapes a key may go unseen before it is forgotten.
    pub fn new(max_idle: u32) -> Self {
        Self {
            entries: AHashMap::new(),
            interner: Interner::default(),
            generation: 0,
            max_idle: max_idle.max(1),
        }
    }

    /// `Some(Some(row))` for a cached row, `Some(None)` for a cached drop,
    /// `None` when the key must be decoded.
    pub fn get(&mut self, key: &[u8]) -> Option<Option<CachedRow>> {
        let generation = self.generation;
        let entry = self.entries.get_mut(key)?;
        if entry.volatile && entry.last_seen != generation {
            return None;
        }
        entry.last_seen = generation;
        Some(entry.row)
    }

    /// Stores what `key` decoded to: its rendered label text and extra
    /// number, or `None` for a dropped row.
    pub fn put(
        &mut self,
        key: &[u8],
        decoded: Option<(String, u64)>,
        volatile: bool,
    ) -> Option<CachedRow> {
        if let Some(old) = self.entries.remove(key) {
            if let Some(old_row) = old.row {
                self.interner.release(old_row.slot);
            }
        }
        let row = decoded.map(|(text, extra)| CachedRow {
            slot: self.interner.acquire(text),
            extra,
        });
        let entry = Entry {
            row,
            last_seen: self.generation,
            volatile,
        };
        self.entries.insert(key.into(), entry);
        row
    }

    /// Ends a scrape: forgets keys idle for longer than `max_idle` scrapes.
    pub fn end_scrape(&mut self) {
        let generation = self.generation;
        let max_idle = self.max_idle;
        let interner = &mut self.interner;
        self.entries.retain(|_, e| {
            let keep = generation.wrapping_sub(e.last_seen) < max_idle;
            if !keep {
                if let Some(row) = e.row {
                    interner.release(row.slot);
                }
            }
            keep
        });
        self.generation = self.generation.wrapping_add(1);
    }

    /// The rendered label text of a slot handed out by `put`.
    pub fn slot_text(&self, slot: u32) -> &str {
        self.interner
            .texts
            .get(slot as usize)
            .and_then(|t| t.as_deref())
            .unwrap_or("")
    }

    /// One past the highest slot number in use: the size for per-slot arrays.
    pub fn slot_capacity(&self) -> usize {
        self.interner.texts.len()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_label_text_shares_a_slot() {
        let mut c = KeyCache::new(3);
        let a = c
            .put(b"k1", Some(("x=\"1\"".into(), 0)), false)
            .expect("row");
        let b = c
            .put(b"k2", Some(("x=\"1\"".into(), 5)), false)
            .expect("row");
        assert_eq!(a.slot, b.slot);
        assert_eq!(b.extra, 5);
        assert_eq!(c.slot_text(a.slot), "x=\"1\"");
        assert_eq!(c.get(b"k1"), Some(Some(a)));
    }

    #[test]
    fn idle_keys_are_forgotten_and_slots_reused() {
        let mut c = KeyCache::new(2);
        let first = c.put(b"old", Some(("a".into(), 0)), false).expect("row");
        c.end_scrape(); // the scrape that saw it
        c.end_scrape(); // unseen once
        assert_eq!(c.len(), 1, "unseen for 1 scrape only");
        c.end_scrape(); // unseen twice
        assert_eq!(c.len(), 0, "unseen for 2 scrapes");
        assert_eq!(c.get(b"old"), None);
        let next = c.put(b"new", Some(("b".into(), 0)), false).expect("row");
        assert_eq!(next.slot, first.slot, "freed slot is reused");
        assert_eq!(c.slot_capacity(), 1);
    }

    #[test]
    fn seen_keys_stay() {
        let mut c = KeyCache::new(2);
        c.put(b"k", Some(("a".into(), 0)), false);
        for _ in 0..10 {
            assert!(c.get(b"k").is_some());
            c.end_scrape();
        }
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn volatile_rows_are_decoded_again_next_scrape() {
        let mut c = KeyCache::new(5);
        c.put(b"k", Some(("unknown".into(), 0)), true);
        assert!(c.get(b"k").is_some(), "same scrape");
        c.end_scrape();
        assert_eq!(c.get(b"k"), None, "next scrape re-decodes");
        c.put(b"k", Some(("healed".into(), 0)), false);
        assert_eq!(c.slot_capacity(), 1, "replaced row released its slot");
    }

    #[test]
    fn dropped_rows_are_remembered() {
        let mut c = KeyCache::new(2);
        c.put(b"k", None, false);
        assert_eq!(c.get(b"k"), Some(None));
    }
}
