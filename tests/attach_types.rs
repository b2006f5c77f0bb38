//! Every attach type the exporter attaches, on the kernel the tests run on:
//! kprobe, kretprobe, fentry, fexit, tracepoint, raw_tp, tp_btf, uprobe,
//! uretprobe, USDT (in a plain and in a position-independent executable),
//! a software perf event and XDP. Each attaches and counts the events this
//! test makes, or, on a kernel that lacks what it needs, fails with the
//! plain-words reason and leaves the others running. In the kernel matrix's
//! guests (Debian's kernels, built with kprobes and BPF trampolines) every
//! type must attach; only the USDT probe in a position-independent binary
//! waits for BPF cookies (5.15).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{eventually, in_kernel_matrix, kernel_at_least, kernel_has_kprobes, Running, Scrape};
use ebpf_exporter::host::kernel::{self, Trampolines};

/// What a type's program must do here.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Attach, and count the test's events (at least this many).
    Counts(f64),
    /// Attach, and count exactly this many events.
    CountsExactly(f64),
    /// Fail to load or attach, with this in the exporter's words.
    Fails(&'static str),
}

const NANOSLEEPS: usize = 20;
const GETPPIDS: usize = 50;
const USDT_ROUNDS: &str = "5";

/// The object and config in a scratch directory, with the two USDT
/// programs built into the object cache (so their paths, and the object
/// that names them, are the same on every run).
fn setup() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bpf");
    let dir = common::scratch_dir("attach-types");
    let plain = common::compile::c_program(&root.join("usdt_parent.c"), &["-O1", "-no-pie"]);
    let pie = common::compile::c_program(&root.join("usdt_parent.c"), &["-O1", "-pie", "-fPIE"]);
    let source = std::fs::read_to_string(root.join("attach_types.bpf.c.in"))
        .expect("read")
        .replace("@USDT_PIE@", &pie.display().to_string())
        .replace("@USDT@", &plain.display().to_string());
    std::fs::write(dir.join("attach_types.bpf.c"), source).expect("write");
    common::compile_bpf(
        &dir.join("attach_types.bpf.c"),
        &dir.join("attach_types.bpf.o"),
    );
    std::fs::copy(
        root.join("attach_types.yaml"),
        dir.join("attach_types.yaml"),
    )
    .expect("copy");
    std::fs::write(dir.join("usdt"), plain.display().to_string()).expect("write");
    std::fs::write(dir.join("usdt_pie"), pie.display().to_string()).expect("write");
    dir
}

/// What each type must do on this kernel, and why.
fn expectations() -> Vec<(&'static str, Expect)> {
    let matrix = in_kernel_matrix();
    let kprobes = if matrix || kernel_has_kprobes() {
        Expect::Counts(NANOSLEEPS as f64)
    } else {
        Expect::Fails("lacks kprobe support")
    };
    let trampolines = if matrix || *kernel::trampolines() == Trampolines::Available {
        Expect::Counts(NANOSLEEPS as f64)
    } else {
        Expect::Fails("runs no BPF trampoline programs")
    };
    let cookies = kernel::bpf_cookies().expect("the BPF cookie probe answers");
    if matrix {
        // The probe agrees with the release that brought cookies.
        assert_eq!(cookies, kernel_at_least(5, 15), "bpf_get_attach_cookie");
    }
    let usdt_pie = if cookies {
        Expect::Counts(5.0)
    } else {
        Expect::Fails("BPF cookies, which came in Linux 5.15")
    };
    vec![
        ("kprobe", kprobes),
        ("kretprobe", kprobes),
        ("fentry", trampolines),
        ("fexit", trampolines),
        ("tracepoint", Expect::Counts(GETPPIDS as f64)),
        ("raw_tp", Expect::Counts(GETPPIDS as f64)),
        ("tp_btf", Expect::Counts(GETPPIDS as f64)),
        // post_attach_mark runs once, after the programs are attached.
        ("uprobe", Expect::CountsExactly(1.0)),
        ("uretprobe", Expect::CountsExactly(1.0)),
        ("usdt", Expect::Counts(5.0)),
        ("usdt_pie", usdt_pie),
        ("perf_event", Expect::Counts(1.0)),
        ("xdp", Expect::Counts(3.0)),
    ]
}

/// The events each program counts: sleeps, getppid calls, the USDT demo's
/// rounds in both builds, CPU time for the sampling clock, and loopback
/// packets.
fn make_events(dir: &Path) {
    for _ in 0..NANOSLEEPS {
        std::thread::sleep(Duration::from_millis(1));
    }
    for _ in 0..GETPPIDS {
        // SAFETY: a plain syscall.
        unsafe { libc::getppid() };
    }
    for build in ["usdt", "usdt_pie"] {
        let path = std::fs::read_to_string(dir.join(build)).expect("read");
        common::run(Command::new(path).arg(USDT_ROUNDS));
    }
    // 99 samples a second per CPU: a busy tenth of a second gets several.
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_millis(200) {
        std::hint::black_box(start.elapsed());
    }
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let to = socket.local_addr().expect("address");
    for _ in 0..3 {
        socket.send_to(b"xdp", to).expect("send");
    }
}

fn hits(s: &Scrape, kind: &str) -> f64 {
    s.sum("ebpf_exporter_attach_hits_total", &[("type", kind)])
}

fn attached(s: &Scrape, program: &str) -> Vec<f64> {
    s.find(
        "ebpf_exporter_ebpf_program_attached",
        &[("config", "attach_types"), ("program", program)],
    )
    .iter()
    .map(|s| s.value)
    .collect()
}

#[test]
fn every_attach_type_attaches_and_counts_or_says_what_the_kernel_lacks() {
    let dir = setup();
    let exporter = Running::start(&[&format!("--config.dir={}", dir.display())]);
    let expected = expectations();
    let before = exporter.scrape();
    make_events(&dir);
    let mut last = Scrape::default();
    let counted = eventually(Duration::from_secs(15), || {
        last = exporter.scrape();
        expected.iter().all(|(kind, e)| match e {
            Expect::Counts(n) => hits(&last, kind) - hits(&before, kind) >= *n,
            Expect::CountsExactly(n) => hits(&last, kind) == *n,
            Expect::Fails(_) => true,
        })
    });
    let log = exporter.log();
    let report: Vec<String> = expected
        .iter()
        .map(|(kind, e)| {
            format!(
                "{kind}: expected {e:?}, attached {:?}, {} -> {} hits",
                attached(&last, &format!("on_{kind}")),
                hits(&before, kind),
                hits(&last, kind)
            )
        })
        .collect();
    let report = report.join("\n");
    assert!(
        counted,
        "on {}:\n{report}\nexporter log:\n{log}",
        kernel::release()
    );
    for (kind, e) in &expected {
        let program = format!("on_{kind}");
        match e {
            Expect::Counts(_) | Expect::CountsExactly(_) => {
                assert_eq!(attached(&last, &program), [1.0], "{report}");
            }
            Expect::Fails(why) => {
                assert_eq!(attached(&last, &program), [0.0], "{report}");
                assert_eq!(hits(&last, kind), 0.0, "{report}");
                let said = log
                    .lines()
                    .any(|l| l.contains(&format!("program {program} ")) && l.contains(why));
                assert!(said, "{program}: the log says {why:?}:\n{log}");
            }
        }
    }
    assert!(!log.contains("panicked"), "{log}");
}
