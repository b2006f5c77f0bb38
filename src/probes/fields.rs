//! What a probe can read at its hook: the hook's own fields, and the
//! built-ins every hook has. `ebpf-exporter fields HOOK` prints this list,
//! and `plan` resolves a config's field names against it.

use crate::host::tracefs::{self, EventField, FieldKind};
use crate::object::btf::{Btf, Kind, TypeId};

use super::kernel_btf::{self, Named};

use super::skel::types::ee_probe_source as Source;

/// Where a probe runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hook {
    Tracepoint {
        category: String,
        event: String,
    },
    /// A raw tracepoint: the tracepoint's arguments, typed by BTF, with
    /// no record built for the program.
    RawTp {
        name: String,
    },
    /// The same arguments, through a BTF-typed program (5.5+).
    TpBtf {
        name: String,
    },
    /// A kernel function's entry or return, through a BPF trampoline:
    /// its arguments by name, and at return `ret`.
    Fentry {
        function: String,
    },
    Fexit {
        function: String,
    },
    /// A kernel function through a kprobe: its arguments by name from its
    /// BTF prototype, read from the registers that carry them.
    Kprobe {
        function: String,
    },
    /// Its return: `ret` only (the argument registers are reused by then).
    Kretprobe {
        function: String,
    },
    /// A user-space function (`PATH:FUNCTION[+OFFSET]`, as libbpf spells
    /// it): arguments by position, typed by the config.
    Uprobe {
        target: String,
    },
    Uretprobe {
        target: String,
    },
    /// A USDT probe (`PATH:PROVIDER:NAME`): arguments by index, read by
    /// libbpf's USDT support from wherever the note says each one is.
    Usdt {
        target: String,
    },
}

/// Where x86-64's pt_regs keep the first six integer arguments (di, si,
/// dx, cx, r8, r9) and the return value (ax).
const ARG_REGS: [u32; 6] = [112, 104, 96, 88, 72, 64];
const RET_REG: u32 = 80;
/// Arguments a USDT probe can have (libbpf's BPF_USDT_MAX_ARG_CNT).
const USDT_ARGS: usize = 12;

impl Hook {
    /// The section its program attaches as.
    pub fn section(&self) -> String {
        match self {
            Hook::Tracepoint { category, event } => format!("tracepoint/{category}/{event}"),
            Hook::RawTp { name } => format!("raw_tp/{name}"),
            Hook::TpBtf { name } => format!("tp_btf/{name}"),
            Hook::Fentry { function } => format!("fentry/{function}"),
            Hook::Fexit { function } => format!("fexit/{function}"),
            Hook::Kprobe { function } => format!("kprobe/{function}"),
            Hook::Kretprobe { function } => format!("kretprobe/{function}"),
            Hook::Uprobe { target } => format!("uprobe/{target}"),
            Hook::Uretprobe { target } => format!("uretprobe/{target}"),
            Hook::Usdt { target } => format!("usdt/{target}"),
        }
    }

    /// Whether its arguments are the user's, unnamed and untyped by BTF.
    pub fn user_space(&self) -> bool {
        matches!(
            self,
            Hook::Uprobe { .. } | Hook::Uretprobe { .. } | Hook::Usdt { .. }
        )
    }

    /// The generic program of `slot` that runs at this hook (`start`: the
    /// start side of a latency).
    pub fn program(&self, slot: usize, start: bool) -> String {
        match (self, start) {
            (Hook::Tracepoint { .. }, false) => format!("tracepoint{slot}"),
            (Hook::Tracepoint { .. }, true) => format!("start{slot}"),
            (Hook::RawTp { .. }, false) => format!("raw_tp{slot}"),
            (Hook::RawTp { .. }, true) => format!("raw_start{slot}"),
            (Hook::TpBtf { .. }, false) => format!("tp_btf{slot}"),
            (Hook::TpBtf { .. }, true) => format!("btf_start{slot}"),
            (Hook::Fentry { .. }, false) => format!("fentry{slot}"),
            (Hook::Fentry { .. }, true) => format!("fentry_start{slot}"),
            (Hook::Fexit { .. }, false) => format!("fexit{slot}"),
            (Hook::Fexit { .. }, true) => format!("fexit_start{slot}"),
            // USDT has programs of its own: where the kernel has
            // multi-uprobe links, libbpf loads `usdt` sections for them
            // and attaches USDT probes that way.
            (Hook::Usdt { .. }, false) => format!("usdt{slot}"),
            (Hook::Usdt { .. }, true) => format!("usdt_start{slot}"),
            // One kprobe-type program serves the rest: what differs is
            // only how it is attached.
            (_, false) => format!("kprobe{slot}"),
            (_, true) => format!("kprobe_start{slot}"),
        }
    }
}

/// Every program a slot has, for leaving out the ones it does not use.
pub fn slot_programs(slot: usize) -> [String; 14] {
    [
        format!("tracepoint{slot}"),
        format!("start{slot}"),
        format!("raw_tp{slot}"),
        format!("raw_start{slot}"),
        format!("tp_btf{slot}"),
        format!("btf_start{slot}"),
        format!("fentry{slot}"),
        format!("fentry_start{slot}"),
        format!("fexit{slot}"),
        format!("fexit_start{slot}"),
        format!("kprobe{slot}"),
        format!("kprobe_start{slot}"),
        format!("usdt{slot}"),
        format!("usdt_start{slot}"),
    ]
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
    if let Some(name) = hook
        .strip_prefix("raw_tp/")
        .or_else(|| hook.strip_prefix("raw_tracepoint/"))
    {
        if name.is_empty() || name.contains('/') {
            return Err(format!(
                "{hook:?}: a raw tracepoint hook is raw_tp/NAME, as in raw_tp/sched_switch"
            ));
        }
        return Ok(Hook::RawTp {
            name: name.to_string(),
        });
    }
    type Make = fn(&str) -> Hook;
    let kinds: [(&str, Make); 5] = [
        ("tp_btf/", |n| Hook::TpBtf {
            name: n.to_string(),
        }),
        ("fentry/", |n| Hook::Fentry {
            function: n.to_string(),
        }),
        ("fexit/", |n| Hook::Fexit {
            function: n.to_string(),
        }),
        ("kprobe/", |n| Hook::Kprobe {
            function: n.to_string(),
        }),
        ("kretprobe/", |n| Hook::Kretprobe {
            function: n.to_string(),
        }),
    ];
    for (prefix, make) in kinds {
        if let Some(name) = hook.strip_prefix(prefix) {
            if name.is_empty() || name.contains('/') {
                return Err(format!("{hook:?}: write it as {prefix}NAME"));
            }
            return Ok(make(name));
        }
    }
    // User space: the path may hold '/', and (for USDT) ':'.
    if let Some(target) = hook.strip_prefix("uprobe/") {
        return user_target(hook, target, "uprobe/PATH:FUNCTION[+OFFSET]", 2)
            .map(|target| Hook::Uprobe { target });
    }
    if let Some(target) = hook.strip_prefix("uretprobe/") {
        return user_target(hook, target, "uretprobe/PATH:FUNCTION", 2)
            .map(|target| Hook::Uretprobe { target });
    }
    if let Some(target) = hook.strip_prefix("usdt/") {
        return user_target(hook, target, "usdt/PATH:PROVIDER:NAME", 3)
            .map(|target| Hook::Usdt { target });
    }
    let kind = hook.split('/').next().unwrap_or(hook);
    Err(format!(
        "{hook:?}: probes run on tracepoint/CATEGORY/NAME, raw_tp/NAME, tp_btf/NAME, fentry/FUNCTION, fexit/FUNCTION, kprobe/FUNCTION, kretprobe/FUNCTION, uprobe/PATH:FUNCTION, uretprobe/PATH:FUNCTION and usdt/PATH:PROVIDER:NAME hooks; {kind:?} is none of those"
    ))
}

/// `PATH:A[:B]`, its path absolute and its parts not empty.
fn user_target(hook: &str, target: &str, form: &str, parts: usize) -> Result<String, String> {
    let pieces: Vec<&str> = target.rsplitn(parts, ':').collect();
    let path = pieces.last().copied().unwrap_or("");
    if pieces.len() != parts || pieces.iter().any(|p| p.is_empty()) || !path.starts_with('/') {
        return Err(format!(
            "{hook:?}: write it as {form}, with the binary's or library's absolute path"
        ));
    }
    Ok(target.to_string())
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
    /// An argument's BTF type, from which a path reaches its members.
    pub ty: Option<TypeId>,
    /// For a path: the offset at each pointer followed, the last one the
    /// value's.
    pub hops: Vec<u32>,
    /// A pointer to a struct or union, whose members a path can reach.
    pub members: bool,
    /// For a constant: its value.
    pub constant: u64,
}

impl Field {
    pub fn is_text(&self) -> bool {
        matches!(self.kind, FieldKind::Chars | FieldKind::DataLocChars)
    }

    /// What a field no key or value can take whole is, in words: the
    /// kind groups arrays with structs, unions and floats.
    pub fn shape(&self) -> &'static str {
        let what = self.what.trim_start_matches("const ");
        if what.ends_with(']') {
            "an array"
        } else if what.starts_with("struct ") {
            "a struct"
        } else if what.starts_with("union ") {
            "a union"
        } else {
            "neither an integer nor text"
        }
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

/// A field written as a number (decimal, or hex after `0x`) is that
/// constant: a fixed label, or a fixed amount a sum adds per event. No
/// field name starts with a digit, so none is shadowed.
fn constant(name: &str) -> Option<u64> {
    match name.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None if name.starts_with(|c: char| c.is_ascii_digit()) => name.parse().ok(),
        None => None,
    }
}

/// The hook's fields, then the built-ins it does not shadow (a record
/// field named `pid` is the record's).
pub fn fields_of(hook: &Hook, user: &UserArgs) -> Result<Vec<Field>, String> {
    let mut out: Vec<Field> = match hook {
        Hook::Tracepoint { category, event } => tracefs::event_format(category, event)
            .map_err(|e| e.to_string())?
            .iter()
            .map(record_field)
            .collect(),
        Hook::Fentry { function } | Hook::Fexit { function } => {
            let btf = kernel_btf::vmlinux()?;
            let (params, ret) = kernel_btf::function(&btf, function).ok_or_else(|| {
                format!(
                    "this kernel has no function {function:?} in its BTF (inlined, renamed, or absent){}",
                    kernel_btf::nearest_note(&btf, Named::Function, function)
                )
            })?;
            let mut out: Vec<Field> = params
                .iter()
                .enumerate()
                .map(|(i, (n, ty))| arg_field(&btf, n, *ty, 8 * i as u32))
                .collect();
            if matches!(hook, Hook::Fexit { .. }) {
                if let Some(ret) = ret {
                    out.push(arg_field(&btf, "ret", ret, 8 * params.len() as u32));
                }
            }
            out
        }
        Hook::Kprobe { function } | Hook::Kretprobe { function } => {
            let btf = kernel_btf::vmlinux()?;
            let (params, ret) = kernel_btf::function(&btf, function).ok_or_else(|| {
                format!(
                    "this kernel has no function {function:?} in its BTF (inlined, renamed, or absent){}",
                    kernel_btf::nearest_note(&btf, Named::Function, function)
                )
            })?;
            if matches!(hook, Hook::Kretprobe { .. }) {
                ret.map(|ret| arg_field(&btf, "ret", ret, RET_REG))
                    .into_iter()
                    .collect()
            } else {
                // Arguments past the sixth are on the stack, which a
                // probe does not read.
                params
                    .iter()
                    .zip(ARG_REGS)
                    .map(|((n, ty), reg)| arg_field(&btf, n, *ty, reg))
                    .collect()
            }
        }
        Hook::Uprobe { .. } | Hook::Uretprobe { .. } | Hook::Usdt { .. } => {
            user_fields(hook, user)?
        }
        Hook::RawTp { name } | Hook::TpBtf { name } => {
            let btf = kernel_btf::vmlinux()?;
            let args = kernel_btf::raw_tracepoint_args(&btf, name).ok_or_else(|| {
                format!(
                    "this kernel has no raw tracepoint {name:?} (its BTF has no __bpf_trace_{name}){}; `ebpf-exporter fields tracepoint/CATEGORY/{name}` shows the tracefs one, if any",
                    kernel_btf::nearest_note(&btf, Named::RawTracepoint, name)
                )
            })?;
            args.iter()
                .enumerate()
                .map(|(i, (n, ty))| arg_field(&btf, n, *ty, 8 * i as u32))
                .collect()
        }
    };
    // Arguments load straight from the context where what loads is a
    // number: a raw_tp's and a kprobe's always, a BTF-typed hook's when
    // the argument is an integer (a pointer would load as a typed one).
    let direct = matches!(
        hook,
        Hook::RawTp { .. } | Hook::Kprobe { .. } | Hook::Kretprobe { .. }
    );
    for f in out.iter_mut() {
        if f.source == Source::EE_PROBE_ARG && (direct || f.kind == FieldKind::Int) {
            f.source = Source::EE_PROBE_ARG_CTX;
        }
    }
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
            ty: None,
            hops: Vec::new(),
            members: false,
            constant: 0,
        });
    }
    Ok(out)
}

/// What the config says of a user-space hook's arguments.
#[derive(Debug, Default, Clone, Copy)]
pub struct UserArgs<'a> {
    /// (name, type) by position.
    pub args: &'a [(String, String)],
    /// A uretprobe's `ret` type.
    pub ret: Option<&'a str>,
}

/// A user-space argument type: (kind, size, signed, C spelling).
pub fn user_type(ty: &str) -> Result<(FieldKind, u32, bool, String), String> {
    let ty = ty.trim();
    let int = |size: u32, signed: bool| Ok((FieldKind::Int, size, signed, ty.to_string()));
    match ty {
        "u8" => int(1, false),
        "u16" => int(2, false),
        "u32" => int(4, false),
        "u64" => int(8, false),
        "s8" | "i8" => int(1, true),
        "s16" | "i16" => int(2, true),
        "s32" | "i32" => int(4, true),
        "s64" | "i64" => int(8, true),
        "pointer" => Ok((FieldKind::Pointer, 8, false, "pointer".to_string())),
        "string" => Ok((FieldKind::Chars, DATA_LOC_TEXT, false, "char *".to_string())),
        _ => {
            // string[N]: text of up to N bytes, its NUL among them.
            let room = ty
                .strip_prefix("string[")
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|n| n.parse::<u32>().ok())
                .filter(|n| (2..=64).contains(n));
            match room {
                Some(n) => Ok((FieldKind::Chars, n, false, "char *".to_string())),
                None => Err(format!(
                    "{ty:?} is not a type a probe reads: use u8, u16, u32, u64, s8, s16, s32, s64, pointer, string or string[N] (N from 2 to 64)"
                )),
            }
        }
    }
}

/// A uprobe's arguments (from the registers), a uretprobe's `ret`, or a
/// USDT probe's arguments, named and typed by the config.
fn user_fields(hook: &Hook, user: &UserArgs) -> Result<Vec<Field>, String> {
    let usdt = matches!(hook, Hook::Usdt { .. });
    let field = |name: &str, ty: &str, at: u32| -> Result<Field, String> {
        let (kind, size, signed, what) = user_type(ty).map_err(|m| format!("{name}: {m}"))?;
        let source = match (usdt, kind == FieldKind::Chars) {
            (false, false) => Source::EE_PROBE_ARG_CTX,
            (false, true) => Source::EE_PROBE_USER_STR,
            (true, false) => Source::EE_PROBE_USDT_ARG,
            (true, true) => Source::EE_PROBE_USDT_STR,
        };
        Ok(Field {
            name: name.to_string(),
            what,
            source,
            offset: at,
            size,
            signed,
            kind,
            ty: None,
            hops: Vec::new(),
            members: false,
            constant: 0,
        })
    };
    if let Hook::Uretprobe { .. } = hook {
        return Ok(vec![field("ret", user.ret.unwrap_or("u64"), RET_REG)?]);
    }
    let positions = if usdt { USDT_ARGS } else { ARG_REGS.len() };
    if user.args.len() > positions {
        return Err(format!(
            "{} has at most {positions} arguments a probe can read, and args names {}",
            hook.section(),
            user.args.len()
        ));
    }
    (0..positions)
        .map(|i| {
            let at = if usdt { i as u32 } else { ARG_REGS[i] };
            match user.args.get(i) {
                Some((name, ty)) => field(name, ty, at),
                None => field(&format!("arg{i}"), "u64", at),
            }
        })
        .collect()
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
        ty: None,
        hops: Vec::new(),
        members: false,
        constant: 0,
    }
}

/// What a value of BTF type `ty` is to a probe: its kind, size and sign.
fn kind_of(btf: &Btf, ty: TypeId) -> (FieldKind, u32, bool) {
    match btf.resolve(ty).map(|(_, t)| &t.kind) {
        Some(Kind::Int { size, signed, .. }) => (FieldKind::Int, *size, *signed),
        Some(Kind::Enum { size, signed, .. }) => (FieldKind::Int, *size, *signed),
        Some(Kind::Ptr { .. }) => (FieldKind::Pointer, 8, false),
        Some(Kind::Array { elem, nelems }) => {
            let text = matches!(
                btf.resolve(*elem).map(|(_, t)| &t.kind),
                Some(Kind::Int { size: 1, .. })
            );
            let size = btf.size_of(ty).unwrap_or(0) as u32;
            if text {
                (FieldKind::Chars, size.min(*nelems), false)
            } else {
                (FieldKind::Array, size, false)
            }
        }
        _ => (FieldKind::Array, btf.size_of(ty).unwrap_or(0) as u32, false),
    }
}

fn arg_field(btf: &Btf, name: &str, ty: TypeId, offset: u32) -> Field {
    let (kind, size, signed) = kind_of(btf, ty);
    let members = match btf.resolve(ty).map(|(_, t)| &t.kind) {
        Some(Kind::Ptr { to }) => matches!(
            btf.resolve(*to).map(|(_, t)| &t.kind),
            Some(Kind::Struct { .. } | Kind::Union { .. })
        ),
        _ => false,
    };
    Field {
        name: name.to_string(),
        what: kernel_btf::spell(btf, ty),
        source: Source::EE_PROBE_ARG,
        offset,
        size,
        signed,
        kind,
        ty: Some(ty),
        hops: Vec::new(),
        members,
        constant: 0,
    }
}

/// Hops a path may follow (`EE_PROBE_HOPS`).
pub const MAX_HOPS: usize = 4;

/// A field by name: one of `fields`, or a path (`prev.pid`, `rq.q.disk`)
/// from a pointer argument through its members, following pointers.
pub fn resolve(hook: &Hook, fields: &[Field], name: &str) -> Result<Field, String> {
    if let Some(value) = constant(name) {
        return Ok(Field {
            name: name.to_string(),
            what: "u64: a constant".to_string(),
            source: Source::EE_PROBE_CONST,
            offset: 0,
            size: 8,
            signed: false,
            kind: FieldKind::Int,
            ty: None,
            hops: Vec::new(),
            members: false,
            constant: value,
        });
    }
    let mut parts = name.split('.');
    let base = parts.next().unwrap_or(name);
    let names = || {
        fields
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(f) = fields.iter().find(|f| f.name == base) else {
        return Err(format!(
            "{} has no field {base:?}; its fields: {}",
            hook.section(),
            names()
        ));
    };
    let rest: Vec<&str> = parts.collect();
    if rest.is_empty() {
        return Ok(f.clone());
    }
    let (Some(ty), FieldKind::Pointer) = (f.ty, &f.kind) else {
        return Err(format!(
            "{base} ({}) is not a pointer to a struct, so {name:?} reaches nothing{}",
            f.what,
            if f.ty.is_none() {
                " (paths run through kernel pointers, whose types the kernel's BTF gives: a raw_tp, tp_btf, fentry, fexit or kprobe argument)"
            } else {
                ""
            }
        ));
    };
    let btf = kernel_btf::vmlinux()?;
    let pointee = |ty: TypeId| match btf.resolve(ty).map(|(_, t)| &t.kind) {
        Some(Kind::Ptr { to }) => Some(*to),
        _ => None,
    };
    let mut current = pointee(ty).ok_or_else(|| format!("{base} is not a pointer"))?;
    let mut hops = Vec::new();
    let mut offset = 0u32;
    let mut reached = String::from(base);
    let mut last_ty = current;
    for (i, part) in rest.iter().enumerate() {
        let Some((mty, moff, bits)) = kernel_btf::member(&btf, current, part) else {
            return Err(format!(
                "{reached} ({}) has no member {part:?}; its members: {}",
                kernel_btf::spell(&btf, current),
                kernel_btf::member_names(&btf, current).join(", ")
            ));
        };
        if bits {
            return Err(format!(
                "{reached}.{part} is a bitfield, which a probe cannot read"
            ));
        }
        offset += moff;
        reached = format!("{reached}.{part}");
        last_ty = mty;
        if i + 1 == rest.len() {
            hops.push(offset);
            break;
        }
        match btf.resolve(mty).map(|(_, t)| &t.kind) {
            Some(Kind::Ptr { to }) => {
                hops.push(offset);
                offset = 0;
                current = *to;
            }
            Some(Kind::Struct { .. } | Kind::Union { .. }) => current = mty,
            _ => {
                return Err(format!(
                    "{reached} ({}) is not a pointer or a struct, so the path cannot go on",
                    kernel_btf::spell(&btf, mty)
                ))
            }
        }
    }
    if hops.len() > MAX_HOPS {
        return Err(format!(
            "{name:?} follows {} pointers; a probe follows at most {}",
            hops.len(),
            MAX_HOPS - 1
        ));
    }
    let (kind, size, signed) = kind_of(&btf, last_ty);
    Ok(Field {
        name: name.to_string(),
        what: kernel_btf::spell(&btf, last_ty),
        source: if kind == FieldKind::Chars {
            Source::EE_PROBE_ARG_TEXT
        } else {
            Source::EE_PROBE_ARG_PATH
        },
        offset: f.offset,
        size,
        signed,
        kind,
        ty: Some(last_ty),
        hops,
        members: false,
        constant: 0,
    })
}

/// The register a pt_regs offset names.
fn register(offset: u32) -> &'static str {
    match offset {
        112 => "di",
        104 => "si",
        96 => "dx",
        88 => "cx",
        72 => "r8",
        64 => "r9",
        80 => "ax",
        _ => "?",
    }
}

/// `fields`'s listing: name, type, and what a probe can do with it.
pub fn describe(hook: &Hook, fields: &[Field]) -> String {
    let regs = matches!(
        hook,
        Hook::Kprobe { .. } | Hook::Kretprobe { .. } | Hook::Uprobe { .. } | Hook::Uretprobe { .. }
    );
    let mut out = String::new();
    let width = fields.iter().map(|f| f.name.len()).max().unwrap_or(0);
    for f in fields {
        let use_ = match f.kind {
            FieldKind::Int => "label, value, filter",
            FieldKind::Chars | FieldKind::DataLocChars => "label (decoder: string)",
            FieldKind::Pointer => "filter, match (an address: never a label)",
            FieldKind::Array => match f.shape() {
                "an array" => "none (an array)",
                "a struct" => "none (a struct: reach its members by path)",
                "a union" => "none (a union: reach its members by path)",
                _ => "none",
            },
        };
        let arg = matches!(
            f.source,
            Source::EE_PROBE_ARG | Source::EE_PROBE_ARG_CTX | Source::EE_PROBE_USER_STR
        );
        let at = if arg {
            let path = if f.members {
                format!("; members by path, as {}.MEMBER", f.name)
            } else {
                String::new()
            };
            if regs {
                format!("register {}{path}", register(f.offset))
            } else {
                format!("argument {}{path}", f.offset / 8)
            }
        } else if matches!(
            f.source,
            Source::EE_PROBE_USDT_ARG | Source::EE_PROBE_USDT_STR
        ) {
            format!("USDT argument {}", f.offset)
        } else if f.source == Source::EE_PROBE_RECORD {
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
