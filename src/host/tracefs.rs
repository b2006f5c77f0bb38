//! `tracepoint/` programs need tracefs to resolve event ids. Minimal hosts
//! and containers often lack the mount, so it is mounted on demand.

use std::path::Path;

const TRACEFS: &str = "/sys/kernel/tracing";
const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";

pub fn is_available() -> bool {
    Path::new(TRACEFS).join("events").exists() || Path::new(DEBUGFS_TRACING).join("events").exists()
}

/// tracefs is not mounted, and mounting it failed with this errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountError {
    pub errno: i32,
}

impl std::fmt::Display for MountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "tracefs is not mounted and mounting it failed ({}); mount it with: mount -t tracefs tracefs {TRACEFS}",
            std::io::Error::from_raw_os_error(self.errno)
        )
    }
}

impl std::error::Error for MountError {}

/// Mounts tracefs at /sys/kernel/tracing if no tracing events are visible.
pub fn ensure_mounted() -> Result<(), MountError> {
    if is_available() {
        return Ok(());
    }
    let target = c"/sys/kernel/tracing";
    let fstype = c"tracefs";
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        return Err(MountError { errno });
    }
    log::info!("mounted tracefs at {TRACEFS}");
    Ok(())
}

/// The tracing directory with events in it: tracefs, or debugfs's copy.
fn events_dir() -> Option<std::path::PathBuf> {
    [TRACEFS, DEBUGFS_TRACING]
        .iter()
        .map(|d| Path::new(d).join("events"))
        .find(|p| p.exists())
}

/// What one field of a tracepoint's record holds, as its format file
/// declares it (a stable ABI: the offsets and sizes are the kernel's own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldKind {
    Int,
    /// A kernel address.
    Pointer,
    /// `char x[N]`: text, NUL-padded.
    Chars,
    /// `__data_loc char[] x`: text stored after the fixed fields; the field
    /// itself is a u32 locator (offset in the low half, length above).
    DataLocChars,
    /// Other arrays and dynamic arrays (and, from BTF, structs, unions and
    /// floats), which no key field can take whole.
    Array,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventField {
    pub name: String,
    /// The C declaration as the kernel prints it (`const char * buf`).
    pub decl: String,
    pub offset: u32,
    pub size: u32,
    pub signed: bool,
    pub kind: FieldKind,
}

/// Why an event's format could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("{0}")]
    Mount(MountError),
    #[error("this kernel has no tracepoint category {category:?}; it has: {}", available.join(", "))]
    NoCategory {
        category: String,
        available: Vec<String>,
    },
    #[error("this kernel has no tracepoint {category}/{event}; {category} has: {}", available.join(", "))]
    NoEvent {
        category: String,
        event: String,
        available: Vec<String>,
    },
    #[error("reading {path}: {reason}")]
    Read { path: String, reason: String },
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The fields of tracepoint `category/event`, common fields left out, in
/// record order.
pub fn event_format(category: &str, event: &str) -> Result<Vec<EventField>, FormatError> {
    ensure_mounted().map_err(FormatError::Mount)?;
    let Some(events) = events_dir() else {
        return Err(FormatError::Mount(MountError {
            errno: libc::ENOENT,
        }));
    };
    let bad = |s: &str| s.is_empty() || s.contains(['/', '\0']) || s.starts_with('.');
    let cat_dir = events.join(category);
    if bad(category) || !cat_dir.is_dir() {
        return Err(FormatError::NoCategory {
            category: category.to_string(),
            available: names_in(&events),
        });
    }
    let path = cat_dir.join(event).join("format");
    if bad(event) || !path.exists() {
        return Err(FormatError::NoEvent {
            category: category.to_string(),
            event: event.to_string(),
            available: names_in(&cat_dir),
        });
    }
    let text = std::fs::read_to_string(&path).map_err(|e| FormatError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(parse_format(&text))
}

/// Parses a format file's `field:DECL; offset:N; size:N; signed:N;`
/// lines, leaving out the `common_` fields every event shares.
pub fn parse_format(text: &str) -> Vec<EventField> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut decl = None;
        let (mut offset, mut size, mut signed) = (None, None, false);
        for part in line.trim().split(';') {
            let part = part.trim();
            if let Some(d) = part.strip_prefix("field:") {
                decl = Some(d.trim().to_string());
            } else if let Some(v) = part.strip_prefix("offset:") {
                offset = v.parse().ok();
            } else if let Some(v) = part.strip_prefix("size:") {
                size = v.parse().ok();
            } else if let Some(v) = part.strip_prefix("signed:") {
                signed = v == "1";
            }
        }
        let (Some(decl), Some(offset), Some(size)) = (decl, offset, size) else {
            continue;
        };
        let Some(name) = field_name(&decl) else {
            continue;
        };
        if name.starts_with("common_") {
            continue;
        }
        let kind = if decl.starts_with("__data_loc") || decl.starts_with("__rel_loc") {
            if decl.contains("char") && decl.starts_with("__data_loc") {
                FieldKind::DataLocChars
            } else {
                FieldKind::Array
            }
        } else if decl.contains('[') {
            if decl.contains("char") {
                FieldKind::Chars
            } else {
                FieldKind::Array
            }
        } else if decl.contains('*') {
            FieldKind::Pointer
        } else {
            FieldKind::Int
        };
        out.push(EventField {
            name,
            decl,
            offset,
            size,
            signed,
            kind,
        });
    }
    out
}

/// `buf` of `const char * buf`, `comm` of `char comm[16]`, `filename` of
/// `__data_loc char[] filename`.
fn field_name(decl: &str) -> Option<String> {
    let before_array = match decl.rfind('[') {
        // `char comm[16]`: the name is before the brackets; `char[] name`
        // (data_loc) has them before the name.
        Some(i) if decl[i..].contains(']') && decl[i..].trim_end().ends_with(']') => &decl[..i],
        _ => decl,
    };
    let name: String = before_array
        .trim_end()
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXEC: &str = "name: sched_process_exec\nID: 365\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\tfield:__data_loc char[] filename;\toffset:8;\tsize:4;\tsigned:0;\n\tfield:pid_t pid;\toffset:12;\tsize:4;\tsigned:1;\n\tfield:char comm[16];\toffset:16;\tsize:16;\tsigned:0;\n\tfield:const char * buf;\toffset:32;\tsize:8;\tsigned:0;\n\tfield:unsigned long args[6];\toffset:40;\tsize:48;\tsigned:0;\n\nprint fmt: \"filename=%s\", __get_str(filename)\n";

    #[test]
    fn reads_every_kind_of_field_and_leaves_out_the_common_ones() {
        let f = parse_format(EXEC);
        let got: Vec<(&str, u32, u32, bool, FieldKind)> = f
            .iter()
            .map(|f| (f.name.as_str(), f.offset, f.size, f.signed, f.kind.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("filename", 8, 4, false, FieldKind::DataLocChars),
                ("pid", 12, 4, true, FieldKind::Int),
                ("comm", 16, 16, false, FieldKind::Chars),
                ("buf", 32, 8, false, FieldKind::Pointer),
                ("args", 40, 48, false, FieldKind::Array),
            ]
        );
    }
}
