#![no_main]
//! See `ebpf_exporter::fuzz::encoders`; `tests/fuzz_corpora.rs` replays this
//! target's corpus and regressions through the same function.

libfuzzer_sys::fuzz_target!(|data: &[u8]| ebpf_exporter::fuzz::encoders(data));
