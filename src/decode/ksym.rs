//! `ksym`: a raw u64 kernel address to the symbol starting exactly there, as
//! a BPF program reads it with `PT_REGS_IP` or from a function pointer.

use std::sync::Arc;

use super::registry::{Entry, Guess};
use super::{read_prefix, DecodeError, Decoded, Decoder};
use crate::host::Host;
use crate::host::HostTable;

pub const ENTRY: Entry = Entry {
    name: "ksym",
    options: &[],
    pure: false,
    reads: &[HostTable::Kallsyms],
    ours: false,
    input: "u64 address",
    output: "exact kernel symbol, else `unknown_addr:0x…`",
    guess: Guess {
        members: &["ip", "func", "caller", "pc", "addr"],
        suffixes: &[],
        sizes: &[8],
        after_uint: false,
    },
    build: |_, host| Ok(Box::new(Ksym::new(host.clone()))),
};

pub struct Ksym {
    host: Arc<Host>,
}

impl Ksym {
    pub fn new(host: Arc<Host>) -> Self {
        Self { host }
    }
}

/// Reads the native-endian u64 at the start of `input`. Longer input is
/// accepted and its tail ignored, as the reference does.
pub(crate) fn read_addr(input: &[u8]) -> Result<u64, DecodeError> {
    read_prefix::<8>(input, "8 or more").map(u64::from_ne_bytes)
}

impl Decoder for Ksym {
    fn decode(&self, input: &[u8]) -> Result<Decoded, DecodeError> {
        let addr = read_addr(input)?;
        Ok(match self.host.kallsyms.exact(addr) {
            Some(name) => Decoded::Value(name.into_bytes()),
            // Unknown, not Value: a module loaded later may yet name it.
            None => Decoded::Unknown(format!("unknown_addr:0x{addr:x}").into_bytes()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::kallsyms::tests::{fixture, host, FIXTURE};
    use crate::host::kallsyms::{real_symbol, Kallsyms, RELOAD_INTERVAL};

    #[test]
    fn exact_symbols_and_unknown_addresses() {
        let f = fixture(FIXTURE);
        let d = Ksym::new(host(Kallsyms::with_path(f.path(), RELOAD_INTERVAL)));
        assert_eq!(
            d.decode(&4u64.to_ne_bytes()),
            Ok(Decoded::Value(b"one".to_vec()))
        );
        assert_eq!(
            d.decode(&0xffff_ffeb_19d9_0828u64.to_ne_bytes()),
            Ok(Decoded::Unknown(
                b"unknown_addr:0xffffffeb19d90828".to_vec()
            ))
        );
        assert_eq!(
            d.decode(&5u64.to_ne_bytes()),
            Ok(Decoded::Unknown(b"unknown_addr:0x5".to_vec()))
        );
        assert!(matches!(
            d.decode(&[1, 2, 3]),
            Err(DecodeError::Size { got: 3, .. })
        ));
    }

    #[test]
    fn real_kernel_symbol_resolves_exactly() {
        let (name, addr) = real_symbol(&["do_sys_openat2", "vfs_read", "schedule"]);
        let d = Ksym::new(Host::new());
        assert_eq!(
            d.decode(&addr.to_ne_bytes()),
            Ok(Decoded::Value(name.into_bytes()))
        );
        assert_eq!(
            d.decode(&(addr + 1).to_ne_bytes()),
            Ok(Decoded::Unknown(
                format!("unknown_addr:0x{:x}", addr + 1).into_bytes()
            ))
        );
    }
}
