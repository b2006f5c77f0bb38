//! Parses the flags and dispatches to a command; what each does is in
//! `ebpf_exporter::commands`.

use std::process::ExitCode;

use ebpf_exporter::cli::{Cli, Command};
use ebpf_exporter::commands::{self, generated::Text};
use ebpf_exporter::settings::{LogSettings, Settings};

/// Called once after every config is attached at start-up, and after each
/// reload that started a config. A config can hang a uprobe on this symbol
/// of the exporter's own binary as an init hook, as with the reference
/// exporter. Defined here, in the binary, so the symbol is certain to be in
/// it.
#[no_mangle]
#[inline(never)]
pub extern "C" fn post_attach_mark() {
    std::hint::black_box(());
}

/// Scrape buffers run to megabytes and live for one scrape. glibc raises
/// its mmap threshold after such buffers are freed, and from then on keeps
/// them in the heap: RSS would then reflect the largest scrapes ever seen
/// rather than what is in use. A fixed threshold hands them back to the OS.
///
/// glibc also gives threads arenas of their own, up to 8 per CPU, and an
/// arena keeps what it freed. The runtime's blocking threads come and go,
/// so each time more of them than before run at once RSS steps up for
/// good (0.4–0.7 MiB a step in the soak bench, 20 minutes into a flat
/// run). The exporter's threads allocate little at once, so two arenas
/// cost nothing measurable and keep the footprint from following the
/// thread count. `MALLOC_ARENA_MAX` or glibc's tunable still wins.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let operator_set = std::env::var_os("MALLOC_ARENA_MAX").is_some()
            || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("arena_max"));
        // SAFETY: mallopt only changes allocator tunables; called before
        // any other thread exists.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
            if !operator_set {
                libc::mallopt(libc::M_ARENA_MAX, 2);
            }
        }
    }
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse_args(&ebpf_exporter::exporter::self_metrics::libbpf_version());
    LogSettings::from_cli(&cli).init();
    match cli.command {
        Some(Command::Describe { object }) => return commands::describe::run(&object),
        Some(Command::Fields { hook }) => return commands::fields::run(&hook),
        Some(Command::Completion { shell }) => {
            return commands::generated::run(Text::Completion(shell))
        }
        Some(Command::Man) => return commands::generated::run(Text::Man),
        Some(Command::Decoders) => return commands::generated::run(Text::Decoders),
        None => {}
    }
    let settings = match Settings::from_cli(&cli) {
        Ok(s) => s,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::from(commands::USAGE);
        }
    };
    match settings.check {
        Some(layout) => commands::check::run(&settings, layout, post_attach_mark),
        None => commands::serve::run(settings, post_attach_mark),
    }
}
