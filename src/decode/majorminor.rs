//! `majorminor`: a u32 device number in the kernel's `new_encode_dev` layout
//! to the disk name from `/proc/partitions` (`sda`, `nvme0n1`, `loop3`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{read_prefix, DecodeError, Decoded, Decoder};

/// A disk added after start-up must resolve, but a device that never appears
/// in /proc/partitions must not cost a file read per row per scrape.
const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

pub struct MajorMinor {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    names: HashMap<(u32, u32), String>,
    loaded_at: Option<Instant>,
}

impl MajorMinor {
    pub fn new() -> Self {
        Self::with_path("/proc/partitions")
    }

    pub fn with_path(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            state: Mutex::new(State::default()),
        }
    }

    fn reload(&self, state: &mut State) {
        state.loaded_at = Some(Instant::now());
        match std::fs::read_to_string(&self.path) {
            Ok(text) => state.names = parse_partitions(&text),
            Err(e) => log::warn!("majorminor: reading {}: {e}", self.path.display()),
        }
    }
}

impl Default for MajorMinor {
    fn default() -> Self {
        Self::new()
    }
}

/// Splits a `new_encode_dev` value: minor's low 8 bits sit at 0..8, major at
/// 8..20, minor's high bits from 20 up (glibc's `gnu_dev_major/minor`).
pub fn split_dev(dev: u32) -> (u32, u32) {
    let major = (dev >> 8) & 0xfff;
    let minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
    (major, minor)
}

fn parse_partitions(text: &str) -> HashMap<(u32, u32), String> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() != 4 {
                return None;
            }
            Some(((f[0].parse().ok()?, f[1].parse().ok()?), f[3].to_string()))
        })
        .collect()
}

impl Decoder for MajorMinor {
    fn decode(&self, input: &[u8]) -> Result<Decoded, DecodeError> {
        let raw = read_prefix::<4>(input, "4 or more")?;
        let (major, minor) = split_dev(u32::from_ne_bytes(raw));
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let stale = state
            .loaded_at
            .is_none_or(|t| t.elapsed() >= RELOAD_INTERVAL);
        if !state.names.contains_key(&(major, minor)) && stale {
            self.reload(&mut state);
        }
        Ok(match state.names.get(&(major, minor)) {
            Some(name) => Decoded::Value(name.clone().into_bytes()),
            None => Decoded::Unknown(format!("unknown:{major}:{minor}").into_bytes()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn encode(major: u32, minor: u32) -> [u8; 4] {
        ((minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)).to_ne_bytes()
    }

    #[test]
    fn splits_new_encode_dev_layout() {
        assert_eq!(split_dev(u32::from_ne_bytes(encode(8, 0))), (8, 0));
        assert_eq!(split_dev(u32::from_ne_bytes(encode(259, 300))), (259, 300));
        assert_eq!(split_dev(u32::from_ne_bytes(encode(7, 3))), (7, 3));
    }

    #[test]
    fn names_from_partitions_and_heals_after_reload() {
        let mut f = tempfile::NamedTempFile::new().expect("tempfile");
        writeln!(
            f,
            "major minor  #blocks  name\n\n   8        0  1000 sda\n 259  300 10 nvme0n1p1"
        )
        .expect("write");
        let d = MajorMinor::with_path(f.path());
        assert_eq!(d.decode(&encode(8, 0)), Ok(Decoded::Value(b"sda".to_vec())));
        assert_eq!(
            d.decode(&encode(259, 300)),
            Ok(Decoded::Value(b"nvme0n1p1".to_vec()))
        );
        assert_eq!(
            d.decode(&encode(7, 9)),
            Ok(Decoded::Unknown(b"unknown:7:9".to_vec()))
        );
        assert!(d.decode(&[1, 2]).is_err());
    }
}
