//! Opens, loads and attaches one config's object.
//!
//! The reference exporter fails a whole config when the kernel refuses any one
//! program. Here the refused program is reported, its autoload turned off,
//! and the rest of the object loaded again, so the config keeps every metric
//! its other programs feed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::fd::AsFd;
use std::path::Path;

use libbpf_rs::{
    Link, MapCore, MapHandle, Object, ObjectBuilder, OpenObject, ProgramAttachType, ProgramType,
};

use super::alternatives::{Alternatives, LeftOut, PassedOver, UnusedProgram};
use super::attach::{attach_program, classify_load_failure};
use super::error::{last_errno, AttachError, LoadFailure, MapLookupError, ObjectError};
use super::libbpf_log;
use super::line_info::LineIndex;
use super::map_types::{self, MapTypeInfo};
use super::program_info::prog_info;
use super::source::ObjectBytes;
use crate::host::kernel;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgramState {
    Attached,
    /// The kernel refused to load it; the reason says why.
    LoadFailed(LoadFailure),
    /// Loaded, but attaching failed.
    AttachFailed(AttachError),
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
    /// Map key and value types, for binding labels to struct members.
    pub types: Option<super::btf::ObjectTypes>,
    /// Maps left uncreated because this kernel lacks their type, by name.
    pub absent_maps: BTreeMap<String, &'static MapTypeInfo>,
    /// Alternatives (`programs.one_of`) not loaded because another runs.
    pub unused: Vec<UnusedProgram>,
    /// Programs the config leaves out (`programs.include`, `exclude`).
    pub left_out: Vec<LeftOut>,
    /// Held for their lifetime: dropping a link detaches its program.
    _links: Vec<Link>,
}

impl LoadedObject {
    /// Descriptors of its loaded programs, for statistics read at scrape
    /// time: asking by descriptor needs no capability, where looking a
    /// program up by id needs CAP_SYS_ADMIN, which serving has dropped.
    pub fn program_fds(&self) -> Vec<std::os::fd::OwnedFd> {
        use std::os::fd::AsFd;
        let loaded = |name: &str| {
            self.programs
                .iter()
                .any(|p| p.name == name && p.id.is_some())
        };
        self.object
            .progs()
            .filter(|p| loaded(&p.name().to_string_lossy()))
            .filter_map(|p| p.as_fd().try_clone_to_owned().ok())
            .collect()
    }

    /// A handle on the object's map `name`, by libbpf's name for it (the
    /// kernel's is cut to 15 characters).
    pub fn map_handle(&self, name: &str) -> Result<MapHandle, MapLookupError> {
        if let Some(t) = self.absent_maps.get(name) {
            return Err(MapLookupError::NotCreated {
                name: name.to_string(),
                map_type: t.name,
                since: t.since,
                release: kernel::release().to_string(),
            });
        }
        let map = self
            .object
            .maps()
            .find(|m| m.name().to_str() == Some(name))
            .ok_or_else(|| MapLookupError::Missing {
                name: name.to_string(),
                available: self
                    .object
                    .maps()
                    .map(|m| m.name().to_string_lossy().into_owned())
                    .filter(|n| {
                        !n.starts_with('.')
                            && !n.contains(".rodata")
                            && !n.contains(".bss")
                            && !n.contains(".data")
                    })
                    .collect(),
            })?;
        MapHandle::try_from(&map).map_err(|e| MapLookupError::Handle {
            name: name.to_string(),
            errno: last_errno(),
            reason: e.to_string(),
        })
    }
}

pub struct LoadOptions<'a> {
    pub kaddrs: &'a HashMap<String, u64>,
    pub btf_path: Option<&'a Path>,
    /// Groups of programs of which the first that loads and attaches runs.
    pub alternatives: &'a [Vec<String>],
    /// `programs.include` and `programs.exclude`.
    pub include: &'a [String],
    pub exclude: &'a [String],
    /// `programs.attach`: program name → the section to attach it as.
    pub attach: &'a BTreeMap<String, String>,
    /// `constants:`, by global variable name.
    pub constants: &'a BTreeMap<String, serde_yaml::Value>,
    /// `maps:`, by map name.
    pub maps: &'a BTreeMap<String, crate::config::model::MapSettings>,
    /// `maps.NAME.entries`, as the key and value bytes to write after load
    /// and before attach. Encoding them takes the decoders, which live
    /// above this layer: the caller passes the encoder, and this layer
    /// calls it with the object's BTF once the object is open.
    pub entries: Option<&'a EncodeEntries<'a>>,
    /// Globals as bytes the caller laid out with a skeleton's typed
    /// structs (the generic probe's specs), by name; each must be exactly
    /// its global's size in BTF.
    pub typed_globals: &'a [(String, Vec<u8>)],
}

/// Map name, key bytes and value bytes of every entry a config fills.
pub type MapEntries = Vec<(String, Vec<u8>, Vec<u8>)>;

/// Encodes a config's map entries against the object's BTF (key and value
/// sizes come from the object's maps).
pub type EncodeEntries<'a> =
    dyn Fn(Option<&super::btf::ObjectTypes>, &Object) -> Result<MapEntries, ObjectError> + 'a;

/// Sections whose attach target libbpf resolves at load time, from the
/// kernel's BTF: an override must be set before load.
const TARGET_AT_LOAD: &[&str] = &["fentry/", "fexit/", "fmod_ret/", "tp_btf/", "lsm/"];

fn open(
    bytes: &ObjectBytes,
    opts: &LoadOptions<'_>,
    disabled: &BTreeSet<String>,
) -> Result<OpenObject, ObjectError> {
    let mut builder = ObjectBuilder::default();
    // A name with a NUL cannot come from a file name or a built-in one.
    let _ = builder.name(bytes.name());
    if let Some(path) = opts.btf_path {
        builder
            .btf_custom_path(path)
            .map_err(|e| ObjectError::BtfPath {
                path: path.display().to_string(),
                errno: last_errno(),
                reason: e.to_string(),
            })?;
    }
    let (opened, log) = libbpf_log::capture(|| {
        builder
            .open_memory(&bytes.bytes)
            .map_err(|e| (e, last_errno()))
    });
    let mut open = opened.map_err(|(e, errno)| ObjectError::Open {
        origin: bytes.origin.clone(),
        errno,
        reason: e.to_string(),
        libbpf: failure_lines(&log, None, 3),
    })?;
    for mut prog in open.progs_mut() {
        let name = prog.name().to_string_lossy().into_owned();
        if disabled.contains(&name) {
            prog.set_autoload(false);
        }
        set_reference_section_type(&mut prog);
        if let Some(section) = opts.attach.get(&name) {
            set_attach_override(&mut prog, &name, section)?;
        }
    }
    for mut map in open.maps_mut() {
        if absent_type(raw_map_type(&map)).is_some() {
            // Programs that reach it fail to load with libbpf's "referenced
            // but wasn't created", named below; the rest of the object,
            // and any fallback its programs take where
            // bpf_core_enum_value_exists says the type is missing, load.
            let _ = map.set_autocreate(false);
        }
    }
    super::kaddrs::apply(&mut open, &bytes.bytes, opts.kaddrs).map_err(ObjectError::Kaddrs)?;
    if !opts.constants.is_empty() || !opts.maps.is_empty() || !opts.typed_globals.is_empty() {
        // One read of the object's BTF serves all three.
        let types = super::btf::ObjectTypes::of_open(&open);
        set_constants(&mut open, types.as_ref(), opts.constants)?;
        set_typed_globals(&mut open, types.as_ref(), opts.typed_globals)?;
        size_maps(&mut open, types.as_ref(), opts.maps)?;
    }
    Ok(open)
}

/// Writes globals laid out by typed structs, after checking each against
/// its size in BTF: a skeleton built from other source would not fit.
fn set_typed_globals(
    open: &mut OpenObject,
    types: Option<&super::btf::ObjectTypes>,
    typed: &[(String, Vec<u8>)],
) -> Result<(), ObjectError> {
    use super::constants::{self, Assignment, ConstantError};
    let Some((first, _)) = typed.first() else {
        return Ok(());
    };
    let Some(types) = types else {
        return Err(ObjectError::Constant(first.clone(), ConstantError::NoBtf));
    };
    let globals = types.btf.globals();
    let mut assignments = Vec::with_capacity(typed.len());
    for (name, bytes) in typed {
        let global =
            constants::find(&globals, name).map_err(|e| ObjectError::Constant(name.clone(), e))?;
        if global.size as usize != bytes.len() {
            return Err(ObjectError::Constant(
                name.clone(),
                ConstantError::Type {
                    name: name.clone(),
                    ty: types.btf.describe(global.ty),
                    why: format!("{} bytes given for {} in BTF", bytes.len(), global.size),
                },
            ));
        }
        assignments.push(Assignment {
            name: name.clone(),
            section: global.section.clone(),
            offset: global.offset as usize,
            bytes: bytes.clone(),
        });
    }
    constants::apply(open, &assignments).map_err(|e| ObjectError::Constant(first.clone(), e))
}

/// Writes `constants:` into the globals' sections.
fn set_constants(
    open: &mut OpenObject,
    types: Option<&super::btf::ObjectTypes>,
    constants: &BTreeMap<String, serde_yaml::Value>,
) -> Result<(), ObjectError> {
    use super::constants::{self, ConstantError};
    let Some((first, _)) = constants.iter().next() else {
        return Ok(());
    };
    let Some(types) = types else {
        return Err(ObjectError::Constant(first.clone(), ConstantError::NoBtf));
    };
    let globals = types.btf.globals();
    let assignments = constants
        .iter()
        .map(|(name, value)| {
            constants::assign(&types.btf, &globals, name, value)
                .map_err(|e| ObjectError::Constant(name.clone(), e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    constants::apply(open, &assignments).map_err(|e| {
        let name = match &e {
            ConstantError::NoSection { name, .. } => name.clone(),
            _ => first.clone(),
        };
        ObjectError::Constant(name, e)
    })
}

/// Applies `maps:` sizes. A value size may change only where no BTF type
/// says otherwise: the kernel checks the two agree.
fn size_maps(
    open: &mut OpenObject,
    types: Option<&super::btf::ObjectTypes>,
    maps: &BTreeMap<String, crate::config::model::MapSettings>,
) -> Result<(), ObjectError> {
    if maps.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = open
        .maps()
        .map(|m| m.name().to_string_lossy().into_owned())
        .filter(|n| !n.contains('.'))
        .collect();
    for (name, settings) in maps {
        let err = |key: &'static str, message: String| ObjectError::MapSetting {
            map: name.clone(),
            key,
            message,
        };
        let mut map = open
            .maps_mut()
            .find(|m| m.name().to_str() == Some(name.as_str()))
            .ok_or_else(|| {
                err(
                    "",
                    format!(
                        "the object has no map {name:?}; its maps: {}",
                        names.join(", ")
                    ),
                )
            })?;
        if let Some(n) = settings.max_entries {
            if n == 0 {
                return Err(err("max_entries", "max_entries must be at least 1".into()));
            }
            map.set_max_entries(n)
                .map_err(|e| err("max_entries", format!("setting max_entries of {name}: {e}")))?;
        }
        if let Some(size) = settings.value_size {
            let btf_size = types.as_ref().and_then(|t| {
                let ty = t.value(name)?;
                Some((t.btf.describe(ty), t.btf.size_of(ty)?))
            });
            if let Some((ty, have)) = btf_size.filter(|(_, have)| *have != u64::from(size)) {
                return Err(err(
                    "value_size",
                    format!("map {name}'s value is {ty} ({have} bytes) in BTF, and the kernel refuses a value_size that disagrees"),
                ));
            }
            map.set_value_size(size)
                .map_err(|e| err("value_size", format!("setting value_size of {name}: {e}")))?;
        }
        if let Some(size) = settings.key_size {
            if let Some(ty) = types
                .as_ref()
                .and_then(|t| t.key(name).map(|k| t.btf.describe(k)))
            {
                return Err(err(
                    "key_size",
                    format!("map {name}'s key is {ty} in BTF, and the kernel refuses a key_size that disagrees"),
                ));
            }
            map.set_key_size(size)
                .map_err(|e| err("key_size", format!("setting key_size of {name}: {e}")))?;
        }
    }
    Ok(())
}

/// For sections whose target libbpf resolves at load (fentry, tp_btf...),
/// sets the override's target now; other overrides are attached by
/// `attach::attach_program` with the overriding section.
fn set_attach_override(
    prog: &mut libbpf_rs::OpenProgramMut<'_>,
    name: &str,
    section: &str,
) -> Result<(), ObjectError> {
    let Some(prefix) = TARGET_AT_LOAD.iter().find(|p| section.starts_with(**p)) else {
        return Ok(());
    };
    let own = prog.section().to_string_lossy().into_owned();
    // A bare `SEC("fentry")` names its kind and leaves the target open.
    if !own.starts_with(prefix) && own != prefix.trim_end_matches('/') {
        return Err(ObjectError::AttachOverride {
            program: name.to_string(),
            message: format!(
                "program {name} is a {own} program, and its target can be changed only to another {prefix} one, not {section}"
            ),
        });
    }
    let target = &section[prefix.len()..];
    prog.set_attach_target(0, Some(target.to_string()))
        .map_err(|e| ObjectError::AttachOverride {
            program: name.to_string(),
            message: format!("program {name}: attach target {target}: {e}"),
        })
}

/// The map's type number as libbpf has it (libbpf-rs names only the types
/// it knows, and calls CGRP_STORAGE, for one, `Unknown`).
fn raw_map_type<T>(map: &libbpf_rs::OpenMapImpl<'_, T>) -> u32 {
    use libbpf_rs::AsRawLibbpf;
    // SAFETY: a valid map of an open object, which outlives the call.
    unsafe { libbpf_sys::bpf_map__type(map.as_libbpf_object().as_ptr()) }
}

/// Map type `id`, when this kernel cannot create maps of it.
fn absent_type(id: u32) -> Option<&'static MapTypeInfo> {
    match kernel::supports_map_type(id) {
        Some(false) => map_types::info(id),
        _ => None,
    }
}

/// A program refused because it reaches a map this kernel could not
/// create, named with the map's type and the release that brought it.
fn map_not_created(
    section: &str,
    detail: &str,
    absent: &BTreeMap<String, &'static MapTypeInfo>,
) -> Option<LoadFailure> {
    absent.iter().find_map(|(name, t)| {
        detail
            .contains(&format!(
                "BPF map '{name}' is referenced but wasn't created"
            ))
            .then(|| LoadFailure::MapNotCreated {
                section: section.to_string(),
                map: name.clone(),
                map_type: t.name,
                since: t.since,
                release: kernel::release().to_string(),
            })
    })
}

/// The lines of a libbpf log that say what went wrong: the first few that
/// report a failure, else the last few, never the verifier log's markers
/// and without libbpf's prefix. `about` narrows them to one program's.
fn failure_lines(log: &[String], about: Option<&str>, keep: usize) -> Vec<String> {
    let lines: Vec<&str> = log
        .iter()
        .filter(|l| !l.contains("-- BEGIN") && !l.contains("-- END"))
        .filter(|l| about.is_none_or(|needle| l.contains(needle)))
        .map(|l| l.trim_start_matches("libbpf: "))
        .collect();
    let failing: Vec<String> = lines
        .iter()
        .filter(|l| l.contains("fail") || l.contains("error") || l.contains("invalid"))
        .take(keep)
        .map(|l| l.to_string())
        .collect();
    if !failing.is_empty() {
        return failing;
    }
    let tail = lines.len().saturating_sub(keep);
    lines[tail..].iter().map(|l| l.to_string()).collect()
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

/// The error of loading the object with every program left out, if that
/// fails too.
fn object_wide_failure(
    bytes: &ObjectBytes,
    opts: &LoadOptions<'_>,
    all: &BTreeSet<String>,
) -> Option<ObjectError> {
    let o = match open(bytes, opts, all) {
        Ok(o) => o,
        Err(e) => return Some(e),
    };
    let (result, log) = libbpf_log::capture(|| o.load().map_err(|e| (e, last_errno())));
    result.err().map(|(e, errno)| ObjectError::Load {
        origin: bytes.origin.clone(),
        errno,
        reason: e.to_string(),
        libbpf: failure_lines(&log, None, 3),
    })
}

/// Finds which programs cannot load when libbpf's log did not say: each is
/// tried alone. Only runs on the failure path.
fn probe_each(
    bytes: &ObjectBytes,
    opts: &LoadOptions<'_>,
    disabled: &BTreeSet<String>,
) -> Vec<(String, Failed)> {
    let names: Vec<String> = match open(bytes, opts, disabled) {
        Ok(o) => o
            .progs()
            .map(|p| p.name().to_string_lossy().into_owned())
            .filter(|n| !disabled.contains(n))
            .collect(),
        Err(_) => return Vec::new(),
    };
    let mut failed = Vec::new();
    for name in &names {
        let mut only = disabled.clone();
        only.extend(names.iter().filter(|n| *n != name).cloned());
        let Ok(o) = open(bytes, opts, &only) else {
            continue;
        };
        let (result, log) = libbpf_log::capture(|| o.load().map_err(|e| (e, last_errno())));
        if let Err((e, errno)) = result {
            failed.push((
                name.clone(),
                Failed {
                    kind: e.kind(),
                    errno,
                    detail: summarize(
                        &e.to_string(),
                        &log,
                        name,
                        &LineIndex::of_object(&bytes.bytes),
                    ),
                },
            ));
        }
    }
    failed
}

/// One program's load failure, before it is classified.
struct Failed {
    kind: libbpf_rs::ErrorKind,
    errno: i32,
    detail: String,
}

/// libbpf's lines about one program, short enough for a log line and a
/// page: the failure lines first, since CO-RE relocation chatter about the
/// same program comes earlier in the log and says nothing about the cause.
fn summarize(error: &str, log: &[String], prog: &str, lines: &LineIndex) -> String {
    let detail = failure_lines(log, Some(&format!("prog '{prog}'")), 3);
    let mut out = if detail.is_empty() {
        error.to_string()
    } else {
        format!("{error}: {}", detail.join("; "))
    };
    if let Some(reason) = verifier_reason(log, prog, lines) {
        out.push_str(&format!("; the verifier said: {reason}"));
    }
    out
}

/// The verifier's own reason for refusing `prog`, from its log as libbpf
/// prints it: the last line before the instruction count, with the C
/// source line it was at when the object has line info. Verifiers that
/// quote the line without its place leave that to `lines`.
fn verifier_reason(log: &[String], prog: &str, lines: &LineIndex) -> Option<String> {
    let begin = format!("prog '{prog}': -- BEGIN PROG LOAD LOG --");
    let start = log.iter().position(|l| l.contains(&begin))?;
    let mut found: Vec<&str> = Vec::new();
    for entry in &log[start..] {
        for line in entry.lines() {
            if line.contains("-- END PROG LOAD LOG --") {
                return reason_in(&found, lines);
            }
            if !line.contains("-- BEGIN PROG LOAD LOG --") {
                found.push(line.trim());
            }
        }
    }
    reason_in(&found, lines)
}

fn reason_in(log: &[&str], lines: &LineIndex) -> Option<String> {
    let summary = |l: &&str| {
        l.is_empty()
            || l.starts_with("processed ")
            || l.starts_with("verification time")
            || l.starts_with("stack depth")
    };
    let at = log.iter().rposition(|l| !summary(l))?;
    let reason = log[at];
    // The nearest source annotation before it: `; code @ file.c:42`, or
    // `; code` from verifiers that do not say where.
    let source = log[..at]
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("; "))
        .map(|text| match text.rsplit_once(" @ ") {
            Some((code, place)) => format!(" (at {place}: {})", code.trim()),
            None => match lines.place_of(text) {
                Some(place) => format!(" (at {place}: {})", text.trim()),
                None => format!(" (at: {})", text.trim()),
            },
        })
        .unwrap_or_default();
    Some(format!("{reason}{source}"))
}

/// Loads the object, leaving out programs the kernel refuses, then attaches
/// every loaded program one by one. Of each group of alternatives the first
/// that loads and attaches runs: an alternative that fails to attach is
/// passed over and the object loaded again without it.
pub fn load_object(
    bytes: &ObjectBytes,
    opts: &LoadOptions<'_>,
) -> Result<LoadedObject, ObjectError> {
    let sections: BTreeMap<String, String> = open(bytes, opts, &BTreeSet::new())?
        .progs()
        .map(|p| {
            (
                p.name().to_string_lossy().into_owned(),
                p.section().to_string_lossy().into_owned(),
            )
        })
        .collect();
    let names: BTreeSet<String> = sections.keys().cloned().collect();
    for name in opts.attach.keys() {
        if !names.contains(name) {
            return Err(ObjectError::ProgramChoice {
                key: format!("programs.attach.{name}"),
                name: name.clone(),
                why: "is not a program of the object",
                available: names.iter().cloned().collect(),
            });
        }
    }
    let mut alternatives = Alternatives::new(opts.alternatives, &names)?;
    alternatives.leave_out(opts.include, opts.exclude, &sections)?;
    let mut failed = Failures::default();
    loop {
        let loaded = load_programs(bytes, opts, &mut alternatives, &mut failed)?;
        fill_maps(&loaded, opts)?;
        if let Some(done) = attach_all(bytes, opts.attach, loaded, &mut alternatives, &mut failed) {
            return Ok(done);
        }
    }
}

/// Writes `maps.NAME.entries` into the loaded maps, before any program is
/// attached, so that no event is seen with a filter still empty.
fn fill_maps(loaded: &Loaded, opts: &LoadOptions<'_>) -> Result<(), ObjectError> {
    let Some(encode) = opts.entries else {
        return Ok(());
    };
    for (name, key, value) in encode(loaded.types.as_ref(), &loaded.object)? {
        let map = loaded
            .object
            .maps()
            .find(|m| m.name().to_str() == Some(name.as_str()))
            .ok_or_else(|| ObjectError::MapEntry {
                map: name.clone(),
                at: "entries".into(),
                message: format!("the object has no map {name:?}"),
            })?;
        map.update(&key, &value, libbpf_rs::MapFlags::ANY)
            .map_err(|e| ObjectError::MapEntry {
                map: name.clone(),
                at: "entries".into(),
                message: format!("writing an entry of map {name}: {e}"),
            })?;
    }
    Ok(())
}

/// Programs that will not run, kept across attempts.
#[derive(Default)]
struct Failures {
    /// Refused at load, by name.
    refused: BTreeMap<String, LoadFailure>,
    /// The earlier members of groups whose every member failed, reported
    /// with the last one's failure.
    alternatives: BTreeMap<String, PassedOver>,
}

impl Failures {
    /// `name`, the last of its group, failed too: the earlier members'
    /// failures become the config's, beside its own.
    fn give_up_group(&mut self, alternatives: &Alternatives, origin: &str, name: &str) {
        for (other, why) in alternatives.exhausted(name) {
            log::warn!("{origin}: alternative {other} {why}");
            self.alternatives.insert(other, why);
        }
    }
}

/// What one load produced, before attaching.
struct Loaded {
    object: Object,
    types: Option<super::btf::ObjectTypes>,
    absent: BTreeMap<String, &'static MapTypeInfo>,
}

/// Loads the object with refused programs and the alternatives not being
/// tried left out, adding to `refused` (or passing alternatives over) until
/// the kernel takes it.
fn load_programs(
    bytes: &ObjectBytes,
    opts: &LoadOptions<'_>,
    alternatives: &mut Alternatives,
    failed: &mut Failures,
) -> Result<Loaded, ObjectError> {
    loop {
        let mut disabled: BTreeSet<String> = failed.refused.keys().cloned().collect();
        disabled.extend(alternatives.held_back());
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
        // Taken before loading: a map that libbpf creates again without BTF
        // (a kernel refusing its key type) loses its type ids, but not the
        // object its types.
        let types = super::btf::ObjectTypes::of_open(&open_obj);
        let absent: BTreeMap<String, &'static MapTypeInfo> = open_obj
            .maps()
            .filter_map(|m| {
                let t = absent_type(raw_map_type(&m))?;
                Some((m.name().to_string_lossy().into_owned(), t))
            })
            .collect();
        let (result, log) = libbpf_log::capture(|| open_obj.load().map_err(|e| (e, last_errno())));
        let (e, errno) = match result {
            Ok(object) => {
                return Ok(Loaded {
                    object,
                    types,
                    absent,
                })
            }
            Err(failed) => failed,
        };
        let lines = LineIndex::of_object(&bytes.bytes);
        let mut newly: Vec<(String, Failed)> = failed_in_log(&log)
            .into_iter()
            .filter(|n| sections.contains_key(n) && !disabled.contains(n))
            .map(|n| {
                let detail = summarize(&e.to_string(), &log, &n, &lines);
                (
                    n,
                    Failed {
                        kind: e.kind(),
                        errno,
                        detail,
                    },
                )
            })
            .collect();
        if newly.is_empty() {
            // A failure no program is named in may be the object's own (an
            // extern this kernel lacks, a map it refuses): then it fails
            // with every program left out too, and no program is to blame.
            let all: BTreeSet<String> = sections.keys().cloned().collect();
            if let Some(e) = object_wide_failure(bytes, opts, &all) {
                return Err(e);
            }
            newly = probe_each(bytes, opts, &disabled);
        }
        if newly.is_empty() || disabled.len() + newly.len() > total {
            return Err(ObjectError::Load {
                origin: bytes.origin.clone(),
                errno,
                reason: e.to_string(),
                libbpf: failure_lines(&log, None, 3),
            });
        }
        for (name, refusal) in newly {
            let section = sections.get(&name).cloned().unwrap_or_default();
            // Judged as the section it was loaded for: a placeholder's
            // `programs.attach` target, where it has one.
            let loaded_as = opts.attach.get(&name).unwrap_or(&section);
            let reason = map_not_created(&section, &refusal.detail, &absent).unwrap_or_else(|| {
                classify_load_failure(loaded_as, refusal.kind, refusal.errno, refusal.detail)
            });
            if alternatives.pass_over(&name, PassedOver::Load(reason.clone())) {
                log::info!(
                    "{}: program {name} ({section}) not loaded, trying its alternative: {reason}",
                    bytes.origin
                );
                continue;
            }
            failed.give_up_group(alternatives, &bytes.origin, &name);
            log::warn!(
                "{}: program {name} ({section}) not loaded: {reason}",
                bytes.origin
            );
            failed.refused.insert(name, reason);
        }
    }
}

/// Attaches every loaded program. `None` when an alternative failed to
/// attach and the next one is to be loaded in its place.
fn attach_all(
    bytes: &ObjectBytes,
    attach_as: &BTreeMap<String, String>,
    loaded: Loaded,
    alternatives: &mut Alternatives,
    failed: &mut Failures,
) -> Option<LoadedObject> {
    let Loaded {
        object,
        types,
        absent,
    } = loaded;
    let mut programs = Vec::new();
    let mut links = Vec::new();
    let mut sections = BTreeMap::new();
    let held_back = alternatives.held_back();
    for prog in object.progs_mut() {
        let name = prog.name().to_string_lossy().into_owned();
        let section = prog.section().to_string_lossy().into_owned();
        sections.insert(name.clone(), section.clone());
        if let Some(reason) = failed.refused.get(&name) {
            programs.push(ProgramStatus {
                name,
                section,
                state: ProgramState::LoadFailed(reason.clone()),
                id: None,
                tag: None,
            });
            continue;
        }
        if held_back.contains(&name) {
            continue;
        }
        let info = prog_info(prog.as_fd());
        let target = attach_as.get(&name).unwrap_or(&section).clone();
        let (result, log) = libbpf_log::capture(|| attach_program(&prog, &target));
        let state = match result {
            Ok(mut new_links) => {
                links.append(&mut new_links);
                ProgramState::Attached
            }
            Err(mut reason) => {
                if let AttachError::Other { libbpf, .. } = &mut reason {
                    *libbpf = log
                        .iter()
                        .filter(|l| l.contains(&name) || l.contains("failed"))
                        .take(2)
                        .cloned()
                        .collect();
                }
                if alternatives.pass_over(&name, PassedOver::Attach(reason.clone())) {
                    log::info!(
                        "{}: program {name} ({section}) not attached, trying its alternative: {reason}",
                        bytes.origin
                    );
                    return None;
                }
                failed.give_up_group(alternatives, &bytes.origin, &name);
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
    for (name, why) in &failed.alternatives {
        programs.push(ProgramStatus {
            name: name.clone(),
            section: sections.get(name).cloned().unwrap_or_default(),
            state: match why {
                PassedOver::Load(why) => ProgramState::LoadFailed(why.clone()),
                PassedOver::Attach(why) => ProgramState::AttachFailed(why.clone()),
            },
            id: None,
            tag: None,
        });
    }
    // One line per map type: the probe object alone has eight task
    // storage maps that a 5.10 kernel cannot create.
    let mut by_type: BTreeMap<&str, (&MapTypeInfo, Vec<&str>)> = BTreeMap::new();
    for (name, t) in &absent {
        by_type
            .entry(t.name)
            .or_insert_with(|| (*t, Vec::new()))
            .1
            .push(name.as_str());
    }
    for (type_name, (t, names)) in by_type {
        let since = t.since;
        log::info!(
            "{}: {} {} not created: this kernel ({}) has no {type_name} maps (Linux {since} and later)",
            bytes.origin,
            if names.len() == 1 { "map" } else { "maps" },
            names.join(", "),
            kernel::release(),
        );
    }
    let unused = alternatives.unused(&sections);
    for u in &unused {
        log::info!(
            "{}: program {} ({}) not used: {} runs instead{}",
            bytes.origin,
            u.name,
            u.section,
            u.instead,
            u.why
                .as_ref()
                .map(|w| format!(" ({} {w})", u.name))
                .unwrap_or_default()
        );
    }
    for l in alternatives.left_out() {
        log::debug!(
            "{}: program {} ({}) left out by {}",
            bytes.origin,
            l.name,
            l.section,
            l.by
        );
    }
    Some(LoadedObject {
        object,
        programs,
        types,
        absent_maps: absent,
        unused,
        left_out: alternatives.left_out().to_vec(),
        _links: links,
    })
}

#[cfg(test)]
mod verifier_tests {
    use super::*;

    #[test]
    fn the_verifiers_reason_and_its_source_line() {
        let log: Vec<String> = [
            "prog 'reads_null': BPF program load failed: -EACCES",
            "prog 'reads_null': -- BEGIN PROG LOAD LOG --\n0: R1=ctx() R10=fp0\n; return *hits > 0; @ reload_versions.bpf.c:45\n7: (79) r1 = *(u64 *)(r0 +0)\nR0 invalid mem access 'map_value_or_null'\nprocessed 7 insns (limit 1000000) max_states_per_insn 0\n-- END PROG LOAD LOG --",
            "prog 'reads_null': failed to load: -EACCES",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            verifier_reason(&log, "reads_null", &LineIndex::of_object(&[])).as_deref(),
            Some("R0 invalid mem access 'map_value_or_null' (at reload_versions.bpf.c:45: return *hits > 0;)")
        );
        assert_eq!(
            verifier_reason(&log, "other", &LineIndex::of_object(&[])),
            None
        );
    }

    #[test]
    fn older_verifiers_quote_the_line_and_the_object_says_where_it_is() {
        // Before 6.x the verifier quotes the source line without its place.
        let log: Vec<String> = [
            "prog 'runqlat_switch': -- BEGIN PROG LOAD LOG --\n; if (!tid)\n12: (85) call unknown#2001000000\ninvalid func unknown#2001000000\nprocessed 12 insns\n-- END PROG LOAD LOG --",
        ]
        .map(String::from)
        .to_vec();
        let (_, runqlat) = crate::object::embedded::EMBEDDED
            .iter()
            .find(|(name, _)| *name == "runqlat")
            .expect("built in");
        let line = include_str!("../../bpf/runqlat.bpf.c")
            .lines()
            .position(|l| l.trim() == "if (!tid)")
            .expect("in the source")
            + 1;
        assert_eq!(
            verifier_reason(&log, "runqlat_switch", &LineIndex::of_object(runqlat)),
            Some(format!(
                "invalid func unknown#2001000000 (at runqlat.bpf.c:{line}: if (!tid))"
            ))
        );
        // Without line info, the quoted line alone.
        assert_eq!(
            verifier_reason(&log, "runqlat_switch", &LineIndex::of_object(&[])).as_deref(),
            Some("invalid func unknown#2001000000 (at: if (!tid))")
        );
    }
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
        let s = summarize("Permission denied", &log, "f", &LineIndex::of_object(&[]));
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
