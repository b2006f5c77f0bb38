//! `regexp`: the first matching pattern wins; its first capture group (or the
//! whole match) becomes the value. No match drops the row, which is how
//! configs filter out what they do not want.

use regex::bytes::Regex;

use super::registry::{Entry, Guess, Opt};
use super::{DecodeError, Decoded, Decoder};
use crate::config::model::DecoderSpec;

pub const ENTRY: Entry = Entry {
    name: "regexp",
    options: &[Opt::Regexps],
    pure: true,
    reads: &[],
    ours: false,
    input: "text",
    output: "`regexps: [...]`, first match wins, its first group (or whole match) is the value; no match drops the row",
    guess: Guess::NONE,
    build: |spec, _| Ok(Box::new(Regexp::from_spec(spec)?)),
};

pub struct Regexp {
    patterns: Vec<Regex>,
}

impl Regexp {
    pub fn from_spec(spec: &DecoderSpec) -> Result<Self, String> {
        let sources = spec
            .regexps
            .as_ref()
            .filter(|r| !r.is_empty())
            .ok_or_else(|| "needs a non-empty `regexps:` list".to_string())?;
        let patterns = sources
            .iter()
            .map(|src| {
                if src.is_empty() {
                    return Err("empty pattern in `regexps:`".to_string());
                }
                Regex::new(src).map_err(|e| format!("pattern {src:?}: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { patterns })
    }
}

impl Decoder for Regexp {
    fn decode(&self, input: &[u8]) -> Result<Decoded, DecodeError> {
        for re in &self.patterns {
            if let Some(caps) = re.captures(input) {
                let m = caps.get(1).or_else(|| caps.get(0));
                return Ok(Decoded::Value(
                    m.map(|m| m.as_bytes().to_vec()).unwrap_or_default(),
                ));
            }
        }
        Ok(Decoded::Drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regexp(patterns: &[&str]) -> Result<Regexp, String> {
        Regexp::from_spec(&DecoderSpec {
            name: "regexp".into(),
            static_map: None,
            allow_unknown: None,
            regexps: Some(patterns.iter().map(|s| s.to_string()).collect()),
            byte_order: None,
            names: None,
        })
    }

    #[test]
    fn first_match_wins_and_capture_group_is_the_value() {
        let d = regexp(&["^(kworker)/.*", "^systemd", "^(python)[0-9.]*$"]).expect("builds");
        assert_eq!(
            d.decode(b"kworker/0:1"),
            Ok(Decoded::Value(b"kworker".to_vec()))
        );
        assert_eq!(
            d.decode(b"systemd-journal"),
            Ok(Decoded::Value(b"systemd".to_vec()))
        );
        assert_eq!(
            d.decode(b"python3.11"),
            Ok(Decoded::Value(b"python".to_vec()))
        );
    }

    #[test]
    fn no_match_drops_the_row() {
        let d = regexp(&["^bash$"]).expect("builds");
        assert_eq!(d.decode(b"zsh"), Ok(Decoded::Drop));
    }

    #[test]
    fn bad_or_empty_patterns_are_build_errors() {
        assert!(regexp(&[]).is_err());
        assert!(regexp(&[""]).is_err());
        assert!(regexp(&["(unclosed"]).is_err());
    }
}
