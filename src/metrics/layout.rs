//! Where each label sits in a map's key, from the key's BTF type.
//!
//! Labels without `size` bind to the key struct's member of their name (or
//! the one `field:` names) and take its offset and size, so a config never
//! mirrors C alignment by hand. Labels that give `size` and `padding` (the
//! reference's format) keep its sequential layout, and when the key is a
//! struct with BTF that layout is checked against it: a label that ends
//! inside a member, or padding that lands between members, is an error that
//! names the member and says what to write instead. Maps without key BTF
//! keep the reference's byte counting unchecked.

use crate::config::model::Label;
use crate::object::btf::{Btf, Kind, TypeId};

/// A layout problem, at a label (index in the config's label list) and a
/// key of it (`size`, `padding`, `field`), or at the label list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutError {
    pub label: Option<usize>,
    pub field: &'static str,
    pub message: String,
}

impl LayoutError {
    /// The key path under the metric at `at`.
    pub fn key(&self, at: &str) -> String {
        match (self.label, self.field) {
            (None, _) => format!("{at}.labels"),
            (Some(i), "") => format!("{at}.labels[{i}]"),
            (Some(i), f) => format!("{at}.labels[{i}].{f}"),
        }
    }
}

/// One member of a key type, nested members included, with its path from
/// the top (`flow.sport`; members of anonymous structs and unions are
/// reached by their own names, as in C).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub path: String,
    pub offset: usize,
    pub size: usize,
    pub ty: TypeId,
    /// 0 for the key's own members.
    pub depth: usize,
    pub bitfield: bool,
}

impl Field {
    fn spelled(&self, btf: &Btf) -> String {
        format!("{} at offset {}", btf.describe(self.ty), self.offset)
    }
}

/// Every member of `ty`, in declaration order, nested ones after their
/// parent. Empty for a type that is not a struct or union.
pub fn fields(btf: &Btf, ty: TypeId) -> Vec<Field> {
    let mut out = Vec::new();
    walk(btf, ty, "", 0, 0, &mut out);
    out
}

fn walk(btf: &Btf, ty: TypeId, prefix: &str, base: usize, depth: usize, out: &mut Vec<Field>) {
    if depth > 8 {
        return;
    }
    let Some((_, t)) = btf.resolve(ty) else {
        return;
    };
    let members = match &t.kind {
        Kind::Struct { members, .. } | Kind::Union { members, .. } => members,
        _ => return,
    };
    for m in members {
        let offset = base + (m.bit_offset / 8) as usize;
        let anonymous = m.name.is_empty();
        let path = match (anonymous, prefix.is_empty()) {
            (true, _) => prefix.to_string(),
            (false, true) => m.name.clone(),
            (false, false) => format!("{prefix}.{}", m.name),
        };
        if !anonymous {
            out.push(Field {
                path: path.clone(),
                offset,
                size: btf.size_of(m.ty).unwrap_or(0) as usize,
                ty: m.ty,
                depth,
                bitfield: m.bitfield_bits != 0 || m.bit_offset % 8 != 0,
            });
        }
        // Anonymous members' children belong to this level.
        let next_depth = if anonymous { depth } else { depth + 1 };
        walk(btf, m.ty, &path, offset, next_depth, out);
    }
}

/// Binds `labels` (the key's labels, without a per-CPU `cpu` label) to a
/// key of `key_size` bytes whose BTF type, if known, is `key`. `index[i]` is
/// label i's position in the config, for error keys. `histogram`: the last
/// label is the bucket, which may bind to the key's last member by default.
pub fn bind_key(
    labels: &[Label],
    index: &[usize],
    key: Option<(&Btf, TypeId)>,
    key_size: usize,
    map: &str,
    histogram: bool,
) -> Result<Vec<Label>, LayoutError> {
    let sequential = labels.iter().all(|l| l.size.is_some() && l.field.is_none());
    if sequential {
        if let Some((btf, ty)) = key {
            check_sequential(labels, index, btf, ty, key_size)?;
        }
        return Ok(labels.to_vec());
    }
    let at = |i: usize| index.get(i).copied();
    let Some((btf, ty)) = key else {
        let i = labels
            .iter()
            .position(|l| l.size.is_none() || l.field.is_some())
            .unwrap_or(0);
        return Err(LayoutError {
            label: at(i),
            field: "size",
            message: format!(
                "label {:?} has no size, and map {map:?} declares no key type in BTF (a legacy \
                 map definition, or an object built without -g): give size and padding",
                labels[i].name
            ),
        });
    };
    let all = fields(btf, ty);
    if all.is_empty() {
        // A scalar or array key: one label can take all of it.
        if labels.len() == 1 && labels[0].field.is_none() {
            let mut l = labels[0].clone();
            if l.size.is_some_and(|s| s != key_size) {
                return Err(LayoutError {
                    label: at(0),
                    field: "size",
                    message: format!(
                        "label {:?} is size {}, but map {map:?}'s key is {} ({key_size} bytes)",
                        l.name,
                        l.size(),
                        btf.describe(ty)
                    ),
                });
            }
            l.size = Some(key_size);
            l.offset = Some(0);
            return Ok(vec![l]);
        }
        return Err(LayoutError {
            label: None,
            field: "",
            message: format!(
                "map {map:?}'s key is {}, not a struct: only a single label can take its size from \
                 BTF; give each label a size to split it",
                btf.describe(ty)
            ),
        });
    }
    let top_level: Vec<&Field> = all.iter().filter(|f| f.depth == 0).collect();
    let members = || {
        top_level
            .iter()
            .map(|f| f.path.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = Vec::with_capacity(labels.len());
    for (i, label) in labels.iter().enumerate() {
        let wanted = label.field.as_deref().unwrap_or(&label.name);
        let last = i + 1 == labels.len();
        let found = find(&all, wanted).or_else(|| {
            // The bucket of a histogram is the key's last member unless
            // named otherwise, as in the reference's layouts.
            (histogram && last && label.field.is_none())
                .then(|| top_level.last().copied())
                .flatten()
        });
        let Some(f) = found else {
            return Err(LayoutError {
                label: at(i),
                field: if label.field.is_some() {
                    "field"
                } else {
                    "name"
                },
                message: format!(
                    "map {map:?}'s key {} has no member {wanted:?}; its members: {}{}",
                    btf.describe(ty),
                    members(),
                    if label.field.is_none() {
                        " (name one with `field:`)"
                    } else {
                        ""
                    }
                ),
            });
        };
        if f.bitfield {
            return Err(LayoutError {
                label: at(i),
                field: if label.field.is_some() {
                    "field"
                } else {
                    "name"
                },
                message: format!(
                    "member {:?} of map {map:?}'s key is a bitfield; labels read whole bytes",
                    f.path
                ),
            });
        }
        if let Some(size) = label.size.filter(|&s| s != f.size) {
            return Err(LayoutError {
                label: at(i),
                field: "size",
                message: format!(
                    "label {:?} is size {size}, but member {:?} ({}) is {} bytes: drop size, or use size: {}",
                    label.name,
                    f.path,
                    f.spelled(btf),
                    f.size,
                    f.size
                ),
            });
        }
        if f.offset + f.size > key_size || f.size == 0 {
            return Err(LayoutError {
                label: at(i),
                field: "",
                message: format!(
                    "member {:?} ({}, {} bytes) does not fit map {map:?}'s {key_size}-byte key",
                    f.path,
                    f.spelled(btf),
                    f.size
                ),
            });
        }
        let mut bound = label.clone();
        bound.size = Some(f.size);
        bound.padding = None;
        bound.offset = Some(f.offset);
        out.push(bound);
    }
    Ok(out)
}

/// The member at `path`: exact path first, then a unique member of that
/// name at any depth.
fn find<'a>(all: &'a [Field], path: &str) -> Option<&'a Field> {
    all.iter().find(|f| f.path == path).or_else(|| {
        let mut named = all
            .iter()
            .filter(|f| f.path.rsplit('.').next() == Some(path));
        let first = named.next()?;
        named.next().is_none().then_some(first)
    })
}

/// Checks the reference's sequential layout against the key struct. A
/// label may cover several members and the alignment padding between them
/// (reference configs often give a `u8` a size of 4), but it must never cut
/// a member in two: that is what a missing `padding` does to every label
/// after it.
fn check_sequential(
    labels: &[Label],
    index: &[usize],
    btf: &Btf,
    ty: TypeId,
    key_size: usize,
) -> Result<(), LayoutError> {
    let all = fields(btf, ty);
    // Scalar and array keys are split as the config says; structs with
    // bitfields have no byte boundaries to check against.
    if all.is_empty() || all.iter().any(|f| f.bitfield) {
        return Ok(());
    }
    let leaves: Vec<&Field> = all
        .iter()
        .filter(|f| {
            !matches!(
                btf.resolve(f.ty).map(|(_, t)| &t.kind),
                Some(Kind::Struct { .. } | Kind::Union { .. })
            )
        })
        .collect();
    let mut off = 0usize;
    // The previous label, and the member it ended with, for blaming a
    // missing padding on the label before the gap.
    let mut previous: Option<(usize, &Label, Option<&Field>)> = None;
    for (i, label) in labels.iter().enumerate() {
        let (start, size) = (off, label.size());
        let end = start + size;
        off = end + label.padding();
        if start >= key_size {
            // The total is checked, with its own message, by the caller.
            return Ok(());
        }
        let cut = leaves
            .iter()
            .filter(|f| f.offset < end && start < f.offset + f.size)
            .find(|f| f.offset < start || f.offset + f.size > end);
        let last_whole = leaves
            .iter()
            .filter(|f| f.offset >= start && f.offset + f.size <= end)
            .max_by_key(|f| f.offset + f.size)
            .copied();
        let Some(f) = cut else {
            previous = Some((i, label, last_whole));
            continue;
        };
        let in_gap = !leaves
            .iter()
            .any(|l| l.offset <= start && start < l.offset + l.size);
        if let (true, Some((j, prev, Some(m)))) = (in_gap && f.offset > start, previous) {
            let gap = f.offset - (m.offset + m.size);
            let given = prev.padding();
            let fix = if prev.padding.is_some() {
                format!("use padding: {}", given + f.offset - start)
            } else {
                format!("add padding: {gap}")
            };
            return Err(LayoutError {
                label: index.get(j).copied(),
                field: if prev.padding.is_some() {
                    "padding"
                } else {
                    "size"
                },
                message: format!(
                    "label {:?} is size {} but member {:?} ({}) is followed by {gap} bytes of padding before {:?} ({}): {fix}",
                    prev.name,
                    prev.size(),
                    m.path,
                    m.spelled(btf),
                    f.path,
                    f.spelled(btf)
                ),
            });
        }
        let at_start = leaves.iter().find(|l| l.offset == start);
        let hint = match at_start {
            Some(m) if m.offset + m.size <= f.offset => format!(
                "use size: {} to end before it, or {} to take it whole",
                f.offset - start,
                f.offset + f.size - start
            ),
            Some(m) => format!(
                "member {:?} ({}) is {} bytes: use size: {}",
                m.path,
                m.spelled(btf),
                m.size,
                m.size
            ),
            None => "check the sizes and padding of the labels before it".to_string(),
        };
        return Err(LayoutError {
            label: index.get(i).copied(),
            field: "size",
            message: format!(
                "label {:?} covers key bytes {start}..{end}, which cuts member {:?} ({}, {} bytes) in two: {hint}",
                label.name,
                f.path,
                f.spelled(btf),
                f.size
            ),
        });
    }
    Ok(())
}
