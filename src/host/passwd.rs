//! User names by uid, from `/etc/passwd`, for the `uid` decoder.
//!
//! A user added after start-up must resolve, so a miss reloads the file,
//! but at most once a second; renames show within a minute. The file is an
//! operator's, so it is read as any operator-named file is (a regular file,
//! size-capped), and lines that do not parse are skipped.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use super::files;
use super::refresh::Refreshing;

/// Larger passwd files exist only with thousands of local users; the cap
/// keeps a bad path (a device, a huge file) from costing memory.
const MAX_BYTES: u64 = 16 << 20;

pub struct Passwd {
    table: Refreshing<HashMap<u32, String>>,
}

impl Default for Passwd {
    fn default() -> Self {
        Self::with_path("/etc/passwd")
    }
}

impl Passwd {
    pub fn with_path(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Self {
            table: Refreshing::new(
                format!("users ({})", path.display()),
                Duration::from_secs(1),
                Some(Duration::from_secs(60)),
                move || {
                    files::read_regular(&path, MAX_BYTES)
                        .map(|bytes| parse(&String::from_utf8_lossy(&bytes)))
                        .map_err(|e| std::io::Error::other(e.to_string()))
                },
            ),
        }
    }

    /// The name of user `uid`.
    pub fn name(&self, uid: u32) -> Option<String> {
        self.table.with(|t| t.get(&uid).cloned(), Option::is_some)
    }
}

/// `name:password:uid:gid:gecos:home:shell` lines; the first name of a uid
/// wins, as getpwuid(3) answers.
fn parse(text: &str) -> HashMap<u32, String> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let mut fields = line.split(':');
        let (Some(name), Some(_), Some(uid)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        let Ok(uid) = uid.parse() else {
            continue;
        };
        if !name.is_empty() && !name.starts_with('#') {
            out.entry(uid).or_insert_with(|| name.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn names_by_uid_first_wins_and_bad_lines_are_skipped() {
        let mut f = tempfile::NamedTempFile::new().expect("tempfile");
        writeln!(
            f,
            "root:x:0:0:root:/root:/bin/bash\nbroken\n#comment:x:5:5\nnobody:x:65534:65534::/:/bin/false\ntoor:x:0:0::/:/bin/sh\nbad:x:notanumber:1"
        )
        .expect("write");
        let p = Passwd::with_path(f.path());
        assert_eq!(p.name(0).as_deref(), Some("root"));
        assert_eq!(p.name(65534).as_deref(), Some("nobody"));
        assert_eq!(p.name(5), None);
        assert_eq!(p.name(1), None);
    }

    #[test]
    fn a_missing_file_names_nobody() {
        let p = Passwd::with_path("/nonexistent/passwd");
        assert_eq!(p.name(0), None);
    }
}
