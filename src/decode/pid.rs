//! `pid`: a process id in decimal (chain `uint` first), kept as it is, but
//! known to be gone once the process has exited and been reaped: with
//! `delete_gone`, a map keyed by pid then forgets processes that no longer
//! exist ([`crate::host::processes`]). Ids are checked again every few
//! seconds; a reused id is a new process, and its series starts afresh.

use super::registry::{Entry, Guess};
use super::{parse_decimal, DecodeError, Decoded, Decoder};
use crate::host::processes::{check_epoch, liveness, Liveness};

pub const ENTRY: Entry = Entry {
    name: "pid",
    options: &[],
    pure: false,
    reads: &[],
    ours: true,
    input: "decimal process or thread id",
    output: "the same id; gone (for `delete_gone`) once no task has it",
    // Not suggested by `describe`: it only pays off with `delete_gone`.
    guess: Guess::NONE,
    build: |_, _| Ok(Box::new(Pid)),
};

pub struct Pid;

impl Decoder for Pid {
    fn decode(&self, input: &[u8]) -> Result<Decoded, DecodeError> {
        let pid = parse_decimal(input)?;
        let text = pid.to_string().into_bytes();
        Ok(match liveness(pid) {
            Liveness::Gone => Decoded::Gone(text),
            Liveness::Alive | Liveness::Unknowable => Decoded::Value(text),
        })
    }

    fn changes(&self) -> u64 {
        check_epoch()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_pids_are_values_and_reaped_ones_gone() {
        let me = std::process::id().to_string();
        assert_eq!(
            Pid.decode(me.as_bytes()),
            Ok(Decoded::Value(me.clone().into_bytes()))
        );
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id().to_string();
        child.wait().expect("reap true");
        assert_eq!(
            Pid.decode(pid.as_bytes()),
            Ok(Decoded::Gone(pid.into_bytes()))
        );
        assert!(
            Pid.decode(b"\x01\x02").is_err(),
            "raw bytes: chain uint first"
        );
    }
}
