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
    let key = KeyType {
        btf,
        ty,
        size: key_size,
        map,
        all: fields(btf, ty),
    };
    if key.all.is_empty() {
        return key.bind_whole(labels, index);
    }
    let mut out = Vec::with_capacity(labels.len());
    for (i, label) in labels.iter().enumerate() {
        // The bucket of a histogram is the key's last member unless named
        // otherwise, as in the reference's layouts.
        let bucket = histogram && i + 1 == labels.len() && label.field.is_none();
        out.push(
            key.bind_member(label, bucket)
                .map_err(|(field, message)| LayoutError {
                    label: at(i),
                    field,
                    message,
                })?,
        );
    }
    Ok(out)
}

/// A key type from BTF, and its members flattened.
struct KeyType<'a> {
    btf: &'a Btf,
    ty: TypeId,
    size: usize,
    map: &'a str,
    all: Vec<Field>,
}

impl KeyType<'_> {
    /// A scalar or array key: each label reads all of it (several labels
    /// decode one id in several ways: pod, namespace, unit).
    fn bind_whole(&self, labels: &[Label], index: &[usize]) -> Result<Vec<Label>, LayoutError> {
        let (map, key_size) = (self.map, self.size);
        let mut out = Vec::with_capacity(labels.len());
        for (i, label) in labels.iter().enumerate() {
            if label.field.is_some() || label.size.is_some_and(|s| s != key_size) {
                return Err(LayoutError {
                    label: index.get(i).copied(),
                    field: if label.field.is_some() {
                        "field"
                    } else {
                        "size"
                    },
                    message: format!(
                        "map {map:?}'s key is {} ({key_size} bytes), not a struct: a label without \
                         size reads all of it; give every label a size to split it",
                        self.btf.describe(self.ty)
                    ),
                });
            }
            let mut l = label.clone();
            l.size = Some(key_size);
            l.padding = None;
            l.offset = Some(0);
            out.push(l);
        }
        Ok(out)
    }

    fn members(&self) -> String {
        self.all
            .iter()
            .filter(|f| f.depth == 0)
            .map(|f| f.path.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The label placed on the member it names (by `field:`, else by its
    /// name; the last member for a histogram's bucket), or the config key
    /// at fault and why.
    fn bind_member(&self, label: &Label, bucket: bool) -> Result<Label, (&'static str, String)> {
        let (btf, map, key_size) = (self.btf, self.map, self.size);
        // The key the member was named by.
        let named_by = if label.field.is_some() {
            "field"
        } else {
            "name"
        };
        let wanted = label.field.as_deref().unwrap_or(&label.name);
        let found = find(&self.all, wanted).or_else(|| {
            bucket
                .then(|| self.all.iter().rfind(|f| f.depth == 0))
                .flatten()
        });
        let Some(f) = found else {
            return Err((
                named_by,
                format!(
                    "map {map:?}'s key {} has no member {wanted:?}; its members: {}{}",
                    btf.describe(self.ty),
                    self.members(),
                    if label.field.is_none() {
                        " (name one with `field:`)"
                    } else {
                        ""
                    }
                ),
            ));
        };
        if f.bitfield {
            return Err((
                named_by,
                format!(
                    "member {:?} of map {map:?}'s key is a bitfield; labels read whole bytes",
                    f.path
                ),
            ));
        }
        if let Some(size) = label.size.filter(|&s| s != f.size) {
            return Err((
                "size",
                format!(
                    "label {:?} is size {size}, but member {:?} ({}) is {} bytes: drop size, or use size: {}",
                    label.name,
                    f.path,
                    f.spelled(btf),
                    f.size,
                    f.size
                ),
            ));
        }
        if f.offset.saturating_add(f.size) > key_size || f.size == 0 {
            return Err((
                "",
                format!(
                    "member {:?} ({}, {} bytes) does not fit map {map:?}'s {key_size}-byte key",
                    f.path,
                    f.spelled(btf),
                    f.size
                ),
            ));
        }
        let mut bound = label.clone();
        bound.size = Some(f.size);
        bound.padding = None;
        bound.offset = Some(f.offset);
        Ok(bound)
    }
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
            .filter(|f| f.offset < end && start < f.offset.saturating_add(f.size))
            .find(|f| f.offset < start || f.offset.saturating_add(f.size) > end);
        let last_whole = leaves
            .iter()
            .filter(|f| f.offset >= start && f.offset.saturating_add(f.size) <= end)
            .max_by_key(|f| f.offset.saturating_add(f.size))
            .copied();
        let Some(f) = cut else {
            previous = Some((i, label, last_whole));
            continue;
        };
        let in_gap = !leaves
            .iter()
            .any(|l| l.offset <= start && start < l.offset.saturating_add(l.size));
        if let (true, Some((j, prev, Some(m)))) = (in_gap && f.offset > start, previous) {
            let gap = f.offset.saturating_sub(m.offset.saturating_add(m.size));
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
            Some(m) if m.offset.saturating_add(m.size) <= f.offset => format!(
                "use size: {} to end before it, or {} to take it whole",
                f.offset - start,
                f.offset.saturating_add(f.size) - start
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

/// What a metric reads from each map value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueRead {
    /// The whole value, a u64 (the reference's only kind).
    Whole,
    /// An integer member of a struct value.
    Field { offset: usize, width: usize },
    /// An array of integer bucket counts in a struct value.
    Array {
        offset: usize,
        width: usize,
        count: usize,
    },
}

/// Decides what a metric reads from values of `value_size` bytes whose BTF
/// type, if known, is `value`; `member` is the config's `value:`.
/// `histogram`: the member must be an array of bucket counts, of which
/// `buckets` (the highest bucket index used, plus one) must fit.
pub fn bind_value(
    value: Option<(&Btf, TypeId)>,
    value_size: usize,
    member: Option<&str>,
    map: &str,
    histogram: Option<u64>,
) -> Result<ValueRead, String> {
    let members_of = |btf: &Btf, ty: TypeId| {
        fields(btf, ty)
            .iter()
            .filter(|f| f.depth == 0)
            .map(|f| format!("{} ({})", f.path, btf.describe(f.ty)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(member) = member else {
        if value_size == 8 {
            return Ok(ValueRead::Whole);
        }
        // A narrower integer that BTF vouches for (funclatency's `u32
        // hist[]`) reads as a member at offset 0.
        if let Some((btf, ty)) = value {
            if fields(btf, ty).is_empty()
                && matches!(value_size, 1 | 2 | 4)
                && matches!(
                    btf.resolve(ty).map(|(_, t)| &t.kind),
                    Some(Kind::Int { bool: false, .. })
                )
            {
                return Ok(ValueRead::Field {
                    offset: 0,
                    width: value_size,
                });
            }
        }
        return Err(match value {
            Some((btf, ty)) if !fields(btf, ty).is_empty() => format!(
                "map {map:?}'s values are {} ({value_size} bytes): name the member to export with \
                 `value:` (members: {})",
                btf.describe(ty),
                members_of(btf, ty)
            ),
            _ => format!(
                "map {map:?}'s values are {value_size} bytes; metric maps need 8-byte (u64) values, \
                 or a struct value with BTF and `value:` naming a member"
            ),
        });
    };
    let Some((btf, ty)) = value else {
        return Err(format!(
            "map {map:?} declares no value type in BTF, so `value: {member}` cannot be found"
        ));
    };
    let all = fields(btf, ty);
    let Some(f) = find(&all, member) else {
        return Err(format!(
            "map {map:?}'s value {} has no member {member:?}; its members: {}",
            btf.describe(ty),
            members_of(btf, ty)
        ));
    };
    if f.bitfield {
        return Err(format!(
            "member {:?} of map {map:?}'s value is a bitfield; values are read whole bytes",
            f.path
        ));
    }
    // The kernel's value size is what is read; BTF that claims more (a
    // malformed object) must not send reads, or loops, past it.
    if f.offset.saturating_add(f.size) > value_size || f.size == 0 {
        return Err(format!(
            "member {:?} ({} bytes at offset {}) does not fit map {map:?}'s {value_size}-byte values",
            f.path, f.size, f.offset
        ));
    }
    // Counts, not text: clang spells `char` as a signed 1-byte int, so
    // it is told apart by name.
    let integer = |id: TypeId| {
        btf.resolve(id).is_some_and(|(_, t)| t.name != "char")
            && matches!(
                btf.resolve(id).map(|(_, t)| &t.kind),
                Some(
                    Kind::Int {
                        size: 1 | 2 | 4 | 8,
                        char: false,
                        bool: false,
                        ..
                    } | Kind::Enum {
                        size: 1 | 2 | 4 | 8,
                        ..
                    }
                )
            )
    };
    match histogram {
        None => {
            if !integer(f.ty) {
                return Err(format!(
                    "member {:?} of map {map:?}'s value is {}, not an integer of 1, 2, 4 or 8 bytes",
                    f.path,
                    btf.describe(f.ty)
                ));
            }
            Ok(ValueRead::Field {
                offset: f.offset,
                width: f.size,
            })
        }
        Some(needed) => {
            let Some((_, t)) = btf.resolve(f.ty) else {
                return Err(format!("member {:?} has no type", f.path));
            };
            let Kind::Array { elem, nelems } = t.kind else {
                return Err(format!(
                    "member {:?} of map {map:?}'s value is {}: a histogram's `value:` names an \
                     array of bucket counts, such as u64 slots[27]",
                    f.path,
                    btf.describe(f.ty)
                ));
            };
            if !integer(elem) {
                return Err(format!(
                    "member {:?} is an array of {}, not of integer counts",
                    f.path,
                    btf.describe(elem)
                ));
            }
            if needed > u64::from(nelems) {
                return Err(format!(
                    "the buckets go up to index {}, but member {:?} ({}) has {nelems} elements",
                    needed - 1,
                    f.path,
                    btf.describe(f.ty)
                ));
            }
            Ok(ValueRead::Array {
                offset: f.offset,
                width: btf.size_of(elem).unwrap_or(8) as usize,
                count: nelems as usize,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::btf::tests::{blob, name_off};

    /// struct v { u64 a; u32 slots[1 << 30]; }: BTF claiming far more than
    /// the kernel's 16-byte values.
    fn lying_value() -> (Btf, TypeId) {
        let names = ["u64", "u32", "v", "a", "slots"];
        let m = |n: &str| name_off(&names, n);
        let raw = blob(
            &[
                ("u64", 1 << 24, 8, vec![64]),
                ("u32", 1 << 24, 4, vec![32]),
                ("", 3 << 24, 0, vec![2, 2, 1 << 30]),
                (
                    "v",
                    (4 << 24) | 2,
                    16,
                    vec![m("a"), 1, 0, m("slots"), 3, 64],
                ),
            ],
            &["a", "slots"],
        );
        (Btf::parse(&raw).expect("parses"), 4)
    }

    #[test]
    fn value_members_must_fit_the_kernels_value_size() {
        let (btf, v) = lying_value();
        assert_eq!(
            bind_value(Some((&btf, v)), 16, Some("a"), "m", None),
            Ok(ValueRead::Field {
                offset: 0,
                width: 8
            })
        );
        let e = bind_value(Some((&btf, v)), 16, Some("slots"), "m", Some(4)).expect_err("lies");
        assert!(e.contains("does not fit map \"m\"'s 16-byte values"), "{e}");
        let e = bind_value(Some((&btf, v)), 16, None, "m", None).expect_err("struct");
        assert!(e.contains("name the member to export with `value:` (members: a (u64), slots (u32[1073741824]))"), "{e}");
    }
}
