//! `syscall`: a syscall number (decimal text) to its name on the host arch,
//! in the reference exporter's spelling unless `names: kernel` is set.

use super::registry::{Entry, Guess, Opt};
use super::tables::{syscall_name, Names};
use super::{parse_decimal, DecodeError, Decoded, Decoder};

pub const ENTRY: Entry = Entry {
    name: "syscall",
    options: &[Opt::Names],
    pure: true,
    reads: &[],
    ours: false,
    input: "decimal",
    output: "syscall name for the host architecture (the tables know x86_64 and arm64 numbers; builds are x86_64 only). By default exactly the reference's names (strace v6.8 handler names: 231 is `exit`, 202 `futex_time64`), so dashboards survive a switch; `names: kernel` gives the kernel's (`exit_group`, `futex`), as the shipped configs use",
    guess: Guess { members: &["syscall", "syscall_nr", "syscall_id", "nr", "sysnr", "sys_nr"], suffixes: &[], sizes: &[], after_uint: true },
    build: |spec, _| Ok(Box::new(Syscall(super::registry::names_of(spec)))),
};

pub struct Syscall(pub Names);

impl Decoder for Syscall {
    fn decode(&self, input: &[u8]) -> Result<Decoded, DecodeError> {
        let nr = parse_decimal(input)?;
        Ok(match syscall_name(nr, self.0) {
            Some(name) => Decoded::Value(name.as_bytes().to_vec()),
            None => Decoded::Value(format!("unknown_syscall:{nr}").into_bytes()),
        })
    }

    /// A name to its number, as decimal text for `uint` before it.
    fn encode(&self, output: &[u8], _width: usize) -> Option<Result<Vec<u8>, DecodeError>> {
        let name = String::from_utf8_lossy(output);
        let nr = (0..2048u64).find(|nr| syscall_name(*nr, self.0) == Some(&*name));
        Some(match nr {
            Some(nr) => Ok(nr.to_string().into_bytes()),
            None => Err(DecodeError::Invalid(format!(
                "{name:?} is not a syscall of this architecture"
            ))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(names: Names, nr: u64) -> String {
        match Syscall(names).decode(nr.to_string().as_bytes()) {
            Ok(Decoded::Value(v)) => String::from_utf8(v).expect("utf-8"),
            other => panic!("{nr}: {other:?}"),
        }
    }

    /// Every number from 0 to 1023 against the checked-in snapshot of the
    /// reference's table (its generator's input, scripts/data/).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn reference_names_match_the_snapshot_for_every_number() {
        let snapshot = include_str!("../../scripts/data/reference-syscalls-x86_64.txt");
        let expected = crate::decode::snapshot_table(snapshot);
        assert_eq!(expected.len(), 373);
        for nr in 0..1024 {
            let want = expected
                .get(&nr)
                .map_or_else(|| format!("unknown_syscall:{nr}"), |n| n.to_string());
            assert_eq!(decode(Names::Reference, nr), want, "{nr}");
        }
        // What users of the reference see, and what the kernel calls them.
        for (nr, reference, kernel) in [
            (202, "futex_time64", "futex"),
            (230, "clock_nanosleep_time64", "clock_nanosleep"),
            (231, "exit", "exit_group"),
            (7, "poll_time64", "poll"),
            (17, "pread", "pread64"),
            (94, "chown", "lchown"),
        ] {
            assert_eq!(decode(Names::Reference, nr), reference);
            assert_eq!(decode(Names::Kernel, nr), kernel);
        }
        assert_eq!(decode(Names::Reference, 461), "lsm_list_modules");
    }

    #[test]
    fn names_known_numbers() {
        assert_eq!(decode(Names::Kernel, 1), "write");
        assert_eq!(decode(Names::Reference, 99999), "unknown_syscall:99999");
        assert!(Syscall(Names::Reference).decode(b"abc").is_err());
    }
}
