//! `man`, `completion` and `decoders`: texts generated from the flags' own
//! definitions and from the decoder registry, so they never drift from
//! `--help` or from what the build knows.

use std::io::Write;
use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::Cli;

/// What the generated commands print.
#[derive(Debug, Clone, Copy)]
pub enum Text {
    Completion(clap_complete::Shell),
    Man,
    Decoders,
}

pub fn write(text: Text, out: &mut dyn Write) -> std::io::Result<()> {
    let mut cmd = Cli::command();
    match text {
        Text::Completion(shell) => {
            // Into memory first: the generator panics on a failed write
            // (a closed pipe), and a panic must not be the answer to that.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "ebpf-exporter", &mut script);
            out.write_all(&script)
        }
        Text::Man => clap_mangen::Man::new(cmd).render(out),
        Text::Decoders => out.write_all(crate::decode::registry::markdown_table().as_bytes()),
    }
}

pub fn run(text: Text) -> ExitCode {
    match write(text, &mut std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("writing to stdout: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: Text) -> String {
        let mut out = Vec::new();
        write(t, &mut out).expect("written");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn texts_come_from_the_flags_and_the_registry() {
        assert!(text(Text::Man).contains("config.dir"));
        let bash = text(Text::Completion(clap_complete::Shell::Bash));
        assert!(bash.contains("--web.listen-address"), "{bash}");
        assert!(text(Text::Decoders).contains("| `uid` (ours) |"));
    }

    /// A closed pipe is an error returned, never a panic.
    #[test]
    fn a_failed_write_is_an_error() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        for t in [
            Text::Man,
            Text::Decoders,
            Text::Completion(clap_complete::Shell::Zsh),
        ] {
            assert!(write(t, &mut Closed).is_err());
        }
    }
}
