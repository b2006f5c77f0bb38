//! libbpf-tools objects whose programs are kprobes or BPF trampolines
//! (fentry, fexit), which this machine's kernel does not run: they run in
//! the kernel matrix's guests, and here each config must be refused in
//! the kernel's words. Each starts from the config `describe` writes, with
//! only what the tool's own loader would have done added in YAML (its
//! `const volatile` switches, its attach targets), and each is checked
//! against a workload whose count the test knows.

mod common;

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use common::tools::{describe, disk_dir, tool_object, wait_for, SyscallChild};
use common::{scratch_dir, Running, Scrape};

/// A directory holding `tool.bpf.o` and the config `describe` writes for
/// it, with `edit` applied: what a new user would save.
fn described_dir(tool: &str, edit: impl FnOnce(String) -> String) -> PathBuf {
    let dir = scratch_dir(&format!("lbt-traced-{tool}"));
    fs::write(dir.join(format!("{tool}.bpf.o")), tool_object(tool)).expect("write object");
    let (ok, yaml) = describe(&dir, tool);
    assert!(ok, "{tool}:\n{yaml}");
    fs::write(dir.join(format!("{tool}.yaml")), edit(yaml)).expect("write config");
    dir
}

/// Whether this kernel runs kprobes or BPF trampolines: every kernel of
/// the matrix does. Where neither runs (this machine), the config must be
/// refused, saying why, and the test has nothing more to check.
fn runs_traced_programs(dir: &Path) -> bool {
    let trampolines = *ebpf_exporter::host::kernel::trampolines()
        == ebpf_exporter::host::kernel::Trampolines::Available;
    if common::in_kernel_matrix() || common::kernel_has_kprobes() || trampolines {
        return true;
    }
    let log = Running::try_start(&[&format!("--config.dir={}", dir.display())])
        .err()
        .expect("no program of the tool runs on this kernel");
    assert!(
        log.contains("program(s) loaded and attached, so it would serve nothing")
            && (log.contains("runs no BPF trampoline programs")
                || log.contains("lacks kprobe support")),
        "{log}"
    );
    false
}

fn serve(dir: &Path) -> Running {
    Running::start(&[&format!("--config.dir={}", dir.display())])
}

/// Whether the running kernel has a function of this name.
fn kernel_has(function: &str) -> bool {
    let kallsyms = fs::read_to_string("/proc/kallsyms").expect("read /proc/kallsyms");
    kallsyms.lines().any(|l| {
        let mut f = l.split_whitespace();
        matches!(f.nth(1), Some("T" | "t")) && f.next() == Some(function)
    })
}

/// A loopback listener with this accept backlog, which tcpsynbl keys by.
fn listener(backlog: i32) -> TcpListener {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    // SAFETY: listen() again on our own listening socket only changes its
    // backlog.
    assert_eq!(unsafe { libc::listen(l.as_raw_fd(), backlog) }, 0);
    l
}

/// tcpsynbl records each SYN it accepts under the listener's backlog: 40
/// connections to a listener with a backlog of 37 give exactly 40 samples
/// under key 37.
#[test]
fn tcpsynbl_counts_each_connection_under_its_backlog() {
    let dir = described_dir("tcpsynbl", |y| y);
    if !runs_traced_programs(&dir) {
        return;
    }
    let exporter = serve(&dir);
    let samples = |s: &Scrape| s.sum("ebpf_exporter_tcpsynbl_hists_count", &[("key", "37")]);
    let before = exporter.scrape();
    let l = listener(37);
    let addr = l.local_addr().expect("address");
    for _ in 0..40 {
        let c = TcpStream::connect(addr).expect("connect");
        let (s, _) = l.accept().expect("accept");
        drop((c, s));
    }
    let after = wait_for(&exporter, "40 SYNs under backlog 37", |s| {
        samples(s) >= samples(&before) + 40.0
    });
    assert_eq!(samples(&after) - samples(&before), 40.0, "{}", after.text);
}

/// tcprtt, told through `constants:` to watch one local port (in network
/// byte order, as its loader sets it) and to keep the extra sums: 50 round
/// trips on that port give at least 50 samples, with a smoothed RTT.
#[test]
fn tcprtt_samples_round_trips_on_the_port_it_is_told() {
    let l = listener(16);
    let port = l.local_addr().expect("address").port();
    let dir = described_dir("tcprtt", |y| {
        format!(
            "{y}constants:\n  targ_sport: {}\n  targ_show_ext: true\n",
            port.to_be()
        )
    });
    if !runs_traced_programs(&dir) {
        return;
    }
    let exporter = serve(&dir);
    let count = |s: &Scrape| s.sum("ebpf_exporter_tcprtt_hists_cnt_total", &[]);
    let before = exporter.scrape();
    let mut client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let (mut server, _) = l.accept().expect("accept");
    use std::io::{Read, Write};
    let mut byte = [0u8];
    for _ in 0..50 {
        client.write_all(b"x").expect("send");
        server.read_exact(&mut byte).expect("receive");
        server.write_all(b"y").expect("answer");
        client.read_exact(&mut byte).expect("answer received");
    }
    let after = wait_for(&exporter, "50 round trips sampled", |s| {
        count(s) >= count(&before) + 50.0
    });
    // Each segment the server's socket takes is one sample: the 50
    // requests, and the acks of the answers that came alone.
    assert!(count(&after) - count(&before) <= 150.0, "{}", after.text);
    assert!(
        after.sum("ebpf_exporter_tcprtt_hists_latency_total", &[]) > 0.0,
        "{}",
        after.text
    );
}

/// cachestat, with its attach targets chosen for the kernel as its loader
/// chooses them: since 5.16 the page cache marks folios, not pages. Its
/// `total` (pages accessed, less buffers dirtied) grows by at least one
/// per read of a cached file.
#[test]
fn cachestat_counts_page_cache_accesses() {
    let mut attach = String::new();
    let mut exclude = String::new();
    for (program, folio) in [
        ("mark_page_accessed", "folio_mark_accessed"),
        ("add_to_page_cache_lru", "filemap_add_folio"),
        ("account_page_dirtied", "folio_account_dirtied"),
    ] {
        if kernel_has(program) && !kernel_has(folio) {
            continue;
        }
        if kernel_has(folio) {
            attach.push_str(&format!("    {program}: fentry/{folio}\n"));
        } else {
            exclude.push_str(&format!("    - {program}\n"));
        }
    }
    let dir = described_dir("cachestat", |y| {
        let mut programs = String::new();
        if !attach.is_empty() {
            programs.push_str(&format!("  attach:\n{attach}"));
        }
        if !exclude.is_empty() {
            programs.push_str(&format!("  exclude:\n{exclude}"));
        }
        if programs.is_empty() {
            y
        } else {
            format!("{y}programs:\n{programs}")
        }
    });
    if !runs_traced_programs(&dir) {
        return;
    }
    let exporter = serve(&dir);
    let total = |s: &Scrape| s.sum("ebpf_exporter_cachestat_total", &[]);
    let file = disk_dir("cachestat").join("cached");
    fs::write(&file, vec![7u8; 4096]).expect("write");
    fs::read(&file).expect("read once, into the cache");
    let before = exporter.scrape();
    for _ in 0..300 {
        fs::read(&file).expect("read");
    }
    wait_for(&exporter, "300 reads of a cached page", |s| {
        total(s) >= total(&before) + 300.0
    });
}

/// klockstat, told the pid of a child through `targ_tgid`, sees the pipe
/// mutex each of the child's 500 writes takes, and few locks besides.
#[test]
fn klockstat_counts_the_mutex_each_pipe_write_takes() {
    let mut fds = [0; 2];
    // SAFETY: pipe fills two fds, which this test closes at its end.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    let byte = [1u8];
    let child = SyscallChild::spawn(
        500,
        libc::SYS_write,
        [fds[1].into(), byte.as_ptr() as libc::c_long, 1, 0],
    );
    let dir = described_dir("klockstat", |y| {
        format!("{y}constants:\n  targ_tgid: {}\n", child.pid)
    });
    if !runs_traced_programs(&dir) {
        child.run();
        return;
    }
    let exporter = serve(&dir);
    let acquired = |s: &Scrape| s.sum("ebpf_exporter_klockstat_stat_map_acq_count_total", &[]);
    let before = exporter.scrape();
    child.run();
    let after = wait_for(&exporter, "500 pipe mutexes taken", |s| {
        acquired(s) >= acquired(&before) + 500.0
    });
    let seen = acquired(&after) - acquired(&before);
    assert!(seen < 700.0, "{seen} locks for 500 writes:\n{}", after.text);
    // SAFETY: the test's own fds, closed once.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
}

/// funclatency's generic `dummy_kprobe` pair, pointed by `programs.attach`
/// at getpid() and told a child's pid: exactly the child's 1000 calls.
#[test]
fn funclatency_times_the_function_it_is_pointed_at() {
    let child = SyscallChild::getpid(1000);
    let dir = described_dir("funclatency", |y| {
        format!(
            "{y}constants:\n  targ_tgid: {}\nprograms:\n  attach:\n    \
             dummy_kprobe: kprobe/__x64_sys_getpid\n    \
             dummy_kretprobe: kretprobe/__x64_sys_getpid\n",
            child.pid
        )
    });
    if !runs_traced_programs(&dir) {
        child.run();
        return;
    }
    let exporter = serve(&dir);
    let calls = |s: &Scrape| s.sum("ebpf_exporter_funclatency_hist_seconds_count", &[]);
    let before = exporter.scrape();
    child.run();
    let after = wait_for(&exporter, "1000 getpid calls timed", |s| {
        calls(s) >= calls(&before) + 1000.0
    });
    assert_eq!(calls(&after) - calls(&before), 1000.0, "{}", after.text);
}

/// fsdist's generic programs, pointed at ext4's file operations (the
/// guests' /var/tmp is ext4) and told a child's pid: exactly the child's
/// 400 reads, in the histogram of reads (index 0), and nothing else.
#[test]
fn fsdist_times_each_read_of_the_filesystem_it_is_pointed_at() {
    let file = disk_dir("fsdist").join("data");
    fs::write(&file, vec![3u8; 4096]).expect("write");
    let f = fs::File::open(&file).expect("open");
    let mut buf = vec![0u8; 4096];
    let child = SyscallChild::spawn(
        400,
        libc::SYS_pread64,
        [
            f.as_raw_fd().into(),
            buf.as_mut_ptr() as libc::c_long,
            4096,
            0,
        ],
    );
    let mut attach = String::from("programs:\n  attach:\n");
    for (op, function) in [
        ("file_read", "ext4_file_read_iter"),
        ("file_write", "ext4_file_write_iter"),
        ("file_open", "ext4_file_open"),
        ("file_sync", "ext4_sync_file"),
        ("getattr", "ext4_file_getattr"),
    ] {
        attach.push_str(&format!(
            "    {op}_fentry: fentry/{function}\n    {op}_fexit: fexit/{function}\n    \
             {op}_entry: kprobe/{function}\n    {op}_exit: kretprobe/{function}\n"
        ));
    }
    let dir = described_dir("fsdist", |y| {
        let y = y.replacen("programs:\n", &attach, 1);
        format!("{y}constants:\n  target_pid: {}\n", child.pid)
    });
    if !runs_traced_programs(&dir) {
        child.run();
        return;
    }
    let exporter = serve(&dir);
    let reads = |s: &Scrape| {
        s.sum(
            "ebpf_exporter_fsdist_hists_slots_seconds_count",
            &[("index", "0")],
        )
    };
    let before = exporter.scrape();
    child.run();
    let after = wait_for(&exporter, "400 ext4 reads timed", |s| {
        reads(s) >= reads(&before) + 400.0
    });
    assert_eq!(reads(&after) - reads(&before), 400.0, "{}", after.text);
    drop(buf);
}
