//! HTTP: serves scrapes, a landing page and a health check.

pub mod coalesce;
pub mod landing;
pub mod negotiate;
pub mod server;

pub use server::{serve, ServerOptions};
