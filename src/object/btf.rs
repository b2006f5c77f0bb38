//! A reader of raw BTF, the type information compiled into every CO-RE
//! object: enough to know what a map's key and value types are, their
//! members, offsets and sizes. libbpf parses the object and hands over the
//! raw type blob; reading it here keeps every type walk in safe code.
//!
//! Format: `include/uapi/linux/btf.h`. A header, then types numbered from 1,
//! each a 12-byte `btf_type` followed by kind-specific data, then strings.

use std::fmt;

pub type TypeId = u32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub ty: TypeId,
    /// From the start of the enclosing struct or union.
    pub bit_offset: u32,
    /// Non-zero for a bitfield.
    pub bitfield_bits: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Void,
    Int {
        size: u32,
        signed: bool,
        char: bool,
        bool: bool,
        bits: u32,
    },
    Ptr {
        to: TypeId,
    },
    Array {
        elem: TypeId,
        nelems: u32,
    },
    Struct {
        size: u32,
        members: Vec<Member>,
    },
    Union {
        size: u32,
        members: Vec<Member>,
    },
    Enum {
        size: u32,
        signed: bool,
        /// Its enumerators, for constants set by name.
        values: Vec<(String, i64)>,
    },
    Fwd,
    /// Typedefs and qualifiers (volatile, const, restrict, type tags): a
    /// name or a qualifier over another type.
    Alias(TypeId),
    Float {
        size: u32,
    },
    /// A global variable: its name is the type's, `ty` its type.
    Var {
        ty: TypeId,
        /// `static` in C: the object's own, which no loader sets.
        is_static: bool,
    },
    /// A section of global variables (`.rodata`, `.bss`, `.data`, ...).
    Datasec {
        size: u32,
        vars: Vec<DatasecVar>,
    },
    /// A function, by its prototype.
    Func {
        proto: TypeId,
    },
    /// A prototype's parameters, by name (empty for unnamed ones, as in
    /// the kernel's `btf_trace_*` typedefs).
    FuncProto {
        params: Vec<(String, TypeId)>,
        /// The return type (0: void).
        ret: TypeId,
    },
    /// Declaration tags: not data types a map key can have.
    Other,
}

/// A global variable: `const volatile` in `.rodata`, or in `.bss` and
/// `.data`, where programs may also keep results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    /// `.rodata`, `.bss`, `.data` or a named one such as `.data.counts`.
    pub section: String,
    pub name: String,
    /// Declared `static`: the program's own scratch (a zeroed initial
    /// value, say), not a result or a switch.
    pub is_static: bool,
    pub ty: TypeId,
    pub offset: u32,
    pub size: u32,
}

/// Where a variable sits in its section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasecVar {
    /// The `Var` type.
    pub var: TypeId,
    pub offset: u32,
    pub size: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Type {
    pub name: String,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BtfError(pub String);

impl fmt::Display for BtfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed BTF: {}", self.0)
    }
}

impl std::error::Error for BtfError {}

/// Types of one object, by id (index 0 is `void`).
#[derive(Debug, Clone, Default)]
pub struct Btf {
    types: Vec<Type>,
}

/// Nesting beyond this is refused: no real type is that deep, and a
/// malformed or hostile blob with a cycle must not recurse forever.
const MAX_DEPTH: usize = 32;

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn u32(&mut self) -> Result<u32, BtfError> {
        let b = self
            .bytes
            .get(self.at..self.at + 4)
            .ok_or_else(|| BtfError(format!("type data ends at byte {}", self.at)))?;
        self.at += 4;
        Ok(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    }
}

impl Btf {
    /// Parses a raw blob in this host's byte order (as libbpf gives it).
    pub fn parse(raw: &[u8]) -> Result<Self, BtfError> {
        let word = |at: usize| -> Result<u32, BtfError> {
            raw.get(at..at + 4)
                .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(|| BtfError("header is cut short".into()))
        };
        let magic = raw
            .get(0..2)
            .map(|b| u16::from_ne_bytes([b[0], b[1]]))
            .ok_or_else(|| BtfError("no header".into()))?;
        if magic != 0xeb9f {
            return Err(BtfError(format!("bad magic {magic:#x}")));
        }
        let hdr_len = word(4)? as usize;
        let (type_off, type_len) = (word(8)? as usize, word(12)? as usize);
        let (str_off, str_len) = (word(16)? as usize, word(20)? as usize);
        let section = |off: usize, len: usize, what: &str| {
            hdr_len
                .checked_add(off)
                .and_then(|start| Some((start, start.checked_add(len)?)))
                .and_then(|(start, end)| raw.get(start..end))
                .ok_or_else(|| BtfError(format!("{what} section lies outside the blob")))
        };
        let types = section(type_off, type_len, "type")?;
        let strings = section(str_off, str_len, "string")?;
        let name = |off: u32| -> String {
            let Some(tail) = strings.get(off as usize..) else {
                return String::new();
            };
            let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
            String::from_utf8_lossy(&tail[..end]).into_owned()
        };

        let mut out = vec![Type {
            name: String::new(),
            kind: Kind::Void,
        }];
        let mut r = Reader {
            bytes: types,
            at: 0,
        };
        while r.at < types.len() {
            let name_off = r.u32()?;
            let info = r.u32()?;
            let size_or_type = r.u32()?;
            let vlen = info & 0xffff;
            let kind_flag = info >> 31 == 1;
            let members = |r: &mut Reader<'_>| -> Result<Vec<Member>, BtfError> {
                (0..vlen)
                    .map(|_| {
                        let (n, ty, off) = (r.u32()?, r.u32()?, r.u32()?);
                        let (bit_offset, bitfield_bits) = if kind_flag {
                            (off & 0xff_ffff, off >> 24)
                        } else {
                            (off, 0)
                        };
                        Ok(Member {
                            name: name(n),
                            ty,
                            bit_offset,
                            bitfield_bits,
                        })
                    })
                    .collect()
            };
            let skip = |r: &mut Reader<'_>, words: u32| -> Result<(), BtfError> {
                for _ in 0..words {
                    r.u32()?;
                }
                Ok(())
            };
            let kind = match (info >> 24) & 0x1f {
                1 => {
                    let enc = r.u32()?;
                    let encoding = (enc >> 24) & 0xf;
                    Kind::Int {
                        size: size_or_type,
                        signed: encoding & 1 != 0,
                        char: encoding & 2 != 0,
                        bool: encoding & 4 != 0,
                        bits: enc & 0xff,
                    }
                }
                2 => Kind::Ptr { to: size_or_type },
                3 => {
                    let elem = r.u32()?;
                    let _index = r.u32()?;
                    let nelems = r.u32()?;
                    Kind::Array { elem, nelems }
                }
                4 => Kind::Struct {
                    size: size_or_type,
                    members: members(&mut r)?,
                },
                5 => Kind::Union {
                    size: size_or_type,
                    members: members(&mut r)?,
                },
                6 => {
                    let mut values = Vec::with_capacity(vlen as usize);
                    for _ in 0..vlen {
                        let (n, v) = (r.u32()?, r.u32()?);
                        let v = if kind_flag {
                            i64::from(v as i32)
                        } else {
                            i64::from(v)
                        };
                        values.push((name(n), v));
                    }
                    Kind::Enum {
                        size: size_or_type,
                        signed: kind_flag,
                        values,
                    }
                }
                19 => {
                    let mut values = Vec::with_capacity(vlen as usize);
                    for _ in 0..vlen {
                        let (n, lo, hi) = (r.u32()?, r.u32()?, r.u32()?);
                        values.push((name(n), ((u64::from(hi) << 32) | u64::from(lo)) as i64));
                    }
                    Kind::Enum {
                        size: size_or_type,
                        signed: kind_flag,
                        values,
                    }
                }
                7 => Kind::Fwd,
                8..=11 | 18 => Kind::Alias(size_or_type),
                12 => Kind::Func {
                    proto: size_or_type,
                },
                13 => {
                    let params = (0..vlen)
                        .map(|_| Ok((name(r.u32()?), r.u32()?)))
                        .collect::<Result<_, BtfError>>()?;
                    Kind::FuncProto {
                        params,
                        ret: size_or_type,
                    }
                }
                14 => {
                    let linkage = r.u32()?;
                    Kind::Var {
                        ty: size_or_type,
                        is_static: linkage == 0,
                    }
                }
                17 => {
                    skip(&mut r, 1)?;
                    Kind::Other
                }
                15 => {
                    let vars = (0..vlen)
                        .map(|_| {
                            Ok(DatasecVar {
                                var: r.u32()?,
                                offset: r.u32()?,
                                size: r.u32()?,
                            })
                        })
                        .collect::<Result<_, BtfError>>()?;
                    Kind::Datasec {
                        size: size_or_type,
                        vars,
                    }
                }
                16 => Kind::Float { size: size_or_type },
                k => return Err(BtfError(format!("unknown type kind {k}"))),
            };
            out.push(Type {
                name: name(name_off),
                kind,
            });
        }
        Ok(Self { types: out })
    }

    /// The first type of this name whose kind `kind` accepts: a linear
    /// search, for the few lookups a probe's plan makes.
    pub fn find(&self, name: &str, kind: impl Fn(&Kind) -> bool) -> Option<TypeId> {
        self.types
            .iter()
            .position(|t| t.name == name && kind(&t.kind))
            .map(|i| i as TypeId)
    }

    /// Every type with its id, in order.
    pub fn iter(&self) -> impl Iterator<Item = (TypeId, &Type)> {
        self.types.iter().enumerate().map(|(i, t)| (i as TypeId, t))
    }

    pub fn get(&self, id: TypeId) -> Option<&Type> {
        self.types.get(id as usize)
    }

    /// Every global variable, with its section and place, in section order.
    pub fn globals(&self) -> Vec<Global> {
        let mut out = Vec::new();
        for t in &self.types {
            let Kind::Datasec { vars, .. } = &t.kind else {
                continue;
            };
            // Only data sections: not `.maps` (map definitions), `license`
            // or `.kconfig` (values the kernel supplies).
            let data = [".rodata", ".data", ".bss"]
                .iter()
                .any(|p| t.name.starts_with(p));
            if !data {
                continue;
            }
            for v in vars {
                let Some(Type {
                    name,
                    kind: Kind::Var { ty, is_static },
                }) = self.get(v.var)
                else {
                    continue;
                };
                out.push(Global {
                    section: t.name.clone(),
                    name: name.clone(),
                    is_static: *is_static,
                    ty: *ty,
                    offset: v.offset,
                    size: v.size,
                });
            }
        }
        out
    }

    /// The type under typedefs and qualifiers.
    pub fn resolve(&self, mut id: TypeId) -> Option<(TypeId, &Type)> {
        for _ in 0..MAX_DEPTH {
            let t = self.get(id)?;
            match t.kind {
                Kind::Alias(next) => id = next,
                _ => return Some((id, t)),
            }
        }
        None
    }

    /// The first typedef name on the way to the underlying type, such as
    /// `__be16` or `u32`: it says more than the base type does.
    pub fn typedef_name(&self, mut id: TypeId) -> Option<&str> {
        for _ in 0..MAX_DEPTH {
            let t = self.get(id)?;
            match t.kind {
                Kind::Alias(_) if !t.name.is_empty() => return Some(&t.name),
                Kind::Alias(next) => id = next,
                _ => return None,
            }
        }
        None
    }

    /// Size in bytes, when the type has one.
    pub fn size_of(&self, id: TypeId) -> Option<u64> {
        self.size_at(id, 0)
    }

    fn size_at(&self, id: TypeId, depth: usize) -> Option<u64> {
        if depth > MAX_DEPTH {
            return None;
        }
        let (_, t) = self.resolve(id)?;
        match &t.kind {
            Kind::Int { size, .. }
            | Kind::Struct { size, .. }
            | Kind::Union { size, .. }
            | Kind::Enum { size, .. }
            | Kind::Float { size } => Some(u64::from(*size)),
            Kind::Ptr { .. } => Some(8),
            Kind::Array { elem, nelems } => self
                .size_at(*elem, depth + 1)?
                .checked_mul(u64::from(*nelems)),
            _ => None,
        }
    }

    /// A short C-like spelling of a type, for messages: `u8`, `char[16]`,
    /// `struct key`.
    pub fn describe(&self, id: TypeId) -> String {
        self.describe_at(id, 0)
    }

    fn describe_at(&self, id: TypeId, depth: usize) -> String {
        if depth > MAX_DEPTH {
            return "?".into();
        }
        if let Some(name) = self.typedef_name(id) {
            return name.to_string();
        }
        let Some((_, t)) = self.resolve(id) else {
            return "?".into();
        };
        match &t.kind {
            Kind::Array { elem, nelems } => {
                format!("{}[{nelems}]", self.describe_at(*elem, depth + 1))
            }
            Kind::Struct { .. } if t.name.is_empty() => "struct {...}".into(),
            Kind::Struct { .. } => format!("struct {}", t.name),
            Kind::Union { .. } if t.name.is_empty() => "union {...}".into(),
            Kind::Union { .. } => format!("union {}", t.name),
            Kind::Enum { .. } => format!("enum {}", t.name),
            Kind::Ptr { .. } => "pointer".into(),
            Kind::Void => "void".into(),
            _ => t.name.clone(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a raw blob from (name, info, size_or_type, extra words).
    pub(crate) fn blob(types: &[(&str, u32, u32, Vec<u32>)], extra_names: &[&str]) -> Vec<u8> {
        let mut strings = vec![0u8];
        let mut offsets = std::collections::HashMap::new();
        for n in types.iter().map(|t| t.0).chain(extra_names.iter().copied()) {
            if n.is_empty() || offsets.contains_key(n) {
                continue;
            }
            offsets.insert(n.to_string(), strings.len() as u32);
            strings.extend_from_slice(n.as_bytes());
            strings.push(0);
        }
        let mut body = Vec::new();
        for (name, info, st, extra) in types {
            let off = offsets.get(*name).copied().unwrap_or(0);
            for w in [off, *info, *st].iter().chain(extra) {
                body.extend_from_slice(&w.to_ne_bytes());
            }
        }
        let mut out = Vec::new();
        out.extend_from_slice(&0xeb9fu16.to_ne_bytes());
        out.extend_from_slice(&[1, 0]);
        for w in [
            24u32,
            0,
            body.len() as u32,
            body.len() as u32,
            strings.len() as u32,
        ] {
            out.extend_from_slice(&w.to_ne_bytes());
        }
        out.extend_from_slice(&body);
        out.extend_from_slice(&strings);
        out
    }

    pub(crate) fn name_off(raw_names: &[&str], name: &str) -> u32 {
        let mut at = 1u32;
        for n in raw_names {
            if *n == name {
                return at;
            }
            at += n.len() as u32 + 1;
        }
        0
    }

    #[test]
    fn reads_ints_structs_arrays_and_typedefs() {
        // 1: unsigned char (u8), 2: typedef u8, 3: unsigned long long,
        // 4: char[16], 5: struct key { u8 op; u64 slot; char comm[16]; }
        let names = [
            "unsigned char",
            "u8",
            "unsigned long long",
            "key",
            "op",
            "slot",
            "comm",
        ];
        let m = |n: &str| name_off(&names, n);
        let raw = blob(
            &[
                ("unsigned char", 1 << 24, 1, vec![8]),
                ("u8", 8 << 24, 1, vec![]),
                ("unsigned long long", 1 << 24, 8, vec![64]),
                ("", 3 << 24, 0, vec![1, 1, 16]),
                (
                    "key",
                    (4 << 24) | 3,
                    32,
                    vec![m("op"), 2, 0, m("slot"), 3, 64, m("comm"), 4, 128],
                ),
            ],
            &["op", "slot", "comm"],
        );
        let btf = Btf::parse(&raw).expect("parses");
        let (_, key) = btf.resolve(5).expect("key");
        let Kind::Struct { size, members } = &key.kind else {
            panic!("{key:?}")
        };
        assert_eq!(*size, 32);
        let layout: Vec<(&str, u32, Option<u64>, String)> = members
            .iter()
            .map(|m| {
                (
                    m.name.as_str(),
                    m.bit_offset / 8,
                    btf.size_of(m.ty),
                    btf.describe(m.ty),
                )
            })
            .collect();
        assert_eq!(
            layout,
            vec![
                ("op", 0, Some(1), "u8".to_string()),
                ("slot", 8, Some(8), "unsigned long long".to_string()),
                ("comm", 16, Some(16), "unsigned char[16]".to_string()),
            ]
        );
    }

    #[test]
    fn malformed_blobs_are_errors_and_cycles_end() {
        assert!(Btf::parse(b"").is_err());
        assert!(Btf::parse(&[0x9f, 0xeb, 1, 0]).is_err());
        let truncated = blob(&[("", 3 << 24, 0, vec![1])], &[]);
        assert!(Btf::parse(&truncated).is_err(), "array data cut short");
        // typedef 1 -> 2 -> 1: a cycle resolves to nothing.
        let cycle = blob(&[("a", 8 << 24, 2, vec![]), ("b", 8 << 24, 1, vec![])], &[]);
        let btf = Btf::parse(&cycle).expect("parses");
        assert_eq!(btf.resolve(1), None);
        assert_eq!(btf.size_of(1), None);
    }
}

/// An object's types, and each map's key and value type ids (0 when the
/// map declares sizes only, as legacy `bpf_map_def` maps do).
#[derive(Debug, Clone, Default)]
pub struct ObjectTypes {
    pub btf: Btf,
    maps: std::collections::HashMap<String, (TypeId, TypeId)>,
}

impl ObjectTypes {
    /// From an object opened but not yet loaded: loading may drop a map's
    /// type ids (libbpf retries a refused map without BTF).
    pub fn of_open(object: &libbpf_rs::OpenObject) -> Option<Self> {
        use libbpf_rs::AsRawLibbpf;
        let maps = object.maps().map(|m| {
            (
                m.name().to_string_lossy().into_owned(),
                m.as_libbpf_object().as_ptr().cast_const(),
            )
        });
        Self::read(object.as_libbpf_object().as_ptr(), maps)
    }

    fn read(
        object: *mut libbpf_sys::bpf_object,
        maps: impl Iterator<Item = (String, *const libbpf_sys::bpf_map)>,
    ) -> Option<Self> {
        // SAFETY: `object` is a live bpf_object owned by the caller's
        // Object; the BTF it returns lives as long as it does, and the raw
        // data pointer is valid for `size` bytes, copied before returning.
        let raw = unsafe {
            let btf = libbpf_sys::bpf_object__btf(object);
            if btf.is_null() {
                return None;
            }
            let mut size = 0u32;
            let data = libbpf_sys::btf__raw_data(btf, &mut size);
            if data.is_null() {
                return None;
            }
            std::slice::from_raw_parts(data.cast::<u8>(), size as usize).to_vec()
        };
        let btf = match Btf::parse(&raw) {
            Ok(btf) => btf,
            Err(e) => {
                log::warn!("object BTF: {e}; map layouts are taken from the config alone");
                return None;
            }
        };
        let maps = maps
            .map(|(name, map)| {
                // SAFETY: `map` belongs to the live object above.
                let ids = unsafe {
                    (
                        libbpf_sys::bpf_map__btf_key_type_id(map),
                        libbpf_sys::bpf_map__btf_value_type_id(map),
                    )
                };
                (name, ids)
            })
            .collect();
        Some(Self { btf, maps })
    }

    /// The key type of map `name`, if it has BTF.
    pub fn key(&self, map: &str) -> Option<TypeId> {
        self.maps.get(map).map(|k| k.0).filter(|&id| id != 0)
    }

    pub fn value(&self, map: &str) -> Option<TypeId> {
        self.maps.get(map).map(|k| k.1).filter(|&id| id != 0)
    }
}
