//! ebpf-exporter: turns eBPF map contents into Prometheus metrics.
//!
//! The data path, one module each: [`config`] (YAML) → [`object`] (load and
//! attach BPF) → [`maps`] (read map contents) → [`decode`] (key bytes to
//! labels) → [`encode`] (exposition formats) → [`http`] (serving).

pub mod cli;
pub mod config;
pub mod decode;
pub mod encode;
pub mod exporter;
pub mod host;
pub mod http;
pub mod maps;
pub mod metrics;
pub mod object;
