//! Exposition formats. Metric families stream straight into one output
//! buffer, with no per-sample objects: at 100k series the `prometheus`
//! crate's protobuf model costs more than reading the maps. That crate still
//! renders the exporter's own metrics.

pub mod chunks;
pub mod float;
pub mod text;

pub use chunks::ChunkPool;
pub use text::{Format, Spill, TextWriter};
