//! Metrics from hooks and fields in YAML (`probe:`), with no object of
//! their own: each probe metric takes a slot of the exporter's generic
//! probe program (`bpf/probe/probe.bpf.c`), whose spec (fields, filters,
//! value) is written into its read-only data before load. The verifier
//! reads that as constants, so each slot runs only what its spec asks.
//!
//! `plan` turns a config's probes into what the common load path takes:
//! the specs, as the skeleton's typed structs; where each slot's program
//! attaches; each slot map's key size; and the config's metrics rewritten
//! to read those maps, their labels laid out over the key. Everything after
//! that (load, attach, health, reload, scrapes) is what any object gets.

pub mod fields;
pub mod kernel_btf;
pub mod plan;
pub mod skel;

pub use plan::{plan, Planned};
