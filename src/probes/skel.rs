//! The typed skeleton libbpf-cargo generates for `bpf/probe/probe.bpf.c`.
//! The exporter uses its types, not its loader: each probe's spec is built
//! as the program's own `struct ee_probe_spec`, and the object is loaded
//! through the path every config's object takes.

#![allow(clippy::all, clippy::pedantic, unreachable_pub, missing_docs)]

include!(concat!(env!("OUT_DIR"), "/probe.skel.rs"));

pub use self::types::{ee_probe_field, ee_probe_filter, ee_probe_spec};

/// A spec's bytes, as the program's `.rodata` holds it.
pub fn spec_bytes(spec: &ee_probe_spec) -> Vec<u8> {
    let size = std::mem::size_of::<ee_probe_spec>();
    // SAFETY: ee_probe_spec is a #[repr(C)] struct of integers generated
    // from the program's BTF, whose C declaration spells out every padding
    // member (`pad`), so all `size` bytes behind the reference are
    // initialised; they are only read, while `spec` is borrowed.
    unsafe { std::slice::from_raw_parts((spec as *const ee_probe_spec).cast::<u8>(), size) }
        .to_vec()
}
