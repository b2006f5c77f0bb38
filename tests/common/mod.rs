//! Shared integration-test harness, one module per job: the exporter under
//! test (`exporter`), HTTP (`http`), parsing expositions (`exposition`),
//! building BPF objects (`compile`), the kernel (`kernel`), and processes,
//! cgroups and CPUs (`host`). Everything is re-exported here, so a test
//! says `common::Running` whatever module holds it.
// Each test binary uses a part of the harness; the rest is unused there.
#![allow(dead_code, unused_imports)]

pub mod compile;
pub mod exporter;
pub mod exposition;
pub mod host;
pub mod http;
pub mod kernel;
pub mod tools;

pub use compile::{compile_bpf, compile_bpf_with};
pub use exporter::*;
pub use exposition::*;
pub use host::*;
pub use http::*;
pub use kernel::*;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The names of the shipped configs (`config/*.yaml`), sorted.
pub fn shipped_configs() -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("config"))
            .expect("config/")
            .filter_map(|e| {
                e.ok()?
                    .file_name()
                    .into_string()
                    .ok()?
                    .strip_suffix(".yaml")
                    .map(str::to_string)
            })
            .collect();
    names.sort();
    names
}

/// A scratch directory for a test's configs and objects.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ee-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs a command to completion and fails the test if it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} runs: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The median of benchmark samples (the upper one of an even count).
pub fn median<T: PartialOrd + Copy>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}
