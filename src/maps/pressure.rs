//! Reads the per-map insert failures the shared BPF helpers count (in the
//! `ee_update_failures` map of every object built with them), so that a
//! full map is visible instead of silently dropping updates.

use libbpf_rs::{MapCore, MapHandle};

use super::MapReader;

/// The name the helpers in `bpf/include/exporter.bpf.h` give the map.
pub const FAILURES_MAP: &str = "ee_update_failures";

pub struct UpdateFailures {
    reader: MapReader,
    /// Map id → map name, for the maps a config exports.
    maps: Vec<(u32, String)>,
    totals: Vec<u64>,
}

impl UpdateFailures {
    /// `failures` is the object's failure map; `maps` the metric maps, whose
    /// ids the helpers key their counts by.
    pub fn new(failures: MapHandle, maps: Vec<(String, MapHandle)>) -> Self {
        let maps: Vec<(u32, String)> = maps
            .into_iter()
            .filter_map(|(name, h)| Some((h.info().ok()?.info.id, name)))
            .collect();
        let totals = vec![0; maps.len()];
        Self {
            reader: MapReader::new(failures, FAILURES_MAP),
            maps,
            totals,
        }
    }

    /// Failed inserts so far, per metric map (every map listed, 0 included).
    pub fn read(&mut self) -> impl Iterator<Item = (&str, u64)> {
        self.totals.iter_mut().for_each(|t| *t = 0);
        if self.reader.read().is_ok() {
            let stride = self.reader.cpu_stride();
            for (key, value) in self.reader.entries() {
                let Some(id) = key
                    .get(..4)
                    .map(|k| u32::from_ne_bytes([k[0], k[1], k[2], k[3]]))
                else {
                    continue;
                };
                let Some(i) = self.maps.iter().position(|(m, _)| *m == id) else {
                    continue;
                };
                let sum: u64 = value
                    .chunks_exact(stride.max(1))
                    .map(|c| {
                        let mut b = [0u8; 8];
                        let n = c.len().min(8);
                        b[..n].copy_from_slice(&c[..n]);
                        u64::from_ne_bytes(b)
                    })
                    .fold(0, u64::wrapping_add);
                self.totals[i] = self.totals[i].wrapping_add(sum);
            }
        }
        self.maps
            .iter()
            .zip(&self.totals)
            .map(|((_, name), total)| (name.as_str(), *total))
    }
}
