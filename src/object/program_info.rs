//! Kernel-side facts about a loaded program: id, tag and run statistics.

use std::os::fd::{AsRawFd, BorrowedFd};

#[derive(Debug, Clone, Default)]
pub struct ProgInfo {
    pub id: u32,
    pub tag: String,
    /// Only counted while `kernel.bpf_stats_enabled` is 1.
    pub run_time_ns: u64,
    pub run_cnt: u64,
}

pub fn prog_info(fd: BorrowedFd<'_>) -> Option<ProgInfo> {
    // SAFETY: bpf_prog_info is plain old data; the kernel fills at most `len` bytes.
    let mut info: libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
    // SAFETY: info and len are valid for writes for the duration of the call.
    let rc = unsafe {
        libbpf_sys::bpf_prog_get_info_by_fd(fd.as_raw_fd(), &mut info as *mut _ as *mut _, &mut len)
    };
    if rc != 0 {
        return None;
    }
    let tag = info.tag.iter().map(|b| format!("{b:02x}")).collect();
    Some(ProgInfo {
        id: info.id,
        tag,
        run_time_ns: info.run_time_ns,
        run_cnt: info.run_cnt,
    })
}
