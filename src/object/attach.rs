//! Attaches one program by its `SEC()` name, with clear messages for the
//! ways attaching fails in practice (no kprobe support, no tracefs, no BPF
//! trampolines).
//!
//! libbpf's auto-attach covers most section names. Two are the reference
//! exporter's own, and handled here: `perf_event/type=N,config=N,frequency=N`
//! (opened on every online CPU) and `xdp/<ifname>`.

use std::path::Path;

use libbpf_rs::{ErrorKind, Link, ProgramMut};

use super::error::{last_errno, AttachError, LoadFailure};
use crate::host::kernel::{self, Trampolines};
use crate::host::{cpus, interfaces, tracefs};

pub fn attach_program(prog: &ProgramMut<'_>, section: &str) -> Result<Vec<Link>, AttachError> {
    // BPF_PROG_TYPE_SYSCALL programs are run from user space
    // (BPF_PROG_RUN), never attached: loaded is all they need.
    if section == "syscall" {
        return Ok(Vec::new());
    }
    let own = prog.section().to_string_lossy().into_owned();
    if section != own {
        if let Some(attached) = attach_elsewhere(prog, section) {
            return attached;
        }
    }
    if let Some(spec) = section.strip_prefix("perf_event/") {
        return attach_perf_event(prog, spec);
    }
    if let Some(ifname) = section.strip_prefix("xdp/") {
        let ifindex = interfaces::index_of(ifname)
            .ok_or_else(|| AttachError::NoInterface(ifname.to_string()))?;
        return prog
            .attach_xdp(ifindex as i32)
            .map(|l| vec![l])
            .map_err(|e| other(section, &e, last_errno()));
    }
    if !has_attach_target(section) {
        return Err(AttachError::NoTarget {
            section: section.to_string(),
        });
    }
    if let Some(target) = section.strip_prefix("usdt/") {
        // usdt/PATH:PROVIDER:NAME; the path itself may hold ':'.
        let binary = target.rsplitn(3, ':').nth(2).unwrap_or(target);
        if let Some(missing) = missing_binary(binary, section) {
            return Err(missing);
        }
    }
    if section.starts_with("tracepoint/") || section.starts_with("tp/") {
        tracefs::ensure_mounted()?;
    }
    prog.attach().map(|l| vec![l]).map_err(|e| {
        let errno = last_errno();
        classify_attach(section, e.kind(), errno)
            .or_else(|| classify_usdt(section, errno))
            .unwrap_or_else(|| other(section, &e, errno))
    })
}

/// Attaches a program where `programs.attach` says instead of where its
/// own section does, for the kinds whose target is named at attach time;
/// `None` for the kinds handled as any section is (perf events, XDP, and
/// those whose target was set before load).
fn attach_elsewhere(
    prog: &ProgramMut<'_>,
    section: &str,
) -> Option<Result<Vec<Link>, AttachError>> {
    let fail = |e: libbpf_rs::Error| {
        let errno = last_errno();
        classify_attach(section, e.kind(), errno)
            .or_else(|| classify_usdt(section, errno))
            .unwrap_or_else(|| other(section, &e, errno))
    };
    let result = if let Some(func) = section.strip_prefix("kprobe/") {
        prog.attach_kprobe(false, func)
    } else if let Some(func) = section.strip_prefix("kretprobe/") {
        prog.attach_kprobe(true, func)
    } else if let Some(tp) = section
        .strip_prefix("tracepoint/")
        .or_else(|| section.strip_prefix("tp/"))
    {
        let Some((category, name)) = tp.split_once('/') else {
            return Some(Err(AttachError::NoTarget {
                section: section.to_string(),
            }));
        };
        if let Err(e) = tracefs::ensure_mounted() {
            return Some(Err(e.into()));
        }
        prog.attach_tracepoint(
            libbpf_rs::TracepointCategory::Custom(category.to_string()),
            name,
        )
    } else if let Some(tp) = section
        .strip_prefix("raw_tp/")
        .or_else(|| section.strip_prefix("raw_tracepoint/"))
    {
        prog.attach_raw_tracepoint(tp)
    } else if let Some((retprobe, target)) = section
        .strip_prefix("uprobe/")
        .map(|t| (false, t))
        .or_else(|| section.strip_prefix("uretprobe/").map(|t| (true, t)))
    {
        // uprobe/PATH:FUNCTION[+OFFSET], as libbpf spells its sections;
        // the path itself may hold ':'.
        let Some((binary, function, offset)) = uprobe_target(target) else {
            return Some(Err(AttachError::NoTarget {
                section: section.to_string(),
            }));
        };
        if let Some(missing) = missing_binary(binary, section) {
            return Some(Err(missing));
        }
        let opts = libbpf_rs::UprobeOpts {
            retprobe,
            func_name: Some(function.to_string()),
            ..Default::default()
        };
        prog.attach_uprobe_with_opts(-1, binary, offset, opts)
    } else if let Some(target) = section.strip_prefix("usdt/") {
        // usdt/PATH:PROVIDER:NAME
        let mut parts = target.rsplitn(3, ':');
        let (Some(name), Some(provider), Some(binary)) = (parts.next(), parts.next(), parts.next())
        else {
            return Some(Err(AttachError::NoTarget {
                section: section.to_string(),
            }));
        };
        if let Some(missing) = missing_binary(binary, section) {
            return Some(Err(missing));
        }
        prog.attach_usdt(-1, binary, provider, name)
    } else {
        return None;
    };
    Some(result.map(|l| vec![l]).map_err(fail))
}

/// A user-space probe's binary that is not there: libbpf would say only
/// ENOENT.
fn missing_binary(binary: &str, section: &str) -> Option<AttachError> {
    (!Path::new(binary).exists()).then(|| AttachError::NoUsdtBinary {
        binary: binary.to_string(),
        section: section.to_string(),
        errno: libc::ENOENT,
    })
}

/// `PATH:FUNCTION[+OFFSET]`: the binary, the function and the offset in
/// it. The function is after the last ':', so paths may hold ':'.
fn uprobe_target(target: &str) -> Option<(&str, &str, usize)> {
    let (binary, function) = target.rsplit_once(':')?;
    let (function, offset) = match function.split_once('+') {
        Some((f, off)) => {
            let off = match off.strip_prefix("0x") {
                Some(hex) => usize::from_str_radix(hex, 16).ok()?,
                None => off.parse().ok()?,
            };
            (f, off)
        }
        None => (function, 0),
    };
    (!binary.is_empty() && !function.is_empty()).then_some((binary, function, offset))
}

/// Whether the ELF file at `path` is position-independent (ET_DYN: a PIE
/// executable or a shared library).
fn is_position_independent(path: &str) -> bool {
    use std::io::Read;
    let mut header = [0u8; 18];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok_and(|()| {
            header[..4] == *b"\x7fELF" && u16::from_le_bytes([header[16], header[17]]) == 3
        })
}

fn other(section: &str, e: &libbpf_rs::Error, errno: i32) -> AttachError {
    AttachError::Other {
        section: section.to_string(),
        errno,
        reason: e.to_string(),
        libbpf: Vec::new(),
    }
}

/// Sections libbpf knows but cannot auto-attach without more information.
fn has_attach_target(section: &str) -> bool {
    !matches!(
        section,
        "uprobe"
            | "uretprobe"
            | "uprobe.s"
            | "uretprobe.s"
            | "usdt"
            | "perf_event"
            | "kprobe"
            | "kretprobe"
            | "xdp"
            | "tc"
    )
}

fn is_kprobe(section: &str) -> bool {
    [
        "kprobe/",
        "kretprobe/",
        "ksyscall/",
        "kretsyscall/",
        "kprobe.multi/",
        "kretprobe.multi/",
    ]
    .iter()
    .any(|p| section.starts_with(p))
}

/// Whether the CPU's PMU is registered with perf (its name varies with the
/// vendor and hybrid cores).
fn has_cpu_pmu() -> bool {
    ["cpu", "cpu_core", "cpu_atom", "armv8_pmuv3_0"]
        .iter()
        .any(|p| Path::new("/sys/bus/event_source/devices").join(p).exists())
}

fn kernel_has_kprobes() -> bool {
    Path::new("/sys/bus/event_source/devices/kprobe").exists()
        || Path::new("/sys/kernel/tracing/kprobe_events").exists()
        || Path::new("/sys/kernel/debug/tracing/kprobe_events").exists()
}

/// The failures operators hit in practice, named; `None` for the rest.
fn classify_attach(section: &str, kind: ErrorKind, errno: i32) -> Option<AttachError> {
    let section = section.to_string();
    if is_kprobe(&section) && !kernel_has_kprobes() {
        return Some(AttachError::NoKprobes { section, errno });
    }
    if kind != ErrorKind::NotFound {
        return None;
    }
    if is_kprobe(&section) {
        return Some(AttachError::NoSuchFunction { section, errno });
    }
    let tracepoint = ["tracepoint/", "tp/", "raw_tp/", "raw_tracepoint/"]
        .iter()
        .any(|p| section.starts_with(p));
    if tracepoint {
        return Some(AttachError::NoSuchTracepoint { section, errno });
    }
    None
}

/// libbpf attaches USDT probes in a position-independent binary to every
/// process only with BPF cookies; on older kernels it refuses with ENOTSUP.
fn classify_usdt(section: &str, errno: i32) -> Option<AttachError> {
    let target = section.strip_prefix("usdt/")?;
    let binary = target.rsplitn(3, ':').nth(2)?;
    if errno != libc::ENOTSUP
        || kernel::bpf_cookies() != Some(false)
        || !is_position_independent(binary)
    {
        return None;
    }
    Some(AttachError::UsdtNeedsCookies {
        section: section.to_string(),
        binary: binary.to_string(),
        release: kernel::release().to_string(),
        errno,
    })
}

/// Names the kernel's terse refusal of one program where it has a known
/// cause. The kind is libbpf's, which maps the verifier's EACCES and a
/// policy's EPERM to the same `PermissionDenied`, so decisions here are made
/// on the errno itself.
pub fn classify_load_failure(
    section: &str,
    _kind: ErrorKind,
    errno: i32,
    detail: String,
) -> LoadFailure {
    let trampoline = ["fentry/", "fexit/", "fmod_ret/", "lsm/", "freplace/"]
        .iter()
        .any(|p| section.starts_with(p));
    if trampoline && errno == libc::EPERM {
        // EPERM is also what a security policy answers for one program, so
        // the kernel is asked whether it runs any trampoline program.
        return match kernel::trampolines() {
            Trampolines::Refused { step, errno } => LoadFailure::NoTrampolines {
                section: section.to_string(),
                step,
                errno: *errno,
                detail,
            },
            Trampolines::Available | Trampolines::Unknown(_) => LoadFailure::TrampolineRefused {
                section: section.to_string(),
                detail,
            },
        };
    }
    // Sections whose target libbpf looks up in the kernel's BTF at load;
    // ESRCH is its "no such type" answer.
    let btf_target = ["fentry/", "fexit/", "fmod_ret/", "lsm/", "tp_btf/", "iter/"]
        .iter()
        .find_map(|p| section.strip_prefix(p));
    if let (Some(target), libc::ESRCH) = (btf_target, errno) {
        return LoadFailure::NoSuchTarget {
            section: section.to_string(),
            target: target.to_string(),
            detail,
        };
    }
    if let Some(found) = argument_mismatch(section, &detail) {
        return found;
    }
    LoadFailure::Refused { errno, detail }
}

/// A typed program (fentry, fexit, tp_btf) that reads past the arguments its
/// target has on this kernel: the verifier says only "invalid bpf_context
/// access off=N", which usually means the program was written for a kernel
/// where the function or tracepoint took more arguments.
fn argument_mismatch(section: &str, detail: &str) -> Option<LoadFailure> {
    const NEEDLE: &str = "invalid bpf_context access off=";
    let at = detail.find(NEEDLE)? + NEEDLE.len();
    let offset: u32 = detail[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    let (kind, target) = section.split_once('/')?;
    let target = target.trim_start_matches('/');
    let (args, ret_slot) = match kind {
        "fentry" | "fmod_ret" => (kernel::function_args(target)?, false),
        "fexit" => (kernel::function_args(target)?, true),
        "tp_btf" => (kernel::tracepoint_args(target)?, false),
        _ => return None,
    };
    let slots = args + u32::from(ret_slot);
    if offset / 8 < slots {
        return None;
    }
    Some(LoadFailure::ArgumentCount {
        section: section.to_string(),
        target: target.to_string(),
        tracepoint: kind == "tp_btf",
        offset,
        args,
        return_slot: ret_slot,
        detail: detail.to_string(),
    })
}

struct PerfSpec {
    type_: u32,
    config: u64,
    frequency: Option<u64>,
    period: Option<u64>,
}

fn parse_perf_spec(spec: &str) -> Result<PerfSpec, AttachError> {
    parse_perf_spec_text(spec).map_err(AttachError::PerfSpec)
}

fn parse_perf_spec_text(spec: &str) -> Result<PerfSpec, String> {
    let mut out = PerfSpec {
        type_: u32::MAX,
        config: u64::MAX,
        frequency: None,
        period: None,
    };
    for part in spec.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("perf_event section part {part:?} is not key=value"))?;
        let n: u64 = v
            .parse()
            .map_err(|_| format!("perf_event section: {k}={v:?} is not a number"))?;
        match k {
            "type" => out.type_ = n as u32,
            "config" => out.config = n,
            "frequency" => out.frequency = Some(n),
            "sample_period" | "period" => out.period = Some(n),
            _ => {
                return Err(format!(
                "perf_event section: unknown key {k:?} (type, config, frequency, sample_period)"
            ))
            }
        }
    }
    if out.type_ == u32::MAX || out.config == u64::MAX {
        return Err("perf_event section needs type=N and config=N".into());
    }
    if out.frequency.is_none() && out.period.is_none() {
        return Err("perf_event section needs frequency=N or sample_period=N".into());
    }
    Ok(out)
}

fn attach_perf_event(prog: &ProgramMut<'_>, spec: &str) -> Result<Vec<Link>, AttachError> {
    let spec = parse_perf_spec(spec)?;
    let mut links = Vec::new();
    for cpu in cpus::online().map_err(|e| AttachError::OnlineCpus(e.to_string()))? {
        // SAFETY: perf_event_attr is plain old data; zero is a valid start.
        let mut attr: libbpf_sys::perf_event_attr = unsafe { std::mem::zeroed() };
        attr.type_ = spec.type_;
        attr.size = std::mem::size_of::<libbpf_sys::perf_event_attr>() as u32;
        attr.config = spec.config;
        match (spec.frequency, spec.period) {
            (Some(freq), _) => {
                attr.__bindgen_anon_1.sample_freq = freq;
                attr.set_freq(1);
            }
            (None, Some(period)) => attr.__bindgen_anon_1.sample_period = period,
            (None, None) => {}
        }
        // SAFETY: attr is valid for the call; pid -1 with a cpu means all tasks on that cpu.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                &attr as *const _,
                -1i32,
                cpu as i32,
                -1i32,
                libbpf_sys::PERF_FLAG_FD_CLOEXEC as libc::c_ulong,
            )
        } as i32;
        if fd < 0 {
            let errno = last_errno();
            // PERF_TYPE_HARDWARE and PERF_TYPE_HW_CACHE need a PMU; without
            // one the kernel answers ENOENT.
            if matches!(spec.type_, 0 | 3) && errno == libc::ENOENT && !has_cpu_pmu() {
                return Err(AttachError::NoPmu {
                    type_: spec.type_,
                    config: spec.config,
                    errno,
                });
            }
            return Err(AttachError::PerfOpen {
                type_: spec.type_,
                config: spec.config,
                cpu,
                errno,
            });
        }
        match prog.attach_perf_event(fd) {
            // The link owns the perf fd from here and closes it on detach.
            Ok(link) => links.push(link),
            Err(e) => {
                let errno = last_errno();
                // SAFETY: fd is ours and was not handed to a link.
                unsafe { libc::close(fd) };
                return Err(other(&format!("perf_event/ on CPU {cpu}"), &e, errno));
            }
        }
    }
    Ok(links)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_perf_sections() {
        let s = parse_perf_spec("type=1,config=0,frequency=99").expect("parses");
        assert_eq!((s.type_, s.config, s.frequency), (1, 0, Some(99)));
        assert!(parse_perf_spec("type=1").is_err());
        assert!(parse_perf_spec("type=1,config=0").is_err());
        assert!(parse_perf_spec("type=x,config=0,frequency=1").is_err());
    }

    #[test]
    fn kprobe_errors_say_what_is_missing() {
        let got = classify_attach(
            "kprobe/tcp_retransmit_skb",
            ErrorKind::NotFound,
            libc::ENOENT,
        );
        let section = "kprobe/tcp_retransmit_skb".to_string();
        let want = if kernel_has_kprobes() {
            AttachError::NoSuchFunction {
                section,
                errno: libc::ENOENT,
            }
        } else {
            AttachError::NoKprobes {
                section,
                errno: libc::ENOENT,
            }
        };
        assert_eq!(got, Some(want));
        assert_eq!(
            classify_attach("tracepoint/x/y", ErrorKind::NotFound, libc::ENOENT),
            Some(AttachError::NoSuchTracepoint {
                section: "tracepoint/x/y".into(),
                errno: libc::ENOENT
            })
        );
        assert_eq!(
            classify_attach(
                "raw_tp/writeback_dirty_folio",
                ErrorKind::NotFound,
                libc::ENOENT
            ),
            Some(AttachError::NoSuchTracepoint {
                section: "raw_tp/writeback_dirty_folio".into(),
                errno: libc::ENOENT
            })
        );
        assert_eq!(
            classify_attach("tracepoint/x/y", ErrorKind::PermissionDenied, libc::EPERM),
            None
        );
    }

    #[test]
    fn fentry_eperm_is_explained_by_what_the_kernel_runs() {
        let f = classify_load_failure(
            "fentry/tcp_retransmit_skb",
            ErrorKind::PermissionDenied,
            libc::EPERM,
            "prog 'x': failed".into(),
        );
        // Whichever this kernel does, the message says so, and only a
        // kernel that refuses even the probe is said to lack trampolines.
        match kernel::trampolines() {
            Trampolines::Refused { .. } => {
                assert!(matches!(f, LoadFailure::NoTrampolines { .. }), "{f:?}");
                assert!(f.to_string().contains("bpf_fentry_test1"), "{f}");
            }
            _ => {
                assert!(matches!(f, LoadFailure::TrampolineRefused { .. }), "{f:?}");
                assert!(f.to_string().contains("runs other"), "{f}");
            }
        }
        let f = classify_load_failure(
            "tp_btf/x",
            ErrorKind::PermissionDenied,
            libc::EPERM,
            "d".into(),
        );
        assert_eq!(
            f,
            LoadFailure::Refused {
                errno: libc::EPERM,
                detail: "d".into()
            }
        );
    }

    #[test]
    fn a_verifier_refusal_of_an_fexit_is_not_called_missing_trampolines() {
        // The verifier's EACCES, which libbpf also calls PermissionDenied.
        let detail = "prog 'x': BPF program load failed: -EACCES; the verifier said: \
                      invalid bpf_context access off=8 size=8";
        let f = classify_load_failure(
            "fexit/do_nanosleep",
            ErrorKind::PermissionDenied,
            libc::EACCES,
            detail.into(),
        );
        // do_nanosleep takes 2 arguments, so an fexit program's slots are
        // 0, 1 and the return value at 2: offset 8 is fine, and the
        // verifier's words are all there is.
        assert_eq!(
            f,
            LoadFailure::Refused {
                errno: libc::EACCES,
                detail: detail.into()
            }
        );
        let detail = detail.replace("off=8", "off=40");
        let f = classify_load_failure(
            "fexit/do_nanosleep",
            ErrorKind::PermissionDenied,
            libc::EACCES,
            detail.clone(),
        );
        assert!(
            matches!(f, LoadFailure::ArgumentCount { args: 2, .. }),
            "{f:?}"
        );
        let text = f.to_string();
        assert!(
            text.contains("do_nanosleep takes 2 arguments on this kernel")
                && text.contains("its return value is at offset 16")
                && text.contains("offset 40"),
            "{text}"
        );
        let f = classify_load_failure(
            "tp_btf/sched_switch",
            ErrorKind::PermissionDenied,
            libc::EACCES,
            detail.replace("off=40", "off=64"),
        );
        let text = f.to_string();
        assert!(
            text.contains("the sched_switch tracepoint passes 4 arguments on this kernel"),
            "{text}"
        );
    }
}
