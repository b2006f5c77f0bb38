//! `--config.check`: load and attach every config, print one block per
//! config, and exit non-zero if anything failed.

use std::io::Write;
use std::process::ExitCode;

use crate::exporter::report::Health;
use crate::exporter::ConfigReport;
use crate::object::ProgramState;
use crate::settings::Settings;

/// Reports on every config, including when none could start, and fails
/// when any config or program did.
pub fn run(settings: &Settings, layout: bool, post_attach: extern "C" fn()) -> ExitCode {
    if let Err(e) = crate::process::capabilities::check_can_load() {
        log::error!("{e}");
        return ExitCode::FAILURE;
    }
    let (exporter, _loader, outcome) = crate::exporter::startup::load_all(&settings.start);
    post_attach();
    if outcome.seen == 0 {
        log::error!("no configs found");
        return ExitCode::FAILURE;
    }
    let mut out = std::io::stdout().lock();
    match report(&exporter.reports(), layout, &mut out) {
        Ok(true) if outcome.success => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            log::error!("writing to stdout: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes the report; true if every config and program is well.
pub fn report(
    reports: &[ConfigReport],
    layout: bool,
    out: &mut dyn Write,
) -> std::io::Result<bool> {
    let mut ok = true;
    let (mut attached, mut total) = (0, 0);
    for r in reports {
        match (&r.error, r.health()) {
            (Some(e), _) => {
                ok = false;
                writeln!(out, "config {} ({}): FAILED: {e}", r.name, r.file)?;
            }
            (None, Health::Degraded) => {
                ok = false;
                let (attached, all) = r.attached();
                let refused = match r.refused.len() {
                    0 => String::new(),
                    n => format!(", {n} metric(s) left out"),
                };
                writeln!(
                    out,
                    "config {} ({}): DEGRADED: {attached}/{all} programs attached{refused}, object {}",
                    r.name, r.file, r.object
                )?;
                for why in &r.refused {
                    writeln!(out, "  metric LEFT OUT: {why}")?;
                }
            }
            (None, _) => writeln!(
                out,
                "config {} ({}): OK, object {}",
                r.name, r.file, r.object
            )?,
        }
        for p in &r.programs {
            total += 1;
            match &p.state {
                ProgramState::Attached => {
                    attached += 1;
                    writeln!(
                        out,
                        "  program {} ({}): attached, id {}",
                        p.name,
                        p.section,
                        p.id.unwrap_or(0)
                    )?;
                }
                ProgramState::LoadFailed(why) => {
                    ok = false;
                    writeln!(
                        out,
                        "  program {} ({}): NOT LOADED: {why}",
                        p.name, p.section
                    )?;
                }
                ProgramState::AttachFailed(why) => {
                    ok = false;
                    writeln!(
                        out,
                        "  program {} ({}): NOT ATTACHED: {why}",
                        p.name, p.section
                    )?;
                }
            }
        }
        for u in &r.unused {
            write!(
                out,
                "  program {} ({}): not used, {} runs instead",
                u.name, u.section, u.instead
            )?;
            match &u.why {
                Some(why) => writeln!(out, "; it was {why}")?,
                None => writeln!(out)?,
            }
        }
        for l in &r.left_out {
            writeln!(
                out,
                "  program {} ({}): left out by {}",
                l.name, l.section, l.by
            )?;
        }
        for (i, m) in r.metrics.iter().enumerate() {
            writeln!(out, "  metric {m}")?;
            if layout {
                for line in r.layouts.get(i).into_iter().flatten() {
                    writeln!(out, "    {line}")?;
                }
            }
        }
    }
    let good = reports.iter().filter(|r| r.ok()).count();
    writeln!(
        out,
        "{good}/{} configs OK, {attached}/{total} programs attached",
        reports.len()
    )?;
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::ProgramStatus;

    fn program(name: &str, state: ProgramState, id: Option<u32>) -> ProgramStatus {
        ProgramStatus {
            name: name.into(),
            section: format!("tp/{name}"),
            state,
            id,
            tag: None,
        }
    }

    #[test]
    fn a_program_that_failed_fails_the_check() {
        let config = ConfigReport {
            name: "syscalls".into(),
            file: "syscalls.yaml".into(),
            object: "built-in".into(),
            error: None,
            running: true,
            generation: 1,
            loaded_at: None,
            programs: vec![
                program("enter", ProgramState::Attached, Some(7)),
                program(
                    "exit",
                    ProgramState::AttachFailed(crate::object::AttachError::NoSuchTracepoint {
                        section: "tp/exit".into(),
                        errno: 2,
                    }),
                    Some(8),
                ),
            ],
            unused: Vec::new(),
            left_out: Vec::new(),
            metrics: vec!["ebpf_exporter_syscalls_total".into()],
            refused: Vec::new(),
            layouts: vec![vec!["syscall: u32 at 0".into()]],
        };
        let mut out = Vec::new();
        let ok = report(std::slice::from_ref(&config), true, &mut out).expect("written");
        assert!(!ok);
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "config syscalls (syscalls.yaml): DEGRADED: 1/2 programs attached, object built-in\n\
             \x20 program enter (tp/enter): attached, id 7\n\
             \x20 program exit (tp/exit): NOT ATTACHED: tracepoint for tp/exit does not exist on this kernel (errno 2)\n\
             \x20 metric ebpf_exporter_syscalls_total\n\
             \x20   syscall: u32 at 0\n\
             0/1 configs OK, 1/2 programs attached\n"
        );
    }
}
