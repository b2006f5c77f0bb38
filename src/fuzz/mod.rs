//! Entry points for the fuzz targets in `fuzz/`, kept in the library so
//! that `tests/fuzz_corpora.rs` replays the committed corpora and every
//! past crash through exactly the same code under plain `cargo test`.
//!
//! Each entry point takes arbitrary bytes and must neither panic nor hang;
//! where a property is known (decoded rows have one value per label, an
//! exposition parses back to what was written) it is asserted, so the
//! fuzzer finds wrong output as well as crashes.

pub mod exposition;

use std::path::Path;
use std::sync::{Arc, OnceLock};

use crate::config::{parse_config, ConfigSource};
use crate::decode::chain::RowDecoder;
use crate::encode::{Format, TextWriter};
use crate::host::Host;
use crate::metrics::sink::{render_labels, Sink};

fn host() -> &'static Arc<Host> {
    static HOST: OnceLock<Arc<Host>> = OnceLock::new();
    HOST.get_or_init(Host::new)
}

/// A config file's bytes: parsing and validation must refuse or accept,
/// and an accepted config's labels must build decoders that decode a key
/// of the size they describe.
pub fn config_bytes(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = parse_config("fuzz", "fuzz.yaml", ConfigSource::Embedded, text) else {
        return;
    };
    for spec in config.specs() {
        if let Ok(rows) = RowDecoder::new(spec.labels, host()) {
            let key = vec![0xa5u8; rows.key_size()];
            let _ = rows.decode(&key);
        }
    }
}

/// Label layouts that between them use every decoder, each the way a real
/// config would chain it.
const LAYOUTS: &[&str] = &[
    "[{name: a, size: 8, decoders: [{name: uint}]}, {name: b, size: 4, decoders: [{name: uint, byte_order: big}]}]",
    "[{name: a, size: 2, padding: 2, decoders: [{name: uint}, {name: syscall}]}, {name: e, size: 4, decoders: [{name: uint}, {name: errno}]}]",
    "[{name: s, size: 16, decoders: [{name: string}]}, {name: h, size: 3, decoders: [{name: hex}]}]",
    "[{name: ip, size: 16, decoders: [{name: inet_ip}]}, {name: ip4, size: 4, decoders: [{name: inet_ip}]}]",
    "[{name: dev, size: 4, decoders: [{name: majorminor}]}, {name: i, size: 4, decoders: [{name: ifname}]}]",
    "[{name: k, size: 8, decoders: [{name: ksym}]}, {name: st, size: 32, decoders: [{name: kstack}]}]",
    "[{name: cg, size: 8, decoders: [{name: cgroup}]}]",
    "[{name: d, size: 24, decoders: [{name: dname}]}]",
    "[{name: v, size: 2, decoders: [{name: uint}, {name: pci_vendor}]}, {name: dv, size: 4, decoders: [{name: uint}, {name: pci_device}]}, {name: c, size: 1, decoders: [{name: uint}, {name: pci_class}]}, {name: sc, size: 2, decoders: [{name: uint}, {name: pci_subclass}]}]",
    "[{name: m, size: 1, decoders: [{name: uint}, {name: static_map, static_map: {0: zero, 1: one}}]}, {name: n, size: 1, decoders: [{name: uint}, {name: static_map, allow_unknown: true, static_map: {\"7\": seven}}]}]",
    "[{name: r, size: 16, decoders: [{name: string}, {name: regexp, regexps: [\"^a\", \"b+$\", \"(x|y)z\"]}]}]",
    "[{name: comm, size: 16, decoders: [{name: string}, {name: regexp, regexps: [\".*\"]}, {name: static_map, allow_unknown: true, static_map: {bash: shell}}]}]",
];

fn layouts() -> &'static [RowDecoder] {
    static ROWS: OnceLock<Vec<RowDecoder>> = OnceLock::new();
    ROWS.get_or_init(|| {
        LAYOUTS
            .iter()
            .map(|yaml| {
                let labels: Vec<crate::config::model::Label> =
                    serde_yaml::from_str(yaml).expect("built-in layout parses");
                RowDecoder::new(&labels, host()).expect("built-in layout builds")
            })
            .collect()
    })
}

/// The first byte picks a label layout, the rest is a map key. Decoding
/// must not panic, and a decoded row has one value per label.
pub fn decoder_chain(data: &[u8]) {
    let Some((&pick, key)) = data.split_first() else {
        return;
    };
    let rows = &layouts()[pick as usize % LAYOUTS.len()];
    // Keys of the right size most of the time, so decoders are reached.
    let mut sized = key.to_vec();
    if pick & 0x80 == 0 {
        sized.resize(rows.key_size(), 0);
    }
    if let Ok(crate::decode::chain::Row::Labels { values, .. }) = rows.decode(&sized) {
        assert_eq!(values.len(), rows.label_names().count());
    }
}

/// A web config file's bytes; relative certificate paths point nowhere.
pub fn web_config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::http::webconfig::parse("fuzz.yml", Path::new("/nonexistent"), text);
    }
}

/// An Accept header and an Accept-Encoding header, split at the first NUL.
pub fn accept_headers(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (accept, encoding) = text.split_once('\0').unwrap_or((&text, ""));
    let _ = crate::http::negotiate::format_from_accept(Some(accept));
    let _ = crate::http::negotiate::wants_gzip(Some(encoding));
}

/// Families built from the bytes, written in both formats and parsed back
/// by a strict parser: every name, label value, help text and value must
/// come back as written.
pub fn encoders(data: &[u8]) {
    let families = exposition::families_from_bytes(data);
    for format in [Format::Text, Format::OpenMetrics] {
        let mut w = TextWriter::new(format);
        for f in &families {
            w.family(&f.name, &f.help, f.kind);
            for s in &f.samples {
                let values: Vec<String> = s.labels.iter().map(|(_, v)| v.clone()).collect();
                let labels = render_labels(s.labels.iter().map(|(n, _)| n.as_str()), &values);
                match &s.value {
                    exposition::Value::Int(v) => w.sample_u64(&labels, None, *v),
                    exposition::Value::Float(v) => w.sample_f64(&labels, None, *v),
                    exposition::Value::Histogram {
                        buckets,
                        count,
                        sum,
                    } => w.histogram(&labels, None, buckets, *count, *sum),
                }
            }
        }
        let text = String::from_utf8(w.finish()).expect("the text formats write UTF-8");
        let parsed = exposition::parse(&text, format)
            .unwrap_or_else(|e| panic!("{format:?} output does not parse: {e}\n{text}"));
        exposition::assert_same(&families, &parsed, format);
    }
}

/// Which entry point a corpus directory feeds, by target name.
pub fn target(name: &str) -> Option<fn(&[u8])> {
    Some(match name {
        "config" => config_bytes,
        "decoders" => decoder_chain,
        "web_config" => web_config,
        "accept" => accept_headers,
        "encoders" => encoders,
        _ => return None,
    })
}
