//! Objects compiled from `bpf/*.bpf.c` by build.rs and carried in the binary.

include!(concat!(env!("OUT_DIR"), "/embedded_index.rs"));

/// The generated libbpf-rs skeletons, for code that wants typed access to a
/// built-in program's maps (benchmarks and tests fill maps through them).
pub mod skeletons {
    include!(concat!(env!("OUT_DIR"), "/skeletons.rs"));
}

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
