//! `kaddrs:` support: before load, each listed kernel symbol's address is
//! written into the object's `const volatile u64 kaddr_<sym>` in `.rodata`,
//! so programs can compare pointers against kernel functions or variables.
//! The addresses come from the shared kallsyms table ([`crate::host::kallsyms`]).

use std::collections::HashMap;

use libbpf_rs::btf::types::DataSec;
use libbpf_rs::btf::BtfType;
use libbpf_rs::{Btf, OpenObject};

/// Writes each address into `.rodata` at the offset BTF gives for
/// `kaddr_<sym>`.
pub fn apply(
    open: &mut OpenObject,
    object_bytes: &[u8],
    addrs: &HashMap<String, u64>,
) -> Result<(), String> {
    if addrs.is_empty() {
        return Ok(());
    }
    let btf = Btf::from_raw("object", object_bytes)
        .map_err(|e| format!("reading the object's BTF: {e}"))?
        .ok_or("the object has no BTF, so kaddr_* variables cannot be found")?;
    let sec: DataSec<'_> = btf
        .type_by_name(".rodata")
        .ok_or("the object has no .rodata section: declare `const volatile u64 kaddr_<sym>`")?;
    let mut offsets = HashMap::new();
    for info in sec.iter() {
        let ty: Option<BtfType<'_>> = btf.type_by_id(info.ty);
        if let Some(name) = ty.and_then(|t| t.name()).and_then(|n| n.to_str()) {
            offsets.insert(name.to_string(), (info.offset as usize, info.size));
        }
    }
    let mut rodata = open
        .maps_mut()
        .find(|m| m.name().to_string_lossy().ends_with(".rodata"))
        .ok_or("the object has no .rodata map")?;
    let data = rodata
        .initial_value_mut()
        .ok_or(".rodata has no initial value")?;
    for (sym, addr) in addrs {
        let var = format!("kaddr_{sym}");
        let (offset, size) = *offsets.get(&var).ok_or_else(|| {
            format!("kaddrs lists {sym}, but the object has no `const volatile u64 {var}`")
        })?;
        if size != 8 {
            return Err(format!("{var} is {size} bytes; it must be a u64"));
        }
        let slot = data
            .get_mut(offset..offset + 8)
            .ok_or_else(|| format!("{var} lies outside .rodata"))?;
        slot.copy_from_slice(&addr.to_ne_bytes());
    }
    Ok(())
}
