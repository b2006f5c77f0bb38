//! ebpf-exporter: turns eBPF map contents into Prometheus metrics.
//!
//! The data path, one module each: [`config`] (YAML) → [`object`] (load and
//! attach BPF) → [`maps`] (read map contents) → [`decode`] (key bytes to
//! labels) → [`metrics`] (samples and their state) → [`encode`] (exposition
//! formats) → [`exporter`] (start-up, scrape loop) → [`http`] (serving), with
//! [`host`] (shared kernel and system lookups) beneath them all, and
//! [`process`] (fd limit, capabilities) beside [`http`] at the top, and
//! [`describe`] (a starter config from an object's BTF) beside the exporter.
//! Above them all, [`cli`] (the flags) becomes [`settings`] (checked, in one
//! place), which [`commands`] (serve, check, describe, generated texts) run
//! with. What may depend on what, and why: `docs/architecture.md`.

pub mod cli;
pub mod commands;
pub mod config;
pub mod decode;
pub mod describe;
pub mod encode;
pub mod exporter;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzz;
pub mod host;
pub mod http;
pub mod maps;
pub mod metrics;
pub mod object;
pub mod probes;
pub mod process;
pub mod settings;
pub mod spans;
pub mod worker;
