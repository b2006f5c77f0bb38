//! Compiling the BPF objects and C programs tests use, through a cache keyed
//! by everything that goes into a build.
//!
//! The kernel matrix (`scripts/kernel-matrix.sh`) runs tests inside VMs that
//! have no compiler. The same test binary first runs on the host, where each
//! build lands in the cache; the guests' image carries the cache at the same
//! path, so there every build is a hit. A miss where no compiler exists is a
//! test failure that says so, never a skipped test.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The cache directory: `$EE_TEST_OBJECTS`, else `bpf-objects` in cargo's
/// scratch directory for integration tests.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("EE_TEST_OBJECTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("bpf-objects"))
}

fn arch() -> (&'static str, &'static str, &'static str) {
    if cfg!(target_arch = "aarch64") {
        ("arm64", "arm64", "aarch64")
    } else {
        ("x86_64", "x86", "x86_64")
    }
}

/// The clang command line for `src`, without the source and output.
fn clang_args(defines: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (dir, target, multiarch) = arch();
    let mut args: Vec<String> = ["-g", "-O2", "-target", "bpf", "-Wall", "-Werror"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(format!("-D__TARGET_ARCH_{target}"));
    args.push(format!("-I{}", root.join("bpf/include").display()));
    args.push(format!(
        "-I{}",
        root.join("bpf/include").join(dir).display()
    ));
    args.push(format!("-I{}", env!("EE_LIBBPF_INCLUDE")));
    // libbpf's usdt.bpf.h reaches <asm/errno.h>, which Debian keeps in the
    // multiarch directory; as the reference's Makefile does, it is searched
    // after everything else.
    args.push(format!("-idirafter/usr/include/{multiarch}-linux-gnu"));
    args.extend(defines.iter().map(|d| format!("-D{d}")));
    args
}

/// Feeds every file directly in `dir` whose name ends in `suffix` (sorted)
/// into `h`, so a change to a header misses the cache.
fn hash_dir(h: &mut impl Hasher, dir: &Path, suffix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_str().is_some_and(|s| s.ends_with(suffix)))
        .collect();
    files.sort();
    for f in files {
        f.file_name().hash(h);
        std::fs::read(&f).unwrap_or_default().hash(h);
    }
}

/// The cached output for a build of `src` by `tool` with `args`, building it
/// with `build(out)` on a miss.
fn cached(
    tool: &str,
    src: &Path,
    args: &[String],
    extra_inputs: impl FnOnce(&mut std::collections::hash_map::DefaultHasher),
    build: impl FnOnce(&Path),
) -> PathBuf {
    let source = std::fs::read(src).unwrap_or_else(|e| panic!("read {}: {e}", src.display()));
    let mut h = std::collections::hash_map::DefaultHasher::new();
    tool.hash(&mut h);
    source.hash(&mut h);
    args.hash(&mut h);
    if let Some(dir) = src.parent() {
        hash_dir(&mut h, dir, ".h");
    }
    extra_inputs(&mut h);
    let stem = src
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or("out")
        .split('.')
        .next()
        .unwrap_or("out")
        .to_string();
    let dir = cache_dir();
    let out = dir.join(format!("{stem}-{:016x}", h.finish()));
    if out.exists() {
        return out;
    }
    let have_tool = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        have_tool,
        "{tool} is not installed here and {} has no build of {} with these flags: on a kernel \
         matrix guest, the host run of the same test binary fills the cache \
         (scripts/kernel-matrix.sh does this first)",
        dir.display(),
        src.display()
    );
    std::fs::create_dir_all(&dir).expect("create the object cache");
    // Tests build in parallel: each writes its own file, then renames it
    // into place in one step.
    let tmp = dir.join(format!(
        ".{stem}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    build(&tmp);
    std::fs::rename(&tmp, &out).expect("move the build into the cache");
    out
}

/// A BPF object compiled from `src` with `-D` `defines`, as an operator
/// compiles an external object; cached (see the module comment).
pub fn bpf_object(src: &Path, defines: &[&str]) -> PathBuf {
    let args = clang_args(defines);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    cached(
        "clang",
        src,
        &args,
        |h| {
            hash_dir(h, &root.join("bpf/include"), ".h");
            hash_dir(h, &root.join("bpf/include").join(arch().0), ".h");
        },
        |out| {
            let status = Command::new("clang")
                .args(&args)
                .arg("-c")
                .arg(src)
                .arg("-o")
                .arg(out)
                .status()
                .expect("clang runs");
            assert!(status.success(), "clang failed for {}", src.display());
        },
    )
}

/// A C program compiled and linked with gcc and `flags`; cached.
pub fn c_program(src: &Path, flags: &[&str]) -> PathBuf {
    let args: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
    cached(
        "gcc",
        src,
        &args,
        |_| {},
        |out| {
            let status = Command::new("gcc")
                .args(&args)
                .arg("-o")
                .arg(out)
                .arg(src)
                .status()
                .expect("gcc runs");
            assert!(status.success(), "gcc failed for {}", src.display());
        },
    )
}

/// Compiles a BPF C source the way an operator would for an external object
/// (through the build cache of `compile`).
pub fn compile_bpf(src: &Path, out: &Path) {
    compile_bpf_with(src, out, &[]);
}

/// `compile_bpf` with extra `-D` definitions, for variants of one source.
pub fn compile_bpf_with(src: &Path, out: &Path, defines: &[&str]) {
    let built = bpf_object(src, defines);
    std::fs::copy(&built, out)
        .unwrap_or_else(|e| panic!("copy {} to {}: {e}", built.display(), out.display()));
}
