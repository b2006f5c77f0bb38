//! HTTP basic auth against the web config's bcrypt hashes.
//!
//! bcrypt is slow by design (about 60 ms at cost 10), and anyone who can
//! reach the port can send passwords; each wrong one would cost a bcrypt.
//! So that guesses cannot starve scrapes:
//! - each user's last verified password is remembered, and Prometheus
//!   sends the same one on every scrape, so its requests never wait for
//!   bcrypt after the first;
//! - a password that just failed is remembered too (as a keyed hash), so
//!   repeating it costs nothing;
//! - bcrypt runs on blocking threads, at most `CONCURRENT_CHECKS` at once,
//!   with at most `MAX_WAITING` requests queued for them; beyond that the
//!   answer is 429 at once, instead of a queue that grows with the flood.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Response, StatusCode};
use tokio::sync::Semaphore;

use super::lock;

/// bcrypt checks running at once (one per core here).
const CONCURRENT_CHECKS: usize = 2;
/// Requests waiting for a check; more are told to retry.
const MAX_WAITING: usize = 8;
/// Failed credentials remembered; the set starts over when full.
const MAX_FAILED: usize = 4096;

pub struct BasicAuth {
    /// Replaced when the web config file changes (`set_users`).
    users: std::sync::RwLock<BTreeMap<String, String>>,
    /// User to the password that last verified, compared in constant time.
    verified: Mutex<HashMap<String, Vec<u8>>>,
    /// Keyed hashes of (user, password) pairs that failed. The key is
    /// random per process, so nobody can aim a good password at a
    /// remembered failure.
    failed: Mutex<HashSet<u64>>,
    hasher: ahash::RandomState,
    checks: Semaphore,
    waiting: AtomicUsize,
}

/// The outcome of checking a request's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    Allowed,
    Denied,
    /// Too many checks already queued: retry later (429).
    Busy,
}

impl BasicAuth {
    /// `None` when no users are configured: auth is then off.
    pub fn new(users: &BTreeMap<String, String>) -> Option<Arc<BasicAuth>> {
        if users.is_empty() {
            return None;
        }
        Some(Arc::new(BasicAuth {
            users: std::sync::RwLock::new(users.clone()),
            verified: Mutex::new(HashMap::new()),
            failed: Mutex::new(HashSet::new()),
            hasher: ahash::RandomState::new(),
            checks: Semaphore::new(CONCURRENT_CHECKS),
            waiting: AtomicUsize::new(0),
        }))
    }

    /// Replaces the users (the web config file changed). Remembered
    /// verdicts go with the old users.
    pub fn set_users(&self, users: &BTreeMap<String, String>) {
        let mut current = self.users.write().unwrap_or_else(|p| p.into_inner());
        if *current == *users {
            return;
        }
        *current = users.clone();
        drop(current);
        lock(&self.verified).clear();
        lock(&self.failed).clear();
    }

    fn hash_of(&self, user: &str) -> Option<String> {
        self.users
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(user)
            .cloned()
    }

    /// Whether the `Authorization` header holds a configured user's password.
    pub async fn check(self: &Arc<Self>, authorization: Option<&HeaderValue>) -> Verdict {
        let Some((user, password)) = authorization
            .and_then(|v| v.to_str().ok())
            .and_then(parse_basic)
        else {
            return Verdict::Denied;
        };
        let own = self.hash_of(&user);
        let known = own.is_some();
        if known
            && lock(&self.verified)
                .get(&user)
                .is_some_and(|p| constant_time_eq(p, &password))
        {
            return Verdict::Allowed;
        }
        let tag = self.hasher.hash_one((&user, &password));
        if lock(&self.failed).contains(&tag) {
            return Verdict::Denied;
        }
        // An unknown user still costs one bcrypt, against some configured
        // hash, so response times do not reveal which usernames exist.
        let any = || {
            self.users
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .values()
                .next()
                .cloned()
        };
        let Some(hash) = own.or_else(any) else {
            return Verdict::Denied;
        };
        let Some(_permit) = self.permit().await else {
            return Verdict::Busy;
        };
        let pw = password.clone();
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(&pw, &hash).unwrap_or(false))
            .await
            .unwrap_or(false)
            && known;
        if ok {
            lock(&self.verified).insert(user, password);
            Verdict::Allowed
        } else {
            let mut failed = lock(&self.failed);
            if failed.len() >= MAX_FAILED {
                failed.clear();
            }
            failed.insert(tag);
            Verdict::Denied
        }
    }

    async fn permit(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        if let Ok(p) = self.checks.try_acquire() {
            return Some(p);
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let permit = self.checks.acquire().await.ok();
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        permit
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

/// The `Authorization` value a client sends for `user` and `password`:
/// for tools and tests that talk to a protected exporter.
pub fn basic_header(user: &str, password: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = format!("{user}:{password}").into_bytes();
    let mut out = String::from("Basic ");
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
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
        assert_eq!(basic_header("alice", "s3cr3t"), "Basic YWxpY2U6czNjcjN0");
        assert_eq!(basic_header("a", "b:c"), "Basic YTpiOmM=");
        assert_eq!(basic_header("a", ""), "Basic YTo=");
    }

    fn header(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).expect("header")
    }

    #[tokio::test]
    async fn checks_passwords_and_remembers_good_and_failed_ones() {
        let hash = bcrypt::hash("pw", 4).expect("hash");
        let users = BTreeMap::from([("alice".to_string(), hash)]);
        let auth = BasicAuth::new(&users).expect("auth on");
        // alice:pw, alice:nope, bob:pw
        let good = header("Basic YWxpY2U6cHc=");
        assert_eq!(auth.check(Some(&good)).await, Verdict::Allowed);
        assert!(lock(&auth.verified).contains_key("alice"));
        assert_eq!(auth.check(Some(&good)).await, Verdict::Allowed);
        let wrong = header("Basic YWxpY2U6bm9wZQ==");
        assert_eq!(auth.check(Some(&wrong)).await, Verdict::Denied);
        assert_eq!(lock(&auth.failed).len(), 1);
        assert_eq!(auth.check(Some(&wrong)).await, Verdict::Denied);
        assert_eq!(
            lock(&auth.failed).len(),
            1,
            "a repeat is answered from memory"
        );
        assert_eq!(
            auth.check(Some(&header("Basic Ym9iOnB3"))).await,
            Verdict::Denied
        );
        assert_eq!(auth.check(None).await, Verdict::Denied);
        assert!(BasicAuth::new(&BTreeMap::new()).is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_of_new_guesses_is_shed_and_known_logins_pass() {
        let hash = bcrypt::hash("pw", 8).expect("hash");
        let users = BTreeMap::from([("alice".to_string(), hash)]);
        let auth = BasicAuth::new(&users).expect("auth on");
        let good = header("Basic YWxpY2U6cHc=");
        assert_eq!(auth.check(Some(&good)).await, Verdict::Allowed);
        let guesses: Vec<_> = (0..100)
            .map(|i| {
                let auth = auth.clone();
                let h = header(&basic_header("alice", &format!("guess{i}")));
                tokio::spawn(async move { auth.check(Some(&h)).await })
            })
            .collect();
        // While the guesses are queued or shed, the known login is instant.
        let t = std::time::Instant::now();
        assert_eq!(auth.check(Some(&good)).await, Verdict::Allowed);
        assert!(
            t.elapsed() < std::time::Duration::from_millis(50),
            "{:?}",
            t.elapsed()
        );
        let mut verdicts = HashMap::new();
        for g in guesses {
            *verdicts.entry(g.await.expect("task")).or_insert(0) += 1;
        }
        let checked = verdicts.get(&Verdict::Denied).copied().unwrap_or(0);
        assert!(
            checked <= CONCURRENT_CHECKS + MAX_WAITING + 2,
            "{verdicts:?}"
        );
        assert_eq!(
            checked + verdicts.get(&Verdict::Busy).copied().unwrap_or(0),
            100
        );
        assert_eq!(verdicts.get(&Verdict::Allowed), None);
    }
}
