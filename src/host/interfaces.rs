//! Network interface names by index, for the `ifname` decoder and for
//! attaching `xdp/<ifname>` programs.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::time::Duration;

use super::refresh::Refreshing;

/// An interface created after the last load resolves on its first miss
/// after this.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(1);
/// An interface can be renamed, and its index reused by another: names
/// are trusted for this long.
pub const MAX_AGE: Duration = Duration::from_secs(30);

pub struct Interfaces {
    table: Refreshing<HashMap<u32, String>>,
}

impl Default for Interfaces {
    fn default() -> Self {
        Self::with_max_age(MAX_AGE)
    }
}

impl Interfaces {
    pub fn with_max_age(max_age: Duration) -> Self {
        Self {
            table: Refreshing::new(
                "network interfaces",
                RELOAD_INTERVAL.min(max_age),
                Some(max_age),
                list,
            ),
        }
    }

    /// The name of the interface with this index.
    pub fn name(&self, index: u32) -> Option<String> {
        self.table.with(|t| t.get(&index).cloned(), Option::is_some)
    }
}

/// Every interface, in one call: `if_nameindex` reads them all at once.
fn list() -> std::io::Result<HashMap<u32, String>> {
    // SAFETY: no arguments; returns NULL (errno set) or an array we free below.
    let head = unsafe { libc::if_nameindex() };
    if head.is_null() {
        return Err(std::io::Error::last_os_error());
    }
    let mut out = HashMap::new();
    let mut cur = head;
    // SAFETY: the array ends with an entry whose index is 0 and name NULL;
    // each name is a NUL-terminated string valid until if_freenameindex.
    unsafe {
        while (*cur).if_index != 0 && !(*cur).if_name.is_null() {
            let name = CStr::from_ptr((*cur).if_name)
                .to_string_lossy()
                .into_owned();
            out.insert((*cur).if_index, name);
            cur = cur.add(1);
        }
        libc::if_freenameindex(head);
    }
    Ok(out)
}

/// The index of interface `name` right now.
pub fn index_of(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: c is a valid NUL-terminated string for the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (idx != 0).then_some(idx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_by_index_and_name() {
        let i = Interfaces::default();
        assert_eq!(i.name(1).as_deref(), Some("lo"));
        assert_eq!(i.name(0x7fff_fff0), None);
        assert_eq!(index_of("lo"), Some(1));
        assert_eq!(index_of("no-such-if0"), None);
        assert_eq!(index_of("bad\0name"), None);
    }
}
