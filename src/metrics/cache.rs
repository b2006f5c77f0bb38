//! Remembers what each raw key decoded to, so scraping an unchanged map does
//! no decoding work, and interns the label sets (their values, joined) into
//! small slot numbers, so aggregation indexes a vector instead of hashing
//! strings.
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

use std::collections::HashMap;

use ahash::RandomState;

use super::bits::Bits;
use super::index::Index;

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

/// Set in `Entry::slot` for a row valid only in the scrape it was decoded
/// in; the bits below it hold the slot or one of the two markers below.
const VOLATILE: u32 = 1 << 31;
/// A remembered dropped row (a `regexp` miss).
const DROPPED: u32 = VOLATILE - 1;
/// An entry on the free list.
const FREE: u32 = VOLATILE - 2;

/// Label sets a metric may have: slot numbers stay below the markers. A
/// label set past it is left out (it would take 8 GB of slot starts alone
/// to get there).
const MAX_SLOTS: usize = FREE as usize;

/// 8 bytes per key: at a million keys, entries are a large part of what a
/// series costs, so the histogram bucket position (`CachedRow::extra`) is
/// kept beside them only for metrics that have one, and the flags share the
/// slot's word. Generations are kept in 16 bits: an entry is forgotten
/// after `max_idle` unseen scrapes (at most `MAX_IDLE`) and decoded again
/// within `2 * REDECODE_AFTER`, so no age it is compared at comes near the
/// wrap.
#[derive(Clone, Copy)]
struct Entry {
    slot: u32,
    last_seen: u16,
    decoded_at: u16,
}

const _: () = assert!(std::mem::size_of::<Entry>() == 8);

impl Entry {
    fn marker(&self) -> u32 {
        self.slot & !VOLATILE
    }

    fn live(&self) -> bool {
        self.marker() != FREE
    }

    fn volatile(&self) -> bool {
        self.slot & VOLATILE != 0
    }

    /// The row's slot; `None` for a dropped row or a free entry.
    fn row_slot(&self) -> Option<u32> {
        let slot = self.marker();
        (slot != DROPPED && slot != FREE).then_some(slot)
    }
}

/// Marks a free slot in `Texts::starts`.
const FREE_START: u32 = u32::MAX;

/// Texts this long or longer keep their length in `Texts::long`.
const LONG: u8 = u8::MAX;

/// Label texts by slot, end to end in one arena: no allocation per label
/// set. Kept apart from the interner's index so the index can be searched
/// and reshaped while texts are read.
#[derive(Default)]
struct Texts {
    arena: String,
    /// Where each slot's text starts in `arena` (`FREE_START` when free).
    starts: Vec<u32>,
    /// Each slot's text length, or `LONG` when `long` has it: label sets
    /// are short, so a byte covers nearly all of them.
    lens: Vec<u8>,
    long: HashMap<u32, u32>,
}

impl Texts {
    fn text(&self, id: u32) -> &str {
        let (start, len) = self.span(id);
        self.arena.get(start..start + len).unwrap_or("")
    }

    /// Where slot `id`'s text sits in the arena: its start and length.
    fn span(&self, id: u32) -> (usize, usize) {
        let i = id as usize;
        let len = match self.lens[i] {
            LONG => self.long.get(&id).copied().unwrap_or(0) as usize,
            n => usize::from(n),
        };
        (self.starts[i] as usize, len)
    }

    fn is_free(&self, id: u32) -> bool {
        self.starts[id as usize] == FREE_START
    }

    fn slots(&self) -> usize {
        self.starts.len()
    }

    /// A new free slot, past the last.
    fn add_slot(&mut self) -> u32 {
        self.starts.push(FREE_START);
        self.lens.push(0);
        (self.starts.len() - 1) as u32
    }

    /// Places `text` at the arena's end as slot `id`'s.
    fn set(&mut self, id: u32, text: &str) {
        let i = id as usize;
        self.starts[i] = self.arena.len() as u32;
        self.arena.push_str(text);
        if text.len() >= usize::from(LONG) {
            self.lens[i] = LONG;
            self.long.insert(id, text.len() as u32);
        } else {
            self.lens[i] = text.len() as u8;
            self.long.remove(&id);
        }
    }

    fn clear(&mut self, id: u32) {
        self.starts[id as usize] = FREE_START;
        self.lens[id as usize] = 0;
        self.long.remove(&id);
    }

    fn bytes(&self) -> usize {
        use std::mem::size_of;
        self.arena.capacity()
            + self.starts.capacity() * size_of::<u32>()
            + self.lens.capacity()
            + self.long.capacity() * 2 * size_of::<u32>()
    }
}

/// Label texts by slot, each stored once and found by hash. Slots carry no
/// reference count: the cache sweeps for slots no key refers to once enough
/// keys have let go of theirs (`KeyCache::sweep`), which costs a pass now
/// and then instead of four bytes a slot.
#[derive(Default)]
struct Interner {
    index: Index,
    texts: Texts,
    free: Vec<u32>,
    /// Arena bytes no live slot uses; compacted away when they dominate.
    garbage: usize,
    hasher: RandomState,
}

impl Interner {
    /// The slot of `text`, made if new; `None` past `MAX_SLOTS`, or where
    /// the arena would outgrow its 32-bit offsets.
    fn acquire(&mut self, text: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(text);
        let texts = &self.texts;
        if let Some(id) = self.index.find(hash, |i| texts.text(i) == text) {
            return Some(id);
        }
        if texts.arena.len() + text.len() >= FREE_START as usize {
            return None;
        }
        let id = match self.free.pop() {
            Some(id) => id,
            None if texts.slots() < MAX_SLOTS => self.texts.add_slot(),
            None => return None,
        };
        self.texts.set(id, text);
        let (texts, hasher) = (&self.texts, &self.hasher);
        self.index
            .insert(hash, id, |i| hasher.hash_one(texts.text(i)));
        Some(id)
    }

    /// Frees a slot no key refers to any more.
    fn release(&mut self, id: u32) {
        let (texts, hasher) = (&self.texts, &self.hasher);
        let text = texts.text(id);
        self.index.remove(hasher.hash_one(text), id, |i| {
            hasher.hash_one(texts.text(i))
        });
        self.garbage += text.len();
        self.texts.clear(id);
        self.free.push(id);
    }

    /// Rewrites the arena without released texts once they make up most
    /// of it, so churn cannot grow it without bound.
    fn compact(&mut self) {
        let texts = &mut self.texts;
        if self.garbage < 64 * 1024 || self.garbage * 2 < texts.arena.len() {
            return;
        }
        let kept = String::with_capacity(texts.arena.len() - self.garbage);
        let old = std::mem::replace(&mut texts.arena, kept);
        for id in 0..texts.slots() as u32 {
            if texts.is_free(id) {
                continue;
            }
            let (start, len) = texts.span(id);
            texts.starts[id as usize] = texts.arena.len() as u32;
            texts
                .arena
                .push_str(old.get(start..start + len).unwrap_or(""));
        }
        self.garbage = 0;
    }

    fn bytes(&self) -> usize {
        self.texts.bytes() + self.free.capacity() * std::mem::size_of::<u32>() + self.index.bytes()
    }
}

/// Keys letting go of their slots before the cache sweeps for slots no key
/// refers to: at least this many, or an eighth of the keys.
const SWEEP_AFTER: usize = 4096;

/// The keys of one map, end to end: all keys of a map have the same size,
/// so one flat arena holds them, with no allocation per key. Kept apart
/// from the index so the index can be searched and reshaped while keys are
/// read.
#[derive(Default)]
struct Keys {
    bytes: Vec<u8>,
    size: usize,
}

impl Keys {
    fn at(&self, idx: u32) -> &[u8] {
        let start = idx as usize * self.size;
        &self.bytes[start..start + self.size]
    }

    fn set(&mut self, idx: u32, key: &[u8]) {
        let start = idx as usize * self.size;
        self.bytes[start..start + self.size].copy_from_slice(key);
    }
}

/// Cached rows of one map, found by a hash index of entry numbers.
///
/// Maps are read in the same order scrape after scrape, and entries are
/// made in the order their keys are first read, so the key read next is
/// most often the entry after the one found last: `next` guesses it, and a
/// compare of the key's bytes replaces the hash lookup. Two runs of entries
/// are followed, since a map that grew under the cache reads the entries
/// made before it grew between those made as it grew. A guess costs no
/// memory per key, and a key inserted or deleted in the map costs a lookup
/// or two, where a hint per position would have been wrong for every key
/// after it.
pub struct KeyCache {
    keys: Keys,
    entries: Vec<Entry>,
    /// Each entry's `CachedRow::extra`; empty while every one is 0.
    extras: Vec<u32>,
    free: Vec<u32>,
    index: Index,
    hasher: RandomState,
    /// The entries guessed to come next: after the last one found, and
    /// after the last one found in another run.
    next: [u32; 2],
    interner: Interner,
    /// Keys that let go of a slot since the last sweep.
    let_go: usize,
    generation: u16,
    max_idle: u32,
    /// Rows cannot change for a key (pure decoders): no periodic re-decode.
    pure: bool,
    /// Keys found by hash rather than by guess.
    #[cfg(test)]
    lookups: usize,
}

impl KeyCache {
    /// `max_idle`: scrapes a key may go unseen before it is forgotten.
    pub fn new(max_idle: u32) -> Self {
        Self {
            keys: Keys::default(),
            entries: Vec::new(),
            extras: Vec::new(),
            free: Vec::new(),
            index: Index::default(),
            hasher: RandomState::new(),
            next: [0, 0],
            interner: Interner::default(),
            let_go: 0,
            generation: 0,
            max_idle: max_idle.clamp(1, MAX_IDLE),
            pure: false,
            #[cfg(test)]
            lookups: 0,
        }
    }

    /// For rows from pure decoders only: keys are decoded once while they
    /// stay, not again every `REDECODE_AFTER` scrapes.
    pub fn pure(mut self, pure: bool) -> Self {
        self.pure = pure;
        self
    }

    fn find(&mut self, key: &[u8]) -> Option<u32> {
        if key.len() != self.keys.size {
            return None;
        }
        let (entries, keys) = (&self.entries, &self.keys);
        let guessed = self
            .next
            .into_iter()
            .find(|&idx| entries.get(idx as usize).is_some_and(Entry::live) && keys.at(idx) == key);
        let idx = match guessed {
            Some(idx) => idx,
            None => {
                #[cfg(test)]
                {
                    self.lookups += 1;
                }
                self.index
                    .find(self.hasher.hash_one(key), |i| keys.at(i) == key)?
            }
        };
        if idx != self.next[0] {
            self.next[1] = self.next[0];
        }
        self.next[0] = idx.saturating_add(1);
        Some(idx)
    }

    fn outcome(&self, idx: u32) -> Option<CachedRow> {
        let slot = self.entries[idx as usize].row_slot()?;
        let extra = self.extras.get(idx as usize).copied().unwrap_or(0);
        Some(CachedRow { slot, extra })
    }

    /// The cached outcome for `key`: `Some(Some(row))` for a row,
    /// `Some(None)` for a dropped row, `None` when the key must be decoded.
    pub fn get(&mut self, key: &[u8]) -> Option<Option<CachedRow>> {
        let idx = self.find(key)?;
        let generation = self.generation;
        let entry = &mut self.entries[idx as usize];
        let age = u32::from(generation.wrapping_sub(entry.decoded_at));
        // Each entry's period is offset by its index, so keys first seen
        // together (every key of a new map) are re-decoded spread over
        // REDECODE_AFTER scrapes, not all in one.
        let period = REDECODE_AFTER + idx % REDECODE_AFTER;
        if (entry.volatile() && age != 0) || (!self.pure && age >= period) {
            return None;
        }
        entry.last_seen = generation;
        Some(self.outcome(idx))
    }

    /// Stores what `key` decoded to: its label text and extra number, or
    /// `None` for a dropped row.
    pub fn put(
        &mut self,
        key: &[u8],
        decoded: Option<(String, u32)>,
        volatile: bool,
    ) -> Option<CachedRow> {
        if self.entries.is_empty() {
            self.keys.size = key.len();
        }
        if key.len() != self.keys.size {
            // Keys of one map never change size; this only guards misuse.
            return None;
        }
        let existing = self.find(key);
        let old_slot = existing.and_then(|idx| self.entries[idx as usize].row_slot());
        let (slot, extra) = match &decoded {
            Some((text, extra)) => (self.interner.acquire(text)?, *extra),
            None => (DROPPED, 0),
        };
        if old_slot.is_some_and(|old| old != slot) {
            self.let_go += 1;
        }
        let entry = Entry {
            slot: slot | if volatile { VOLATILE } else { 0 },
            last_seen: self.generation,
            decoded_at: self.generation,
        };
        let idx = match existing {
            Some(idx) => {
                self.entries[idx as usize] = entry;
                idx
            }
            None => self.add_key(key, entry),
        };
        if extra != 0 && self.extras.is_empty() {
            self.extras.resize(self.entries.len(), 0);
        }
        if let Some(e) = self.extras.get_mut(idx as usize) {
            *e = extra;
        }
        (slot != DROPPED).then_some(CachedRow { slot, extra })
    }

    /// Makes `entry` for a key not in the cache, and indexes it.
    fn add_key(&mut self, key: &[u8], entry: Entry) -> u32 {
        let idx = match self.free.pop() {
            Some(idx) => {
                self.keys.set(idx, key);
                self.entries[idx as usize] = entry;
                idx
            }
            None => {
                self.keys.bytes.extend_from_slice(key);
                self.entries.push(entry);
                if !self.extras.is_empty() {
                    self.extras.push(0);
                }
                (self.entries.len() - 1) as u32
            }
        };
        let (keys, hasher) = (&self.keys, &self.hasher);
        self.index
            .insert(hasher.hash_one(key), idx, |i| hasher.hash_one(keys.at(i)));
        idx
    }

    /// Every cached row is decoded again when next seen: what a decoder
    /// answered may have changed (`Decoder::changes`).
    pub fn redecode_all(&mut self) {
        for e in &mut self.entries {
            e.slot |= VOLATILE;
        }
    }

    /// Ends a scrape: forgets keys idle for longer than `max_idle` scrapes.
    pub fn end_scrape(&mut self) {
        let generation = self.generation;
        for idx in 0..self.entries.len() as u32 {
            let e = self.entries[idx as usize];
            if !e.live() || u32::from(generation.wrapping_sub(e.last_seen)) < self.max_idle {
                continue;
            }
            if e.row_slot().is_some() {
                self.let_go += 1;
            }
            let (keys, hasher) = (&self.keys, &self.hasher);
            self.index.remove(hasher.hash_one(keys.at(idx)), idx, |i| {
                hasher.hash_one(keys.at(i))
            });
            self.entries[idx as usize].slot = FREE;
            self.free.push(idx);
        }
        if self.let_go > 0 && (self.let_go >= SWEEP_AFTER || self.let_go * 8 >= self.len()) {
            self.sweep();
        }
        self.interner.compact();
        self.next = [0, 0];
        self.generation = self.generation.wrapping_add(1);
    }

    /// Frees the slots no key refers to.
    fn sweep(&mut self) {
        let mut used = Bits::new(self.interner.texts.slots());
        for slot in self.entries.iter().filter_map(Entry::row_slot) {
            used.set(slot as usize);
        }
        for slot in 0..self.interner.texts.slots() as u32 {
            if !used.get(slot as usize) && !self.interner.texts.is_free(slot) {
                self.interner.release(slot);
            }
        }
        self.let_go = 0;
    }

    /// The label text (values, joined) of a slot handed out by `put`.
    pub fn slot_text(&self, slot: u32) -> &str {
        if (slot as usize) < self.interner.texts.slots() {
            self.interner.texts.text(slot)
        } else {
            ""
        }
    }

    /// One past the highest slot number in use: the size for per-slot arrays.
    pub fn slot_capacity(&self) -> usize {
        self.interner.texts.slots()
    }

    pub fn len(&self) -> usize {
        self.entries.len() - self.free.len()
    }

    /// Heap bytes held, by what for: the raw keys and what finds them
    /// (the key arena, entries, index), and the interned label text with
    /// its index. Capacities, not lengths: that is what the process holds.
    pub fn memory(&self) -> (usize, usize) {
        use std::mem::size_of;
        let keys = self.keys.bytes.capacity()
            + self.entries.capacity() * size_of::<Entry>()
            + self.extras.capacity() * size_of::<u32>()
            + self.free.capacity() * size_of::<u32>()
            + self.index.bytes();
        (keys, self.interner.bytes())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    /// Caches the u32 key `k` as `text`.
    fn put_u32(c: &mut KeyCache, k: u32, text: String) -> Option<CachedRow> {
        c.put(&k.to_ne_bytes(), Some((text, 0)), false)
    }

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
        let healed = c.put(b"k", Some(("healed".into(), 0)), false).expect("row");
        assert_eq!(c.slot_text(healed.slot), "healed");
        c.end_scrape();
        let other = c.put(b"j", Some(("other".into(), 0)), false).expect("row");
        assert_eq!(c.slot_capacity(), 2, "the replaced row's slot was swept");
        assert_ne!(other.slot, healed.slot);
        assert_eq!(c.get(b"k"), Some(Some(healed)));
    }

    #[test]
    fn slots_no_key_holds_are_swept_and_reused() {
        let mut c = KeyCache::new(1);
        for k in 0u32..100 {
            put_u32(&mut c, k, format!("a{k}"));
        }
        c.end_scrape();
        // Half the keys are re-decoded to new texts; the old ones are
        // held by nothing once the keys have let go.
        for k in 0u32..50 {
            assert!(c.get(&k.to_ne_bytes()).is_some());
            put_u32(&mut c, k, format!("b{k}"));
        }
        for k in 50u32..100 {
            assert!(c.get(&k.to_ne_bytes()).is_some());
        }
        assert_eq!(c.slot_capacity(), 150);
        c.end_scrape();
        for k in 100u32..150 {
            let row = put_u32(&mut c, k, format!("c{k}")).expect("row");
            assert!(row.slot < 150, "a swept slot is reused: {}", row.slot);
        }
        assert_eq!(c.slot_capacity(), 150);
        for k in 0u32..50 {
            let row = c.get(&k.to_ne_bytes()).expect("cached").expect("row");
            assert_eq!(c.slot_text(row.slot), format!("b{k}"));
        }
    }

    /// Gets every key of `order`, as a scrape reads them, and ends the
    /// scrape; how many were found by hash rather than by guess.
    fn scrape_lookups(c: &mut KeyCache, order: &[u32]) -> usize {
        let before = c.lookups;
        for &k in order {
            let row = c.get(&k.to_ne_bytes()).expect("cached").expect("row");
            assert_eq!(c.slot_text(row.slot), k.to_string());
        }
        c.end_scrape();
        c.lookups - before
    }

    #[test]
    fn keys_read_in_the_order_they_were_made_are_found_by_guess() {
        let mut c = KeyCache::new(3);
        for k in 0u32..1000 {
            put_u32(&mut c, k, k.to_string());
        }
        c.end_scrape();
        let mut order: Vec<u32> = (0..1000).collect();
        assert_eq!(scrape_lookups(&mut c, &order), 0);
        // A key new at the front is looked up (and missed) once; every
        // key after it is still guessed.
        let before = c.lookups;
        put_u32(&mut c, 5000, "5000".into());
        assert_eq!(c.lookups - before, 1);
        for k in &order {
            assert!(c.get(&k.to_ne_bytes()).is_some());
        }
        c.end_scrape();
        assert_eq!(c.lookups - before, 1);
        order.insert(0, 5000);
        // Deleted from the middle: the key after the gap is looked up,
        // and so is the first, made last.
        order.retain(|&k| k != 500);
        assert_eq!(scrape_lookups(&mut c, &order), 2);
    }

    #[test]
    fn a_map_that_grew_under_the_cache_is_followed_in_two_runs() {
        let mut c = KeyCache::new(3);
        for k in 0u32..100 {
            put_u32(&mut c, k, k.to_string());
        }
        c.end_scrape();
        // The map grows tenfold; its older keys are now read each after
        // nine new ones (a hash map's order is by bucket).
        let order: Vec<u32> = (0u32..100)
            .flat_map(|old| (100 + 9 * old..109 + 9 * old).chain([old]))
            .collect();
        for &k in &order {
            if c.get(&k.to_ne_bytes()).is_none() {
                put_u32(&mut c, k, k.to_string());
            }
        }
        c.end_scrape();
        assert_eq!(c.len(), 1000);
        // Only the first key, which is not entry 0, is looked up.
        assert_eq!(scrape_lookups(&mut c, &order), 1);
        assert_eq!(scrape_lookups(&mut c, &order), 1);
    }

    #[test]
    fn histogram_positions_are_kept_only_once_one_is_set() {
        let mut c = KeyCache::new(3);
        c.put(b"k0", Some(("x".into(), 0)), false);
        assert!(c.extras.is_empty());
        c.put(b"k1", Some(("x".into(), 7)), false);
        c.put(b"k2", Some(("y".into(), 0)), false);
        assert_eq!(c.extras.len(), 3);
        let at = |c: &mut KeyCache, k: &[u8]| c.get(k).expect("cached").expect("row").extra;
        assert_eq!(
            (at(&mut c, b"k0"), at(&mut c, b"k1"), at(&mut c, b"k2")),
            (0, 7, 0)
        );
    }

    #[test]
    fn long_lived_rows_are_decoded_again_eventually() {
        let mut c = KeyCache::new(1000);
        c.put(b"k", Some(("eth0".into(), 0)), false);
        for _ in 0..REDECODE_AFTER {
            assert!(c.get(b"k").is_some());
            c.end_scrape();
        }
        assert_eq!(
            c.get(b"k"),
            None,
            "re-decoded after {REDECODE_AFTER} scrapes"
        );
    }

    #[test]
    fn rows_of_pure_decoders_are_never_decoded_again_but_stand_ins_still_heal() {
        let mut c = KeyCache::new(1000).pure(true);
        c.put(b"k", Some(("42".into(), 0)), false);
        c.put(b"u", Some(("unknown".into(), 0)), true);
        c.end_scrape();
        for _ in 0..4 * REDECODE_AFTER {
            assert!(c.get(b"k").is_some(), "kept as decoded");
            assert_eq!(c.get(b"u"), None, "a stand-in is tried again");
            c.put(b"u", Some(("unknown".into(), 0)), true);
            c.end_scrape();
        }
    }

    #[test]
    fn keys_seen_together_are_re_decoded_spread_out() {
        let mut c = KeyCache::new(1000);
        let n = 600u32;
        for k in 0..n {
            put_u32(&mut c, k, format!("k{k}"));
        }
        c.end_scrape();
        let mut redecoded = vec![0u32; n as usize];
        let mut most_in_one_scrape = 0;
        for _ in 0..2 * REDECODE_AFTER {
            let mut this_scrape = 0;
            for k in 0..n {
                if c.get(&k.to_ne_bytes()).is_none() {
                    put_u32(&mut c, k, format!("k{k}"));
                    redecoded[k as usize] += 1;
                    this_scrape += 1;
                }
            }
            most_in_one_scrape = most_in_one_scrape.max(this_scrape);
            c.end_scrape();
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
                    Some((format!("key=\"{}\"", round * 1000 + k), 0)),
                    false,
                );
            }
            c.end_scrape();
        }
        assert!(c.len() <= 2000, "idle keys forgotten: {}", c.len());
        assert!(
            c.interner.texts.arena.len() < 200_000,
            "arena bounded: {}",
            c.interner.texts.arena.len()
        );
        let live = c
            .get(&49_999u64.to_ne_bytes())
            .expect("cached")
            .expect("row");
        assert_eq!(c.slot_text(live.slot), "key=\"49999\"");
    }

    #[test]
    fn dropped_rows_are_remembered() {
        let mut c = KeyCache::new(2);
        c.put(b"k", None, false);
        assert_eq!(c.get(b"k"), Some(None));
    }
}
