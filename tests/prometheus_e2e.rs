//! A real Prometheus (Debian's 2.42) scrapes the exporter running the default
//! configs, and the answers come back through its query API.
//!
//! Prometheus asks for OpenMetrics first, so a scrape that ingests here proves
//! the OpenMetrics output parses in the real thing. promtool 2.42's linter
//! cannot judge OpenMetrics (it reads counters' `_total` samples as lacking
//! HELP), so it is run on the classic text format only. Started with
//! `--enable-feature=native-histograms`, 2.42 asks for the protobuf
//! exposition first, and what it stores from that is compared with what a
//! second Prometheus stores from the text format.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{eventually, http_get, promtool_check, scratch_dir, Running};

/// The Prometheus server; killed on drop so a failed assertion leaves
/// nothing running.
struct Prometheus {
    child: Child,
    addr: String,
}

impl Prometheus {
    fn start(dir: &Path, target: &str) -> Prometheus {
        Self::start_with(dir, &[target], "", &[])
    }

    /// Scraping `targets` as job `ebpf`, with `extra` top-level config and
    /// `flags` on its command line.
    fn start_with(dir: &Path, targets: &[&str], extra: &str, flags: &[&str]) -> Prometheus {
        let port = free_port();
        let config = dir.join("prometheus.yml");
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n{extra}\
                 scrape_configs:\n  - job_name: ebpf\n    static_configs:\n      - targets: [{}]\n",
                targets.join(", ")
            ),
        )
        .expect("write prometheus.yml");
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus is installed (apt-get install prometheus)");
        let p = Prometheus { child, addr };
        let ready = eventually(Duration::from_secs(30), || {
            std::net::TcpStream::connect(&p.addr).is_ok()
                && http_get(&p.addr, "/-/ready", &[]).status == 200
        });
        assert!(ready, "prometheus did not become ready on {}", p.addr);
        p
    }

    /// Runs an instant query; the value of each resulting sample, in order.
    fn query(&self, expr: &str) -> Vec<f64> {
        let r = http_get(
            &self.addr,
            &format!("/api/v1/query?query={}", url_encode(expr)),
            &[],
        );
        assert_eq!(r.status, 200, "query {expr}: {}", r.text());
        // The API answers JSON, which YAML reads as it is; no JSON crate needed.
        let v: serde_yaml::Value = serde_yaml::from_str(&r.text()).expect("API answers JSON");
        assert_eq!(v["status"].as_str(), Some("success"), "{}", r.text());
        v["data"]["result"]
            .as_sequence()
            .map(|rows| {
                rows.iter()
                    .filter_map(|row| row["value"][1].as_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every sample `selector` selects now, as its label set (job and
    /// instance left out) and the value as the API spells it.
    fn samples(&self, selector: &str) -> BTreeMap<String, String> {
        let r = http_get(
            &self.addr,
            &format!("/api/v1/query?query={}", url_encode(selector)),
            &[],
        );
        assert_eq!(r.status, 200, "query {selector}: {}", r.text());
        let v: serde_yaml::Value = serde_yaml::from_str(&r.text()).expect("API answers JSON");
        let mut out = BTreeMap::new();
        for row in v["data"]["result"].as_sequence().into_iter().flatten() {
            let labels: BTreeMap<String, String> = row["metric"]
                .as_mapping()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
                .filter(|(k, _)| k != "job" && k != "instance")
                .collect();
            let value = row["value"][1].as_str().unwrap_or("?").to_string();
            out.insert(format!("{labels:?}"), value);
        }
        out
    }

    /// Names of all series Prometheus holds.
    fn metric_names(&self) -> Vec<String> {
        let r = http_get(&self.addr, "/api/v1/label/__name__/values", &[]);
        assert_eq!(r.status, 200, "{}", r.text());
        let v: serde_yaml::Value = serde_yaml::from_str(&r.text()).expect("API answers JSON");
        v["data"]
            .as_sequence()
            .map(|names| {
                names
                    .iter()
                    .filter_map(|n| n.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Keeps syscalls flowing and the run queue contended until dropped: more
/// spinning threads than CPUs, each sleeping briefly so it wakes up often and
/// has to wait for a CPU.
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    /// `dir` receives small fsync'ed writes, for block I/O latency samples.
    fn start(dir: &Path) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = (0..cpus * 2)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    // Bounded even if the guard is leaked.
                    let deadline = Instant::now() + Duration::from_secs(120);
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        let spin = Instant::now();
                        while spin.elapsed() < Duration::from_millis(2) {
                            std::hint::spin_loop();
                        }
                        let _ = std::fs::metadata("/proc/self/stat");
                        std::thread::sleep(Duration::from_micros(500));
                    }
                })
            })
            .collect::<Vec<_>>();
        let mut threads = threads;
        let (stop_io, file) = (stop.clone(), dir.join("io-load"));
        threads.push(std::thread::spawn(move || {
            use std::io::Write;
            let deadline = Instant::now() + Duration::from_secs(120);
            let block = vec![0x5a_u8; 64 * 1024];
            while !stop_io.load(Ordering::Relaxed) && Instant::now() < deadline {
                if let Ok(mut f) = std::fs::File::create(&file) {
                    let _ = f.write_all(&block).and_then(|_| f.sync_all());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = std::fs::remove_file(&file);
        }));
        Load { stop, threads }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[test]
fn prometheus_scrapes_and_queries_the_default_configs() {
    // The Kubernetes example's set (the default set plus its workload
    // config), which the dashboard and the rules read.
    let dir = scratch_dir("prometheus-e2e");
    let configs = dir.join("configs");
    std::fs::create_dir_all(&configs).expect("mkdir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let daemonset =
        std::fs::read_to_string(root.join("examples/kubernetes/daemonset.yaml")).expect("read");
    let mut written = 0;
    for doc in serde_yaml::Deserializer::from_str(&daemonset) {
        let Ok(v) = <serde_yaml::Value as serde::Deserialize>::deserialize(doc) else {
            continue;
        };
        for (name, text) in v["data"].as_mapping().into_iter().flatten() {
            if let (Some(name), Some(text)) = (name.as_str(), text.as_str()) {
                std::fs::write(configs.join(name), text).expect("write");
                written += 1;
            }
        }
    }
    assert!(written >= 7, "the ConfigMap's configs: {written}");
    let exporter = Running::start(&[&format!("--config.dir={}", configs.display())]);
    let prom = Prometheus::start(&dir, &exporter.addr);
    let _load = Load::start(&dir);

    let up = eventually(Duration::from_secs(30), || {
        prom.query("up{job=\"ebpf\"}") == [1.0]
    });
    assert!(
        up,
        "target never up: {:?}\nexporter log:\n{}",
        prom.query("up"),
        exporter.log()
    );

    // rate() needs two samples inside the window; allow a few scrapes.
    let mut rate = Vec::new();
    let flowing = eventually(Duration::from_secs(30), || {
        rate = prom.query("sum(rate(ebpf_exporter_syscalls_total[10s]))");
        rate.first().is_some_and(|r| *r > 0.0)
    });
    assert!(flowing, "syscall rate never positive: {rate:?}");

    let p99 = "histogram_quantile(0.99, sum by (le) (rate(ebpf_exporter_run_queue_latency_seconds_bucket[10s])))";
    let mut q = Vec::new();
    let plausible = eventually(Duration::from_secs(30), || {
        q = prom.query(p99);
        q.first()
            .is_some_and(|v| v.is_finite() && *v > 0.0 && *v < 10.0)
    });
    assert!(plausible, "run queue p99 not plausible: {q:?}");

    eprintln!("syscalls/s {rate:?}, run queue p99 {q:?} s");

    // OpenMetrics exposes the counter family without `_total`; the sample,
    // and so the stored series, keeps it.
    let names = prom.metric_names();
    assert!(
        names.iter().any(|n| n == "ebpf_exporter_syscalls_total"),
        "series names: {names:?}"
    );
    assert!(
        !names.iter().any(|n| n == "ebpf_exporter_syscalls"),
        "{names:?}"
    );

    // The shipped recording rules and dashboard queries parse and find data.
    for (origin, expr) in example_queries() {
        let mut got = Vec::new();
        let found = eventually(Duration::from_secs(20), || {
            got = prom.query(&expr);
            !got.is_empty()
        });
        assert!(found, "{origin}: no data for {expr}");
    }

    let text = exporter.scrape();
    let complaints = promtool_check(&text.text);
    assert!(
        complaints.trim().is_empty(),
        "promtool check metrics:\n{complaints}"
    );
}

/// The PromQL in examples/prometheus/rules.yml (recording rules; the alerts
/// are quiet when all is well) and examples/grafana's dashboard, with the
/// dashboard's variables filled in.
fn example_queries() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut out = Vec::new();

    let rules_path = root.join("prometheus/rules.yml");
    let rules: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&rules_path).expect("read rules.yml"))
            .expect("rules.yml is YAML");
    for group in rules["groups"].as_sequence().into_iter().flatten() {
        for rule in group["rules"].as_sequence().into_iter().flatten() {
            if let (Some(name), Some(expr)) = (rule["record"].as_str(), rule["expr"].as_str()) {
                out.push((format!("rules.yml {name}"), expr.to_string()));
            }
        }
    }

    let dash_path = root.join("grafana/ebpf-exporter-dashboard.json");
    let dash: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&dash_path).expect("read the dashboard"))
            .expect("the dashboard is JSON");
    for panel in dash["panels"].as_sequence().into_iter().flatten() {
        for target in panel["targets"].as_sequence().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                let expr = expr
                    .replace("$__rate_interval", "10s")
                    .replace("$instance", ".*")
                    .replace("$namespace", ".*")
                    .replace("$job", ".*")
                    .replace("$__range", "1m")
                    .replace("$pod", ".*")
                    .replace("$device", ".*")
                    .replace("$topk", "10");
                let title = panel["title"].as_str().unwrap_or("?");
                out.push((format!("dashboard panel {title:?}"), expr));
            }
        }
    }
    assert!(out.len() > 10, "examples lost their queries: {out:?}");
    out
}

/// Every alert in examples/prometheus/alerts.yml, evaluated by a real
/// Prometheus against an exporter provoked into each condition (with `for:`
/// set to 0 so the test need not wait). EbpfExporterEventsLost is only
/// evaluated: a perf buffer overflow cannot be provoked deterministically.
#[test]
fn every_example_alert_fires_when_provoked() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = scratch_dir("alerts");
    let configs = dir.join("configs");
    std::fs::create_dir_all(&configs).expect("mkdir");
    common::compile_bpf(
        &root.join("tests/bpf/layouts.bpf.c"),
        &configs.join("layouts.bpf.o"),
    );
    // A small map that fills, and a metric over its series limit.
    std::fs::write(
        configs.join("layouts.yaml"),
        "metrics:\n  counters:\n    - name: tiny_total\n      help: Four entries\n      max_series: 1\n      labels:\n        - {name: w, decoders: [{name: uint}]}\n",
    )
    .expect("write");
    // A config that cannot start, and one whose program cannot attach here.
    std::fs::write(
        configs.join("broken.yaml"),
        "object: syscalls\nmetrics:\n  counters:\n    - name: no_such_map\n      help: h\n      labels:\n        - {name: k, size: 8, decoders: [{name: uint}]}\n",
    )
    .expect("write");
    common::compile_bpf(
        &root.join("tests/bpf/external.bpf.c"),
        &configs.join("external.bpf.o"),
    );
    std::fs::copy(
        root.join("tests/bpf/external.yaml"),
        configs.join("external.yaml"),
    )
    .expect("copy");
    let e = Running::start(&[
        &format!("--config.dir={}", configs.display()),
        "--web.enable-lifecycle",
        "--no-config.watch",
    ]);
    common::test_run(&common::prog_fd(e.program_id("fill")));
    // A reload that fails: the layouts config breaks; its old version runs.
    std::fs::write(configs.join("layouts.yaml"), "metrics: [\n").expect("write");
    assert_eq!(e.post("/-/reload").status, 500);
    // A target that is down.
    let down = free_port();

    let alerts = std::fs::read_to_string(root.join("examples/prometheus/alerts.yml"))
        .expect("read alerts.yml");
    let immediate = alerts
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("for:") {
                "        for: 0s".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let pdir = dir.join("prometheus");
    std::fs::create_dir_all(&pdir).expect("mkdir");
    std::fs::write(pdir.join("alerts.yml"), immediate).expect("write");
    let check = Command::new("promtool")
        .args(["check", "rules"])
        .arg(pdir.join("alerts.yml"))
        .output()
        .expect("promtool runs");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let p = Prometheus::start_with(
        &pdir,
        &[&e.addr, &format!("127.0.0.1:{down}")],
        "rule_files: [alerts.yml]\n",
        &[],
    );
    // The test's job is "ebpf", which the Down alert's job matcher covers.
    let firing = |p: &Prometheus| -> BTreeSet<String> {
        let r = http_get(&p.addr, "/api/v1/alerts", &[]);
        let v: serde_yaml::Value = serde_yaml::from_str(&r.text()).expect("JSON");
        v["data"]["alerts"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter(|a| a["state"].as_str() == Some("firing"))
            .filter_map(|a| a["labels"]["alertname"].as_str().map(str::to_string))
            .collect()
    };
    let expected: BTreeSet<String> = [
        "EbpfExporterDown",
        "EbpfExporterConfigDisabled",
        "EbpfExporterReloadFailed",
        "EbpfExporterProgramNotAttached",
        "EbpfExporterMapUpdateFailures",
        "EbpfExporterMapFull",
        "EbpfExporterSeriesLimited",
    ]
    .into_iter()
    .map(str::to_string)
    .collect();
    let mut now = BTreeSet::new();
    let all = eventually(Duration::from_secs(60), || {
        // Fresh failures for the increase() windows.
        common::test_run(&common::prog_fd(e.program_id("fill")));
        now = firing(&p);
        expected.is_subset(&now)
    });
    assert!(
        all,
        "firing: {now:?}, missing: {:?}",
        expected.difference(&now).collect::<Vec<_>>()
    );
    assert!(!now.contains("EbpfExporterEventsLost"), "{now:?}");
}

/// Stands between a Prometheus and the exporter, one request per
/// connection: it notes the Content-Type of every answer, so a test knows
/// which format was served, and can replace the Accept header, so a 2.42
/// (which has no `scrape_protocols`) can be made to ask for a given format.
struct Proxy {
    addr: String,
    content_types: Arc<Mutex<BTreeSet<String>>>,
}

impl Proxy {
    fn start(upstream: &str, accept: Option<&'static str>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address").to_string();
        let content_types = Arc::new(Mutex::new(BTreeSet::new()));
        let (seen, upstream) = (Arc::clone(&content_types), upstream.to_string());
        // Runs until the test process ends; each connection is one request.
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (seen, upstream) = (Arc::clone(&seen), upstream.clone());
                std::thread::spawn(move || {
                    if let Some(ct) = Self::relay(client, &upstream, accept) {
                        seen.lock().expect("content types").insert(ct);
                    }
                });
            }
        });
        Proxy {
            addr,
            content_types,
        }
    }

    /// Relays one GET (Prometheus's scrapes have no body) and its answer;
    /// the answer's Content-Type.
    fn relay(client: TcpStream, upstream: &str, accept: Option<&str>) -> Option<String> {
        let mut from_client = BufReader::new(client.try_clone().ok()?);
        let mut request = String::new();
        loop {
            let mut line = String::new();
            if from_client.read_line(&mut line).ok()? == 0 {
                return None;
            }
            let lower = line.to_ascii_lowercase();
            if line == "\r\n" {
                request.push_str("Connection: close\r\n\r\n");
                break;
            } else if lower.starts_with("connection:") {
                continue;
            } else if let (Some(a), true) = (accept, lower.starts_with("accept:")) {
                request.push_str(&format!("Accept: {a}\r\n"));
            } else {
                request.push_str(&line);
            }
        }
        let mut server = TcpStream::connect(upstream).ok()?;
        server.write_all(request.as_bytes()).ok()?;
        let mut answer = Vec::new();
        server.read_to_end(&mut answer).ok()?;
        let mut client = client;
        client.write_all(&answer).ok()?;
        let head_end = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&answer[..head_end]).to_string();
        head.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_string())
        })
    }

    fn content_types(&self) -> BTreeSet<String> {
        self.content_types.lock().expect("content types").clone()
    }
}

/// Two Prometheus servers scrape one exporter, one over the protobuf
/// exposition (2.42 asks for it first once native histograms are on) and
/// one over the classic text format, and they store the same series with
/// the same values: counters with many labels, a histogram's buckets, sum
/// and count, and the exporter's own gauges and counters, floats included.
#[test]
fn protobuf_scrapes_store_the_same_samples_as_text() {
    let dir = scratch_dir("prometheus-protobuf");
    let configs = dir.join("configs");
    std::fs::create_dir_all(&configs).expect("mkdir");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bpf");
    common::compile_bpf(&src.join("decoders.bpf.c"), &configs.join("decoders.bpf.o"));
    std::fs::copy(src.join("decoders.yaml"), configs.join("decoders.yaml")).expect("copy");
    let exporter = Running::start(&[&format!("--config.dir={}", configs.display())]);
    common::run(Command::new("python3").args([
        "-c",
        "import ctypes, os; ctypes.CDLL(None).prctl(15, b'eedecoders', 0, 0, 0); [os.getpid() for _ in range(5)]",
    ]));
    let direct = exporter.scrape();
    assert!(
        direct.has("ebpf_exporter_decoded_total"),
        "the key was written:\n{}",
        direct.text
    );

    let protobuf_proxy = Proxy::start(&exporter.addr, None);
    let text_proxy = Proxy::start(&exporter.addr, Some("text/plain;version=0.0.4"));
    let (pdir, tdir) = (dir.join("protobuf"), dir.join("text"));
    for d in [&pdir, &tdir] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    let over_protobuf = Prometheus::start_with(
        &pdir,
        &[&protobuf_proxy.addr],
        "",
        &["--enable-feature=native-histograms"],
    );
    let over_text = Prometheus::start_with(&tdir, &[&text_proxy.addr], "", &[]);

    // Values that do not move between two scrapes a second apart.
    let steady = "{__name__=~\"ebpf_exporter_decoded_total|ebpf_exporter_percpu_latency_seconds_(bucket|sum|count)|ebpf_exporter_(build_info|enabled_configs|ebpf_program_info|ebpf_program_attached|map_max_entries|config_generation|config_load_timestamp_seconds|config_last_load_successful)|process_start_time_seconds|process_max_fds\"}";
    let (mut p, mut t) = (BTreeMap::new(), BTreeMap::new());
    let same = eventually(Duration::from_secs(30), || {
        p = over_protobuf.samples(steady);
        t = over_text.samples(steady);
        !p.is_empty() && p == t
    });
    assert!(same, "over protobuf:\n{p:#?}\nover text:\n{t:#?}");
    // 13 labels plus the name; 7 buckets and +Inf, a sum and a count for
    // each of the histogram's CPUs.
    let decoded: Vec<&String> = p
        .keys()
        .filter(|k| k.contains("\"ebpf_exporter_decoded_total\""))
        .collect();
    assert!(!decoded.is_empty(), "{p:#?}");
    for d in decoded {
        assert_eq!(d.matches("\": \"").count(), 14, "{d}");
    }
    let buckets = p.keys().filter(|k| k.contains("_bucket")).count();
    let sums = p
        .keys()
        .filter(|k| k.contains("latency_seconds_sum"))
        .count();
    assert!(sums >= 1 && buckets == 8 * sums, "{p:#?}");
    assert!(
        p.keys().any(|k| k.contains("le\": \"+Inf")),
        "classic buckets, +Inf included: {p:#?}"
    );

    // Every series name and label set, moving values aside.
    let all = "{job=\"ebpf\",__name__!~\"scrape_.*|up\"}";
    let (mut pk, mut tk) = (BTreeSet::new(), BTreeSet::new());
    let same_series = eventually(Duration::from_secs(30), || {
        pk = over_protobuf.samples(all).into_keys().collect();
        tk = over_text.samples(all).into_keys().collect();
        pk == tk
    });
    assert!(
        same_series,
        "only over protobuf: {:#?}\nonly over text: {:#?}",
        pk.difference(&tk).collect::<Vec<_>>(),
        tk.difference(&pk).collect::<Vec<_>>()
    );
    assert!(pk.len() > 40, "{pk:#?}");

    let protobuf = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";
    assert_eq!(
        protobuf_proxy.content_types(),
        BTreeSet::from([protobuf.to_string()])
    );
    assert_eq!(
        text_proxy.content_types(),
        BTreeSet::from(["text/plain; version=0.0.4; charset=utf-8".to_string()])
    );
}
