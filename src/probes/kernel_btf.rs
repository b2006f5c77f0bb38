//! The running kernel's BTF, read once with the exporter's own parser:
//! the names and types of a raw tracepoint's arguments, and the members a
//! path through them reaches (`prev.pid`, `rq.q.disk.major`).

use std::sync::{Arc, OnceLock};

use crate::object::btf::{Btf, Kind, TypeId};

const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

/// The kernel's BTF, parsed on first use (about 5 MB, a few hundred ms),
/// or why it cannot be had.
pub fn vmlinux() -> Result<Arc<Btf>, String> {
    static BTF: OnceLock<Result<Arc<Btf>, String>> = OnceLock::new();
    BTF.get_or_init(|| {
        let raw = std::fs::read(VMLINUX).map_err(|e| {
            format!("{VMLINUX}: {e}: this kernel exposes no BTF, which a probe's arguments are named by")
        })?;
        Btf::parse(&raw)
            .map(Arc::new)
            .map_err(|e| format!("{VMLINUX}: {e}"))
    })
    .clone()
}

/// A C spelling of a type, pointers included (`struct task_struct *`).
pub fn spell(btf: &Btf, id: TypeId) -> String {
    match btf.resolve(id) {
        Some((_, t)) => match &t.kind {
            Kind::Ptr { to } => format!("{} *", spell(btf, *to)),
            _ => btf.describe(id),
        },
        None => "?".into(),
    }
}

/// A function's parameters by name, and its return type (`None`: void).
pub type Signature = (Vec<(String, TypeId)>, Option<TypeId>);

/// Kernel function `name`'s parameters, by name (unnamed ones as argN),
/// and its return type.
pub fn function(btf: &Btf, name: &str) -> Option<Signature> {
    let func = btf.find(name, |k| matches!(k, Kind::Func { .. }))?;
    let Some(Kind::Func { proto }) = btf.get(func).map(|t| &t.kind) else {
        return None;
    };
    let Some(Kind::FuncProto { params, ret }) = btf.get(*proto).map(|t| &t.kind) else {
        return None;
    };
    let named = params
        .iter()
        .enumerate()
        .map(|(i, (n, ty))| {
            (
                if n.is_empty() {
                    format!("arg{i}")
                } else {
                    n.clone()
                },
                *ty,
            )
        })
        .collect();
    Some((named, (*ret != 0).then_some(*ret)))
}

/// The parameters of a function's prototype.
fn params_of_func(btf: &Btf, func: TypeId) -> Option<&Vec<(String, TypeId)>> {
    let Some(Kind::Func { proto }) = btf.get(func).map(|t| &t.kind) else {
        return None;
    };
    match btf.get(*proto).map(|t| &t.kind) {
        Some(Kind::FuncProto { params, .. }) => Some(params),
        _ => None,
    }
}

/// The parameters of raw tracepoint `name`, after its own data pointer.
/// `btf_trace_NAME` types them without names; the names are in the
/// prototype of the event's `__bpf_trace_*` function, which is named
/// after the event, or after its class (`block_rq` for `block_rq_issue`):
/// then it is the one whose parameter types are the typedef's.
pub fn raw_tracepoint_args(btf: &Btf, name: &str) -> Option<Vec<(String, TypeId)>> {
    if let Some(func) = btf.find(&format!("__bpf_trace_{name}"), |k| {
        matches!(k, Kind::Func { .. })
    }) {
        return params_of_func(btf, func).map(|p| p.iter().skip(1).cloned().collect());
    }
    let typedef = btf.find(&format!("btf_trace_{name}"), |k| {
        matches!(k, Kind::Alias(_))
    })?;
    let proto = match btf.resolve(typedef).map(|(_, t)| &t.kind) {
        Some(Kind::Ptr { to }) => *to,
        _ => return None,
    };
    let Some(Kind::FuncProto { params: typed, .. }) = btf.get(proto).map(|t| &t.kind) else {
        return None;
    };
    let types: Vec<TypeId> = typed.iter().map(|(_, ty)| *ty).collect();
    let named = btf.iter().find_map(|(id, t)| {
        if !t.name.starts_with("__bpf_trace_") {
            return None;
        }
        let params = params_of_func(btf, id)?;
        (params.iter().map(|(_, ty)| *ty).collect::<Vec<_>>() == types).then_some(params)
    });
    let params = named.unwrap_or(typed);
    Some(
        params
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, (n, ty))| {
                let n = if n.is_empty() {
                    format!("arg{}", i - 1)
                } else {
                    n.clone()
                };
                (n, *ty)
            })
            .collect(),
    )
}

/// What a hook can name in the kernel's BTF.
#[derive(Clone, Copy)]
pub enum Named {
    Function,
    RawTracepoint,
}

/// Up to five names of `what` nearest to `name`, for a refusal to offer
/// in place of the list of all (tens of thousands of functions): those
/// that hold it or that it holds, then those a few edits away, nearest
/// first.
pub fn nearest(btf: &Btf, what: Named, name: &str) -> Vec<String> {
    const SHOWN: usize = 5;
    let wanted = name.to_ascii_lowercase();
    let budget = (wanted.len() / 4).max(2);
    let mut found: Vec<(usize, &str)> = Vec::new();
    for (_, t) in btf.iter() {
        let candidate = match (what, &t.kind) {
            (Named::Function, Kind::Func { .. }) => t.name.as_str(),
            (Named::RawTracepoint, Kind::Alias(_)) => match t.name.strip_prefix("btf_trace_") {
                Some(event) => event,
                None => continue,
            },
            _ => continue,
        };
        if candidate.is_empty() || candidate == name {
            continue;
        }
        let lower = candidate.to_ascii_lowercase();
        let score = if lower.contains(&wanted) || wanted.contains(&lower) {
            // Holding it is near; the fewer extra letters, the nearer.
            lower.len().abs_diff(wanted.len())
        } else if lower.len().abs_diff(wanted.len()) <= budget {
            match edits(&lower, &wanted, budget) {
                Some(d) => d + wanted.len(),
                None => continue,
            }
        } else {
            continue;
        };
        found.push((score, candidate));
    }
    // A static function may be in the BTF once per unit that defines it:
    // equal names sort together, and are shown once.
    found.sort_unstable();
    found.dedup();
    found.truncate(SHOWN);
    found.into_iter().map(|(_, n)| n.to_string()).collect()
}

/// The edit distance between `a` and `b`, when it is at most `budget`.
fn edits(a: &str, b: &str, budget: usize) -> Option<usize> {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        let mut best = row[0];
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
            best = best.min(row[j + 1]);
        }
        if best > budget {
            return None;
        }
    }
    row.last().copied().filter(|&d| d <= budget)
}

/// ", nearest: a, b" for a refusal, or nothing when no name is near.
pub fn nearest_note(btf: &Btf, what: Named, name: &str) -> String {
    let near = nearest(btf, what, name);
    if near.is_empty() {
        String::new()
    } else {
        format!("; nearest: {}", near.join(", "))
    }
}

/// A member of struct or union `ty` by name, looking into anonymous
/// members: its type and byte offset, or `None`.
pub fn member(btf: &Btf, ty: TypeId, name: &str) -> Option<(TypeId, u32, bool)> {
    member_at(btf, ty, name, 0)
}

fn member_at(btf: &Btf, ty: TypeId, name: &str, depth: usize) -> Option<(TypeId, u32, bool)> {
    if depth > 8 {
        return None;
    }
    let (_, t) = btf.resolve(ty)?;
    let (Kind::Struct { members, .. } | Kind::Union { members, .. }) = &t.kind else {
        return None;
    };
    for m in members {
        if m.name == name {
            return Some((
                m.ty,
                m.bit_offset / 8,
                m.bitfield_bits != 0 || m.bit_offset % 8 != 0,
            ));
        }
        if m.name.is_empty() {
            if let Some((ty, off, bits)) = member_at(btf, m.ty, name, depth + 1) {
                return Some((ty, m.bit_offset / 8 + off, bits));
            }
        }
    }
    None
}

/// The members of struct or union `ty` by name, anonymous ones opened,
/// for messages.
pub fn member_names(btf: &Btf, ty: TypeId) -> Vec<String> {
    let mut out = Vec::new();
    collect_names(btf, ty, &mut out, 0);
    out
}

fn collect_names(btf: &Btf, ty: TypeId, out: &mut Vec<String>, depth: usize) {
    if depth > 8 {
        return;
    }
    let Some((_, t)) = btf.resolve(ty) else {
        return;
    };
    if let Kind::Struct { members, .. } | Kind::Union { members, .. } = &t.kind {
        for m in members {
            if m.name.is_empty() {
                collect_names(btf, m.ty, out, depth + 1);
            } else {
                out.push(m.name.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::edits;

    #[test]
    fn edits_count_within_their_budget_and_give_up_past_it() {
        assert_eq!(edits("vfs_read", "vfs_reed", 2), Some(1));
        assert_eq!(edits("sched_switch", "sched_swich", 2), Some(1));
        assert_eq!(edits("abc", "abc", 2), Some(0));
        assert_eq!(edits("tcp_sendmsg", "udp_recvmsg", 2), None);
        assert_eq!(edits("", "ab", 2), Some(2));
    }
}
