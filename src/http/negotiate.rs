//! Picks the exposition format and compression from request headers.

use crate::encode::Format;

/// The format the client ranks highest in Accept among those served:
/// OpenMetrics, the protobuf exposition and the classic text format, which
/// is also what a client that names none of them gets.
pub fn format_from_accept(accept: Option<&str>) -> Format {
    negotiate(accept).0
}

/// OpenMetrics 0.0.1 and 1.0.0 are the same text; a client asking for
/// 0.0.1 gets it labelled so, as client_golang does.
const OPENMETRICS_0_0_1: &str = "application/openmetrics-text; version=0.0.1; charset=utf-8";

const PROTO_MESSAGE: &str = "io.prometheus.client.MetricFamily";

/// The format to write and the Content-Type to send it with.
pub fn negotiate(accept: Option<&str>) -> (Format, &'static str) {
    let Some(accept) = accept else {
        return (Format::Text, Format::Text.content_type());
    };
    let mut best: Option<(f32, Format, &'static str)> = None;
    for part in accept.split(',') {
        let mut fields = part.split(';').map(str::trim);
        let media = fields.next().unwrap_or("");
        let mut q = 1.0f32;
        let mut version = None;
        let mut proto = None;
        let mut encoding = None;
        for p in fields {
            if let Some(v) = p.strip_prefix("q=") {
                q = v.parse().unwrap_or(0.0);
            } else if let Some(v) = p.strip_prefix("version=") {
                version = Some(v);
            } else if let Some(v) = p.strip_prefix("proto=") {
                proto = Some(v);
            } else if let Some(v) = p.strip_prefix("encoding=") {
                encoding = Some(v);
            }
        }
        let (format, content_type) = match media {
            "application/openmetrics-text" if version == Some("0.0.1") => {
                (Format::OpenMetrics, OPENMETRICS_0_0_1)
            }
            "application/openmetrics-text" => {
                (Format::OpenMetrics, Format::OpenMetrics.content_type())
            }
            // Only the length-delimited MetricFamily stream; the text and
            // compact-text protobuf encodings are not served.
            "application/vnd.google.protobuf"
                if proto == Some(PROTO_MESSAGE) && encoding == Some("delimited") =>
            {
                (Format::Protobuf, Format::Protobuf.content_type())
            }
            "text/plain" | "*/*" | "text/*" => (Format::Text, Format::Text.content_type()),
            _ => continue,
        };
        if q > 0.0 && best.is_none_or(|(bq, _, _)| q > bq) {
            best = Some((q, format, content_type));
        }
    }
    best.map_or((Format::Text, Format::Text.content_type()), |(_, f, c)| {
        (f, c)
    })
}

/// Whether the client accepts gzip (and did not refuse it with q=0).
pub fn wants_gzip(accept_encoding: Option<&str>) -> bool {
    accept_encoding.is_some_and(|h| {
        h.split(',').any(|part| {
            let mut f = part.split(';').map(str::trim);
            let coding = f.next().unwrap_or("");
            let refused =
                f.any(|p| p.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()) == Some(0.0));
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn openmetrics_0_0_1_is_labelled_as_asked() {
        let (f, ct) = super::negotiate(Some(
            "application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5",
        ));
        assert_eq!(f, super::Format::OpenMetrics);
        assert_eq!(
            ct,
            "application/openmetrics-text; version=0.0.1; charset=utf-8"
        );
        let (_, ct) = super::negotiate(Some("application/openmetrics-text;version=1.0.0"));
        assert_eq!(
            ct,
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
    }

    use super::*;

    #[test]
    fn prometheus_accept_header_picks_openmetrics() {
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(format_from_accept(Some(prom)), Format::OpenMetrics);
        assert_eq!(
            format_from_accept(Some("text/plain;version=0.0.4")),
            Format::Text
        );
        assert_eq!(format_from_accept(None), Format::Text);
        assert_eq!(format_from_accept(Some("application/json")), Format::Text);
        assert_eq!(
            format_from_accept(Some("application/openmetrics-text;q=0.2,text/plain;q=0.9")),
            Format::Text
        );
    }

    #[test]
    fn protobuf_when_ranked_first() {
        // Prometheus 2.42 with --enable-feature=native-histograms.
        let prom = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(
            negotiate(Some(prom)),
            (Format::Protobuf, Format::Protobuf.content_type())
        );
        // Other encodings or messages are not this format.
        for other in [
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text",
            "application/vnd.google.protobuf;proto=other.Message;encoding=delimited",
            "application/vnd.google.protobuf",
        ] {
            assert_eq!(format_from_accept(Some(other)), Format::Text, "{other}");
        }
        assert_eq!(
            format_from_accept(Some(
                "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.4,application/openmetrics-text;version=1.0.0;q=0.5"
            )),
            Format::OpenMetrics
        );
    }

    #[test]
    fn gzip_negotiation() {
        assert!(wants_gzip(Some("gzip")));
        assert!(wants_gzip(Some("deflate, gzip;q=0.8")));
        assert!(!wants_gzip(Some("gzip;q=0")));
        assert!(!wants_gzip(Some("identity")));
        assert!(!wants_gzip(None));
    }
}
