//! `constants:` in a config: values for the object's global variables,
//! written into their sections before load, as the object's own loader
//! would set its `const volatile` switches (`targ_per_disk`, `targ_ms`,
//! `filter_cg`) through its skeleton. The verifier sees `.rodata` values
//! as constants, so branches they turn off are not even loaded.
//!
//! Each value is checked against the variable's BTF type: a bool takes
//! true or false, an integer one that fits its width and sign, an enum an
//! enumerator's name or value, a char array a string that fits with its
//! NUL. `kaddrs` is the same mechanism with addresses from kallsyms.

use std::fmt;

use super::btf::{Btf, Global, Kind, TypeId};

/// A constant that cannot be set, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConstantError {
    /// The object has no BTF, so its globals have no names or types.
    NoBtf,
    NoSuchGlobal {
        name: String,
        /// The object's globals, `section: name`.
        available: Vec<String>,
    },
    /// The value does not suit the variable's type.
    Type {
        name: String,
        ty: String,
        why: String,
    },
    /// The variable's section was not created as a map (libbpf leaves out
    /// empty sections).
    NoSection { name: String, section: String },
}

impl fmt::Display for ConstantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoBtf => f.write_str(
                "the object has no BTF (built without -g?), so its global variables cannot be found by name",
            ),
            Self::NoSuchGlobal { name, available } if available.is_empty() => {
                write!(f, "the object has no global variable {name:?}, and no globals at all")
            }
            Self::NoSuchGlobal { name, available } => write!(
                f,
                "the object has no global variable {name:?}; its globals: {}",
                available.join(", ")
            ),
            Self::Type { name, ty, why } => write!(f, "{name} is {ty}: {why}"),
            Self::NoSection { name, section } => write!(
                f,
                "{name} lies in {section}, which the object does not create as a map"
            ),
        }
    }
}

impl std::error::Error for ConstantError {}

/// Bytes to write at an offset of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub name: String,
    pub section: String,
    pub offset: usize,
    pub bytes: Vec<u8>,
}

/// The global `name`, by BTF.
pub fn find<'b>(globals: &'b [Global], name: &str) -> Result<&'b Global, ConstantError> {
    globals
        .iter()
        .find(|g| g.name == name)
        .ok_or_else(|| ConstantError::NoSuchGlobal {
            name: name.to_string(),
            available: globals
                .iter()
                .map(|g| format!("{} ({})", g.name, g.section))
                .collect(),
        })
}

/// What `value` is as the bytes of global `name`.
pub fn assign(
    btf: &Btf,
    globals: &[Global],
    name: &str,
    value: &serde_yaml::Value,
) -> Result<Assignment, ConstantError> {
    let global = find(globals, name)?;
    let bytes =
        encode(btf, global.ty, global.size as usize, value).map_err(|why| ConstantError::Type {
            name: name.to_string(),
            ty: btf.describe(global.ty),
            why,
        })?;
    Ok(Assignment {
        name: name.to_string(),
        section: global.section.clone(),
        offset: global.offset as usize,
        bytes,
    })
}

/// `value` as `size` bytes of type `ty`, or why it does not fit. Also
/// writes map entries' members (`maps.NAME.entries`).
pub fn encode(
    btf: &Btf,
    ty: TypeId,
    size: usize,
    value: &serde_yaml::Value,
) -> Result<Vec<u8>, String> {
    use serde_yaml::Value;
    let Some((_, t)) = btf.resolve(ty) else {
        return Err("a type this exporter cannot read".into());
    };
    match (&t.kind, value) {
        (Kind::Int { bool: true, .. }, Value::Bool(b)) => Ok(int_bytes(i128::from(*b), size)),
        (Kind::Int { bool: true, .. }, _) => {
            Err(format!("give true or false, not {}", shown(value)))
        }
        (
            Kind::Int {
                size: s, signed, ..
            },
            Value::Bool(b),
        ) if *s == 1 && !signed => Ok(int_bytes(i128::from(*b), size)),
        (
            Kind::Int {
                size: s, signed, ..
            }
            | Kind::Enum {
                size: s, signed, ..
            },
            Value::Number(n),
        ) => {
            let v = integer(n)?;
            fits(v, *s as usize, *signed)?;
            Ok(int_bytes(v, size))
        }
        (
            Kind::Enum {
                size: s,
                signed,
                values,
            },
            Value::String(text),
        ) => {
            let (_, v) = values.iter().find(|(n, _)| n == text).ok_or_else(|| {
                let names: Vec<&str> = values.iter().map(|(n, _)| n.as_str()).collect();
                format!("{text:?} is not one of its values ({})", names.join(", "))
            })?;
            fits(i128::from(*v), *s as usize, *signed || *v < 0)?;
            Ok(int_bytes(i128::from(*v), size))
        }
        (Kind::Array { elem, nelems }, Value::String(text)) if is_char(btf, *elem) => {
            if text.len() >= *nelems as usize {
                return Err(format!(
                    "{text:?} is {} bytes, and it holds at most {} with the terminating NUL",
                    text.len(),
                    nelems.saturating_sub(1)
                ));
            }
            let mut bytes = text.as_bytes().to_vec();
            bytes.resize(size, 0);
            Ok(bytes)
        }
        (Kind::Int { .. } | Kind::Enum { .. }, _) => {
            Err(format!("give an integer, not {}", shown(value)))
        }
        _ => Err(format!(
            "only booleans, integers, enums and char arrays can be set, and this is {}",
            btf.describe(ty)
        )),
    }
}

fn is_char(btf: &Btf, ty: TypeId) -> bool {
    matches!(btf.resolve(ty), Some((_, t)) if matches!(t.kind, Kind::Int { size: 1, .. }))
}

fn integer(n: &serde_yaml::Number) -> Result<i128, String> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
        .ok_or_else(|| format!("{n} is not a whole number"))
}

/// Whether `v` fits `size` bytes, signed or not.
fn fits(v: i128, size: usize, signed: bool) -> Result<(), String> {
    let bits = (size * 8).min(64) as u32;
    let (lo, hi) = if signed {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    } else {
        (0, (1i128 << bits) - 1)
    };
    if v < lo || v > hi {
        return Err(format!(
            "{v} does not fit: {} {bits}-bit integer holds {lo} to {hi}",
            if signed { "a signed" } else { "an unsigned" }
        ));
    }
    Ok(())
}

/// The low `size` bytes of `v`, in this host's order.
fn int_bytes(v: i128, size: usize) -> Vec<u8> {
    let all = (v as u128).to_ne_bytes();
    if cfg!(target_endian = "little") {
        all[..size.min(16)].to_vec()
    } else {
        all[16 - size.min(16)..].to_vec()
    }
}

fn shown(value: &serde_yaml::Value) -> String {
    match serde_yaml::to_string(value) {
        Ok(s) => s.trim().to_string(),
        Err(_) => "that".into(),
    }
}

/// Writes each assignment into its section's initial value. libbpf names
/// a section's map after the object (`hardirqs.rodata`), so it is found by
/// its suffix.
pub fn apply(open: &mut libbpf_rs::OpenObject, all: &[Assignment]) -> Result<(), ConstantError> {
    for a in all {
        let mut map = open
            .maps_mut()
            .find(|m| m.name().to_string_lossy().ends_with(a.section.as_str()))
            .ok_or_else(|| ConstantError::NoSection {
                name: a.name.clone(),
                section: a.section.clone(),
            })?;
        let data = map
            .initial_value_mut()
            .ok_or_else(|| ConstantError::NoSection {
                name: a.name.clone(),
                section: a.section.clone(),
            })?;
        let slot = data
            .get_mut(a.offset..a.offset + a.bytes.len())
            .ok_or_else(|| ConstantError::NoSection {
                name: a.name.clone(),
                section: a.section.clone(),
            })?;
        slot.copy_from_slice(&a.bytes);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_fit_their_type() {
        assert!(fits(255, 1, false).is_ok());
        assert!(fits(256, 1, false).is_err());
        assert!(fits(-1, 1, false).is_err());
        assert!(fits(-128, 1, true).is_ok());
        assert!(fits(-129, 1, true).is_err());
        assert!(fits(u64::MAX as i128, 8, false).is_ok());
        assert!(fits(i64::MIN as i128, 8, true).is_ok());
        assert_eq!(int_bytes(-2, 4), (-2i32).to_ne_bytes().to_vec());
        assert_eq!(int_bytes(300, 2), 300u16.to_ne_bytes().to_vec());
    }
}
