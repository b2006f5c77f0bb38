//! The OTLP side: one thread with its own small runtime drains the span
//! queue and exports batches, one exporter per service (the resource's
//! `service.name` belongs to the exporter). Transport, endpoint, headers
//! and timeouts come from the standard `OTEL_EXPORTER_OTLP_*` variables,
//! read by the OpenTelemetry exporter itself; `OTEL_TRACES_EXPORTER=none`
//! turns export off, as in the reference.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_sdk::trace::{SpanData, SpanExporter as _};
use opentelemetry_sdk::Resource;
use tokio::sync::mpsc;

use super::SpanCounts;

/// Spans waiting for export; beyond this, new ones are dropped and counted.
pub const QUEUE: usize = 8192;
const BATCH: usize = 512;
const BATCH_WAIT: Duration = Duration::from_secs(1);
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// One span on its way out, with whom to credit it.
pub struct Queued {
    pub service: Arc<str>,
    pub span: SpanData,
    pub counts: Arc<SpanCounts>,
}

/// Where ring buffer readers put spans. Sending never blocks.
#[derive(Clone)]
pub struct SpanQueue {
    tx: mpsc::Sender<Queued>,
}

impl SpanQueue {
    pub fn push(&self, q: Queued) {
        let counts = q.counts.clone();
        if self.tx.try_send(q).is_err() {
            counts.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The service name for spans whose config sets none: `OTEL_SERVICE_NAME`,
/// then `ebpf_exporter`.
pub fn default_service() -> String {
    std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "ebpf_exporter".to_string())
}

/// Starts the export thread. It ends when every queue handle is dropped.
pub fn start() -> std::io::Result<SpanQueue> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let enabled = match std::env::var("OTEL_TRACES_EXPORTER").ok().as_deref() {
        None | Some("") | Some("otlp") => true,
        Some("none") => false,
        Some(other) => {
            log::warn!("OTEL_TRACES_EXPORTER={other:?} is not supported (otlp or none); spans are not exported");
            false
        }
    };
    std::thread::Builder::new()
        .name("otlp-export".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return log::error!("span export: starting its runtime: {e}"),
            };
            runtime.block_on(drain(rx, enabled));
        })?;
    Ok(SpanQueue { tx })
}

async fn drain(mut rx: mpsc::Receiver<Queued>, enabled: bool) {
    let mut exporters: HashMap<Arc<str>, opentelemetry_otlp::SpanExporter> = HashMap::new();
    let mut last_warning: Option<Instant> = None;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + BATCH_WAIT;
        while batch.len() < BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(q)) => batch.push(q),
                Ok(None) | Err(_) => break,
            }
        }
        if !enabled {
            continue;
        }
        let mut by_service: HashMap<Arc<str>, Vec<Queued>> = HashMap::new();
        for q in batch {
            by_service.entry(q.service.clone()).or_default().push(q);
        }
        for (service, queued) in by_service {
            let counts: Vec<Arc<SpanCounts>> = queued.iter().map(|q| q.counts.clone()).collect();
            let spans: Vec<SpanData> = queued.into_iter().map(|q| q.span).collect();
            let outcome = match exporter_for(&mut exporters, &service) {
                Ok(exporter) => {
                    match tokio::time::timeout(EXPORT_TIMEOUT, exporter.export(spans)).await {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(_) => Err(format!("no answer within {EXPORT_TIMEOUT:?}")),
                    }
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok(()) => counts.iter().for_each(|c| {
                    c.exported.fetch_add(1, Ordering::Relaxed);
                }),
                Err(e) => {
                    counts.iter().for_each(|c| {
                        c.dropped_export_failed.fetch_add(1, Ordering::Relaxed);
                    });
                    // Once a minute at most: an absent collector fails
                    // every batch.
                    if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                        log::warn!(
                            "exporting {} span(s) of service {service:?}: {e}",
                            counts.len()
                        );
                        last_warning = Some(Instant::now());
                    }
                }
            }
        }
    }
}

fn exporter_for<'a>(
    exporters: &'a mut HashMap<Arc<str>, opentelemetry_otlp::SpanExporter>,
    service: &Arc<str>,
) -> Result<&'a mut opentelemetry_otlp::SpanExporter, String> {
    if !exporters.contains_key(service) {
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .build()
            .map_err(|e| format!("building the OTLP exporter: {e}"))?;
        exporter.set_resource(
            &Resource::builder_empty()
                .with_service_name(service.to_string())
                .build(),
        );
        exporters.insert(service.clone(), exporter);
    }
    exporters
        .get_mut(service)
        .ok_or_else(|| "exporter vanished".to_string())
}
