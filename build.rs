//! Compiles every `bpf/*.bpf.c` into a CO-RE object, and writes an index so
//! the binary can open any embedded object by name.
//!
//! No skeletons are generated. The exporter is generic: it opens a built-in
//! object from its bytes through the very path an operator's `.bpf.o` takes
//! (open, rodata, load, attach by section, maps by name), so the built-ins
//! test that path on every run, and nothing in the exporter reads one
//! program's maps by type. A typed skeleton would be a second, unused way
//! in, and it costs build time per program.
//!
//! The headers come from the repository (`bpf/include/<arch>/vmlinux.h`), never
//! from the build machine's kernel, so the build works inside a container that
//! has no `/sys/kernel/btf`.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use libbpf_cargo::SkeletonBuilder;

/// What `--version` and ebpf_exporter_build_info say about this build: the
/// git revision (from `EBPF_EXPORTER_REVISION`, else the checkout), the
/// build date (`SOURCE_DATE_EPOCH` for reproducible builds), rustc and the
/// target.
fn build_info(manifest: &Path) {
    println!("cargo:rerun-if-env-changed=EBPF_EXPORTER_REVISION");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(manifest)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let revision = env::var("EBPF_EXPORTER_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| {
            let head = git(&["rev-parse", "--short=12", "HEAD"])?;
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            Some(if dirty { format!("{head}-dirty") } else { head })
        })
        .unwrap_or_else(|| "unknown".to_string());
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        let dir = manifest.join(dir);
        println!("cargo:rerun-if-changed={}", dir.join("HEAD").display());
        println!("cargo:rerun-if-changed={}", dir.join("index").display());
    }
    let epoch: i64 = env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        });
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=EE_REVISION={revision}");
    println!("cargo:rustc-env=EE_BUILD_DATE={}", civil_date(epoch));
    println!("cargo:rustc-env=EE_RUSTC={rustc_version}");
    println!(
        "cargo:rustc-env=EE_TARGET={}",
        env::var("TARGET").unwrap_or_else(|_| "unknown".into())
    );
}

/// Seconds since the epoch as an RFC 3339 UTC time, without a date crate.
fn civil_date(epoch: i64) -> String {
    let (days, secs) = (epoch.div_euclid(86_400), epoch.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn main() {
    let manifest =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    build_info(&manifest);
    // post_attach_mark, the function configs hang a uprobe on, must be
    // found in stripped binaries too (the container's is built with
    // strip=symbols): the dynamic symbol table survives stripping.
    println!("cargo:rustc-link-arg-bins=-Wl,--export-dynamic-symbol=post_attach_mark");
    let target_arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets CARGO_CFG_TARGET_ARCH");
    // Only x86_64 has a committed vmlinux.h. Another architecture needs its
    // own header, generated from that architecture's kernel BTF with
    // scripts/gen-vmlinux.sh, and a cross-build of the objects to prove it.
    let (vmlinux_dir, bpf_arch) = match target_arch.as_str() {
        "x86_64" => ("x86_64", "x86"),
        other => panic!(
            "ebpf-exporter builds for x86_64 only: there is no bpf/include/{other}/vmlinux.h \
             (generate one from that architecture's BTF with scripts/gen-vmlinux.sh BTF_FILE ARCH)"
        ),
    };
    let bpf_dir = manifest.join("bpf");
    let include = bpf_dir.join("include");
    let arch_include = include.join(vmlinux_dir);
    if !arch_include.join("vmlinux.h").exists() {
        panic!(
            "missing {}; run scripts/gen-vmlinux.sh",
            arch_include.join("vmlinux.h").display()
        );
    }
    println!("cargo:rerun-if-changed={}", include.display());

    let builder = |src: &Path, obj: &Path| {
        let mut b = SkeletonBuilder::new();
        b.source(src).obj(obj).clang_args([
            format!("-I{}", include.display()),
            format!("-I{}", arch_include.display()),
            format!("-D__TARGET_ARCH_{bpf_arch}"),
            "-Wall".to_string(),
            "-Werror".to_string(),
        ]);
        b
    };
    let compile = |src: &Path, obj: &Path| {
        builder(src, obj)
            .build()
            .unwrap_or_else(|e| panic!("compiling {}: {e:#}", src.display()));
    };

    // The exporter's own programs (the map-element iterator that reads
    // maps), not configs: compiled beside the built-ins, never listed as
    // objects a config can name.
    let reader = bpf_dir.join("reader/map_dump.bpf.c");
    println!("cargo:rerun-if-changed={}", reader.display());
    compile(&reader, &out.join("reader_map_dump.bpf.o"));

    // The generic probe behind `probe:` metrics, also the exporter's own:
    // its skeleton's types are how the exporter writes each probe's spec.
    let probe = bpf_dir.join("probe/probe.bpf.c");
    println!("cargo:rerun-if-changed={}", probe.display());
    builder(&probe, &out.join("probe.bpf.o"))
        .build_and_generate(out.join("probe.skel.rs"))
        .unwrap_or_else(|e| panic!("compiling {}: {e:#}", probe.display()));

    let mut sources: Vec<PathBuf> = fs::read_dir(&bpf_dir)
        .expect("bpf/ directory is readable")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.to_str().is_some_and(|s| s.ends_with(".bpf.c")))
        .collect();
    sources.sort();

    let mut index = String::from("/// Objects compiled from `bpf/*.bpf.c`, by name.\npub static EMBEDDED: &[(&str, &[u8])] = &[\n");
    for src in &sources {
        println!("cargo:rerun-if-changed={}", src.display());
        let name = object_name(src);
        compile(src, &out.join(format!("{name}.bpf.o")));
        let _ = writeln!(
            index,
            "    ({name:?}, include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{name}.bpf.o\"))),"
        );
    }
    index.push_str("];\n");
    fs::write(out.join("embedded_index.rs"), index).expect("write embedded index");
    write_config_index(&manifest.join("config"), &out);

    // libbpf's BPF headers (bpf_helpers.h, ...), for tests that compile
    // their own external objects the way an operator would.
    if let Ok(include) = env::var("DEP_BPF_INCLUDE") {
        println!("cargo:rustc-env=EE_LIBBPF_INCLUDE={include}");
    }
}

/// Embeds `config/*.yaml`, and the default set named in `config/DEFAULTS`,
/// so that the binary runs with no files beside it.
fn write_config_index(config_dir: &Path, out: &Path) {
    println!("cargo:rerun-if-changed={}", config_dir.display());
    let mut names: Vec<String> = fs::read_dir(config_dir)
        .expect("config/ directory is readable")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|f| f.strip_suffix(".yaml").map(str::to_string))
        .collect();
    names.sort();
    let defaults_path = config_dir.join("DEFAULTS");
    let defaults_text =
        fs::read_to_string(&defaults_path).expect("config/DEFAULTS lists the default set");
    let defaults: Vec<&str> = defaults_text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .collect();
    for d in &defaults {
        assert!(
            names.iter().any(|n| n == d),
            "config/DEFAULTS names {d}, but config/{d}.yaml does not exist"
        );
    }
    let mut index =
        String::from("/// Built-in configs, by name.\npub static CONFIGS: &[(&str, &str)] = &[\n");
    for name in &names {
        let path = config_dir.join(format!("{name}.yaml"));
        println!("cargo:rerun-if-changed={}", path.display());
        let _ = writeln!(
            index,
            "    ({name:?}, include_str!({:?})),",
            path.display().to_string()
        );
    }
    index.push_str("];\n/// The configs run when no flags are given.\npub static DEFAULT_CONFIGS: &[&str] = &[");
    for d in &defaults {
        let _ = write!(index, "{d:?}, ");
    }
    index.push_str("];\n");
    fs::write(out.join("config_index.rs"), index).expect("write config index");
}

fn object_name(src: &Path) -> String {
    let file = src.file_name().and_then(|f| f.to_str()).unwrap_or_default();
    file.trim_end_matches(".bpf.c").replace('-', "_")
}
