//! Typed errors of the object layer. Each carries the errno the kernel or
//! libbpf gave and libbpf's own words where it said any, so callers decide
//! by variant and kind, never by matching message text.

/// libbpf (in its 1.0 mode) sets errno on every failure, and libbpf-rs
/// builds its error from it; read right after a failed call, this is that
/// failure's errno.
pub fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Why an object as a whole could not be opened or loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    #[error("--btf.path {path}: {reason}")]
    BtfPath {
        path: String,
        errno: i32,
        reason: String,
    },
    #[error("opening {origin}: {reason}{}", said(libbpf))]
    Open {
        origin: String,
        errno: i32,
        reason: String,
        libbpf: Vec<String>,
    },
    #[error("kaddrs: {0}")]
    Kaddrs(String),
    #[error("{1}")]
    Constant(String, super::constants::ConstantError),
    #[error("{message}")]
    MapSetting {
        map: String,
        key: &'static str,
        message: String,
    },
    /// `maps.MAP.entries`: `at` is the path below the map's key
    /// (`entries[2].key.comm`).
    #[error("{message}")]
    MapEntry {
        map: String,
        at: String,
        message: String,
    },
    #[error("{message}")]
    AttachOverride { program: String, message: String },
    #[error("program {name:?} {why}; its programs: {}", available.join(", "))]
    ProgramChoice {
        /// `include`, `exclude` or `attach`, and the index or name.
        key: String,
        name: String,
        why: &'static str,
        available: Vec<String>,
    },
    #[error("the object has no program named {name:?}; its programs: {}", available.join(", "))]
    NoSuchProgram {
        group: usize,
        index: usize,
        name: String,
        available: Vec<String>,
    },
    #[error("loading {origin}: {reason}{}", said(libbpf))]
    Load {
        origin: String,
        errno: i32,
        reason: String,
        libbpf: Vec<String>,
    },
}

fn said(lines: &[String]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let cleaned: Vec<&str> = lines
        .iter()
        .map(|l| l.trim_start_matches("libbpf: "))
        .collect();
    format!("; libbpf said: {}", cleaned.join(" | "))
}

/// Why one program did not load, while the rest of its object did.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadFailure {
    #[error("the kernel refused {section} with EPERM, and it runs no BPF trampoline programs (fentry/fexit): an empty fentry program on bpf_fentry_test1 was refused at {step} with {} (a kernel built without them, lockdown, or a security policy; libbpf's RLIMIT_MEMLOCK hint does not apply); use a tracepoint, raw_tp or tp_btf program instead ({detail})", errno_name(*errno))]
    NoTrampolines {
        section: String,
        step: &'static str,
        errno: i32,
        detail: String,
    },
    #[error("the kernel refused {section} with EPERM, though it runs other fentry/fexit programs (an empty one loads and attaches here); {}", eperm_reason(detail))]
    TrampolineRefused { section: String, detail: String },
    #[error("{section} names {target:?}, which this kernel's BTF does not have (ESRCH): the function or tracepoint may be inlined, renamed or absent on this kernel ({detail})")]
    NoSuchTarget {
        section: String,
        target: String,
        detail: String,
    },
    #[error("{section} reads ctx offset {offset} (argument slot {}), but {} on this kernel{}: the program was written for a kernel where it has more ({detail})", offset / 8, takes(target, *tracepoint, *args), return_at(*return_slot, *args))]
    ArgumentCount {
        section: String,
        target: String,
        tracepoint: bool,
        offset: u32,
        args: u32,
        return_slot: bool,
        detail: String,
    },
    #[error("{section} uses map {map:?}, which was not created: this kernel ({release}) has no {map_type} maps, which came in Linux {since}")]
    MapNotCreated {
        section: String,
        map: String,
        map_type: &'static str,
        since: crate::host::kernel::Version,
        release: String,
    },
    #[error("{detail}")]
    Refused { errno: i32, detail: String },
}

fn errno_name(errno: i32) -> String {
    match errno {
        libc::EPERM => "EPERM".into(),
        libc::EACCES => "EACCES".into(),
        libc::EINVAL => "EINVAL".into(),
        libc::ENOTSUP => "ENOTSUP".into(),
        other => format!("errno {other}"),
    }
}

fn eperm_reason(detail: &str) -> String {
    if detail.contains("the verifier said") {
        detail.to_string()
    } else {
        format!(
            "the verifier gave no reason, so a security policy (an LSM such as SELinux, or a BPF \
             LSM program) refused this program, or its target cannot be traced ({detail})"
        )
    }
}

fn takes(target: &str, tracepoint: bool, args: u32) -> String {
    let plural = if args == 1 { "" } else { "s" };
    if tracepoint {
        format!("the {target} tracepoint passes {args} argument{plural}")
    } else {
        format!("{target} takes {args} argument{plural}")
    }
}

fn return_at(return_slot: bool, args: u32) -> String {
    if return_slot {
        format!(" (its return value is at offset {})", args * 8)
    } else {
        String::new()
    }
}

/// Why one loaded program could not be attached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachError {
    #[error("this kernel lacks kprobe support (no /sys/bus/event_source/devices/kprobe and no kprobe_events; CONFIG_KPROBES is likely off), so {section} cannot attach; use a tracepoint, raw_tp or tp_btf program instead (errno {errno})")]
    NoKprobes { section: String, errno: i32 },
    #[error("kernel function for {section} not found: it may be inlined, renamed or absent on this kernel (errno {errno})")]
    NoSuchFunction { section: String, errno: i32 },
    #[error("{section}: the binary {binary:?} it probes does not exist (a relative path is taken from the exporter's working directory) (errno {errno})")]
    NoUsdtBinary {
        section: String,
        binary: String,
        errno: i32,
    },
    #[error("{section}: {binary:?} is position-independent (a PIE executable or a shared library), and libbpf attaches USDT probes in such a binary to every process only with BPF cookies, which came in Linux 5.15; this kernel is {release}. Build the program with -no-pie to probe it here (errno {errno})")]
    UsdtNeedsCookies {
        section: String,
        binary: String,
        release: String,
        errno: i32,
    },
    #[error("tracepoint for {section} does not exist on this kernel (errno {errno})")]
    NoSuchTracepoint { section: String, errno: i32 },
    #[error("section {section:?} names no attach target, so it cannot be auto-attached (use e.g. uprobe/PATH:FUNCTION, or a perf_event/type=..,config=..,frequency=.. section)")]
    NoTarget { section: String },
    #[error("no network interface named {0:?}")]
    NoInterface(String),
    #[error("{0}")]
    PerfSpec(String),
    #[error("this machine has no hardware performance counters (no PMU; usual in VMs), so the hardware event perf_event/type={type_},config={config} cannot be counted; use a software event (type=1) instead (errno {errno})")]
    NoPmu { type_: u32, config: u64, errno: i32 },
    #[error("perf_event_open(type={type_}, config={config}) on CPU {cpu}: {}", std::io::Error::from_raw_os_error(*errno))]
    PerfOpen {
        type_: u32,
        config: u64,
        cpu: u32,
        errno: i32,
    },
    #[error("{0}")]
    Tracefs(#[from] crate::host::tracefs::MountError),
    #[error("{0}")]
    OnlineCpus(String),
    #[error("attaching {section}: {reason}{}", said(libbpf))]
    Other {
        section: String,
        errno: i32,
        reason: String,
        libbpf: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapLookupError {
    #[error("the object has no BPF map named {name:?}; its maps: {}", available.join(", "))]
    Missing {
        name: String,
        available: Vec<String>,
    },
    #[error("map {name:?}: cannot get a handle: {reason} (errno {errno})")]
    Handle {
        name: String,
        errno: i32,
        reason: String,
    },
    #[error("map {name:?} was not created: this kernel ({release}) has no {map_type} maps, which came in Linux {since}")]
    NotCreated {
        name: String,
        map_type: &'static str,
        since: crate::host::kernel::Version,
        release: String,
    },
}
