//! Fleet readiness with real BPF: series limits and unknown folding, map
//! pressure (capacity, refused inserts), and Kubernetes attribution from a
//! simulated node (kubepods cgroups under this host's cgroup2 mount, a
//! kubelet log tree in a scratch directory), with no API server.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{eventually, prog_fd, test_run, Running, Scrape};
use libbpf_rs::{MapCore, MapFlags};

fn object_dir(name: &str) -> PathBuf {
    let dir = common::scratch_dir(name);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bpf/layouts.bpf.c");
    common::compile_bpf(&src, &dir.join("layouts.bpf.o"));
    dir
}

fn fill_many(e: &Running, keys: impl Iterator<Item = u64>) {
    let map = e.map_of("fill", "many_total");
    for k in keys {
        map.update(&k.to_ne_bytes(), &1u64.to_ne_bytes(), MapFlags::ANY)
            .expect("update");
    }
}

fn series(s: &Scrape, name: &str) -> usize {
    s.find(name, &[]).len()
}

#[test]
fn series_limits_fold_or_drop_what_is_over_and_count_it() {
    let dir = object_dir("fleet-limits");
    std::fs::write(
        dir.join("layouts.yaml"),
        "max_series: 50
metrics:
  counters:
    - name: many_total
      help: Many keys, folded past 100
      max_series: 100
      labels:
        - {name: k, decoders: [{name: uint}]}
    - name: many_dropped_total
      help: The same keys, dropped past 10
      map: many_total
      max_series: 10
      overflow: drop
      labels:
        - {name: k, decoders: [{name: uint}]}
    - name: many_default_total
      help: The same keys, under the config's limit
      map: many_total
      labels:
        - {name: k, decoders: [{name: uint}]}
",
    )
    .expect("write");
    let e = Running::start(&[&format!("--config.dir={}", dir.display())]);
    let before = e.scrape();
    // Present at zero before anything is limited.
    assert_eq!(
        before.sum(
            "ebpf_exporter_series_limited_total",
            &[("metric", "ebpf_exporter_many_total")]
        ),
        0.0
    );
    assert_eq!(
        before
            .find(
                "ebpf_exporter_series_limited_total",
                &[("metric", "ebpf_exporter_many_total")]
            )
            .len(),
        1
    );
    fill_many(&e, 1..=10_000);
    let s = e.scrape();
    assert_eq!(series(&s, "ebpf_exporter_many_total"), 101);
    let overflow = s.find("ebpf_exporter_many_total", &[("k", "__overflow__")]);
    assert_eq!(overflow.len(), 1);
    assert_eq!(overflow[0].value, 9_900.0);
    assert_eq!(s.sum("ebpf_exporter_many_total", &[]), 10_000.0);
    assert_eq!(series(&s, "ebpf_exporter_many_dropped_total"), 10);
    assert_eq!(series(&s, "ebpf_exporter_many_default_total"), 51);
    for (metric, limited) in [
        ("ebpf_exporter_many_total", 9_900.0),
        ("ebpf_exporter_many_dropped_total", 9_990.0),
        ("ebpf_exporter_many_default_total", 9_950.0),
    ] {
        assert_eq!(
            s.sum("ebpf_exporter_series_limited_total", &[("metric", metric)]),
            limited,
            "{metric}"
        );
    }
    // The same label sets are kept scrape after scrape.
    let kept = |s: &Scrape| -> BTreeSet<String> {
        s.find("ebpf_exporter_many_total", &[])
            .iter()
            .map(|x| x.labels["k"].clone())
            .collect()
    };
    assert_eq!(kept(&s), kept(&e.scrape()));
}

#[test]
fn the_global_flag_limits_metrics_without_their_own() {
    let dir = object_dir("fleet-flag");
    std::fs::write(
        dir.join("layouts.yaml"),
        "metrics:\n  counters:\n    - name: many_total\n      help: h\n      labels:\n        - {name: k, decoders: [{name: uint}]}\n",
    )
    .expect("write");
    let e = Running::start(&[
        &format!("--config.dir={}", dir.display()),
        "--metrics.max-series=7",
    ]);
    fill_many(&e, 1..=500);
    let s = e.scrape();
    assert_eq!(series(&s, "ebpf_exporter_many_total"), 8);
    assert_eq!(s.sum("ebpf_exporter_many_total", &[]), 500.0);
}

#[test]
fn unknown_cgroup_ids_fold_into_one_series() {
    let dir = object_dir("fleet-unknown");
    std::fs::write(
        dir.join("layouts.yaml"),
        "metrics:
  counters:
    - name: many_total
      help: Keys read as cgroup ids that do not exist
      labels:
        - {name: cgroup, fold_unknown: true, decoders: [{name: uint}, {name: cgroup}]}
",
    )
    .expect("write");
    let e = Running::start(&[&format!("--config.dir={}", dir.display())]);
    // Ids no cgroup has (inode numbers this high do not occur).
    fill_many(&e, (0..6_000).map(|i| (1u64 << 60) + i));
    let s = e.scrape();
    let rows = s.find("ebpf_exporter_many_total", &[]);
    assert_eq!(
        rows.len(),
        1,
        "{:?}",
        rows.iter().take(3).collect::<Vec<_>>()
    );
    assert_eq!(rows[0].labels["cgroup"], "unknown");
    assert_eq!(rows[0].value, 6_000.0);
}

#[test]
fn a_full_map_shows_its_capacity_and_refused_inserts() {
    let dir = object_dir("fleet-pressure");
    std::fs::write(
        dir.join("layouts.yaml"),
        "metrics:\n  counters:\n    - name: tiny_total\n      help: Four entries\n      labels:\n        - {name: w, decoders: [{name: uint}]}\n",
    )
    .expect("write");
    let e = Running::start(&[&format!("--config.dir={}", dir.display())]);
    let labels = [("config", "layouts"), ("map", "tiny_total")];
    let before = e.scrape();
    assert_eq!(
        before.sum("ebpf_exporter_map_update_failures_total", &labels),
        0.0
    );
    assert_eq!(
        before
            .find("ebpf_exporter_map_update_failures_total", &labels)
            .len(),
        1
    );
    test_run(&prog_fd(e.program_id("fill")));
    let s = e.scrape();
    assert_eq!(s.sum("ebpf_exporter_map_entries", &labels), 4.0);
    assert_eq!(s.sum("ebpf_exporter_map_max_entries", &labels), 4.0);
    // Thirty writers, four places: 26 refused, each counted once.
    assert_eq!(
        s.sum("ebpf_exporter_map_update_failures_total", &labels),
        26.0
    );
    test_run(&prog_fd(e.program_id("fill")));
    assert_eq!(
        e.scrape()
            .sum("ebpf_exporter_map_update_failures_total", &labels),
        52.0
    );
}

const UID: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
const UID2: &str = "9a8b7c6d-5e4f-4321-8765-0a1b2c3d4e5f";
const UID3: &str = "11112222-3333-4444-5555-666677778888";
const ID: &str = "3b5f7e9d1c2a4b6d8e0f1a3c5e7b9d2f4a6c8e0b1d3f5a7c9e2b4d6f8a0c1e3b";
const ID2: &str = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";
const ID3: &str = "deadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeef";

/// Removes the cgroups it made, children first.
struct Cgroups(Vec<PathBuf>);

impl Drop for Cgroups {
    fn drop(&mut self) {
        for dir in self.0.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[test]
fn kubernetes_workloads_and_systemd_units_are_named_without_an_api() {
    let mount = common::cgroup2_mount();
    let tag = std::process::id();
    let systemd_pod = format!(
        "kubepods-ee{tag}.slice/kubepods-ee{tag}-burstable.slice/kubepods-burstable-pod{}.slice",
        UID.replace('-', "_")
    );
    let dirs = [
        format!("kubepods-ee{tag}.slice"),
        format!("kubepods-ee{tag}.slice/kubepods-ee{tag}-burstable.slice"),
        systemd_pod.clone(),
        format!("{systemd_pod}/cri-containerd-{ID}.scope"),
        format!("kubepods{tag}"),
        format!("kubepods{tag}/burstable"),
        format!("kubepods{tag}/burstable/pod{UID2}"),
        format!("kubepods{tag}/burstable/pod{UID2}/{ID2}"),
        format!("kubepods{tag}/burstable/pod{UID3}"),
        format!("kubepods{tag}/burstable/pod{UID3}/{ID3}"),
        format!("ee-test-{tag}.slice"),
        format!("ee-test-{tag}.slice/ee-web{tag}.service"),
    ];
    let made = Cgroups(dirs.iter().map(|d| mount.join(d)).collect());
    for d in &made.0 {
        std::fs::create_dir_all(d).expect("mkdir cgroup (root)");
    }
    // The kubelet's logs for two of the three pods.
    let logs = common::scratch_dir("fleet-kubelet-logs");
    std::fs::create_dir_all(logs.join(format!("pods/shop_cart-5c9f_{UID}/app"))).expect("mkdir");
    std::fs::create_dir_all(logs.join(format!("pods/kube-system_coredns-x2x9p_{UID2}/coredns")))
        .expect("mkdir");
    std::fs::create_dir_all(logs.join("containers")).expect("mkdir");
    std::fs::write(
        logs.join(format!("containers/cart-5c9f_shop_app-{ID}.log")),
        "",
    )
    .expect("write");
    std::fs::write(
        logs.join(format!(
            "containers/coredns-x2x9p_kube-system_coredns-{ID2}.log"
        )),
        "",
    )
    .expect("write");
    let dir = common::scratch_dir("fleet-kube");
    std::fs::write(
        dir.join("workloads.yaml"),
        "object: cgroup_cpu
metrics:
  counters:
    - name: cgroup_cpu_seconds_total
      help: CPU time by workload
      value_multiplier: 0.000000001
      labels:
        - {name: namespace, decoders: [{name: uint}, {name: cgroup}, {name: kube_namespace}]}
        - {name: pod, decoders: [{name: uint}, {name: cgroup}, {name: kube_pod}]}
        - {name: container, decoders: [{name: uint}, {name: cgroup}, {name: kube_container}]}
        - {name: unit, decoders: [{name: uint}, {name: cgroup}, {name: systemd_unit}]}
",
    )
    .expect("write");
    let e = Running::start(&[
        &format!("--config.dir={}", dir.display()),
        &format!("--kubernetes.log-dir={}", logs.display()),
    ]);
    let burn = "import time\nt=time.time()\nwhile time.time()-t<0.2: pass";
    for leaf in [3usize, 7, 9, 11] {
        common::python_in_cgroup(&made.0[leaf], burn);
    }
    let want = |s: &Scrape, ns: &str, pod: &str, container: &str| {
        s.sum(
            "ebpf_exporter_cgroup_cpu_seconds_total",
            &[("namespace", ns), ("pod", pod), ("container", container)],
        ) > 0.0
    };
    let named = |s: &Scrape| {
        want(s, "shop", "cart-5c9f", "app") && want(s, "kube-system", "coredns-x2x9p", "coredns")
    };
    assert!(
        eventually(Duration::from_secs(10), || named(&e.scrape())),
        "{}",
        e.scrape().text
    );
    let s = e.scrape();
    assert!(
        want(
            &s,
            "unknown",
            &format!("unknown_pod:{UID3}"),
            "unknown_container:deadbeefdead"
        ),
        "{}",
        s.text
    );
    assert!(
        s.sum(
            "ebpf_exporter_cgroup_cpu_seconds_total",
            &[("unit", &format!("ee-web{tag}.service"))]
        ) > 0.0,
        "{}",
        s.text
    );
    // The third pod's logs appear: its series heals.
    std::fs::create_dir_all(logs.join(format!("pods/shop_checkout-1_{UID3}/api"))).expect("mkdir");
    std::fs::write(
        logs.join(format!("containers/checkout-1_shop_api-{ID3}.log")),
        "",
    )
    .expect("write");
    common::python_in_cgroup(&made.0[9], burn);
    assert!(
        eventually(Duration::from_secs(15), || want(
            &e.scrape(),
            "shop",
            "checkout-1",
            "api"
        )),
        "{}",
        e.scrape().text
    );
    drop(e);
}

/// Directories under the cgroup2 mount: its live cgroups.
fn live_cgroups(mount: &Path) -> usize {
    let mut count = 0;
    let mut pending = vec![mount.to_path_buf()];
    while let Some(dir) = pending.pop() {
        count += 1;
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for d in entries.flatten() {
            if d.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(d.path());
            }
        }
    }
    count
}

/// Pods come and go on a simulated node: each round starts three pods
/// (a pod cgroup, a container cgroup in it, and the kubelet's log
/// entries), charges CPU time to each container, then removes them as the
/// kubelet does. With `delete_gone`, each pod's series shows under its
/// names, ends within two scrapes of its removal, and its map entry is
/// deleted; the map, the series, the exporter's inotify watches and its
/// RSS come back to where they were.
#[test]
fn series_of_removed_pods_end_and_nothing_is_left_behind() {
    let mount = common::cgroup2_mount();
    let tag = std::process::id();
    let qos = mount.join(format!("kubepods-churn{tag}/burstable"));
    let _qos = Cgroups(vec![
        qos.parent().expect("parent").to_path_buf(),
        qos.clone(),
    ]);
    std::fs::create_dir_all(&qos).expect("mkdir cgroup (root)");
    let logs = common::scratch_dir("fleet-churn-logs");
    std::fs::create_dir_all(logs.join("pods")).expect("mkdir");
    std::fs::create_dir_all(logs.join("containers")).expect("mkdir");
    let dir = common::scratch_dir("fleet-churn");
    std::fs::write(
        dir.join("pods.yaml"),
        "object: cgroup_cpu
metrics:
  counters:
    - name: pod_cpu_seconds_total
      help: CPU time by pod
      map: cgroup_cpu_seconds_total
      value_multiplier: 0.000000001
      delete_gone: true
      labels:
        - {name: pod, decoders: [{name: uint}, {name: cgroup}, {name: kube_pod}]}
        - {name: container, decoders: [{name: uint}, {name: cgroup}, {name: kube_container}]}
",
    )
    .expect("write");
    let e = Running::start(&[
        &format!("--config.dir={}", dir.display()),
        &format!("--kubernetes.log-dir={}", logs.display()),
    ]);
    let config = [("config", "pods")];
    let entries = |s: &Scrape| s.sum("ebpf_exporter_map_entries", &config);
    let deleted = |s: &Scrape| s.sum("ebpf_exporter_map_gone_entries_deleted_total", &config);
    let pod_series = |s: &Scrape, pod: &str| {
        s.find("ebpf_exporter_pod_cpu_seconds_total", &[("pod", pod)])
            .len()
    };
    let burn = "import time\nt=time.time()\nwhile time.time()-t<0.05: pass";
    let mut baseline = None;
    for round in 0..4 {
        let pods: Vec<(String, PathBuf, PathBuf)> = (0..3)
            .map(|i| {
                let uid = format!("{round:08x}-{i:04x}-4000-8000-{tag:012x}");
                let id = format!("{:064x}", (u64::from(tag) << 16) | (round << 4) | i);
                let name = format!("web-{round}-{i}");
                let pod = qos.join(format!("pod{uid}"));
                let container = pod.join(&id);
                std::fs::create_dir_all(&container).expect("mkdir cgroup");
                std::fs::create_dir_all(logs.join(format!("pods/shop_{name}_{uid}/app")))
                    .expect("mkdir");
                let log = logs.join(format!("containers/{name}_shop_app-{id}.log"));
                std::fs::write(&log, "").expect("write");
                (name, pod, log)
            })
            .collect();
        for (_, pod, _) in &pods {
            let container = std::fs::read_dir(pod)
                .expect("read pod cgroup")
                .flatten()
                .find(|d| d.path().is_dir())
                .expect("the container cgroup")
                .path();
            common::python_in_cgroup(&container, burn);
        }
        let named = |s: &Scrape| pods.iter().all(|(name, _, _)| pod_series(s, name) == 1);
        assert!(
            eventually(Duration::from_secs(10), || named(&e.scrape())),
            "round {round}: each pod's one series, by name:\n{}",
            e.scrape().text
        );
        let before = e.scrape();
        // As the kubelet removes a pod: its cgroups, then its logs.
        for (_, pod, log) in &pods {
            for d in std::fs::read_dir(pod).expect("read pod").flatten() {
                if d.path().is_dir() {
                    std::fs::remove_dir(d.path()).expect("rmdir container cgroup");
                }
            }
            std::fs::remove_dir(pod).expect("rmdir pod cgroup");
            let _ = std::fs::remove_file(log);
        }
        // The monitor hears of removals by inotify at once; give it a
        // moment, then two scrapes: the last values, then nothing.
        std::thread::sleep(Duration::from_millis(500));
        let _ = e.scrape();
        let s = e.scrape();
        for (name, _, _) in &pods {
            assert_eq!(
                pod_series(&s, name),
                0,
                "round {round}: {name} ended:\n{}",
                s.text
            );
        }
        assert!(
            deleted(&s) - deleted(&before) >= 3.0,
            "round {round}: the three pods' entries deleted"
        );
        // Other cgroups on the host come and go meanwhile, so the map is
        // held to what is alive: one entry at most per live cgroup, and
        // one watch per live cgroup directory.
        let live = live_cgroups(&mount);
        let entries = entries(&s) as usize;
        let watches = common::inotify_watches(e.pid());
        assert!(
            entries <= live + 2,
            "round {round}: {entries} map entries for {live} live cgroups"
        );
        assert!(
            watches <= live + 2,
            "round {round}: {watches} inotify watches for {live} live cgroups"
        );
        let rss = common::rss_kib(e.pid(), "VmRSS:");
        let rss0 = *baseline.get_or_insert(rss);
        assert!(
            rss <= rss0 + 2048,
            "round {round}: RSS {rss} KiB against {rss0} KiB after round 0"
        );
    }
}
