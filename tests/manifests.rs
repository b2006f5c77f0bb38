//! The deployment files, checked offline: Kubernetes manifests against the
//! API schemas (kubernetes-validate, which scripts/setup.sh installs), the
//! PrometheusRule's rules with promtool, and the systemd unit with
//! systemd-analyze where it exists.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn validator() -> PathBuf {
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/venv/bin/kubernetes-validate");
    if local.exists() {
        return local;
    }
    let on_path = Command::new("kubernetes-validate")
        .arg("--version")
        .output();
    assert!(
        on_path.is_ok_and(|o| o.status.success()),
        "kubernetes-validate is missing: run scripts/setup.sh"
    );
    PathBuf::from("kubernetes-validate")
}

#[test]
fn kubernetes_manifests_validate_against_the_api_schemas() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/kubernetes");
    for file in [
        "daemonset.yaml",
        "servicemonitor.yaml",
        "prometheusrule.yaml",
    ] {
        let out = Command::new(validator())
            .args(["--strict", "--kubernetes-version", "1.30"])
            .arg(dir.join(file))
            .output()
            .expect("kubernetes-validate runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{file}:\n{text}");
        assert!(!text.contains("ERROR"), "{file}:\n{text}");
        // Core kinds are checked; the operator's CRDs have no schema there.
        for line in text.lines().filter(|l| l.starts_with("WARN")) {
            assert!(line.contains("monitoring.coreos.com/v1"), "{file}: {line}");
        }
    }
    // The kustomization lists exactly the manifests that exist.
    let k = std::fs::read_to_string(dir.join("kustomization.yaml")).expect("read");
    for line in k.lines().filter_map(|l| l.trim().strip_prefix("- ")) {
        assert!(dir.join(line).exists(), "kustomization lists {line}");
    }
}

#[test]
fn the_prometheusrule_holds_rules_promtool_accepts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("examples/kubernetes/prometheusrule.yaml"))
        .expect("read");
    let v: serde_yaml::Value = serde_yaml::from_str(&text).expect("YAML");
    let groups = serde_yaml::to_string(&serde_yaml::Value::Mapping(
        [(
            serde_yaml::Value::from("groups"),
            v["spec"]["groups"].clone(),
        )]
        .into_iter()
        .collect(),
    ))
    .expect("serialize");
    let dir = common::scratch_dir("promrule");
    std::fs::write(dir.join("rules.yml"), groups).expect("write");
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(dir.join("rules.yml"))
        .output()
        .expect("promtool runs");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("SUCCESS: 13 rules found"), "{report}");
}

#[test]
fn the_systemd_unit_verifies() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("systemd-analyze is missing (Debian's systemd package)");
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let unit =
        std::fs::read_to_string(root.join("examples/systemd/ebpf-exporter.service")).expect("read");
    let dir = common::scratch_dir("unit");
    // ExecStart must exist for verify; the real binary stands in.
    let unit = unit.replace("/usr/local/bin/ebpf-exporter", common::BIN);
    std::fs::write(dir.join("ebpf-exporter.service"), unit).expect("write");
    // Documentation=man:ebpf-exporter(1) is checked too: the page the
    // binary writes is installed where man finds it.
    let man = Command::new(common::BIN).arg("man").output().expect("runs");
    assert!(man.status.success());
    std::fs::create_dir_all(dir.join("man/man1")).expect("mkdir");
    std::fs::write(dir.join("man/man1/ebpf-exporter.1"), &man.stdout).expect("write");
    let out = Command::new("systemd-analyze")
        .env("MANPATH", dir.join("man"))
        .arg("verify")
        .arg(dir.join("ebpf-exporter.service"))
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    let complaints: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("ebpf-exporter.service"))
        .collect();
    assert!(complaints.is_empty(), "{text}");
}
