//! Reading BPF maps: whole-map snapshots into reusable buffers.

pub mod read;

pub use read::{MapReader, ReadError};
