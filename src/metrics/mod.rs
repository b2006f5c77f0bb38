//! Metrics: binds each configured metric to its map, and on every scrape
//! turns the map's entries into counter, gauge and histogram samples.

pub mod bind;
pub mod buckets;
pub mod collect;
pub mod events;

pub use bind::{bind_events, bind_metrics};
pub use collect::{Collected, MetricCollector};
