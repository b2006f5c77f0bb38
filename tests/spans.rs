//! Tracing spans end to end: a BPF program of ours writes span records
//! with known values into a ring buffer, the exporter sends them over OTLP,
//! and a real OTLP receiver on loopback (built from the protocol's own
//! definitions) checks every field. Both OTLP protocols, and a collector
//! that is not there.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;

use common::{compile_bpf, eventually, scratch_dir, Running, Scrape};

type Received = Arc<Mutex<Vec<ExportTraceServiceRequest>>>;

struct Receiver(Received);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.lock().expect("lock").push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A gRPC OTLP receiver; returns its address.
fn grpc_receiver(rt: &tokio::runtime::Runtime, got: Received) -> String {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    rt.spawn(async move {
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Receiver(got)))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .expect("grpc receiver");
    });
    addr
}

/// An HTTP/protobuf OTLP receiver (`POST /v1/traces`); returns its address.
fn http_receiver(rt: &tokio::runtime::Runtime, got: Received) -> String {
    use http_body_util::BodyExt;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    rt.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let got = got.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let got = got.clone();
                        async move {
                            assert_eq!(req.uri().path(), "/v1/traces");
                            assert_eq!(
                                req.headers()
                                    .get("content-type")
                                    .and_then(|v| v.to_str().ok()),
                                Some("application/x-protobuf")
                            );
                            let body = req.into_body().collect().await.expect("body").to_bytes();
                            let decoded =
                                ExportTraceServiceRequest::decode(body).expect("protobuf");
                            got.lock().expect("lock").push(decoded);
                            let reply = ExportTraceServiceResponse::default().encode_to_vec();
                            Ok::<_, std::convert::Infallible>(
                                hyper::Response::builder()
                                    .header("content-type", "application/x-protobuf")
                                    .body(http_body_util::Full::new(bytes::Bytes::from(reply)))
                                    .expect("response"),
                            )
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// A config directory with the spans object, one per test (they run at once).
fn spans_dir(test: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bpf");
    let dir = scratch_dir(&format!("spans-{test}"));
    compile_bpf(&root.join("spans.bpf.c"), &dir.join("spans.bpf.o"));
    std::fs::copy(root.join("spans.yaml"), dir.join("spans.yaml")).expect("copy");
    dir
}

fn start(dir: &Path, env: &[(&str, &str)]) -> Running {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Running::try_start_with(&[&format!("--config.dir={}", dir.display())], |cmd| {
        for (k, v) in &env {
            cmd.env(k, v);
        }
    })
    .unwrap_or_else(|log| panic!("{log}"))
}

/// Every exporter started here sees every process's close(987654), so the
/// tests that emit spans take turns, and counts stay exact.
static EMITTING: Mutex<()> = Mutex::new(());

/// Makes the program emit `n` spans.
fn emit(n: usize) {
    for _ in 0..n {
        // SAFETY: closing an fd no process has only returns EBADF.
        unsafe { libc::close(987654) };
    }
}

fn spans_of(got: &Received) -> Vec<(String, opentelemetry_proto::tonic::trace::v1::Span)> {
    let got = got.lock().expect("lock");
    let mut out = Vec::new();
    for req in got.iter() {
        for rs in &req.resource_spans {
            let service = rs
                .resource
                .as_ref()
                .and_then(|r| r.attributes.iter().find(|a| a.key == "service.name"))
                .and_then(|a| a.value.as_ref())
                .and_then(|v| match &v.value {
                    Some(Value::StringValue(s)) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for ss in &rs.scope_spans {
                for span in &ss.spans {
                    out.push((service.clone(), span.clone()));
                }
            }
        }
    }
    out
}

fn check_received(got: &Received) {
    assert!(
        eventually(Duration::from_secs(20), || spans_of(got).len() >= 3),
        "3 spans arrive"
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64;
    let spans = spans_of(got);
    let mut ids = std::collections::HashSet::new();
    for (service, span) in &spans {
        assert_eq!(service, "spans-test");
        assert_eq!(span.name, "close-span");
        assert_eq!(span.trace_id, (1..=16).collect::<Vec<u8>>());
        assert_eq!(span.parent_span_id, vec![0x11; 8]);
        assert_eq!(span.span_id.len(), 8);
        assert_ne!(span.span_id, vec![0; 8], "a zero span_id is generated");
        ids.insert(span.span_id.clone());
        assert_eq!(span.end_time_unix_nano - span.start_time_unix_nano, 12345);
        let age = now.abs_diff(span.start_time_unix_nano);
        assert!(age < 30_000_000_000, "start within 30 s of now: {age} ns");
        let attr = |k: &str| {
            span.attributes
                .iter()
                .find(|a| a.key == k)
                .and_then(|a| a.value.as_ref())
                .and_then(|v| match &v.value {
                    Some(Value::StringValue(s)) => Some(s.clone()),
                    _ => None,
                })
        };
        assert_eq!(attr("pid"), Some(std::process::id().to_string()));
        assert_eq!(attr("ebpf_exporter.config").as_deref(), Some("spans"));
        assert_eq!(
            span.attributes.len(),
            2,
            "special labels are not attributes"
        );
    }
    assert_eq!(ids.len(), spans.len(), "generated span ids are unique");
}

/// Three spans through `receiver`, spoken to in `protocol`; the exported
/// count is exact because emitting tests take turns.
fn round_trip(
    test: &str,
    protocol: &str,
    receiver: fn(&tokio::runtime::Runtime, Received) -> String,
) {
    let _turn = EMITTING.lock().unwrap_or_else(|p| p.into_inner());
    let rt = runtime();
    let got: Received = Arc::default();
    let addr = receiver(&rt, got.clone());
    let dir = spans_dir(test);
    let exporter = start(
        &dir,
        &[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &format!("http://{addr}")),
        ],
    );
    emit(3);
    check_received(&got);
    let exported = |e: &Running| {
        e.scrape().sum(
            "ebpf_exporter_spans_total",
            &[("config", "spans"), ("result", "exported")],
        )
    };
    assert!(eventually(Duration::from_secs(5), || exported(&exporter) == 3.0));
}

#[test]
fn spans_arrive_over_otlp_grpc() {
    round_trip("grpc", "grpc", grpc_receiver);
}

#[test]
fn spans_arrive_over_otlp_http_protobuf() {
    round_trip("http", "http/protobuf", http_receiver);
}

#[test]
fn an_absent_collector_costs_spans_not_the_exporter() {
    let _turn = EMITTING.lock().unwrap_or_else(|p| p.into_inner());
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let dir = spans_dir("absent");
    let exporter = start(
        &dir,
        &[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                &format!("http://127.0.0.1:{port}"),
            ),
        ],
    );
    // In bursts, so that most spans reach user space; those a slow reader
    // (an emulated VM) leaves no room for are counted by the program.
    for _ in 0..20 {
        emit(500);
        std::thread::sleep(Duration::from_millis(50));
    }
    let failed = |s: &Scrape| {
        s.sum(
            "ebpf_exporter_spans_total",
            &[("config", "spans"), ("result", "dropped_export_failed")],
        ) + s.sum(
            "ebpf_exporter_spans_total",
            &[("config", "spans"), ("result", "dropped_queue_full")],
        )
    };
    let lost = |s: &Scrape| s.sum("ebpf_exporter_spans_lost_in_kernel_total", &[]);
    let mut last = Scrape::default();
    assert!(
        eventually(Duration::from_secs(30), || {
            last = exporter.scrape();
            failed(&last) + lost(&last) == 10_000.0
        }),
        "every span that reached user space is counted as dropped: {} dropped, {} lost in the kernel",
        failed(&last),
        lost(&last)
    );
    assert!(
        failed(&last) >= 2_000.0,
        "most spans reached user space: {} of 10000",
        failed(&last)
    );
    let s = exporter.scrape();
    assert_eq!(
        s.sum(
            "ebpf_exporter_spans_total",
            &[("config", "spans"), ("result", "exported")]
        ),
        0.0
    );
    assert_eq!(
        s.sum(
            "ebpf_exporter_spans_total",
            &[("config", "spans"), ("result", "decode_error")]
        ),
        0.0
    );
    let t = std::time::Instant::now();
    assert_eq!(exporter.get("/metrics").status, 200);
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "scrapes are not held up"
    );
    let rss = common::rss_kib(exporter.pid(), "VmHWM:");
    assert!(rss < 128 * 1024, "bounded memory: {rss} KiB");
}

/// Parent-span stitching from user space, as in the reference's tracing
/// demos: USDT probes in a program of ours hand the parent to the kernel
/// side, whose child spans arrive with that trace and parent.
#[test]
fn usdt_probes_hand_the_parent_span_to_the_kernel_side() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bpf");
    let dir = scratch_dir("spans-usdt");
    // Built into the object cache, so the program's path, and with it the
    // BPF source that names it, is the same wherever this test runs.
    let demo = common::compile::c_program(&root.join("usdt_parent.c"), &["-O1", "-no-pie"]);
    let source = std::fs::read_to_string(root.join("usdt_spans.bpf.c.in"))
        .expect("read")
        .replace("@BIN@", &demo.display().to_string());
    std::fs::write(dir.join("usdt_spans.bpf.c"), source).expect("write");
    compile_bpf(&dir.join("usdt_spans.bpf.c"), &dir.join("usdt_spans.bpf.o"));
    std::fs::copy(root.join("usdt_spans.yaml"), dir.join("usdt_spans.yaml")).expect("copy");

    let rt = runtime();
    let got: Received = Arc::default();
    let addr = grpc_receiver(&rt, got.clone());
    let exporter = start(
        &dir,
        &[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &format!("http://{addr}")),
        ],
    );
    let log = exporter.log();
    assert!(
        log.contains("3/3 programs attached"),
        "both USDT probes attach: {log}"
    );
    common::run(std::process::Command::new(&demo).arg("5"));
    assert!(
        eventually(Duration::from_secs(20), || spans_of(&got).len() >= 5),
        "5 child spans arrive"
    );
    let mut trace = 0x0a0b0c0d0e0f1011u64.to_le_bytes().to_vec();
    trace.extend(0x1213141516171819u64.to_le_bytes());
    for (service, span) in spans_of(&got) {
        assert_eq!(service, "usdt-test");
        assert_eq!(
            span.name, "usdt-child",
            "the span's name, no span_name label"
        );
        assert_eq!(span.trace_id, trace);
        assert_eq!(span.parent_span_id, vec![0x22; 8]);
        assert_eq!(span.end_time_unix_nano - span.start_time_unix_nano, 777);
    }
}
