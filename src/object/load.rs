//! Opens, loads and attaches one config's object.
//!
//! The reference exporter fails a whole config when the kernel refuses any one
//! program. Here the refused program is reported, its autoload turned off,
//! and the rest of the object loaded again, so the config keeps every metric
//! its other programs feed.

use std::collections::{BTreeMap, HashMap};
use std::os::fd::AsFd;
use std::path::Path;

use libbpf_rs::{Link, Object, ObjectBuilder, OpenObject, ProgramAttachType, ProgramType};

use super::attach::{attach_program, describe_load_failure};
use super::libbpf_log;
use super::program_info::prog_info;
use super::source::ObjectBytes;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgramState {
    Attached,
    /// The kernel refused to load it; the reason says why.
    LoadFailed(String),
    /// Loaded, but attaching failed.
    AttachFailed(String),
}

#[derive(Debug, Clone)]
pub struct ProgramStatus {
    pub name: String,
    pub section: String,
    pub state: ProgramState,
    /// Kernel program id and tag, for loaded programs.
    pub id: Option<u32>,
    pub tag: Option<String>,
}

impl ProgramStatus {
    pub fn attached(&self) -> bool {
        self.state == ProgramState::Attached
    }
}

/// A loaded object with its live attachments. Dropping it detaches.
pub struct LoadedObject {
    pub object: Object,
    pub programs: Vec<ProgramStatus>,
    /// Held for their lifetime: dropping a link detaches its program.
    _links: Vec<Link>,
}

pub struct LoadOptions<'a> {
    pub kaddrs: &'a HashMap<String, u64>,
    pub btf_path: Option<&'a Path>,
}

fn open(
    bytes: &ObjectBytes,
    opts: &LoadOptions<'_>,
    disabled: &BTreeMap<String, String>,
) -> Result<OpenObject, String> {
    let mut builder = ObjectBuilder::default();
    if let Some(path) = opts.btf_path {
        builder
            .btf_custom_path(path)
            .map_err(|e| format!("--btf.path {}: {e}", path.display()))?;
    }
    let mut open = builder
        .open_memory(&bytes.bytes)
        .map_err(|e| format!("opening {}: {e}", bytes.origin))?;
    for mut prog in open.progs_mut() {
        if disabled.contains_key(prog.name().to_string_lossy().as_ref()) {
            prog.set_autoload(false);
        }
        set_reference_section_type(&mut prog);
    }
    super::kaddrs::apply(&mut open, &bytes.bytes, opts.kaddrs)?;
    Ok(open)
}

/// The reference exporter's own section names, `xdp/<ifname>` and
/// `perf_event/type=..`, are not libbpf's, so libbpf opens such programs
/// without a type and the kernel would refuse them. They get the type their
/// prefix implies; attaching them is handled in `attach`.
fn set_reference_section_type(prog: &mut libbpf_rs::OpenProgramMut<'_>) {
    if prog.prog_type() != ProgramType::Unspec {
        return;
    }
    let section = prog.section().to_string_lossy().into_owned();
    if section.starts_with("xdp/") {
        prog.set_prog_type(ProgramType::Xdp);
        prog.set_attach_type(ProgramAttachType::Xdp);
    } else if section.starts_with("perf_event/") {
        prog.set_prog_type(ProgramType::PerfEvent);
        prog.set_attach_type(ProgramAttachType::PerfEvent);
    }
}

/// Program names that libbpf's log says failed to load.
fn failed_in_log(lines: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for line in lines {
        // libbpf: "prog 'NAME': failed to load: -1" / "prog 'NAME': BPF program load failed: ..."
        let Some(rest) = line.trim_start_matches("libbpf: ").strip_prefix("prog '") else {
            continue;
        };
        let Some((name, tail)) = rest.split_once("':") else {
            continue;
        };
        if (tail.contains("failed to load") || tail.contains("load failed"))
            && !out.iter().any(|n| n == name)
        {
            out.push(name.to_string());
        }
    }
    out
}

/// Finds which programs cannot load when libbpf's log did not say: each is
/// tried alone. Only runs on the failure path.
fn probe_each(
    bytes: &ObjectBytes,
    opts: &LoadOptions<'_>,
    disabled: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let names: Vec<String> = match open(bytes, opts, disabled) {
        Ok(o) => o
            .progs()
            .map(|p| p.name().to_string_lossy().into_owned())
            .filter(|n| !disabled.contains_key(n))
            .collect(),
        Err(_) => return Vec::new(),
    };
    let mut failed = Vec::new();
    for name in &names {
        let mut only = disabled.clone();
        for other in names.iter().filter(|n| *n != name) {
            only.insert(other.clone(), String::new());
        }
        let Ok(o) = open(bytes, opts, &only) else {
            continue;
        };
        let (result, log) = libbpf_log::capture(|| o.load());
        if let Err(e) = result {
            failed.push((name.clone(), summarize(&e.to_string(), &log, name)));
        }
    }
    failed
}

/// libbpf's lines about one program, short enough for a log line and a
/// page: the failure lines first, since CO-RE relocation chatter about the
/// same program comes earlier in the log and says nothing about the cause.
fn summarize(error: &str, log: &[String], prog: &str) -> String {
    let needle = format!("prog '{prog}'");
    let about: Vec<&str> = log
        .iter()
        .filter(|l| l.contains(&needle) && !l.contains("-- BEGIN") && !l.contains("-- END"))
        .map(|l| l.trim_start_matches("libbpf: "))
        .collect();
    let failing: Vec<&str> = about
        .iter()
        .copied()
        .filter(|l| l.contains("fail") || l.contains("error") || l.contains("invalid"))
        .take(3)
        .collect();
    let detail = if failing.is_empty() {
        about.iter().rev().take(2).rev().copied().collect()
    } else {
        failing
    };
    if detail.is_empty() {
        error.to_string()
    } else {
        format!("{error}: {}", detail.join("; "))
    }
}

/// Loads the object, leaving out programs the kernel refuses, then attaches
/// every loaded program one by one.
pub fn load_object(bytes: &ObjectBytes, opts: &LoadOptions<'_>) -> Result<LoadedObject, String> {
    let mut disabled: BTreeMap<String, String> = BTreeMap::new();
    let object = loop {
        let open_obj = open(bytes, opts, &disabled)?;
        let sections: HashMap<String, String> = open_obj
            .progs()
            .map(|p| {
                (
                    p.name().to_string_lossy().into_owned(),
                    p.section().to_string_lossy().into_owned(),
                )
            })
            .collect();
        let total = sections.len();
        let (result, log) = libbpf_log::capture(|| open_obj.load());
        match result {
            Ok(object) => break object,
            Err(e) => {
                let mut newly: Vec<(String, String)> = failed_in_log(&log)
                    .into_iter()
                    .filter(|n| sections.contains_key(n) && !disabled.contains_key(n))
                    .map(|n| {
                        let reason = summarize(&e.to_string(), &log, &n);
                        (n, reason)
                    })
                    .collect();
                if newly.is_empty() {
                    newly = probe_each(bytes, opts, &disabled);
                }
                if newly.is_empty() || disabled.len() + newly.len() > total {
                    let tail: Vec<&str> =
                        log.iter().rev().take(5).rev().map(String::as_str).collect();
                    return Err(format!(
                        "loading {}: {e}; libbpf said: {}",
                        bytes.origin,
                        tail.join(" | ")
                    ));
                }
                for (name, reason) in newly {
                    let section = sections.get(&name).cloned().unwrap_or_default();
                    let reason = describe_load_failure(&section, &reason);
                    log::warn!(
                        "{}: program {name} ({section}) not loaded: {reason}",
                        bytes.origin
                    );
                    disabled.insert(name, reason);
                }
            }
        }
    };

    let mut programs = Vec::new();
    let mut links = Vec::new();
    for prog in object.progs_mut() {
        let name = prog.name().to_string_lossy().into_owned();
        let section = prog.section().to_string_lossy().into_owned();
        if let Some(reason) = disabled.get(&name) {
            programs.push(ProgramStatus {
                name,
                section,
                state: ProgramState::LoadFailed(reason.clone()),
                id: None,
                tag: None,
            });
            continue;
        }
        let info = prog_info(prog.as_fd());
        let (result, log) = libbpf_log::capture(|| attach_program(&prog, &section));
        let state = match result {
            Ok(mut new_links) => {
                links.append(&mut new_links);
                ProgramState::Attached
            }
            Err(reason) => {
                let detail: Vec<&str> = log
                    .iter()
                    .filter(|l| l.contains(&name) || l.contains("failed"))
                    .map(|l| l.trim_start_matches("libbpf: "))
                    .take(2)
                    .collect();
                let reason = if detail.is_empty() {
                    reason
                } else {
                    format!("{reason} (libbpf: {})", detail.join("; "))
                };
                log::warn!(
                    "{}: program {name} ({section}) not attached: {reason}",
                    bytes.origin
                );
                ProgramState::AttachFailed(reason)
            }
        };
        programs.push(ProgramStatus {
            name,
            section,
            state,
            id: info.as_ref().map(|i| i.id),
            tag: info.map(|i| i.tag),
        });
    }
    Ok(LoadedObject {
        object,
        programs,
        _links: links,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_prefers_the_failure_over_relocation_lines() {
        let log = vec![
            "libbpf: prog 'f': relo #0: patched insn #8".to_string(),
            "libbpf: prog 'f': relo #1: patched insn #9".to_string(),
            "libbpf: prog 'f': relo #2: patched insn #10".to_string(),
            "libbpf: prog 'f': BPF program load failed: -EPERM".to_string(),
        ];
        let s = summarize("Permission denied", &log, "f");
        assert!(
            s.contains("load failed: -EPERM") && !s.contains("relo #"),
            "{s}"
        );
    }

    #[test]
    fn finds_failed_programs_in_libbpf_log() {
        let log = vec![
            "libbpf: prog 'good': loaded".to_string(),
            "libbpf: prog 'bad_fentry': BPF program load failed: Permission denied".to_string(),
            "libbpf: prog 'bad_fentry': failed to load: -1".to_string(),
        ];
        assert_eq!(failed_in_log(&log), vec!["bad_fentry".to_string()]);
    }
}
