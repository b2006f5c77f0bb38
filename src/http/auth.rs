//! HTTP basic auth against the web config's bcrypt hashes.
//!
//! bcrypt is slow by design (tens of milliseconds at the usual cost), and
//! Prometheus sends the same credentials on every scrape; so each user's last
//! verified password is remembered, and bcrypt runs only for new ones, off the
//! async workers and a few at a time so failed guesses cannot starve scrapes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Response, StatusCode};
use tokio::sync::Semaphore;

/// bcrypt checks running at once; the rest queue.
const CONCURRENT_CHECKS: usize = 2;

pub struct BasicAuth {
    users: BTreeMap<String, String>,
    /// User to the password that last verified, compared in constant time.
    verified: Mutex<HashMap<String, Vec<u8>>>,
    checks: Semaphore,
}

impl BasicAuth {
    /// `None` when no users are configured: auth is then off.
    pub fn new(users: &BTreeMap<String, String>) -> Option<Arc<BasicAuth>> {
        if users.is_empty() {
            return None;
        }
        Some(Arc::new(BasicAuth {
            users: users.clone(),
            verified: Mutex::new(HashMap::new()),
            checks: Semaphore::new(CONCURRENT_CHECKS),
        }))
    }

    /// True if the `Authorization` header holds a configured user's password.
    pub async fn allows(self: &Arc<Self>, authorization: Option<&HeaderValue>) -> bool {
        let Some((user, password)) = authorization
            .and_then(|v| v.to_str().ok())
            .and_then(parse_basic)
        else {
            return false;
        };
        let known = self.users.contains_key(&user);
        if known {
            let verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            if verified
                .get(&user)
                .is_some_and(|p| constant_time_eq(p, &password))
            {
                return true;
            }
        }
        // An unknown user still costs one bcrypt, against some configured
        // hash, so response times do not reveal which usernames exist.
        let hash = match self.users.get(&user) {
            Some(h) => h.clone(),
            None => match self.users.values().next() {
                Some(h) => h.clone(),
                None => return false,
            },
        };
        let Ok(_permit) = self.checks.acquire().await else {
            return false;
        };
        let pw = password.clone();
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(&pw, &hash).unwrap_or(false))
            .await
            .unwrap_or(false);
        if ok && known {
            self.verified
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(user, password);
        }
        ok && known
    }
}

/// The 401 that makes browsers and curl ask for credentials.
pub fn unauthorized() -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(b"Unauthorized\n")));
    *r.status_mut() = StatusCode::UNAUTHORIZED;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"ebpf-exporter\""),
    );
    r
}

/// `Basic dXNlcjpwYXNz` to (user, password bytes).
fn parse_basic(header: &str) -> Option<(String, Vec<u8>)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64_decode(encoded.trim())?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

/// Standard base64 with padding, as RFC 7617 prescribes.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let bytes = s.as_bytes();
    if bytes.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (i, chunk) in bytes.chunks(4).enumerate() {
        let last = i == bytes.len() / 4 - 1;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * pad as u32;
        let got = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&got[..3 - pad]);
    }
    Some(out)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_basic_credentials() {
        assert_eq!(
            parse_basic("Basic YWxpY2U6czNjcjN0"),
            Some(("alice".into(), b"s3cr3t".to_vec()))
        );
        // The password may contain ':'; the user may not.
        assert_eq!(
            parse_basic("basic YTpiOmM="),
            Some(("a".into(), b"b:c".to_vec()))
        );
        assert_eq!(parse_basic("Basic YTo="), Some(("a".into(), vec![])));
        assert_eq!(parse_basic("Bearer YTpi"), None);
        assert_eq!(parse_basic("Basic YWJj"), None, "no colon");
        assert_eq!(parse_basic("Basic YT=6"), None, "padding inside");
        assert_eq!(parse_basic("Basic !!!!"), None);
        assert_eq!(parse_basic("Basic"), None);
    }

    #[tokio::test]
    async fn checks_passwords_and_remembers_good_ones() {
        let hash = bcrypt::hash("pw", 4).expect("hash");
        let users = BTreeMap::from([("alice".to_string(), hash)]);
        let auth = BasicAuth::new(&users).expect("auth on");
        let header = |s: &str| HeaderValue::from_str(s).expect("header");
        // alice:pw, alice:nope, bob:pw
        assert!(auth.allows(Some(&header("Basic YWxpY2U6cHc="))).await);
        assert!(auth.verified.lock().expect("lock").contains_key("alice"));
        assert!(auth.allows(Some(&header("Basic YWxpY2U6cHc="))).await);
        assert!(!auth.allows(Some(&header("Basic YWxpY2U6bm9wZQ=="))).await);
        assert!(!auth.allows(Some(&header("Basic Ym9iOnB3"))).await);
        assert!(!auth.allows(None).await);
        assert!(BasicAuth::new(&BTreeMap::new()).is_none());
    }
}
