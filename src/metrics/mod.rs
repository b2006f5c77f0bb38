//! Metrics: binds each configured metric to its map, and on every scrape
//! turns the map's entries into counter, gauge and histogram samples
//! written into a [`sink::Sink`]. Metric state (the key cache with its
//! rendered label sets and bucket positions, event counts) lives here.

pub mod bind;
pub mod bits;
pub mod buckets;
pub mod cache;
pub mod collect;
pub mod collector;
pub mod entries;
pub mod events;
pub mod index;
pub mod layout;
pub mod sink;

pub use bind::{bind_collectors, PREFIX};
pub use collect::MetricCollector;
pub use collector::{Collected, Collector, MapStats, MetricId};
pub use sink::{Kind, Sink};
