//! Attaches one program by its `SEC()` name, with clear messages for the
//! ways attaching fails in practice (no kprobe support, no tracefs, no BPF
//! trampolines).
//!
//! libbpf's auto-attach covers most section names. Two are the reference
//! exporter's own, and handled here: `perf_event/type=N,config=N,frequency=N`
//! (opened on every online CPU) and `xdp/<ifname>`.

use std::ffi::CString;
use std::path::Path;

use libbpf_rs::{Link, ProgramMut};

use super::tracefs;

pub fn attach_program(prog: &ProgramMut<'_>, section: &str) -> Result<Vec<Link>, String> {
    if let Some(spec) = section.strip_prefix("perf_event/") {
        return attach_perf_event(prog, spec);
    }
    if let Some(ifname) = section.strip_prefix("xdp/") {
        let ifindex = if_index(ifname)?;
        return prog
            .attach_xdp(ifindex as i32)
            .map(|l| vec![l])
            .map_err(|e| format!("attaching XDP to {ifname}: {e}"));
    }
    if !has_attach_target(section) {
        return Err(format!(
            "section {section:?} names no attach target, so it cannot be auto-attached \
             (use e.g. uprobe/PATH:FUNCTION, or a perf_event/type=..,config=..,frequency=.. section)"
        ));
    }
    if section.starts_with("tracepoint/") || section.starts_with("tp/") {
        tracefs::ensure_mounted()?;
    }
    prog.attach()
        .map(|l| vec![l])
        .map_err(|e| explain_attach_error(section, &e.to_string()))
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

fn kernel_has_kprobes() -> bool {
    Path::new("/sys/bus/event_source/devices/kprobe").exists()
        || Path::new("/sys/kernel/tracing/kprobe_events").exists()
        || Path::new("/sys/kernel/debug/tracing/kprobe_events").exists()
}

fn explain_attach_error(section: &str, err: &str) -> String {
    let not_found =
        err.contains("No such file") || err.contains("os error 2") || err.contains("ENOENT");
    if is_kprobe(section) && !kernel_has_kprobes() {
        return format!(
            "this kernel lacks kprobe support (no /sys/bus/event_source/devices/kprobe and no kprobe_events; \
             CONFIG_KPROBES is likely off), so {section} cannot attach; use a tracepoint, raw_tp or tp_btf \
             program instead ({err})"
        );
    }
    if is_kprobe(section) && not_found {
        return format!("kernel function for {section} not found: it may be inlined, renamed or absent on this kernel ({err})");
    }
    if (section.starts_with("tracepoint/") || section.starts_with("tp/")) && not_found {
        return format!("tracepoint for {section} does not exist on this kernel ({err})");
    }
    format!("attaching {section}: {err}")
}

/// Turns the kernel's terse load errors into something an operator can act on.
pub fn describe_load_failure(section: &str, reason: &str) -> String {
    let trampoline = ["fentry/", "fexit/", "fmod_ret/", "lsm/", "freplace/"]
        .iter()
        .any(|p| section.starts_with(p));
    let eperm = reason.contains("Permission denied")
        || reason.contains("EPERM")
        || reason.contains("os error 1");
    if trampoline && eperm {
        return format!(
            "the kernel refused {section} with EPERM: BPF trampolines (fentry/fexit) are unavailable on this \
             kernel (libbpf's RLIMIT_MEMLOCK hint does not apply); use a tracepoint, raw_tp or tp_btf \
             program instead ({reason})"
        );
    }
    reason.to_string()
}

fn if_index(name: &str) -> Result<u32, String> {
    let c = CString::new(name).map_err(|_| format!("bad interface name {name:?}"))?;
    // SAFETY: c is a valid NUL-terminated string.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(format!("no network interface named {name:?}"));
    }
    Ok(idx)
}

struct PerfSpec {
    type_: u32,
    config: u64,
    frequency: Option<u64>,
    period: Option<u64>,
}

fn parse_perf_spec(spec: &str) -> Result<PerfSpec, String> {
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

fn online_cpus() -> Result<Vec<u32>, String> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online")
        .map_err(|e| format!("reading online CPUs: {e}"))?;
    parse_cpu_list(&text)
}

pub fn parse_cpu_list(text: &str) -> Result<Vec<u32>, String> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let bad = || format!("bad CPU list {text:?}");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().map_err(|_| bad())?),
        }
    }
    Ok(cpus)
}

fn attach_perf_event(prog: &ProgramMut<'_>, spec: &str) -> Result<Vec<Link>, String> {
    let spec = parse_perf_spec(spec)?;
    let mut links = Vec::new();
    for cpu in online_cpus()? {
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
            let err = std::io::Error::last_os_error();
            return Err(format!(
                "perf_event_open(type={}, config={}) on CPU {cpu}: {err}",
                spec.type_, spec.config
            ));
        }
        match prog.attach_perf_event(fd) {
            // The link owns the perf fd from here and closes it on detach.
            Ok(link) => links.push(link),
            Err(e) => {
                // SAFETY: fd is ours and was not handed to a link.
                unsafe { libc::close(fd) };
                return Err(format!("attaching to perf event on CPU {cpu}: {e}"));
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
    fn parses_cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,6\n"), Ok(vec![0, 1, 2, 3, 6]));
        assert_eq!(parse_cpu_list("0"), Ok(vec![0]));
        assert!(parse_cpu_list("a-b").is_err());
    }

    #[test]
    fn kprobe_errors_say_what_is_missing() {
        let msg = explain_attach_error(
            "kprobe/tcp_retransmit_skb",
            "No such file or directory (os error 2)",
        );
        if !kernel_has_kprobes() {
            assert!(msg.contains("lacks kprobe support"), "{msg}");
        } else {
            assert!(msg.contains("not found"), "{msg}");
        }
    }

    #[test]
    fn fentry_eperm_is_explained() {
        let msg = describe_load_failure(
            "fentry/tcp_retransmit_skb",
            "Permission denied (os error 1)",
        );
        assert!(msg.contains("trampolines"), "{msg}");
    }
}
