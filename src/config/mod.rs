//! Configs: reading YAML files (from a directory or built in), checking them
//! on their own, and reporting problems by file, line and key.

pub mod duration;
pub mod error;
pub mod load;
pub mod locate;
pub mod model;
pub mod specs;
pub mod validate;
pub mod watch;
pub mod yaml;

pub use duration::parse_duration;
pub use error::ConfigError;
pub use load::{
    load_dir, load_embedded, load_named, parse_config, shipped_alternatives, Config, ConfigSource,
};
pub use specs::{MetricSpec, SpecKind};
