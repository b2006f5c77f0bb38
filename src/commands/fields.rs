//! `ebpf-exporter fields HOOK`: what a `probe:` metric can read at a hook,
//! with each field's type and what it can be (a label, a value, a filter).

use std::process::ExitCode;

use crate::probes::fields::{describe, fields_of, parse_hook, UserArgs};

pub fn run(hook: &str) -> ExitCode {
    let parsed = match parse_hook(hook) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("ebpf-exporter fields: {e}");
            return ExitCode::from(super::USAGE);
        }
    };
    // A user-space hook's arguments are listed by position, as u64: the
    // config names and types them (`probe.args`).
    match fields_of(&parsed, &UserArgs::default()) {
        Ok(fields) => {
            print!("{}", describe(&parsed, &fields));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ebpf-exporter fields: {e}");
            ExitCode::FAILURE
        }
    }
}
