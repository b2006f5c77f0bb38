//! `static_map`: looks the input text up in a fixed table from the config.

use std::collections::HashMap;

use super::registry::{Entry, Guess, Opt};
use super::{DecodeError, Decoded, Decoder};
use crate::config::model::DecoderSpec;

pub const ENTRY: Entry = Entry {
    name: "static_map",
    options: &[Opt::StaticMap, Opt::AllowUnknown],
    pure: true,
    reads: &[],
    ours: false,
    input: "text",
    output: "`static_map: {1: write}` lookup; a miss gives `unknown:<in>`, or the input itself with `allow_unknown: true`; keys may be written in hex (`0x1f`, ours)",
    guess: Guess::NONE,
    build: |spec, _| Ok(Box::new(StaticMap::from_spec(spec)?)),
};

pub struct StaticMap {
    table: HashMap<Vec<u8>, Vec<u8>>,
    allow_unknown: bool,
}

impl StaticMap {
    pub fn from_spec(spec: &DecoderSpec) -> Result<Self, String> {
        let map = spec
            .static_map
            .as_ref()
            .ok_or_else(|| "needs a `static_map:` table".to_string())?;
        let mut table = HashMap::with_capacity(map.len() * 2);
        for (k, v) in map {
            table.insert(k.clone().into_bytes(), v.clone().into_bytes());
            // Ours: keys written as hex (0x1f) also match the decimal text
            // that `uint` produces.
            if let Some(hex) = k.strip_prefix("0x").or_else(|| k.strip_prefix("0X")) {
                if let Ok(n) = u64::from_str_radix(hex, 16) {
                    table
                        .entry(n.to_string().into_bytes())
                        .or_insert_with(|| v.clone().into_bytes());
                }
            }
        }
        Ok(Self {
            table,
            allow_unknown: spec.allow_unknown.unwrap_or(false),
        })
    }
}

impl Decoder for StaticMap {
    fn decode(&self, input: &[u8]) -> Result<Decoded, DecodeError> {
        if let Some(v) = self.table.get(input) {
            return Ok(Decoded::Value(v.clone()));
        }
        if self.allow_unknown {
            return Ok(Decoded::Value(input.to_vec()));
        }
        let mut out = b"unknown:".to_vec();
        out.extend_from_slice(input);
        Ok(Decoded::Value(out))
    }

    /// The key whose label this is; with several, the smallest, so the
    /// choice is the same every run.
    fn encode(&self, output: &[u8], _width: usize) -> Option<Result<Vec<u8>, DecodeError>> {
        let key = self
            .table
            .iter()
            .filter(|(_, v)| v.as_slice() == output)
            .map(|(k, _)| k)
            .min();
        Some(match key {
            Some(k) => Ok(k.clone()),
            None if self.allow_unknown => Ok(output.to_vec()),
            None => Err(DecodeError::Invalid(format!(
                "{:?} is no value of the static_map",
                String::from_utf8_lossy(output)
            ))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> DecoderSpec {
        serde_yaml::from_str(yaml).expect("test spec parses")
    }

    #[test]
    fn maps_known_and_marks_unknown() {
        let d = StaticMap::from_spec(&spec("name: static_map\nstatic_map: {0: read, 1: write}"))
            .expect("builds");
        assert_eq!(d.decode(b"0"), Ok(Decoded::Value(b"read".to_vec())));
        assert_eq!(d.decode(b"1"), Ok(Decoded::Value(b"write".to_vec())));
        assert_eq!(d.decode(b"7"), Ok(Decoded::Value(b"unknown:7".to_vec())));
    }

    #[test]
    fn allow_unknown_passes_input_through() {
        let d = StaticMap::from_spec(&spec(
            "name: static_map\nallow_unknown: true\nstatic_map: {\"2\": flush}",
        ))
        .expect("builds");
        assert_eq!(d.decode(b"2"), Ok(Decoded::Value(b"flush".to_vec())));
        assert_eq!(d.decode(b"9"), Ok(Decoded::Value(b"9".to_vec())));
    }

    #[test]
    fn hex_keys_match_decimal_input() {
        let d = StaticMap::from_spec(&spec(
            "name: static_map\nstatic_map: {\"0x1f\": thirty-one}",
        ))
        .expect("builds");
        assert_eq!(d.decode(b"31"), Ok(Decoded::Value(b"thirty-one".to_vec())));
    }

    #[test]
    fn missing_table_is_a_build_error() {
        assert!(StaticMap::from_spec(&spec("name: static_map")).is_err());
    }
}
