//! Histogram bucket math: which map key holds which bucket, and each
//! bucket's upper bound (`le`), per the reference format's bucket types.

use crate::config::model::{BucketType, Histogram};

#[derive(Debug, Clone)]
pub struct BucketLayout {
    /// Bucket indexes as stored in the map, in increasing order.
    keys: Vec<u64>,
    /// Upper bound of each bucket, same order.
    pub bounds: Vec<f64>,
    /// The index whose value is the raw sum.
    pub sum_key: u64,
    pub multiplier: f64,
    /// For exp2/linear: keys are min..=max, so position is `idx - min`.
    contiguous_min: Option<u64>,
}

impl BucketLayout {
    pub fn new(h: &Histogram) -> Self {
        let m = h.multiplier();
        let keys: Vec<u64> = h.bucket_indexes().collect();
        let contiguous_min = (h.bucket_type != BucketType::Fixed).then_some(h.bucket_min);
        let bounds = keys.iter().map(|&i| h.bound(i)).collect();
        // Validation keeps the last index below u64::MAX.
        let sum_key = keys.last().map_or(0, |k| k.saturating_add(1));
        Self {
            keys,
            bounds,
            sum_key,
            multiplier: m,
            contiguous_min,
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Position of map bucket index `idx` among the buckets; `None` for
    /// indexes outside the configured range, which the reference ignores.
    pub fn position(&self, idx: u64) -> Option<usize> {
        match self.contiguous_min {
            Some(min) => {
                let pos = idx.checked_sub(min)? as usize;
                (pos < self.keys.len()).then_some(pos)
            }
            None => self.keys.binary_search(&idx).ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(bucket_type: &str, min: u64, max: u64, keys: &[u64], mult: Option<f64>) -> Histogram {
        let yaml = format!(
            "name: h\nhelp: h\nbucket_type: {bucket_type}\nbucket_min: {min}\nbucket_max: {max}\nbucket_keys: {keys:?}\n{}labels: []",
            mult.map(|m| format!("bucket_multiplier: {m}\n")).unwrap_or_default()
        );
        serde_yaml::from_str(&yaml).expect("histogram parses")
    }

    #[test]
    fn exp2_bounds_are_powers_of_two_times_multiplier() {
        let l = BucketLayout::new(&hist("exp2", 0, 3, &[], Some(0.000001)));
        assert_eq!(l.bounds, vec![1e-6, 2e-6, 4e-6, 8e-6]);
        assert_eq!(l.sum_key, 4);
        assert_eq!(l.position(0), Some(0));
        assert_eq!(l.position(3), Some(3));
        assert_eq!(l.position(4), None, "the sum key is not a bucket");
    }

    #[test]
    fn exp2zero_starts_with_a_zero_bucket() {
        let l = BucketLayout::new(&hist("exp2zero", 0, 3, &[], None));
        assert_eq!(l.bounds, vec![0.0, 1.0, 2.0, 4.0]);
    }

    /// libbpf-tools' slot i holds [2^i, 2^(i+1)): a 12 KiB request is in
    /// slot 3 (log2l(12) = 3), whose bound is 16 KiB.
    #[test]
    fn exp2floor_bounds_are_the_next_power_of_two() {
        let l = BucketLayout::new(&hist("exp2floor", 0, 4, &[], None));
        assert_eq!(l.bounds, vec![2.0, 4.0, 8.0, 16.0, 32.0]);
        assert_eq!(l.position(3), Some(3));
    }

    #[test]
    fn linear_with_min_above_zero() {
        let l = BucketLayout::new(&hist("linear", 2, 5, &[], Some(10.0)));
        assert_eq!(l.bounds, vec![20.0, 30.0, 40.0, 50.0]);
        assert_eq!(l.position(1), None, "below bucket_min is ignored");
        assert_eq!(l.position(2), Some(0));
        assert_eq!(l.sum_key, 6);
    }

    #[test]
    fn fixed_uses_listed_keys() {
        let l = BucketLayout::new(&hist("fixed", 0, 0, &[1, 10, 100], Some(0.001)));
        assert_eq!(l.bounds, vec![0.001, 0.01, 0.1]);
        assert_eq!(l.position(10), Some(1));
        assert_eq!(l.position(11), None);
        assert_eq!(l.sum_key, 101);
    }

    #[test]
    fn zero_multiplier_means_one() {
        let l = BucketLayout::new(&hist("linear", 0, 2, &[], Some(0.0)));
        assert_eq!(l.bounds, vec![0.0, 1.0, 2.0]);
    }
}
