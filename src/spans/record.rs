//! One ring buffer record to one span: the reference's special labels
//! carry the ids and times, every other label becomes a string attribute.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

/// A span as decoded, before it meets the OpenTelemetry types.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord {
    pub name: String,
    pub trace_id: u128,
    /// 0: generate one.
    pub span_id: u64,
    /// 0: a root span.
    pub parent_span_id: u64,
    pub start: SystemTime,
    pub duration: Duration,
    pub attributes: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("span label `{label}`: {reason}")]
pub struct RecordError {
    pub label: String,
    pub reason: String,
}

/// Converts CLOCK_MONOTONIC nanoseconds (`bpf_ktime_get_ns`) to wall time,
/// through the offset between the two clocks now.
pub fn ktime_to_wall(ktime_ns: u64) -> SystemTime {
    let now_wall = SystemTime::now();
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for clock_gettime to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let now_mono = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
    if ktime_ns <= now_mono {
        now_wall - Duration::from_nanos(now_mono - ktime_ns)
    } else {
        now_wall + Duration::from_nanos(ktime_ns - now_mono)
    }
}

fn parse_hex<const N: usize>(label: &str, value: &str) -> Result<u128, RecordError> {
    let bad = |reason: String| RecordError {
        label: label.to_string(),
        reason,
    };
    if value.len() != N * 2 {
        return Err(bad(format!("{value:?} is not {} hex digits", N * 2)));
    }
    u128::from_str_radix(value, 16).map_err(|_| bad(format!("{value:?} is not hex")))
}

fn parse_u64(label: &str, value: &str) -> Result<u64, RecordError> {
    value.parse().map_err(|_| RecordError {
        label: label.to_string(),
        reason: format!("{value:?} is not an unsigned integer"),
    })
}

/// Builds a record from decoded labels. `default_name` is the span
/// config's name, which `span_name` overrides.
pub fn from_labels(
    default_name: &str,
    names: &[&str],
    values: &[String],
) -> Result<SpanRecord, RecordError> {
    let mut r = SpanRecord {
        name: default_name.to_string(),
        trace_id: 0,
        span_id: 0,
        parent_span_id: 0,
        start: SystemTime::now(),
        duration: Duration::ZERO,
        attributes: Vec::new(),
    };
    for (&label, value) in names.iter().zip(values) {
        match label {
            "trace_id" => r.trace_id = parse_hex::<16>(label, value)?,
            "span_id" => r.span_id = parse_hex::<8>(label, value)? as u64,
            "parent_span_id" => r.parent_span_id = parse_hex::<8>(label, value)? as u64,
            "span_monotonic_timestamp_ns" => r.start = ktime_to_wall(parse_u64(label, value)?),
            "span_duration_ns" => r.duration = Duration::from_nanos(parse_u64(label, value)?),
            "span_name" => r.name = value.clone(),
            other => r.attributes.push((other.to_string(), value.clone())),
        }
    }
    Ok(r)
}

/// The OpenTelemetry span; `fresh_id` supplies ids the record leaves at 0.
pub fn to_span_data(r: SpanRecord, config: &str, mut fresh_id: impl FnMut() -> u64) -> SpanData {
    let trace_id = if r.trace_id == 0 {
        (fresh_id() as u128) << 64 | fresh_id() as u128
    } else {
        r.trace_id
    };
    let span_id = if r.span_id == 0 {
        fresh_id()
    } else {
        r.span_id
    };
    let mut attributes: Vec<KeyValue> = r
        .attributes
        .into_iter()
        .map(|(k, v)| KeyValue::new(k, v))
        .collect();
    attributes.push(KeyValue::new("ebpf_exporter.config", config.to_string()));
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(trace_id),
            SpanId::from(span_id),
            TraceFlags::SAMPLED,
            false,
            TraceState::NONE,
        ),
        parent_span_id: SpanId::from(r.parent_span_id),
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: Cow::Owned(r.name),
        start_time: r.start,
        end_time: r.start + r.duration,
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: InstrumentationScope::builder("ebpf_exporter").build(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_labels_fill_the_span_and_the_rest_are_attributes() {
        let names = [
            "trace_id",
            "parent_span_id",
            "span_id",
            "span_monotonic_timestamp_ns",
            "span_duration_ns",
            "span_name",
            "comm",
        ];
        let values: Vec<String> = [
            "0102030405060708090a0b0c0d0e0f10",
            "1111111111111111",
            "0000000000000000",
            "1000",
            "2500",
            "exec",
            "bash",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let r = from_labels("default", &names, &values).expect("decodes");
        assert_eq!(r.trace_id, 0x0102030405060708090a0b0c0d0e0f10);
        assert_eq!((r.parent_span_id, r.span_id), (0x1111111111111111, 0));
        assert_eq!(r.duration, Duration::from_nanos(2500));
        assert_eq!(r.name, "exec");
        assert_eq!(r.attributes, vec![("comm".to_string(), "bash".to_string())]);
        let d = to_span_data(r, "cfg", || 42);
        assert_eq!(d.span_context.span_id(), SpanId::from(42u64), "generated");
        assert_eq!(
            d.end_time.duration_since(d.start_time).ok(),
            Some(Duration::from_nanos(2500))
        );
        assert_eq!(
            d.attributes.last(),
            Some(&KeyValue::new("ebpf_exporter.config", "cfg"))
        );

        let e = from_labels("d", &["trace_id"], &["xyz".to_string()]).expect_err("bad");
        assert_eq!(
            e.to_string(),
            "span label `trace_id`: \"xyz\" is not 32 hex digits"
        );
    }

    #[test]
    fn ktime_maps_to_recent_wall_time() {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: valid timespec.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        let mono = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
        let wall = ktime_to_wall(mono - 1_000_000_000);
        let ago = SystemTime::now().duration_since(wall).expect("in the past");
        assert!(
            ago >= Duration::from_millis(999) && ago < Duration::from_millis(1100),
            "{ago:?}"
        );
    }
}
