//! What the running kernel has, and BPF programs and maps by id.

use super::*;

/// Whether the running kernel is at least `major.minor`.
pub fn kernel_at_least(major: u32, minor: u32) -> bool {
    use ebpf_exporter::host::kernel::{version, Version};
    version().expect("the kernel release parses") >= Version::new(major, minor)
}

/// Whether these tests run in one of the kernel matrix's guests
/// (`scripts/kernel-matrix.sh`), on Debian's cloud kernels, which are built
/// with kprobes, BPF trampolines and everything else the tests use. There a
/// feature that fails is a bug, never the kernel's choice; elsewhere tests
/// accept a documented failure where the kernel shows it lacks the feature.
pub fn in_kernel_matrix() -> bool {
    std::env::var_os("EE_KERNEL_MATRIX").is_some_and(|v| v == "1")
}

/// Whether the kernel has kprobes (its kprobe PMU is registered).
pub fn kernel_has_kprobes() -> bool {
    Path::new("/sys/bus/event_source/devices/kprobe").exists()
}

/// Whether this kernel refuses map reads to a process without CAP_BPF, even
/// through an fd it holds (kernels before 6.5 with
/// kernel.unprivileged_bpf_disabled set, unless that change was backported),
/// asked of the kernel itself: a child creates a map, drops every
/// capability, and reads it. The exporter finds its answer by another
/// route, so tests compare the two.
pub fn map_reads_need_cap_bpf() -> bool {
    // SAFETY: the child makes raw syscalls only, then leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: raw syscalls on values on this stack.
        unsafe {
            let fd = libbpf_sys::bpf_map_create(
                libbpf_sys::BPF_MAP_TYPE_HASH,
                std::ptr::null(),
                4,
                8,
                1,
                std::ptr::null(),
            );
            if fd < 0 {
                libc::_exit(2);
            }
            // capset(2), v3: no capability in any set.
            let header: [u32; 2] = [0x2008_0522, 0];
            let data = [0u32; 6];
            if libc::syscall(libc::SYS_capset, header.as_ptr(), data.as_ptr()) != 0 {
                libc::_exit(3);
            }
            let mut key = [0u8; 4];
            let rc =
                libbpf_sys::bpf_map_get_next_key(fd, std::ptr::null(), key.as_mut_ptr().cast());
            libc::_exit(if rc == 0 || rc == -libc::ENOENT { 0 } else { 1 });
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "probe child: {status:#x}");
    match libc::WEXITSTATUS(status) {
        0 => false,
        1 => true,
        other => panic!("probe child failed to set up: exit {other}"),
    }
}

/// An fd of loaded program `id` (from `Running::program_id`).
pub fn prog_fd(id: u32) -> std::os::fd::OwnedFd {
    // SAFETY: plain syscall wrapper; a negative return is an error.
    let fd = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(id) };
    assert!(fd >= 0, "program {id} not found");
    // SAFETY: fd was just opened and is owned here.
    unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
}

/// Runs a program once with BPF_PROG_TEST_RUN (programs that fill maps).
pub fn test_run(fd: &std::os::fd::OwnedFd) {
    use std::os::fd::AsRawFd;
    // SAFETY: zeroed opts with sz set is the documented way to call test_run.
    let mut opts: libbpf_sys::bpf_test_run_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<libbpf_sys::bpf_test_run_opts>() as _;
    // SAFETY: opts outlives the call.
    let rc = unsafe { libbpf_sys::bpf_prog_test_run_opts(fd.as_raw_fd(), &mut opts) };
    assert_eq!(
        rc,
        0,
        "BPF_PROG_TEST_RUN: {}",
        std::io::Error::last_os_error()
    );
}

/// Ids of the maps a program uses (a fill program references every map of
/// its object).
pub fn prog_map_ids(fd: &std::os::fd::OwnedFd) -> Vec<u32> {
    use std::os::fd::AsRawFd;
    let mut ids = vec![0u32; 64];
    // SAFETY: zeroed info is valid; the kernel writes at most nr_map_ids ids.
    let mut info: libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
    info.nr_map_ids = ids.len() as u32;
    info.map_ids = ids.as_mut_ptr() as u64;
    let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
    // SAFETY: info, ids and len outlive the call.
    let rc = unsafe {
        libbpf_sys::bpf_prog_get_info_by_fd(fd.as_raw_fd(), &mut info as *mut _ as *mut _, &mut len)
    };
    assert_eq!(rc, 0, "prog info: {}", std::io::Error::last_os_error());
    ids.truncate((info.nr_map_ids as usize).min(64));
    ids
}
