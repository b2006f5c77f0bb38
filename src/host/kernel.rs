//! Facts about the running kernel that fallbacks and diagnoses depend on:
//! its version, which BPF map types it can create, whether it runs BPF
//! trampoline programs and BPF cookies, and how many arguments a kernel
//! function or typed tracepoint takes.
//!
//! Each is probed on first use and kept for the process, so a message that
//! names "Linux 5.11" or "takes 3 arguments here" costs nothing on the
//! paths that succeed. Probes ask the kernel itself (a map or a program is
//! created and closed), never infer from the version, because distributions
//! backport features and leave others out.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, OnceLock};

/// A kernel release, major and minor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
}

impl Version {
    pub const fn new(major: u32, minor: u32) -> Self {
        Self { major, minor }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// `5.10.0-32-cloud-amd64` is 5.10.
pub fn parse_version(release: &str) -> Option<Version> {
    let mut parts = release.trim().split(['.', '-', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some(Version { major, minor })
}

/// The running kernel's release string, as uname prints it.
pub fn release() -> &'static str {
    static RELEASE: OnceLock<String> = OnceLock::new();
    RELEASE.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    })
}

/// The running kernel's version, if its release string parses.
pub fn version() -> Option<Version> {
    parse_version(release())
}

/// Whether this kernel creates maps of type `id`: `Some` as libbpf's probe
/// (which creates and closes a small map of the type) found, `None` where
/// the probe could not tell. Kept per type for the process.
pub fn supports_map_type(id: u32) -> Option<bool> {
    static SEEN: Mutex<Option<HashMap<u32, Option<bool>>>> = Mutex::new(None);
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    *seen
        .get_or_insert_with(HashMap::new)
        .entry(id)
        .or_insert_with(|| {
            // SAFETY: a probe that creates and closes a map; NULL opts is the
            // documented argument.
            let rc = unsafe { libbpf_sys::libbpf_probe_bpf_map_type(id, std::ptr::null()) };
            match rc {
                1 => Some(true),
                0 => Some(false),
                _ => None,
            }
        })
}

/// Whether BPF trampoline programs (fentry, fexit, fmod_ret, LSM) run here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trampolines {
    /// A minimal fentry program loaded and attached.
    Available,
    /// The kernel refused a minimal fentry program on `bpf_fentry_test1`,
    /// a function that exists to be traced, at `step` ("load" or "attach").
    Refused { step: &'static str, errno: i32 },
    /// The probe could not run (no kernel BTF, or no such function).
    Unknown(String),
}

/// Loads and attaches an empty fentry program on `bpf_fentry_test1` once,
/// and says how that went. Run only on the path where a real program was
/// refused, to tell "this kernel runs no trampolines" from "this one
/// program was refused".
pub fn trampolines() -> &'static Trampolines {
    static RESULT: OnceLock<Trampolines> = OnceLock::new();
    RESULT.get_or_init(probe_trampolines)
}

fn probe_trampolines() -> Trampolines {
    let Some(btf_id) =
        with_vmlinux_btf(|btf| btf.find("bpf_fentry_test1", BTF_KIND_FUNC)).flatten()
    else {
        return Trampolines::Unknown(
            "the kernel's BTF has no bpf_fentry_test1 to probe with".to_string(),
        );
    };
    // r0 = 0; exit
    let insns: [u64; 2] = [0xb7, 0x95];
    // SAFETY: zeroed opts with sz set is the documented way to pass none
    // but the fields set below.
    let mut opts: libbpf_sys::bpf_prog_load_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<libbpf_sys::bpf_prog_load_opts>() as _;
    opts.expected_attach_type = libbpf_sys::BPF_TRACE_FENTRY;
    opts.attach_btf_id = btf_id;
    // SAFETY: two 8-byte instructions in the kernel's layout, and C strings
    // that outlive the call.
    let fd = unsafe {
        libbpf_sys::bpf_prog_load(
            libbpf_sys::BPF_PROG_TYPE_TRACING,
            c"ee_probe".as_ptr(),
            c"GPL".as_ptr(),
            insns.as_ptr().cast(),
            insns.len() as _,
            &mut opts,
        )
    };
    if fd < 0 {
        return Trampolines::Refused {
            step: "load",
            errno: -fd,
        };
    }
    // SAFETY: fd is a program just loaded; a NULL name attaches a tracing
    // program to its own target.
    let link = unsafe { libbpf_sys::bpf_raw_tracepoint_open(std::ptr::null(), fd) };
    let result = if link < 0 {
        Trampolines::Refused {
            step: "attach",
            errno: -link,
        }
    } else {
        // SAFETY: closing the link fd just opened.
        unsafe { libc::close(link) };
        Trampolines::Available
    };
    // SAFETY: closing the program fd just opened.
    unsafe { libc::close(fd) };
    result
}

/// Whether programs can read a cookie set at attach time
/// (`bpf_get_attach_cookie`, Linux 5.15). libbpf needs it to attach USDT
/// probes in position-independent binaries without naming a process.
pub fn bpf_cookies() -> Option<bool> {
    static RESULT: OnceLock<Option<bool>> = OnceLock::new();
    *RESULT.get_or_init(|| {
        // SAFETY: a probe that loads and closes a two-instruction program;
        // NULL opts is the documented argument.
        let rc = unsafe {
            libbpf_sys::libbpf_probe_bpf_helper(
                libbpf_sys::BPF_PROG_TYPE_KPROBE,
                libbpf_sys::BPF_FUNC_get_attach_cookie,
                std::ptr::null(),
            )
        };
        match rc {
            1 => Some(true),
            0 => Some(false),
            _ => None,
        }
    })
}

const BTF_KIND_PTR: u32 = 2;
const BTF_KIND_TYPEDEF: u32 = 8;
const BTF_KIND_FUNC: u32 = 12;
const BTF_KIND_FUNC_PROTO: u32 = 13;

/// The kernel's BTF, as libbpf loads it (from /sys/kernel/btf/vmlinux or the
/// places libbpf knows).
struct VmlinuxBtf(*mut libbpf_sys::btf);

// SAFETY: the pointer is only used under the mutex that holds it, and
// libbpf's BTF lookups do not depend on the thread.
unsafe impl Send for VmlinuxBtf {}

impl VmlinuxBtf {
    fn find(&self, name: &str, kind: u32) -> Option<u32> {
        let name = std::ffi::CString::new(name).ok()?;
        // SAFETY: a valid BTF object and a C string.
        let id = unsafe { libbpf_sys::btf__find_by_name_kind(self.0, name.as_ptr(), kind) };
        u32::try_from(id).ok().filter(|&id| id > 0)
    }

    /// (kind, vlen, type) of type `id`.
    fn describe(&self, id: u32) -> Option<(u32, u32, u32)> {
        // SAFETY: a valid BTF object; NULL for an id it does not have.
        let t = unsafe { libbpf_sys::btf__type_by_id(self.0, id) };
        if t.is_null() {
            return None;
        }
        // SAFETY: non-null, pointing into the BTF's own type data.
        let (info, next) = unsafe { ((*t).info, (*t).__bindgen_anon_1.type_) };
        Some(((info >> 24) & 0x1f, info & 0xffff, next))
    }

    /// The parameter count of the FUNC_PROTO that `id` is or leads to
    /// through typedefs and pointers.
    fn proto_params(&self, mut id: u32) -> Option<u32> {
        for _ in 0..8 {
            let (kind, vlen, next) = self.describe(id)?;
            match kind {
                BTF_KIND_FUNC_PROTO => return Some(vlen),
                BTF_KIND_FUNC | BTF_KIND_TYPEDEF | BTF_KIND_PTR => id = next,
                _ => return None,
            }
        }
        None
    }
}

impl Drop for VmlinuxBtf {
    fn drop(&mut self) {
        // SAFETY: loaded by btf__load_vmlinux_btf, freed once.
        unsafe { libbpf_sys::btf__free(self.0) };
    }
}

/// Runs `f` on the kernel's BTF, loaded on first use; `None` when it cannot
/// be loaded.
fn with_vmlinux_btf<T>(f: impl FnOnce(&VmlinuxBtf) -> T) -> Option<T> {
    static BTF: Mutex<Option<VmlinuxBtf>> = Mutex::new(None);
    let mut held = BTF.lock().unwrap_or_else(|p| p.into_inner());
    if held.is_none() {
        // SAFETY: loads a new BTF object, or returns an error pointer.
        let btf = unsafe { libbpf_sys::btf__load_vmlinux_btf() };
        // libbpf 1.x returns NULL (and sets errno) on failure.
        if btf.is_null() {
            return None;
        }
        *held = Some(VmlinuxBtf(btf));
    }
    held.as_ref().map(f)
}

/// How many arguments kernel function `name` takes, by the kernel's BTF.
pub fn function_args(name: &str) -> Option<u32> {
    with_vmlinux_btf(|btf| {
        let id = btf.find(name, BTF_KIND_FUNC)?;
        btf.proto_params(id)
    })
    .flatten()
}

/// How many arguments typed tracepoint `name` passes a `tp_btf` program, by
/// the kernel's BTF (`btf_trace_<name>`, whose first parameter is the
/// tracepoint's own data pointer and not an argument).
pub fn tracepoint_args(name: &str) -> Option<u32> {
    with_vmlinux_btf(|btf| {
        let id = btf.find(&format!("btf_trace_{name}"), BTF_KIND_TYPEDEF)?;
        btf.proto_params(id)?.checked_sub(1)
    })
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_from_release_strings() {
        assert_eq!(
            parse_version("5.10.0-32-cloud-amd64"),
            Some(Version::new(5, 10))
        );
        assert_eq!(
            parse_version("6.12.117+deb13-cloud-amd64"),
            Some(Version::new(6, 12))
        );
        assert_eq!(
            parse_version("6.18.44-fc-v1272\n"),
            Some(Version::new(6, 18))
        );
        assert_eq!(parse_version("6"), None);
        assert_eq!(parse_version("x.y"), None);
        assert!(Version::new(5, 10) < Version::new(5, 11));
        assert!(Version::new(5, 11) < Version::new(6, 1));
        assert_eq!(Version::new(6, 2).to_string(), "6.2");
    }

    #[test]
    fn this_kernel_creates_hash_maps_and_knows_its_own_functions() {
        assert_eq!(supports_map_type(libbpf_sys::BPF_MAP_TYPE_HASH), Some(true));
        // Real kernel BTF: do_nanosleep(struct hrtimer_sleeper *, enum hrtimer_mode).
        assert_eq!(function_args("do_nanosleep"), Some(2));
        // sched_switch(bool preempt, prev, next[, prev_state since 5.18]).
        assert_eq!(tracepoint_args("sched_switch"), Some(4));
        assert_eq!(function_args("no_such_function_here"), None);
    }
}
