//! What the binary does, one module per command, each callable from tests:
//! `serve` (the daemon), `check` (`--config.check`), `describe`, `fields`, and the
//! generated texts (`man`, `completion`, `decoders`). `main.rs` only parses
//! flags and dispatches here.

pub mod check;
pub mod describe;
pub mod fields;
pub mod generated;
pub mod serve;

use std::process::ExitCode;

use crate::exporter::{self, Exporter, Loader};
use crate::settings::Settings;

/// Exit status 2: the command line, or a file it names, cannot be used.
pub const USAGE: u8 = 2;

/// Loads and attaches every config, as `serve` and `check` both begin;
/// `post_attach` runs once everything is attached (the binary's own
/// `post_attach_mark`, where configs may hang an init uprobe).
pub fn start(
    settings: &Settings,
    post_attach: extern "C" fn(),
) -> Result<(Exporter, Loader), ExitCode> {
    if let Err(e) = crate::process::capabilities::check_can_load() {
        log::error!("{e}");
        return Err(ExitCode::FAILURE);
    }
    let started = std::time::Instant::now();
    let (exporter, loader) = exporter::start(&settings.start).map_err(|e| {
        log::error!("{e:#}");
        ExitCode::FAILURE
    })?;
    post_attach();
    log::info!(
        "started {} config(s) in {:?}",
        exporter.configs().len(),
        started.elapsed()
    );
    Ok((exporter, loader))
}
