//! `kaddrs:` support: before load, each listed kernel symbol's address is
//! written into the object's `const volatile u64 kaddr_<sym>` in `.rodata`,
//! so programs can compare pointers against kernel functions or variables.

use std::collections::HashMap;

use libbpf_rs::btf::types::DataSec;
use libbpf_rs::btf::BtfType;
use libbpf_rs::{Btf, OpenObject};

/// Reads the addresses of `symbols` from a kallsyms-format text.
pub fn resolve(kallsyms: &str, symbols: &[String]) -> Result<HashMap<String, u64>, String> {
    let mut found = HashMap::new();
    for line in kallsyms.lines() {
        let mut f = line.split_whitespace();
        let (Some(addr), Some(_kind), Some(name)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if symbols.iter().any(|s| s == name) && !found.contains_key(name) {
            if let Ok(a) = u64::from_str_radix(addr, 16) {
                found.insert(name.to_string(), a);
            }
        }
    }
    let missing: Vec<&str> = symbols
        .iter()
        .filter(|s| !found.contains_key(*s))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "symbols not found in /proc/kallsyms: {}",
            missing.join(", ")
        ));
    }
    if found.values().all(|&a| a == 0) && !found.is_empty() {
        return Err(
            "/proc/kallsyms shows zero addresses: run as root (kptr_restrict hides them)".into(),
        );
    }
    Ok(found)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_and_reports_missing() {
        let text = "ffffffff81000000 T _stext\nffffffff81234560 T do_sys_open\n0000000000000000 A fixed_percpu_data\n";
        let found = resolve(text, &["do_sys_open".into()]).expect("found");
        assert_eq!(found["do_sys_open"], 0xffffffff81234560);
        let err = resolve(text, &["nope".into()]).expect_err("missing");
        assert!(err.contains("nope"));
    }
}
