//! The tests the kernel matrix (`scripts/kernel-matrix.sh`) runs inside a VM
//! for each kernel, gathered into one binary so that each guest's image
//! holds one test program: the tests whose outcome depends on the kernel.
//! Each file is also its own test target, which `cargo test` runs on this
//! machine's kernel; this target is built only when asked for
//! (`test = false` in Cargo.toml).

#[path = "attach_types.rs"]
mod attach_types;
#[path = "capabilities.rs"]
mod capabilities;
#[path = "cgroup_id_map.rs"]
mod cgroup_id_map;
#[path = "core_e2e.rs"]
mod core_e2e;
#[path = "kernel_paths.rs"]
mod kernel_paths;
#[path = "libbpf_tools.rs"]
mod libbpf_tools;
#[path = "libbpf_tools_counts.rs"]
mod libbpf_tools_counts;
#[path = "libbpf_tools_traced.rs"]
mod libbpf_tools_traced;
#[path = "probes.rs"]
mod probes;
#[path = "programs_network.rs"]
mod programs_network;
#[path = "programs_system.rs"]
mod programs_system;
#[path = "read_methods.rs"]
mod read_methods;
#[path = "reload.rs"]
mod reload;
#[path = "spans.rs"]
mod spans;
