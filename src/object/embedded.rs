//! Objects compiled from `bpf/*.bpf.c` by build.rs and carried in the binary.

include!(concat!(env!("OUT_DIR"), "/embedded_index.rs"));

/// The embedded object called `name`, if any.
pub fn find(name: &str) -> Option<&'static [u8]> {
    EMBEDDED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, bytes)| *bytes)
}

/// Names of all embedded objects, for error messages.
pub fn names() -> Vec<&'static str> {
    EMBEDDED.iter().map(|(n, _)| *n).collect()
}

/// The generic probe behind `probe:` metrics (`bpf/probe/probe.bpf.c`):
/// the exporter's own, never named by a config's `object:`.
pub const PROBE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/probe.bpf.o"));
