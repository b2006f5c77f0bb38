//! Finds the line of a key path such as `metrics.counters[1].labels[0].size`
//! in a YAML text, so that errors found after parsing (a size that does not
//! match the map, an unknown decoder) still point at a line.
//!
//! serde_yaml reports positions for syntax and type errors only; it keeps no
//! spans once a value is deserialized. This walks the same text with
//! yaml-rust2's event parser, which does carry positions.

use std::collections::{HashMap, HashSet};

use yaml_rust2::parser::{Event, Parser};

/// Nesting deeper than this is refused. Real configs nest about eight
/// levels; YAML scanners spend time proportional to the depth on every
/// token, so unbounded depth makes parsing quadratic.
pub const MAX_DEPTH: usize = 64;
/// Nodes that aliases may add to the document in total. Anchors are fine
/// for sharing a label list; an alias bomb (aliases of aliases) is not.
pub const MAX_ALIAS_NODES: u64 = 100_000;

/// Line numbers (1-based) by key path.
#[derive(Debug, Default, Clone)]
pub struct Locator {
    lines: HashMap<String, usize>,
    /// The line of the document's root node, for errors about missing
    /// top-level keys.
    root: Option<usize>,
}

/// Why a text was refused before it reached the deserializer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub line: usize,
    pub key: String,
    pub message: String,
}

impl Locator {
    /// Walks `text` once, recording each key's line and refusing what would
    /// make deserializing it unbounded (depth, alias expansion) or silently
    /// wrong (a key given twice: the deserializer would keep one of them).
    ///
    /// A text this walker cannot parse is left for the deserializer, which
    /// reports its own position; the locator then holds what was read.
    pub fn scan(text: &str) -> Result<Self, Refusal> {
        let mut walker = Walker::default();
        let mut parser = Parser::new_from_str(text);
        loop {
            match parser.next_token() {
                Ok((Event::StreamEnd, _)) | Err(_) => break,
                Ok((event, mark)) => walker.on_event(event, mark.line())?,
            }
        }
        Ok(Self {
            lines: walker.lines,
            root: walker.root,
        })
    }

    /// The line of `path`, or of its nearest ancestor that has one; a key
    /// missing at the top level gets the root's line (1 in an empty file).
    pub fn line(&self, path: &str) -> Option<usize> {
        let mut p = path;
        loop {
            if let Some(&line) = self.lines.get(p) {
                return Some(line);
            }
            match p.rfind(['.', '[']) {
                Some(cut) => p = &p[..cut],
                None => return Some(self.root.unwrap_or(1)),
            }
        }
    }
}

enum Frame {
    Map {
        /// Length of `Walker::path` without this map's current key.
        base: usize,
        /// A key has been read and its value is awaited.
        has_key: bool,
        seen: HashSet<String>,
    },
    Seq {
        base: usize,
        index: usize,
    },
}

/// An open node with an anchor: its expanded size is known at its end.
struct Anchored {
    id: usize,
    depth: usize,
    nodes_at_start: u64,
}

#[derive(Default)]
struct Walker {
    stack: Vec<Frame>,
    /// The current key path, extended and truncated in place so that deep
    /// documents do not rebuild it for every event.
    path: String,
    lines: HashMap<String, usize>,
    root: Option<usize>,
    /// Nodes in the document as a deserializer sees it, aliases expanded.
    expanded_nodes: u64,
    alias_nodes: u64,
    anchor_sizes: HashMap<usize, u64>,
    open_anchors: Vec<Anchored>,
}

impl Walker {
    fn refuse(&self, line: usize, message: String) -> Refusal {
        Refusal {
            line,
            key: self.path.clone(),
            message,
        }
    }

    /// Called when a value (scalar or finished collection) completes.
    fn value_done(&mut self) {
        match self.stack.last_mut() {
            Some(Frame::Map { base, has_key, .. }) => {
                *has_key = false;
                self.path.truncate(*base);
            }
            Some(Frame::Seq { base, index }) => {
                *index += 1;
                self.path.truncate(*base);
                self.path.push_str(&format!("[{index}]"));
            }
            None => {}
        }
        self.close_anchors();
    }

    /// Anchored nodes that end at the current depth now have their size.
    fn close_anchors(&mut self) {
        while let Some(open) = self.open_anchors.last() {
            if open.depth < self.stack.len() {
                break;
            }
            let size = self.expanded_nodes - open.nodes_at_start;
            self.anchor_sizes.insert(open.id, size);
            self.open_anchors.pop();
        }
    }

    fn record(&mut self, line: usize) {
        self.root.get_or_insert(line);
        if !self.path.is_empty() {
            self.lines.entry(self.path.clone()).or_insert(line);
        }
    }

    fn node(&mut self, anchor: usize) {
        self.expanded_nodes += 1;
        if anchor != 0 {
            self.open_anchors.push(Anchored {
                id: anchor,
                depth: self.stack.len(),
                nodes_at_start: self.expanded_nodes - 1,
            });
        }
    }

    /// `unique` is false for keys that are not plain text (aliases,
    /// collections), which are not compared.
    fn set_key(&mut self, text: &str, unique: bool, line: usize) -> Result<(), Refusal> {
        let Some(Frame::Map {
            base,
            has_key,
            seen,
        }) = self.stack.last_mut()
        else {
            return Ok(());
        };
        let duplicate = unique && !seen.insert(text.to_string());
        *has_key = true;
        self.path.truncate(*base);
        push_key(&mut self.path, text);
        if duplicate {
            return Err(self.refuse(line, format!("key {text:?} is given twice")));
        }
        Ok(())
    }

    fn open(&mut self, map: bool, line: usize) -> Result<(), Refusal> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(self.refuse(line, format!("nesting is deeper than {MAX_DEPTH} levels")));
        }
        let base = self.path.len();
        self.stack.push(if map {
            Frame::Map {
                base,
                has_key: false,
                seen: HashSet::new(),
            }
        } else {
            self.path.push_str("[0]");
            Frame::Seq { base, index: 0 }
        });
        Ok(())
    }

    fn on_event(&mut self, ev: Event, line: usize) -> Result<(), Refusal> {
        let awaiting_key = matches!(self.stack.last(), Some(Frame::Map { has_key: false, .. }));
        match ev {
            Event::Scalar(text, _, anchor, _) => {
                self.node(anchor);
                if awaiting_key {
                    self.set_key(&text, true, line)?;
                    self.record(line);
                    // A key is not a value: an anchor on the key closes here
                    // without completing the entry.
                    self.close_anchors();
                } else {
                    self.record(line);
                    self.value_done();
                }
            }
            Event::Alias(id) => {
                let size = self.anchor_sizes.get(&id).copied().unwrap_or(1);
                self.alias_nodes = self.alias_nodes.saturating_add(size);
                self.expanded_nodes = self.expanded_nodes.saturating_add(size);
                if self.alias_nodes > MAX_ALIAS_NODES {
                    return Err(self.refuse(
                        line,
                        format!(
                            "aliases expand to more than {MAX_ALIAS_NODES} nodes; \
                             write the values out or use fewer aliases"
                        ),
                    ));
                }
                if awaiting_key {
                    self.set_key("*alias", false, line)?;
                    self.record(line);
                } else {
                    self.record(line);
                    self.value_done();
                }
            }
            Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                if awaiting_key {
                    // A complex key: give it a placeholder so paths stay aligned.
                    self.set_key("?", false, line)?;
                }
                self.record(line);
                self.node(anchor);
                self.open(matches!(ev, Event::MappingStart(..)), line)?;
            }
            Event::MappingEnd | Event::SequenceEnd => {
                if let Some(Frame::Map { base, .. } | Frame::Seq { base, .. }) = self.stack.pop() {
                    self.path.truncate(base);
                }
                self.value_done();
            }
            _ => {}
        }
        Ok(())
    }
}

fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
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
        let l = Locator::scan(TEXT).expect("scans");
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
        let l = Locator::scan(TEXT).expect("scans");
        assert_eq!(l.line("metrics.counters[0].labels[0].padding"), Some(6));
        assert_eq!(l.line("nothing.here"), Some(1), "the root's line");
        let l = Locator::scan("\n\n# c\nmetrics:\n").expect("scans");
        assert_eq!(l.line("tracing"), Some(4));
    }
}
