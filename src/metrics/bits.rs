//! A set of slot numbers kept as one bit each. At a million label sets a
//! byte per slot ("seen this scrape", "held by a key") is a byte a series;
//! a bit is an eighth of that, and finding the set ones skips a word of
//! 64 clear slots at a time.

#[derive(Default)]
pub struct Bits {
    words: Vec<u64>,
    /// Bits held; every bit at or past it is clear.
    len: usize,
}

impl Bits {
    /// `len` clear bits.
    pub fn new(len: usize) -> Self {
        Self {
            words: vec![0; len.div_ceil(64)],
            len,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Drops every bit, keeping the memory for the next scrape.
    pub fn clear(&mut self) {
        self.words.clear();
        self.len = 0;
    }

    /// Holds at least `len` bits; the new ones are clear.
    pub fn grow(&mut self, len: usize) {
        if len > self.len {
            self.words.resize(len.div_ceil(64), 0);
            self.len = len;
        }
    }

    /// Sets bit `i`, growing to hold it.
    pub fn set(&mut self, i: usize) {
        self.grow(i + 1);
        self.words[i / 64] |= 1 << (i % 64);
    }

    /// Clears bit `i`; a bit past the end is clear already.
    pub fn unset(&mut self, i: usize) {
        if let Some(w) = self.words.get_mut(i / 64) {
            *w &= !(1 << (i % 64));
        }
    }

    pub fn get(&self, i: usize) -> bool {
        self.words
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    pub fn any(&self) -> bool {
        self.words.iter().any(|w| *w != 0)
    }

    /// The set bits, in increasing order.
    pub fn ones(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            let mut rest = w;
            std::iter::from_fn(move || {
                (rest != 0).then(|| {
                    let bit = rest.trailing_zeros() as usize;
                    rest &= rest - 1;
                    i * 64 + bit
                })
            })
        })
    }

    /// Heap bytes held.
    pub fn bytes(&self) -> usize {
        self.words.capacity() * std::mem::size_of::<u64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_a_vector_of_bools() {
        let mut bits = Bits::default();
        let mut model = Vec::new();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..5000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let i = (x % 700) as usize;
            if model.len() <= i {
                model.resize(i + 1, false);
            }
            if x & (1 << 40) == 0 {
                bits.set(i);
                model[i] = true;
            } else {
                bits.unset(i);
                model[i] = false;
            }
        }
        assert_eq!(bits.len(), model.len());
        let ones: Vec<usize> = (0..model.len()).filter(|&i| model[i]).collect();
        assert_eq!(bits.ones().collect::<Vec<_>>(), ones);
        assert!((0..800).all(|i| bits.get(i) == model.get(i).copied().unwrap_or(false)));
        assert_eq!(bits.any(), !ones.is_empty());
    }

    #[test]
    fn growing_after_a_clear_starts_from_clear_bits() {
        let mut bits = Bits::new(10);
        assert!(!bits.any());
        bits.set(3);
        bits.set(127);
        assert_eq!(bits.len(), 128);
        assert_eq!(bits.ones().collect::<Vec<_>>(), [3, 127]);
        bits.clear();
        assert!(bits.is_empty());
        bits.grow(200);
        assert!(!bits.any());
        assert_eq!(bits.ones().count(), 0);
        assert_eq!(bits.bytes(), bits.words.capacity() * 8);
        assert_eq!(bits.words.len(), 4);
    }
}
