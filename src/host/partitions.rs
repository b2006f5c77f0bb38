//! Block device names by number, from `/proc/partitions`, for the
//! `majorminor` decoder.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use super::refresh::Refreshing;

/// A disk added after start-up must resolve, but a device that never appears
/// in /proc/partitions must not cost a file read per row per scrape.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

pub struct Partitions {
    table: Refreshing<HashMap<(u32, u32), String>>,
}

impl Default for Partitions {
    fn default() -> Self {
        Self::with_path("/proc/partitions")
    }
}

impl Partitions {
    pub fn with_path(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Self {
            table: Refreshing::new(
                format!("partitions ({})", path.display()),
                RELOAD_INTERVAL,
                None,
                move || std::fs::read_to_string(&path).map(|t| parse(&t)),
            ),
        }
    }

    /// The name of device `major:minor`.
    pub fn name(&self, major: u32, minor: u32) -> Option<String> {
        self.table
            .with(|t| t.get(&(major, minor)).cloned(), Option::is_some)
    }
}

fn parse(text: &str) -> HashMap<(u32, u32), String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn names_by_number() {
        let mut f = tempfile::NamedTempFile::new().expect("tempfile");
        writeln!(
            f,
            "major minor  #blocks  name\n\n   8        0  1000 sda\n 259  300 10 nvme0n1p1"
        )
        .expect("write");
        let p = Partitions::with_path(f.path());
        assert_eq!(p.name(8, 0).as_deref(), Some("sda"));
        assert_eq!(p.name(259, 300).as_deref(), Some("nvme0n1p1"));
        assert_eq!(p.name(7, 9), None);
    }
}
