//! The README's worked example, run as written: its C source and YAML are
//! taken from README.md, compiled with the README's clang command (system
//! libbpf headers, as `scripts/setup.sh` installs them) and served.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{eventually, run, scratch_dir, Running};

/// The fenced block of `lang` that follows the first line containing `after`.
fn block<'a>(readme: &'a str, after: &str, lang: &str) -> &'a str {
    let start = readme
        .find(after)
        .unwrap_or_else(|| panic!("README.md has no {after:?}"));
    let rest = &readme[start..];
    let open = format!("```{lang}\n");
    let body_start = rest.find(&open).expect("fenced block") + open.len();
    let body = &rest[body_start..];
    &body[..body.find("```").expect("closing fence")]
}

/// The worked example counts this process's getpid calls exactly, and
/// the other test calls getpid too (`scratch_dir` takes the pid): the two
/// run one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn readme_worked_example_runs_as_written() {
    let _alone = one_at_a_time();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("read README.md");
    let dir = scratch_dir("readme");
    std::fs::write(
        dir.join("getpid.bpf.c"),
        block(&readme, "`getpid.bpf.c`:", "c"),
    )
    .expect("write");
    std::fs::write(
        dir.join("getpid.yaml"),
        block(&readme, "`getpid.yaml`, beside it:", "yaml"),
    )
    .expect("write");
    let commands = block(&readme, "Compile and run", "sh").replace("\\\n", " ");
    let target = dir.display().to_string();
    let clang = commands
        .lines()
        .find(|l| l.trim_start().starts_with("clang "))
        .expect("a clang command")
        .replace("/etc/ebpf-exporter", &target)
        .replace(" getpid.bpf.c", &format!(" {target}/getpid.bpf.c"));
    run(Command::new("sh").arg("-c").arg(&clang).current_dir(root));
    let flags: Vec<String> = commands
        .lines()
        .find(|l| l.trim_start().starts_with("ebpf-exporter "))
        .expect("an ebpf-exporter command")
        .split_whitespace()
        .skip(1)
        .map(|f| f.replace("/etc/ebpf-exporter", &target))
        .collect();
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    // Before the exporter starts: std::process::id() is a getpid call too.
    let me = std::process::id().to_string();
    let exporter = Running::start(&args);
    for _ in 0..25 {
        // SAFETY: getpid has no preconditions.
        unsafe { libc::getpid() };
    }
    let mut count = 0.0;
    let counted = eventually(Duration::from_secs(5), || {
        count = exporter
            .scrape()
            .sum("ebpf_exporter_getpid_calls_total", &[("pid", &me)]);
        count >= 25.0
    });
    assert!(counted, "getpid calls of this process: {count}");
    // The test harness itself never calls getpid, so the count is exact.
    assert_eq!(count, 25.0);
}

#[test]
fn readme_btf_example_runs_as_written() {
    let _alone = one_at_a_time();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("read README.md");
    let dir = scratch_dir("readme-btf");
    std::fs::write(
        dir.join("io.bpf.c"),
        block(&readme, "`io.bpf.c`, counting", "c"),
    )
    .expect("write");
    common::compile_bpf(&dir.join("io.bpf.c"), &dir.join("io.bpf.o"));
    // describe writes a config that validates and names both members.
    let described =
        run(Command::new(common::BIN)
            .args(["describe", &dir.join("io.bpf.o").display().to_string()]));
    for line in [
        "    - name: io_calls_total",
        "      value: calls",
        "    - name: io_bytes_total",
        "          decoders:\n            - name: string",
    ] {
        assert!(described.contains(line), "{line:?} in:\n{described}");
    }
    std::fs::write(
        dir.join("io.yaml"),
        block(&readme, "Edited into shape, `io.yaml`", "yaml"),
    )
    .expect("write");
    let exporter = Running::start(&[&format!("--config.dir={}", dir.display())]);
    let me = std::process::id().to_string();
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .expect("open /dev/null");
    for _ in 0..10 {
        std::io::Write::write_all(&mut out, &[0u8; 1000]).expect("write");
    }
    let mut bytes = 0.0;
    let counted = eventually(Duration::from_secs(5), || {
        let s = exporter.scrape();
        bytes = s.sum(
            "ebpf_exporter_io_bytes_total",
            &[("pid", &me), ("op", "write")],
        );
        bytes >= 10_000.0
            && s.sum(
                "ebpf_exporter_io_calls_total",
                &[("pid", &me), ("op", "write")],
            ) >= 10.0
    });
    assert!(counted, "bytes written by this process: {bytes}");
}
