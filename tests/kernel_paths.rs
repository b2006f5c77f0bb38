//! Paths of the exporter that depend on the kernel's version, each checked
//! on the kernel the tests run on: the shared helpers' count of refused
//! inserts (which reads a map's id through BTF), BPF memory charged to
//! RLIMIT_MEMLOCK before 5.11, and the plain-words reasons given for
//! programs that read past their hook's arguments, which must name the
//! argument counts of this kernel, never a missing feature it has.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{eventually, in_kernel_matrix, kernel_at_least, Running};
use ebpf_exporter::host::kernel::{self, Trampolines};

fn setup() -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bpf");
    let dir = common::scratch_dir("kernel-paths");
    common::compile_bpf(
        &src.join("kernel_paths.bpf.c"),
        &dir.join("kernel_paths.bpf.o"),
    );
    std::fs::copy(src.join("kernel_paths.yaml"), dir.join("kernel_paths.yaml")).expect("copy");
    dir
}

#[test]
fn refused_inserts_are_counted_by_map_and_typed_programs_are_refused_in_this_kernels_words() {
    let dir = setup();
    let exporter = Running::start(&[&format!("--config.dir={}", dir.display())]);
    let labels = [("config", "kernel_paths"), ("map", "tiny_total")];
    let failures = |e: &Running| {
        e.scrape()
            .sum("ebpf_exporter_map_update_failures_total", &labels)
    };
    assert_eq!(failures(&exporter), 0.0);
    for _ in 0..30 {
        // SAFETY: closing an fd no process has only returns EBADF.
        unsafe { libc::close(987653) };
    }
    // Thirty distinct keys, four places: 26 refused, each counted once,
    // under the map's own name.
    let mut seen = 0.0;
    assert!(
        eventually(Duration::from_secs(10), || {
            seen = failures(&exporter);
            seen == 26.0
        }),
        "26 refused inserts, saw {seen}\n{}",
        exporter.log()
    );
    assert_eq!(
        exporter.scrape().sum("ebpf_exporter_map_entries", &labels),
        4.0
    );

    let log = exporter.log();
    let said = |program: &str, words: &str| {
        log.lines()
            .any(|l| l.contains(&format!("program {program} ")) && l.contains(words))
    };
    // sched_switch gained prev_state, its fourth argument, in 5.18.
    let args = if kernel_at_least(5, 18) { 4 } else { 3 };
    let words = format!(
        "reads ctx offset 56 (argument slot 7), but the sched_switch tracepoint passes {args} arguments on this kernel"
    );
    assert!(said("reads_past_sched_switch", &words), "{words}\n{log}");
    // Where trampolines run, the fexit program's refusal is the verifier's,
    // and it is explained, not blamed on trampolines.
    if in_kernel_matrix() || *kernel::trampolines() == Trampolines::Available {
        let words = "reads ctx offset 40 (argument slot 5), but do_nanosleep takes 2 arguments on \
                     this kernel (its return value is at offset 16)";
        assert!(said("reads_past_do_nanosleep", words), "{words}\n{log}");
        assert!(!log.contains("trampoline"), "{log}");
    } else {
        assert!(
            said("reads_past_do_nanosleep", "runs no BPF trampoline programs"),
            "{log}"
        );
    }
}

/// `Max locked memory` of a process, from /proc/PID/limits: `None` for
/// unlimited.
fn memlock(pid: u32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max locked memory"))
        .expect("a memlock line");
    let soft = line.split_whitespace().nth(3).expect("a soft limit column");
    (soft != "unlimited").then(|| soft.parse().expect("a number"))
}

#[test]
fn a_low_memlock_limit_stops_nothing_and_is_raised_only_where_bpf_memory_counts_against_it() {
    const LIMIT: u64 = 64 * 1024;
    // The default set's maps take far more than 64 KiB.
    let exporter = Running::try_start_with(&[], |cmd| {
        // SAFETY: between fork and exec the child makes one syscall on a
        // value on its stack.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: LIMIT,
                    rlim_max: LIMIT,
                };
                if libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    })
    .unwrap_or_else(|log| {
        panic!("the exporter did not start under a 64 KiB memlock limit:\n{log}")
    });
    let scrape = exporter.scrape();
    let enabled = scrape.find("ebpf_exporter_enabled_configs", &[]);
    assert!(
        !enabled.is_empty() && enabled.iter().all(|s| s.value == 1.0),
        "{}",
        exporter.log()
    );
    // Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK, and libbpf
    // raised it; later ones charge the memory cgroup and leave it alone.
    let raised = !kernel_at_least(5, 11);
    assert_eq!(
        memlock(exporter.pid()),
        if raised { None } else { Some(LIMIT) },
        "{}",
        exporter.log()
    );
}

/// The README's program table: each shipped config with the first kernel
/// its "kernels" column promises it runs on (`5.10+ ...`).
fn readme_kernels() -> Vec<(String, (u32, u32))> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let mut lines = readme
        .lines()
        .skip_while(|l| !l.starts_with("| config | hook | kernels |"));
    assert!(
        lines.next().is_some(),
        "the README's program table has a kernels column"
    );
    lines
        .skip(1) // the |---| row
        .take_while(|l| l.starts_with("| `"))
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let name = cells[1]
                .split('`')
                .nth(1)
                .expect("a `config` cell")
                .to_string();
            let since = cells[3]
                .split('+')
                .next()
                .and_then(|v| v.split_once('.'))
                .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
                .unwrap_or_else(|| panic!("{name}: kernels cell {:?} starts with X.Y+", cells[3]));
            (name, since)
        })
        .collect()
}

#[test]
fn every_shipped_config_runs_on_the_kernels_the_readme_promises() {
    let promised = readme_kernels();
    let mut in_table: Vec<String> = promised.iter().map(|(n, _)| n.clone()).collect();
    in_table.sort();
    assert_eq!(
        in_table,
        common::shipped_configs(),
        "the table lists every shipped config once"
    );

    let out = std::process::Command::new(common::BIN)
        .args([
            "--config.check",
            &format!("--config.dir={}/config", env!("CARGO_MANIFEST_DIR")),
        ])
        .output()
        .expect("runs");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    for (name, (major, minor)) in &promised {
        let block: Vec<&str> = report
            .lines()
            .skip_while(|l| !l.starts_with(&format!("config {name} (")))
            .take_while(|l| l.starts_with(&format!("config {name} (")) || l.starts_with("  "))
            .collect();
        let ok = block.first().is_some_and(|l| l.contains("): OK, object"))
            && !block.iter().any(|l| l.contains(": NOT "));
        assert_eq!(
            ok,
            kernel_at_least(*major, *minor),
            "{name} promises {major}.{minor}+; on {}:\n{}",
            kernel::release(),
            block.join("\n")
        );
    }
    assert!(
        out.status.success() || promised.iter().any(|(_, (a, b))| !kernel_at_least(*a, *b)),
        "{report}"
    );
}
