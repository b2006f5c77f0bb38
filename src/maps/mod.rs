//! Reading BPF maps: whole-map snapshots into reusable buffers.

pub mod cgroup_id_map;
pub mod elem_iter;
pub mod mapped;
pub mod pressure;
pub mod read;
pub mod walk;

pub use read::{MapReader, Method, ReadError, ReadPolicy};
pub use walk::Walk;
