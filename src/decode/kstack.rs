//! `kstack`: a raw array of u64 return addresses (`bpf_get_stack`), ending at
//! the first zero, to the enclosing function of each frame, one per line.

use std::sync::Arc;

use super::registry::{Entry, Guess};
use super::{DecodeError, Decoded, Decoder};
use crate::host::Host;
use crate::host::HostTable;

pub const ENTRY: Entry = Entry {
    name: "kstack",
    options: &[],
    pure: false,
    reads: &[HostTable::Kallsyms],
    ours: false,
    input: "u64 addresses",
    output: "nearest symbols, one per line",
    guess: Guess::NONE,
    build: |_, host| Ok(Box::new(Kstack::new(host.clone()))),
};

pub struct Kstack {
    host: Arc<Host>,
}

impl Kstack {
    pub fn new(host: Arc<Host>) -> Self {
        Self { host }
    }
}

impl Decoder for Kstack {
    fn decode(&self, input: &[u8]) -> Result<Decoded, DecodeError> {
        if input.len() % 8 != 0 {
            return Err(DecodeError::Size {
                expected: "a multiple of 8",
                got: input.len(),
            });
        }
        let addrs: Vec<u64> = input
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                u64::from_ne_bytes(b)
            })
            .take_while(|&a| a != 0)
            .collect();
        let frames = self.host.kallsyms.nearest(&addrs);
        let unknown = frames.iter().any(Option::is_none);
        let text = frames
            .iter()
            .map(|f| f.as_deref().unwrap_or("??"))
            .collect::<Vec<_>>()
            .join("\n")
            .into_bytes();
        Ok(if unknown {
            Decoded::Unknown(text)
        } else {
            Decoded::Value(text)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::kallsyms::tests::{fixture, host, FIXTURE};
    use crate::host::kallsyms::{real_symbol, Kallsyms, RELOAD_INTERVAL};

    fn stack(addrs: &[u64]) -> Vec<u8> {
        addrs.iter().flat_map(|a| a.to_ne_bytes()).collect()
    }

    #[test]
    fn frames_resolve_to_the_enclosing_symbol() {
        let f = fixture(FIXTURE);
        let d = Kstack::new(host(Kallsyms::with_path(f.path(), RELOAD_INTERVAL)));
        let text = |r: Result<Decoded, DecodeError>| match r {
            Ok(Decoded::Value(v)) | Ok(Decoded::Unknown(v)) => String::from_utf8(v).expect("utf8"),
            other => panic!("{other:?}"),
        };
        assert_eq!(text(d.decode(&stack(&[0, 0]))), "");
        assert_eq!(text(d.decode(&stack(&[4, 5, 6, 0]))), "one\none\ntwo");
        assert_eq!(
            text(d.decode(&stack(&[0xab, 0x10, 6, 0]))),
            "three\ntwo\ntwo"
        );
        assert_eq!(text(d.decode(&stack(&[4, 0, 6]))), "one", "stops at 0");
        assert_eq!(
            d.decode(&stack(&[1, 0xac, 1, 0])),
            Ok(Decoded::Unknown(b"??\nthree\n??".to_vec()))
        );
        assert!(d.decode(&[0; 12]).is_err());
    }

    #[test]
    fn real_address_inside_a_function_names_it() {
        let (name, addr) = real_symbol(&["do_sys_openat2", "vfs_read", "schedule"]);
        let d = Kstack::new(Host::new());
        assert_eq!(
            d.decode(&stack(&[addr + 1, addr, 0])),
            Ok(Decoded::Value(format!("{name}\n{name}").into_bytes()))
        );
    }
}
