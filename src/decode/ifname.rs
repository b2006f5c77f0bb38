//! `ifname`: a raw u32 interface index to the interface's name (`eth0`).

use std::collections::HashMap;
use std::ffi::CStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{read_prefix, DecodeError, Decoded, Decoder};

/// Names are cached because a lookup is a socket and an ioctl, but only for
/// this long: an interface can be renamed, and its index reused by another.
const REVALIDATE_AFTER: Duration = Duration::from_secs(30);

pub struct IfName {
    revalidate_after: Duration,
    cache: Mutex<HashMap<u32, (String, Instant)>>,
}

impl Default for IfName {
    fn default() -> Self {
        Self::with_revalidation(REVALIDATE_AFTER)
    }
}

impl IfName {
    pub fn with_revalidation(revalidate_after: Duration) -> Self {
        Self {
            revalidate_after,
            cache: Mutex::new(HashMap::new()),
        }
    }
}

/// The kernel's name for `index` right now, `None` if no interface has it.
fn index_to_name(index: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` holds IF_NAMESIZE bytes, the size if_indextoname writes
    // at most (including the NUL); it returns NULL or a pointer into `buf`.
    let ret = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if ret.is_null() {
        return None;
    }
    // SAFETY: on success `buf` holds a NUL-terminated string.
    let name = unsafe { CStr::from_ptr(buf.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

impl Decoder for IfName {
    fn decode(&self, input: &[u8]) -> Result<Decoded, DecodeError> {
        // The reference reads the first 4 bytes and ignores any more.
        let raw = read_prefix::<4>(input, "4 or more")?;
        let index = u32::from_ne_bytes(raw);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((name, at)) = cache.get(&index) {
            if at.elapsed() < self.revalidate_after {
                return Ok(Decoded::Value(name.clone().into_bytes()));
            }
        }
        Ok(match index_to_name(index) {
            Some(name) => {
                cache.insert(index, (name.clone(), Instant::now()));
                Decoded::Value(name.into_bytes())
            }
            None => {
                cache.remove(&index);
                Decoded::Unknown(format!("unknown:{index}").into_bytes())
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_missing_index() {
        let d = IfName::default();
        assert_eq!(
            d.decode(&1u32.to_ne_bytes()),
            Ok(Decoded::Value(b"lo".to_vec()))
        );
        assert_eq!(
            d.decode(&1u32.to_ne_bytes()),
            Ok(Decoded::Value(b"lo".to_vec())),
            "cached"
        );
        let absent = 0x7fff_fff0u32;
        assert_eq!(
            d.decode(&absent.to_ne_bytes()),
            Ok(Decoded::Unknown(format!("unknown:{absent}").into_bytes()))
        );
        assert_eq!(
            d.decode(&0u32.to_ne_bytes()),
            Ok(Decoded::Unknown(b"unknown:0".to_vec()))
        );
        assert!(matches!(
            d.decode(&[1, 0]),
            Err(DecodeError::Size { got: 2, .. })
        ));
    }

    #[test]
    fn stale_cache_entries_are_looked_up_again() {
        let d = IfName::with_revalidation(Duration::ZERO);
        d.cache
            .lock()
            .expect("lock")
            .insert(1, ("old-name".into(), Instant::now()));
        assert_eq!(
            d.decode(&1u32.to_ne_bytes()),
            Ok(Decoded::Value(b"lo".to_vec())),
            "a rename shows once the entry is stale"
        );
    }
}
