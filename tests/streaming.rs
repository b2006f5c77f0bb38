//! Large expositions stream: chunked, whole, and a client that stops
//! reading or hangs up mid-body costs nobody else anything.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{prog_fd, test_run, Running};

fn start() -> Running {
    let dir = common::scratch_dir("streaming");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bpf");
    common::compile_bpf(&src.join("streaming.bpf.c"), &dir.join("streaming.bpf.o"));
    std::fs::copy(src.join("streaming.yaml"), dir.join("streaming.yaml")).expect("copy config");
    let e = Running::start(&[
        &format!("--config.dir={}", dir.display()),
        "--web.enable-lifecycle",
    ]);
    test_run(&prog_fd(e.program_id("fill")));
    e
}

fn series(body: &str) -> usize {
    body.lines()
        .filter(|l| l.starts_with("ebpf_exporter_st_big_total{"))
        .count()
}

/// Sends a GET and reads `bytes` of the answer, then stops reading.
fn stall(addr: &str, bytes: usize) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .expect("request");
    let mut buf = vec![0u8; bytes];
    s.read_exact(&mut buf).expect("first bytes");
    s
}

#[test]
fn a_large_scrape_is_chunked_and_whole() {
    let e = start();
    let r = e.get("/metrics");
    assert_eq!(r.status, 200);
    let chunked = r
        .headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v == "chunked");
    assert!(chunked, "a 3 MB exposition streams: {:?}", r.headers);
    let text = r.text();
    assert_eq!(series(&text), 60_000);
    assert!(text.contains("ebpf_exporter_st_big_total{key=\"59999\"} 60000\n"));
    assert!(common::promtool_check(&text).trim().is_empty());
    // The scrape reports what it spent on the config, by name.
    let took: f64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("ebpf_exporter_config_scrape_duration_seconds{config=\"streaming\"} ")
        })
        .and_then(|v| v.parse().ok())
        .expect("the config's scrape duration");
    assert!(took > 0.0 && took < 10.0, "{took}");
    // OpenMetrics streams too, and still ends with # EOF.
    let om = e.get_with(
        "/metrics",
        &[("Accept", "application/openmetrics-text; version=1.0.0")],
    );
    let om = om.text();
    assert!(
        om.ends_with("# EOF\n"),
        "{}",
        &om[om.len().saturating_sub(200)..]
    );
    assert_eq!(om.matches("ebpf_exporter_st_big_total{").count(), 60_000);
    // The protobuf exposition streams in whole families.
    let pb = e.get_with(
        "/metrics",
        &[(
            "Accept",
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited",
        )],
    );
    assert_eq!(
        pb.header("content-type"),
        Some("application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited")
    );
    let families = common::parse_protobuf(&pb.body);
    let big = families
        .iter()
        .find(|f| f.name() == "ebpf_exporter_st_big_total")
        .expect("the big family");
    assert_eq!(big.get_metric().len(), 60_000);
    let last = big
        .get_metric()
        .iter()
        .find(|m| m.get_label().first().map(|l| l.value()) == Some("59999"))
        .expect("key 59999");
    assert_eq!(last.get_counter().value(), 60_000.0);
    // gzip: one valid stream.
    let gz = e.get_with("/metrics", &[("Accept-Encoding", "gzip")]);
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&gz.body[..])
        .read_to_string(&mut unzipped)
        .expect("valid gzip");
    assert_eq!(series(&unzipped), 60_000);
}

#[test]
fn a_stalled_or_vanished_reader_blocks_no_other_scrape_or_reload() {
    let e = start();
    let whole = e.get("/metrics").text();
    // One client reads 64 KiB and stops; another hangs up after 64 KiB.
    let stalled = stall(&e.addr, 64 * 1024);
    drop(stall(&e.addr, 64 * 1024));
    for _ in 0..5 {
        let t = Instant::now();
        let r = e.get("/metrics");
        assert_eq!(r.status, 200);
        assert_eq!(series(&r.text()), series(&whole));
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "not held up: {:?}",
            t.elapsed()
        );
    }
    let t = Instant::now();
    let reload = e.post("/-/reload");
    assert_eq!(reload.status, 200, "{}", reload.text());
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "the scrape lock is free"
    );
    // What the stalled client holds is at most its own 3 MB body, shared
    // chunks, not a copy per scrape since.
    let rss = common::rss_kib(e.pid(), "VmRSS:");
    assert!(rss < 40 * 1024, "RSS {rss} KiB");
    drop(stalled);
    assert_eq!(series(&e.get("/metrics").text()), 60_000);
}
