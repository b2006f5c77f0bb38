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
    #[error("the kernel refused {section} with EPERM: BPF trampolines (fentry/fexit) are unavailable on this kernel (libbpf's RLIMIT_MEMLOCK hint does not apply); use a tracepoint, raw_tp or tp_btf program instead ({detail})")]
    NoTrampolines { section: String, detail: String },
    #[error("{section} names {target:?}, which this kernel's BTF does not have (ESRCH): the function or tracepoint may be inlined, renamed or absent on this kernel ({detail})")]
    NoSuchTarget {
        section: String,
        target: String,
        detail: String,
    },
    #[error("{detail}")]
    Refused { errno: i32, detail: String },
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
    Host(String),
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
}
