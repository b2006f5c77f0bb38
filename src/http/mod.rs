//! HTTP: serves scrapes, a landing page and a health check, optionally over
//! TLS and behind basic auth (`--web.config.file`).

pub mod auth;
pub mod coalesce;
pub mod connections;
pub mod landing;
pub mod listen;
pub mod negotiate;
pub mod server;
pub mod tls;
pub mod webconfig;

pub use server::{serve, ServerOptions};
