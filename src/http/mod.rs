//! HTTP: serves scrapes, a landing page and a health check, optionally over
//! TLS and behind basic auth (`--web.config.file`).

pub mod auth;
pub mod coalesce;
pub mod connections;
pub mod landing;
pub mod listen;
pub mod negotiate;
pub mod pace;
pub mod server;
pub mod tls;
pub mod webconfig;

pub use server::{serve, ServerOptions};

/// Locks `m` even if a thread panicked while holding it. The serving path's
/// shared state (scrape flights and health, auth caches, the connection
/// table) holds no invariant a panic could break half-way, and a scrape
/// that panicked is caught and reported: the next request must still be
/// served, not fail on a poisoned lock for good.
pub(crate) fn lock<T: ?Sized>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
