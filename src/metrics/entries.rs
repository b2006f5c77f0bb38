//! `maps.NAME.entries`: a config's filters and tables, from label text
//! back to the bytes of map entries. This is `layout` read backwards: the
//! key's members are found in BTF as a metric's labels find them, and each
//! member's text goes through its decoders in reverse (`syscall` turns
//! `openat` into `257`, then `uint` into four bytes), or, where it names
//! none, is read as its own C type (integers, `bool`, enum names, char
//! arrays), as `constants:` are.

use std::collections::BTreeMap;
use std::sync::Arc;

use libbpf_rs::{MapCore, Object};
use serde_yaml::Value;

use super::layout::fields;
use crate::config::model::{DecoderSpec, MapSettings};
use crate::decode::build_decoder;
use crate::decode::registry::Built;
use crate::host::Host;
use crate::object::btf::{Btf, ObjectTypes, TypeId};
use crate::object::constants;
use crate::object::error::ObjectError;
use crate::object::load::MapEntries;

/// A member's decoders, built, with their names for errors.
type Chain = Vec<(String, Built)>;

/// Every entry of every map in `maps`, encoded against the loaded object.
pub fn encode_all(
    maps: &BTreeMap<String, MapSettings>,
    types: Option<&ObjectTypes>,
    object: &Object,
    host: &Arc<Host>,
) -> Result<MapEntries, ObjectError> {
    let mut out = Vec::new();
    for (name, settings) in maps {
        if settings.entries.is_empty() && settings.decoders.is_empty() {
            continue;
        }
        let err = |at: String, message: String| ObjectError::MapEntry {
            map: name.clone(),
            at,
            message,
        };
        let Some(map) = object
            .maps()
            .find(|m| m.name().to_str() == Some(name.as_str()))
        else {
            return Err(err(
                "entries".into(),
                format!("the object has no map {name:?}"),
            ));
        };
        let (key_size, value_size) = (map.key_size() as usize, map.value_size() as usize);
        let Some(types) = types else {
            return Err(err(
                "entries".into(),
                format!("the object has no BTF, so map {name}'s key members cannot be found"),
            ));
        };
        let btf = &types.btf;
        let (Some(key_ty), Some(value_ty)) = (types.key(name), types.value(name)) else {
            return Err(err(
                "entries".into(),
                format!(
                    "map {name} declares no key or value type in BTF (declare it with __type(key, ...) and __type(value, ...))"
                ),
            ));
        };
        let members: Vec<String> = fields(btf, key_ty)
            .into_iter()
            .filter(|f| f.depth == 0)
            .map(|f| f.path)
            .collect();
        let mut chains: BTreeMap<&str, Chain> = BTreeMap::new();
        for (member, specs) in &settings.decoders {
            let known = if members.is_empty() {
                member == "key"
            } else {
                members.contains(member)
            };
            if !known {
                return Err(err(
                    format!("decoders.{member}"),
                    format!(
                        "map {name}'s key has no member {member:?}; its members: {}",
                        if members.is_empty() {
                            "key (a scalar)".to_string()
                        } else {
                            members.join(", ")
                        }
                    ),
                ));
            }
            chains.insert(
                member,
                build(specs, host).map_err(|m| err(format!("decoders.{member}"), m))?,
            );
        }
        for (i, entry) in settings.entries.iter().enumerate() {
            let key = encode(btf, key_ty, key_size, &entry.key, &chains)
                .map_err(|(at, m)| err(join(&format!("entries[{i}].key"), &at), m))?;
            let one = Value::Number(1.into());
            let value = encode(
                btf,
                value_ty,
                value_size,
                entry.value.as_ref().unwrap_or(&one),
                &BTreeMap::new(),
            )
            .map_err(|(at, m)| err(join(&format!("entries[{i}].value"), &at), m))?;
            out.push((name.clone(), key, value));
        }
    }
    Ok(out)
}

fn join(base: &str, at: &str) -> String {
    if at.is_empty() {
        base.to_string()
    } else {
        format!("{base}.{at}")
    }
}

fn build(specs: &[DecoderSpec], host: &Arc<Host>) -> Result<Chain, String> {
    specs
        .iter()
        .map(|s| {
            build_decoder(s, host)
                .map(|b| (s.name.clone(), b))
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// `yaml` as `size` bytes of type `ty`: a scalar, or a struct's members by
/// name. Errors say the member (empty for the whole) and why.
fn encode(
    btf: &Btf,
    ty: TypeId,
    size: usize,
    yaml: &Value,
    chains: &BTreeMap<&str, Chain>,
) -> Result<Vec<u8>, (String, String)> {
    let all: Vec<_> = fields(btf, ty)
        .into_iter()
        .filter(|f| f.depth == 0)
        .collect();
    if all.is_empty() {
        return member(btf, ty, size, yaml, chains.get("key")).map_err(|m| (String::new(), m));
    }
    let Value::Mapping(given) = yaml else {
        return Err((
            String::new(),
            format!(
                "{} is a struct: give its members by name ({})",
                btf.describe(ty),
                all.iter()
                    .map(|f| f.path.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    };
    let mut out = vec![0u8; size];
    for (k, v) in given {
        let name = k.as_str().unwrap_or_default();
        let Some(f) = all.iter().find(|f| f.path == name) else {
            return Err((
                name.to_string(),
                format!(
                    "{} has no member {name:?}; its members: {}",
                    btf.describe(ty),
                    all.iter()
                        .map(|f| f.path.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        };
        if f.bitfield {
            return Err((
                name.to_string(),
                "bitfield members cannot be written".into(),
            ));
        }
        let bytes =
            member(btf, f.ty, f.size, v, chains.get(name)).map_err(|m| (name.to_string(), m))?;
        let Some(slot) = out.get_mut(f.offset..f.offset + f.size) else {
            return Err((
                name.to_string(),
                "the member lies outside the map's key".into(),
            ));
        };
        slot.copy_from_slice(&bytes);
    }
    Ok(out)
}

/// One member: through its decoders in reverse where it has them, else as
/// its C type.
fn member(
    btf: &Btf,
    ty: TypeId,
    width: usize,
    yaml: &Value,
    chain: Option<&Chain>,
) -> Result<Vec<u8>, String> {
    let Some(chain) = chain else {
        return constants::encode(btf, ty, width, yaml);
    };
    let mut bytes = match yaml {
        Value::String(s) => s.clone().into_bytes(),
        Value::Number(n) => n.to_string().into_bytes(),
        Value::Bool(b) => b.to_string().into_bytes(),
        other => return Err(format!("give label text, not {other:?}")),
    };
    for (name, built) in chain.iter().rev() {
        bytes = match built.decoder.encode(&bytes, width) {
            Some(r) => r.map_err(|e| format!("decoder {name} in reverse: {e}"))?,
            None => return Err(format!("decoder {name} cannot be run in reverse")),
        };
    }
    if bytes.len() != width {
        return Err(format!(
            "the decoders give {} bytes for a member of {width}",
            bytes.len()
        ));
    }
    Ok(bytes)
}
