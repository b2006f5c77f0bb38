//! Reads the per-map insert failures the shared BPF helpers count (in the
//! `ee_update_failures` map of every object built with them), so that a
//! full map is visible instead of silently dropping updates; and, for
//! state maps that evict instead of failing (an LRU), how full they are.

use libbpf_rs::{MapCore, MapHandle};

use super::MapReader;

/// The name the helpers in `bpf/include/exporter.bpf.h` give the map.
pub const FAILURES_MAP: &str = "ee_update_failures";

pub struct UpdateFailures {
    reader: MapReader,
    /// Map id → map name, and whether a metric reads it (shown at 0 from
    /// the start; the program's own state maps show once they fail).
    maps: Vec<(u32, String, bool)>,
    totals: Vec<u64>,
}

impl UpdateFailures {
    /// `failures` is the object's failure map; `maps` the object's maps
    /// (whose ids the helpers key their counts by), each with whether a
    /// metric reads it.
    pub fn new(failures: MapHandle, maps: Vec<(String, MapHandle, bool)>) -> Self {
        let maps: Vec<(u32, String, bool)> = maps
            .into_iter()
            .filter_map(|(name, h, metric)| Some((h.info().ok()?.info.id, name, metric)))
            .collect();
        let totals = vec![0; maps.len()];
        Self {
            reader: MapReader::new(failures, FAILURES_MAP),
            maps,
            totals,
        }
    }

    /// Every map failures can be reported for.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.maps.iter().map(|(_, name, _)| name.as_str())
    }

    /// Failed inserts so far: every metric map, 0 included, and any other
    /// map that has refused one.
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
                let Some(i) = self.maps.iter().position(|(m, _, _)| *m == id) else {
                    continue;
                };
                let sum: u64 = value
                    .chunks_exact(stride.max(1))
                    .map(|c| super::read::read_uint(c, 0, 8))
                    .fold(0, u64::wrapping_add);
                self.totals[i] = self.totals[i].wrapping_add(sum);
            }
        }
        self.maps
            .iter()
            .zip(&self.totals)
            .filter(|((_, _, metric), total)| *metric || **total > 0)
            .map(|((_, name, _), total)| (name.as_str(), *total))
    }
}

/// State maps that make room by evicting (LRU hashes), whose inserts never
/// fail: how many entries each holds against its capacity is all that
/// shows them under pressure. Their keys are counted at each scrape, so
/// only maps whose size is bounded by the config belong here.
pub struct Occupancy {
    maps: Vec<(String, MapHandle, u32)>,
}

impl Occupancy {
    pub fn new(maps: Vec<(String, MapHandle)>) -> Self {
        let maps = maps
            .into_iter()
            .filter_map(|(name, h)| {
                let max = h.info().ok()?.info.max_entries;
                Some((name, h, max))
            })
            .collect();
        Self { maps }
    }

    /// Each map's entries now, and its capacity.
    pub fn read(&self) -> impl Iterator<Item = (&str, usize, u32)> {
        self.maps
            .iter()
            .map(|(name, h, max)| (name.as_str(), h.keys().count(), *max))
    }
}
