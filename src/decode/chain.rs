//! Applies a config's labels to a key: each label takes its slice of the key
//! bytes and runs it through its decoder chain.

use std::sync::Arc;

use super::registry::{build_decoder, BuildError};
use super::{DecodeError, Decoded, Decoder};
use crate::config::model::Label;
use crate::host::Host;

/// One label: where it sits in the key and how its bytes become text.
pub struct LabelDecoder {
    pub name: String,
    pub offset: usize,
    pub size: usize,
    chain: Vec<Box<dyn Decoder>>,
    /// Whether every decoder of the chain is pure (its registry entry).
    pure: bool,
    fold_unknown: bool,
}

impl LabelDecoder {
    fn decode(&self, key: &[u8]) -> Result<Decoded, DecodeError> {
        let field = key
            .get(self.offset..self.offset + self.size)
            .ok_or(DecodeError::Size {
                expected: "the key size the labels describe",
                got: key.len(),
            })?;
        let mut current = Decoded::Value(field.to_vec());
        let (mut unknown, mut gone) = (false, false);
        for decoder in &self.chain {
            let input = match &current {
                Decoded::Value(v)
                | Decoded::Unknown(v)
                | Decoded::Gone(v)
                | Decoded::Vanished(v) => v,
                Decoded::Drop => break,
            };
            current = decoder.decode(input)?;
            unknown |= matches!(current, Decoded::Unknown(_) | Decoded::Vanished(_));
            gone |= matches!(current, Decoded::Gone(_) | Decoded::Vanished(_));
        }
        let value = match current {
            Decoded::Value(v) | Decoded::Unknown(v) | Decoded::Gone(v) | Decoded::Vanished(v) => v,
            Decoded::Drop => return Ok(Decoded::Drop),
        };
        // Still marked unknown, so it is cached briefly and heals into the
        // real value once that can be found.
        let value = if unknown && self.fold_unknown {
            b"unknown".to_vec()
        } else {
            value
        };
        Ok(match (unknown, gone) {
            (false, false) => Decoded::Value(value),
            (true, false) => Decoded::Unknown(value),
            (false, true) => Decoded::Gone(value),
            (true, true) => Decoded::Vanished(value),
        })
    }
}

/// What a whole key decodes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row {
    /// Label values in config order. `unknown` marks rows holding a
    /// not-found stand-in, which callers should not cache for long; `gone`
    /// rows naming something that no longer exists (a removed cgroup),
    /// whose keys a map can forget once they have been exported.
    Labels {
        values: Vec<String>,
        unknown: bool,
        gone: bool,
    },
    /// A decoder asked for the row to be left out.
    Drop,
}

/// A decode failure, with the label it happened in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("label `{label}`: {source}")]
pub struct RowError {
    pub label: String,
    pub source: DecodeError,
}

/// Which label and which decoder of it could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("label `{label}`: {source}")]
pub struct ChainBuildError {
    pub label_index: usize,
    pub decoder_index: usize,
    pub label: String,
    pub source: BuildError,
}

impl ChainBuildError {
    /// The config key of the decoder (or of its option at fault), under the
    /// labels list, with the label at `label_index` there.
    pub fn key_at(&self, label_index: usize) -> String {
        let at = format!("labels[{label_index}].decoders[{}]", self.decoder_index);
        match self.source.option {
            Some(option) => format!("{at}.{option}"),
            None => at,
        }
    }
}

/// Decodes whole keys into label values.
pub struct RowDecoder {
    labels: Vec<LabelDecoder>,
    key_size: usize,
    /// A metric without labels reads the single key `u32 0`, as in the
    /// reference (typically a one-entry ARRAY).
    zero_key_only: bool,
}

impl RowDecoder {
    pub fn new(labels: &[Label], host: &Arc<Host>) -> Result<Self, ChainBuildError> {
        let (mut offset, mut key_size) = (0, 0);
        let mut out = Vec::with_capacity(labels.len());
        for (label_index, label) in labels.iter().enumerate() {
            let (mut chain, mut pure) = (Vec::with_capacity(label.decoders.len()), true);
            for (decoder_index, spec) in label.decoders.iter().enumerate() {
                let built = build_decoder(spec, host).map_err(|source| ChainBuildError {
                    label_index,
                    decoder_index,
                    label: label.name.clone(),
                    source,
                })?;
                pure &= built.pure;
                chain.push(built.decoder);
            }
            let at = label.offset.unwrap_or(offset);
            out.push(LabelDecoder {
                name: label.name.clone(),
                offset: at,
                size: label.size(),
                chain,
                pure,
                fold_unknown: label.fold_unknown,
            });
            offset = at + label.size() + label.padding();
            key_size = key_size.max(offset);
        }
        Ok(Self {
            labels: out,
            key_size,
            zero_key_only: false,
        })
    }

    /// Whether every key is its own label set, whose text `write_labels`
    /// makes without a cache: each label is one one-to-one decoder
    /// (`Decoder::one_to_one`), the labels cover every byte of the key
    /// (padding would let two keys share a label set), and the all-zero
    /// key decodes (the sizes suit the decoders).
    pub fn distinct(&self) -> bool {
        if self.zero_key_only || self.labels.is_empty() {
            return false;
        }
        if !self
            .labels
            .iter()
            .all(|l| l.chain.len() == 1 && l.chain[0].one_to_one())
        {
            return false;
        }
        let mut spans: Vec<(usize, usize)> =
            self.labels.iter().map(|l| (l.offset, l.size)).collect();
        spans.sort_unstable();
        let mut covered = 0;
        for (offset, size) in spans {
            if offset != covered {
                return false;
            }
            covered += size;
        }
        covered == self.key_size
            && self
                .write_labels(&vec![0; self.key_size], &mut String::new())
                .is_ok()
    }

    /// Appends the label text of `key` (`name="value",...`, as
    /// `render_labels` writes it): for `distinct` rows only, whose values
    /// need no escaping.
    pub fn write_labels(&self, key: &[u8], out: &mut String) -> Result<(), RowError> {
        if key.len() != self.key_size {
            return Err(self.size_error(key));
        }
        for (i, label) in self.labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&label.name);
            out.push_str("=\"");
            label.chain[0]
                .decode_into(&key[label.offset..label.offset + label.size], out)
                .map_err(|source| RowError {
                    label: label.name.clone(),
                    source,
                })?;
            out.push('"');
        }
        Ok(())
    }

    /// A key of another size than the labels describe.
    fn size_error(&self, key: &[u8]) -> RowError {
        RowError {
            label: self
                .labels
                .first()
                .map(|l| l.name.clone())
                .unwrap_or_default(),
            source: DecodeError::Size {
                expected: "the key size the labels describe",
                got: key.len(),
            },
        }
    }

    /// Whether every label's decoders are pure (their registry entries say
    /// so), so a key's row never changes while the key stays.
    pub fn pure(&self) -> bool {
        self.labels.iter().all(|l| l.pure)
    }

    /// The decoder for a metric with no labels: the `u32 0` key becomes the
    /// one unlabelled series and any other key is ignored.
    pub fn zero_key() -> Self {
        Self {
            labels: Vec::new(),
            key_size: 4,
            zero_key_only: true,
        }
    }

    /// For labels bound to members: the key is the map's whole key, trailing
    /// padding and unread members included.
    pub fn with_key_size(mut self, key_size: usize) -> Self {
        self.key_size = key_size.max(self.key_size);
        self
    }

    /// Total bytes the labels describe, sizes plus padding.
    pub fn key_size(&self) -> usize {
        self.key_size
    }

    pub fn label_names(&self) -> impl Iterator<Item = &str> {
        self.labels.iter().map(|l| l.name.as_str())
    }

    pub fn decode(&self, key: &[u8]) -> Result<Row, RowError> {
        if self.zero_key_only {
            return Ok(if key == [0u8; 4] {
                Row::Labels {
                    values: Vec::new(),
                    unknown: false,
                    gone: false,
                }
            } else {
                Row::Drop
            });
        }
        if key.len() != self.key_size {
            return Err(self.size_error(key));
        }
        let mut values = Vec::with_capacity(self.labels.len());
        let (mut unknown, mut gone) = (false, false);
        for label in &self.labels {
            let decoded = label.decode(key).map_err(|source| RowError {
                label: label.name.clone(),
                source,
            })?;
            let bytes = match decoded {
                Decoded::Value(v) => v,
                Decoded::Unknown(v) => {
                    unknown = true;
                    v
                }
                Decoded::Gone(v) => {
                    gone = true;
                    v
                }
                Decoded::Vanished(v) => {
                    (unknown, gone) = (true, true);
                    v
                }
                Decoded::Drop => return Ok(Row::Drop),
            };
            let text = String::from_utf8(bytes).map_err(|e| RowError {
                label: label.name.clone(),
                source: DecodeError::Invalid(format!("label value is not valid UTF-8: {e}")),
            })?;
            values.push(text);
        }
        Ok(Row::Labels {
            values,
            unknown,
            gone,
        })
    }

    /// What every label's decoders say of change (`Decoder::changes`):
    /// when it moves, cached rows are decoded again.
    pub fn changes(&self) -> u64 {
        self.labels
            .iter()
            .flat_map(|l| l.chain.iter())
            .map(|d| d.changes())
            .fold(0, u64::wrapping_add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(yaml: &str) -> Vec<Label> {
        serde_yaml::from_str(yaml).expect("labels parse")
    }

    #[test]
    fn layout_honours_padding() {
        // struct { u32 dev; u8 op; /* 3 bytes padding */ u64 bucket; }
        let l = labels(
            "- {name: dev, size: 4, decoders: [{name: uint}]}\n\
             - {name: op, size: 1, padding: 3, decoders: [{name: uint}, {name: static_map, static_map: {1: write}}]}\n\
             - {name: bucket, size: 8, decoders: [{name: uint}]}",
        );
        let rows = RowDecoder::new(&l, &Host::new()).expect("builds");
        assert_eq!(rows.key_size(), 16);
        let mut key = Vec::new();
        key.extend_from_slice(&7u32.to_ne_bytes());
        key.extend_from_slice(&[1, 0xaa, 0xbb, 0xcc]);
        key.extend_from_slice(&12u64.to_ne_bytes());
        assert_eq!(
            rows.decode(&key),
            Ok(Row::Labels {
                values: vec!["7".into(), "write".into(), "12".into()],
                unknown: false,
                gone: false
            })
        );
    }

    /// A decoder that says its input names something gone.
    struct Gone;
    impl Decoder for Gone {
        fn decode(&self, input: &[u8]) -> Result<Decoded, DecodeError> {
            Ok(Decoded::Gone(input.to_vec()))
        }
    }

    /// A decoder that says its input names something gone, never named.
    struct Vanished;
    impl Decoder for Vanished {
        fn decode(&self, input: &[u8]) -> Result<Decoded, DecodeError> {
            Ok(Decoded::Vanished(input.to_vec()))
        }
    }

    #[test]
    fn a_vanished_answer_is_unknown_and_gone_at_once() {
        let label = |fold_unknown, chain: Vec<Box<dyn Decoder>>| LabelDecoder {
            name: "cg".into(),
            offset: 0,
            size: 2,
            chain,
            pure: false,
            fold_unknown,
        };
        assert_eq!(
            label(false, vec![Box::new(Vanished)]).decode(b"ab"),
            Ok(Decoded::Vanished(b"ab".to_vec()))
        );
        assert_eq!(
            label(true, vec![Box::new(Vanished)]).decode(b"ab"),
            Ok(Decoded::Vanished(b"unknown".to_vec())),
            "folded like any unknown, and still gone"
        );
        assert_eq!(
            label(false, vec![Box::new(Vanished), Box::new(Gone)]).decode(b"ab"),
            Ok(Decoded::Vanished(b"ab".to_vec())),
            "a later decoder does not make it known"
        );
        let rows = RowDecoder {
            labels: vec![label(true, vec![Box::new(Vanished)])],
            key_size: 2,
            zero_key_only: false,
        };
        assert_eq!(
            rows.decode(b"ab"),
            Ok(Row::Labels {
                values: vec!["unknown".into()],
                unknown: true,
                gone: true
            })
        );
    }

    #[test]
    fn a_gone_answer_marks_the_row_and_unknown_outranks_it() {
        let label = |fold_unknown| LabelDecoder {
            name: "cg".into(),
            offset: 0,
            size: 2,
            chain: vec![Box::new(Gone)],
            pure: false,
            fold_unknown,
        };
        assert_eq!(
            label(false).decode(b"ab"),
            Ok(Decoded::Gone(b"ab".to_vec()))
        );
        assert_eq!(
            label(true).decode(b"ab"),
            Ok(Decoded::Gone(b"ab".to_vec())),
            "folding is for unknown rows only"
        );
    }

    #[test]
    fn no_labels_reads_only_the_zero_key() {
        let rows = RowDecoder::zero_key();
        assert_eq!(
            rows.decode(&[0, 0, 0, 0]),
            Ok(Row::Labels {
                values: vec![],
                unknown: false,
                gone: false
            })
        );
        assert_eq!(rows.decode(&1u32.to_ne_bytes()), Ok(Row::Drop));
    }

    #[test]
    fn wrong_key_size_is_an_error_not_a_panic() {
        let l = labels("- {name: a, size: 4, decoders: [{name: uint}]}");
        let rows = RowDecoder::new(&l, &Host::new()).expect("builds");
        assert!(rows.decode(&[1, 2]).is_err());
        assert!(rows.decode(&[0; 9]).is_err());
    }

    #[test]
    fn regexp_miss_drops_row_and_error_names_label() {
        let l = labels(
            "- {name: comm, size: 4, decoders: [{name: string}, {name: regexp, regexps: ['^a']}]}\n\
             - {name: n, size: 3, decoders: [{name: uint}]}",
        );
        let rows = RowDecoder::new(&l, &Host::new()).expect("builds");
        assert_eq!(rows.decode(b"zzz\0\x01\x02\x03"), Ok(Row::Drop));
        let err = rows
            .decode(b"abc\0\x01\x02\x03")
            .expect_err("3-byte uint fails");
        assert_eq!(err.label, "n");
    }

    #[test]
    fn a_row_is_pure_only_if_every_decoder_of_every_label_is() {
        let host = Host::new();
        let row = |yaml: &str| {
            let labels: Vec<Label> = serde_yaml::from_str(yaml).expect("labels parse");
            RowDecoder::new(&labels, &host).expect("decoders build")
        };
        assert!(row("- {name: a, size: 4, decoders: [{name: uint}, {name: static_map, static_map: {1: x}}]}\n- {name: b, size: 8, decoders: [{name: hex}]}").pure());
        assert!(!row("- {name: a, size: 4, decoders: [{name: uint}]}\n- {name: i, size: 4, decoders: [{name: ifname}]}").pure(), "interfaces can be renamed");
        assert!(!row("- {name: c, size: 8, decoders: [{name: cgroup}]}").pure());
        assert!(
            RowDecoder::zero_key().pure(),
            "no labels, nothing to rename"
        );
    }

    #[test]
    fn unknown_decoder_names_label_and_position() {
        let l = labels("- {name: a, size: 4, decoders: [{name: uint}, {name: nope}]}");
        let err = RowDecoder::new(&l, &Host::new()).err().expect("fails");
        assert_eq!((err.label_index, err.decoder_index), (0, 1));
        assert!(
            err.to_string().contains("unknown decoder \"nope\""),
            "{err}"
        );
    }
}
