//! Finds the line of a key path such as `metrics.counters[1].labels[0].size`
//! in a YAML text, so that errors found after parsing (a size that does not
//! match the map, an unknown decoder) still point at a line.
//!
//! serde_yaml reports positions for syntax and type errors only; it keeps no
//! spans once a value is deserialized. This walks the same text with
//! yaml-rust2's event parser, which does carry positions.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Line numbers (1-based) by key path.
#[derive(Debug, Default, Clone)]
pub struct Locator {
    lines: HashMap<String, usize>,
}

impl Locator {
    pub fn new(text: &str) -> Self {
        let mut walker = Walker::default();
        // A text that fails to parse here also fails in serde_yaml, which
        // reports its own position; the locator is then simply empty.
        let _ = Parser::new_from_str(text).load(&mut walker, false);
        Self {
            lines: walker.lines,
        }
    }

    /// The line of `path`, or of its nearest ancestor that has one.
    pub fn line(&self, path: &str) -> Option<usize> {
        let mut p = path;
        loop {
            if let Some(&line) = self.lines.get(p) {
                return Some(line);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

enum Frame {
    Map { key: Option<String> },
    Seq { index: usize },
}

#[derive(Default)]
struct Walker {
    stack: Vec<Frame>,
    lines: HashMap<String, usize>,
}

impl Walker {
    fn path(&self) -> String {
        let mut out = String::new();
        for frame in &self.stack {
            match frame {
                Frame::Map { key: Some(k) } => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Frame::Map { key: None } => {}
                Frame::Seq { index } => {
                    out.push_str(&format!("[{index}]"));
                }
            }
        }
        out
    }

    /// Called when a value (scalar or finished collection) completes.
    fn value_done(&mut self) {
        match self.stack.last_mut() {
            Some(Frame::Map { key }) => *key = None,
            Some(Frame::Seq { index }) => *index += 1,
            None => {}
        }
    }

    fn record(&mut self, line: usize) {
        let path = self.path();
        if !path.is_empty() {
            self.lines.entry(path).or_insert(line);
        }
    }
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line();
        let awaiting_key = matches!(self.stack.last(), Some(Frame::Map { key: None }));
        match ev {
            Event::Scalar(text, ..) if awaiting_key => {
                if let Some(Frame::Map { key }) = self.stack.last_mut() {
                    *key = Some(text);
                }
                self.record(line);
            }
            Event::Scalar(..) | Event::Alias(_) => {
                self.record(line);
                self.value_done();
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                if awaiting_key {
                    // A complex key: give it a placeholder so paths stay aligned.
                    if let Some(Frame::Map { key }) = self.stack.last_mut() {
                        *key = Some("?".into());
                    }
                }
                self.record(line);
                let frame = if matches!(ev, Event::MappingStart(..)) {
                    Frame::Map { key: None }
                } else {
                    Frame::Seq { index: 0 }
                };
                self.stack.push(frame);
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.value_done();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
metrics:
  counters:
    - name: a_total
      help: A
      labels:
        - name: x
          size: 4
          decoders:
            - name: uint
        - {name: y, size: 8, decoders: [{name: hex}]}
  histograms:
    - name: h
";

    #[test]
    fn finds_nested_keys() {
        let l = Locator::new(TEXT);
        assert_eq!(l.line("metrics"), Some(1));
        assert_eq!(l.line("metrics.counters[0].name"), Some(3));
        assert_eq!(l.line("metrics.counters[0].labels[0].size"), Some(7));
        assert_eq!(
            l.line("metrics.counters[0].labels[0].decoders[0].name"),
            Some(9)
        );
        assert_eq!(l.line("metrics.counters[0].labels[1].size"), Some(10));
        assert_eq!(l.line("metrics.histograms[0].name"), Some(12));
    }

    #[test]
    fn falls_back_to_nearest_ancestor() {
        let l = Locator::new(TEXT);
        assert_eq!(l.line("metrics.counters[0].labels[0].padding"), Some(6));
        assert_eq!(l.line("nothing.here"), None);
    }
}
