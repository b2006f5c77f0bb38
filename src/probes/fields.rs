//! What a probe can read at its hook: the hook's own fields, and the
//! built-ins every hook has. `ebpf-exporter fields HOOK` prints this list,
//! and `plan` resolves a config's field names against it.

use crate::host::tracefs::{self, EventField, FieldKind};

use super::skel::types::ee_probe_source as Source;

/// Where a probe runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hook {
    Tracepoint { category: String, event: String },
}

impl Hook {
    /// The section its program attaches as.
    pub fn section(&self) -> String {
        match self {
            Hook::Tracepoint { category, event } => format!("tracepoint/{category}/{event}"),
        }
    }
}

/// Parses `tracepoint/CATEGORY/NAME` (or `tp/`). Other kinds are named in
/// the refusal, so that nobody guesses.
pub fn parse_hook(hook: &str) -> Result<Hook, String> {
    let hook = hook.trim();
    if let Some(rest) = hook
        .strip_prefix("tracepoint/")
        .or_else(|| hook.strip_prefix("tp/"))
    {
        return match rest.split_once('/') {
            Some((category, event)) if !category.is_empty() && !event.is_empty() && !event.contains('/') => {
                Ok(Hook::Tracepoint {
                    category: category.to_string(),
                    event: event.to_string(),
                })
            }
            _ => Err(format!(
                "{hook:?}: a tracepoint hook is tracepoint/CATEGORY/NAME, as in tracepoint/syscalls/sys_enter_write"
            )),
        };
    }
    let kind = hook.split('/').next().unwrap_or(hook);
    Err(format!(
        "{hook:?}: probes run on tracepoint/CATEGORY/NAME hooks; {kind:?} hooks are not supported by probes yet (write a BPF program for them, or use a tracepoint)"
    ))
}

/// One field a probe can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    /// Its C type, for listings and messages.
    pub what: String,
    pub source: Source,
    /// In the event's record, for record fields.
    pub offset: u32,
    /// Bytes: the integer's width, or the text's room.
    pub size: u32,
    pub signed: bool,
    pub kind: FieldKind,
}

impl Field {
    pub fn is_text(&self) -> bool {
        matches!(self.kind, FieldKind::Chars | FieldKind::DataLocChars)
    }
}

/// Room a `__data_loc` string takes in a key: paths and names longer than
/// this are cut.
pub const DATA_LOC_TEXT: u32 = 32;

/// Built-ins: (name, source, size, C type).
const BUILT_INS: [(&str, Source, u32, &str); 6] = [
    ("pid", Source::EE_PROBE_PID, 4, "u32: the process id (tgid)"),
    ("tid", Source::EE_PROBE_TID, 4, "u32: the thread id"),
    (
        "comm",
        Source::EE_PROBE_COMM,
        16,
        "char[16]: the thread's command",
    ),
    (
        "cgroup",
        Source::EE_PROBE_CGROUP,
        8,
        "u64: the cgroup v2 id",
    ),
    ("cpu", Source::EE_PROBE_CPU, 4, "u32: the CPU"),
    ("uid", Source::EE_PROBE_UID, 4, "u32: the user id"),
];

/// The hook's fields, then the built-ins it does not shadow (a record
/// field named `pid` is the record's).
pub fn fields_of(hook: &Hook) -> Result<Vec<Field>, String> {
    let Hook::Tracepoint { category, event } = hook;
    let record = tracefs::event_format(category, event).map_err(|e| e.to_string())?;
    let mut out: Vec<Field> = record.iter().map(record_field).collect();
    for (name, source, size, what) in BUILT_INS {
        if out.iter().any(|f| f.name == name) {
            continue;
        }
        out.push(Field {
            name: name.to_string(),
            what: what.to_string(),
            source,
            offset: 0,
            size,
            signed: false,
            kind: if source == Source::EE_PROBE_COMM {
                FieldKind::Chars
            } else {
                FieldKind::Int
            },
        });
    }
    Ok(out)
}

fn record_field(f: &EventField) -> Field {
    let (source, size) = match f.kind {
        FieldKind::DataLocChars => (Source::EE_PROBE_RECORD_STR, DATA_LOC_TEXT),
        _ => (Source::EE_PROBE_RECORD, f.size),
    };
    Field {
        name: f.name.clone(),
        what: f.decl.clone(),
        source,
        offset: f.offset,
        size,
        signed: f.signed,
        kind: f.kind.clone(),
    }
}

/// `fields`'s listing: name, type, and what a probe can do with it.
pub fn describe(fields: &[Field]) -> String {
    let mut out = String::new();
    let width = fields.iter().map(|f| f.name.len()).max().unwrap_or(0);
    for f in fields {
        let use_ = match f.kind {
            FieldKind::Int => "label, value, filter",
            FieldKind::Chars | FieldKind::DataLocChars => "label (decoder: string)",
            FieldKind::Pointer => "filter (a kernel address: never a label)",
            FieldKind::Array => "none (an array)",
        };
        let at = if f.source == Source::EE_PROBE_RECORD {
            format!("offset {}, {} bytes", f.offset, f.size)
        } else if f.source == Source::EE_PROBE_RECORD_STR {
            format!("located at offset {}, up to {} bytes", f.offset, f.size)
        } else {
            "built-in".to_string()
        };
        out.push_str(&format!("{:width$}  {}  ({at}; {use_})\n", f.name, f.what));
    }
    out
}
