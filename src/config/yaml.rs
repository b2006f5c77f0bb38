//! The one way YAML files (configs and web configs) are read: bounded
//! first, then deserialized, with every error shaped as file:line: key.
//!
//! Both YAML scanners in the build (libyaml under serde_yaml, and
//! yaml-rust2 under the locator) spend time proportional to the flow
//! nesting depth on every token, and cannot be stopped part-way: a
//! half-megabyte `{a: {a: ...` took a minute. So a byte-level pass bounds
//! flow nesting before either scanner sees the text; the locator's event
//! walk then bounds all nesting, aliases and duplicate keys.

use serde::de::DeserializeOwned;

use super::error::ConfigError;
use super::locate::{Locator, MAX_DEPTH};

/// Reads a YAML file named by the operator: a bounded regular file, in
/// UTF-8. `what` names the file's role in messages ("config", "web config").
pub fn read_yaml_file(path: &std::path::Path, what: &str) -> Result<String, ConfigError> {
    let file = path.display().to_string();
    let bytes = crate::host::files::read_regular(path, crate::host::files::MAX_CONFIG_BYTES)
        .map_err(|e| ConfigError {
            file: file.clone(),
            line: None,
            key: String::new(),
            message: format!("cannot read {what}: {e}"),
        })?;
    String::from_utf8(bytes).map_err(|e| {
        let (line, column) = line_column(e.as_bytes(), e.utf8_error().valid_up_to());
        ConfigError {
            file,
            line: Some(line),
            key: String::new(),
            message: format!("not UTF-8 text: invalid byte at column {column}"),
        }
    })
}

/// The 1-based line and column of byte `offset` in `text` (the end, if
/// past it).
fn line_column(text: &[u8], offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let column = 1 + before.iter().rev().take_while(|&&b| b != b'\n').count();
    (line, column)
}

/// Deserializes `text`, refusing what would be unbounded to parse.
pub fn parse_yaml<T: DeserializeOwned>(
    file: &str,
    text: &str,
) -> Result<(T, Locator), ConfigError> {
    let error = |line, key: String, message: String| ConfigError {
        file: file.to_string(),
        line: Some(line),
        key,
        message,
    };
    if let Some(line) = flow_depth_exceeded(text, MAX_DEPTH) {
        return Err(error(
            line,
            String::new(),
            format!("flow collections ([...] or {{...}}) nest deeper than {MAX_DEPTH} levels"),
        ));
    }
    let locator = Locator::scan(text).map_err(|r| error(r.line, r.key, r.message))?;
    match serde_yaml::from_str(text) {
        Ok(value) => Ok((value, locator)),
        Err(e) => Err(yaml_error(file, text, &locator, &e)),
    }
}

/// Turns serde_yaml's message (which embeds the key path and position) into
/// our file:line: key: message shape.
pub fn yaml_error(
    file: &str,
    source: &str,
    locator: &Locator,
    e: &serde_yaml::Error,
) -> ConfigError {
    let text = e.to_string();
    // libyaml's reader errors ("control characters are not allowed") give a
    // byte position instead of a line.
    if let Some((message, pos)) = text.rsplit_once(" at position ") {
        if let Ok(pos) = pos.trim().parse::<usize>() {
            let (line, column) = line_column(source.as_bytes(), pos);
            return ConfigError {
                file: file.to_string(),
                line: Some(line),
                key: String::new(),
                message: format!("{message} (column {column})"),
            };
        }
    }
    // serde_yaml writes "path.to.key: message at line N column M".
    let text = match text.rfind(" at line ") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    };
    let (key, message) = match text.split_once(": ") {
        Some((k, m)) if !k.contains(' ') => (k.to_string(), m.to_string()),
        _ => (String::new(), text),
    };
    // Errors without a position (a missing field is noticed at the end of
    // its mapping) get the line of the mapping the key belongs in.
    let line = e
        .location()
        .map(|l| l.line())
        .or_else(|| locator.line(&key));
    ConfigError {
        file: file.to_string(),
        line,
        key,
        message,
    }
}

/// The line on which flow collections first nest deeper than `max`.
///
/// This is an over-approximation of YAML's grammar, kept simple so that it
/// cannot be slow: a bracket opens a collection where a node may start
/// (after indentation, `- `, `: `, `? `, `,`, or another opening bracket),
/// and quoted scalars, comments and block scalars are skipped. Brackets in
/// the middle of a plain scalar (a regexp such as `^a[0-9]`) do not count.
fn flow_depth_exceeded(text: &str, max: usize) -> Option<usize> {
    let b = text.as_bytes();
    let mut depth = 0usize;
    let mut line = 1usize;
    let mut at_node_start = true;
    let mut line_indent = 0usize;
    let mut at_line_start = true;
    let mut i = 0;
    let space_after = |i: usize| {
        b.get(i + 1)
            .is_none_or(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
    };
    while i < b.len() {
        let c = b[i];
        if at_line_start {
            if c == b' ' {
                line_indent += 1;
                i += 1;
                continue;
            }
            at_line_start = false;
        }
        match c {
            b'\n' => {
                line += 1;
                line_indent = 0;
                at_line_start = true;
                at_node_start = true;
            }
            b' ' | b'\t' | b'\r' => {}
            b'#' if i == 0 || matches!(b[i - 1], b' ' | b'\t' | b'\n') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'[' | b'{' if at_node_start || depth > 0 => {
                depth += 1;
                if depth > max {
                    return Some(line);
                }
                at_node_start = true;
            }
            b']' | b'}' if depth > 0 => {
                depth -= 1;
                at_node_start = false;
            }
            b',' if depth > 0 => at_node_start = true,
            b'-' | b'?' | b':' if space_after(i) => at_node_start = true,
            b'\'' | b'"' if at_node_start => {
                let quote = c;
                i += 1;
                while i < b.len() && b[i] != quote {
                    if b[i] == b'\\' && quote == b'"' {
                        i += 1;
                    }
                    if b.get(i) == Some(&b'\n') {
                        line += 1;
                    }
                    i += 1;
                }
                at_node_start = false;
            }
            b'|' | b'>' if at_node_start && depth == 0 => {
                // A block scalar: its lines are text, up to the first
                // non-empty line indented no deeper than this one.
                let header_indent = line_indent;
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                while i < b.len() {
                    // At a newline: look at the next line's indentation.
                    let start = i + 1;
                    let mut j = start;
                    while j < b.len() && b[j] == b' ' {
                        j += 1;
                    }
                    let blank = j >= b.len() || b[j] == b'\n' || b[j] == b'\r';
                    if !blank && j - start <= header_indent {
                        break;
                    }
                    line += 1;
                    i = j;
                    while i < b.len() && b[i] != b'\n' {
                        i += 1;
                    }
                }
                continue;
            }
            b'&' | b'!' if at_node_start => {
                while i < b.len() && !matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
                    i += 1;
                }
                continue;
            }
            _ => at_node_start = false,
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_depth_counts_collections_not_brackets_in_text() {
        assert_eq!(flow_depth_exceeded("a: [[1]]\n", 2), None);
        assert_eq!(flow_depth_exceeded("a: [[[1]]]\n", 2), Some(1));
        assert_eq!(flow_depth_exceeded("a: 1\nb: {c: {d: [1]}}\n", 2), Some(2));
        // Brackets inside scalars, comments and block scalars are text.
        let text = "r:\n  - ^a[[[[0-9]\n  - '[[[['\n  - \"{{{{\\\"\"\n# [[[[\ns: |\n  [[[[\n  {{{{\nt: x [[[[\n";
        assert_eq!(flow_depth_exceeded(text, 1), None);
        // ... and counting resumes after the block scalar ends.
        assert_eq!(flow_depth_exceeded("s: >\n  [[[\nt: [[1]]\n", 1), Some(3));
        // Anchors and tags before a collection do not hide it.
        assert_eq!(flow_depth_exceeded("a: &x [!!seq [1]]\n", 1), Some(1));
    }

    #[test]
    fn deep_nesting_is_refused_fast_with_its_line() {
        let deep = format!(
            "metrics: {}1{}\n",
            "{a: ".repeat(100_000),
            "}".repeat(100_000)
        );
        let t = std::time::Instant::now();
        let e = parse_yaml::<serde_yaml::Value>("t.yaml", &deep).expect_err("too deep");
        assert!(t.elapsed().as_secs() < 2, "{:?}", t.elapsed());
        assert_eq!(e.line, Some(1));
        assert!(e.message.contains("nest deeper than 64"), "{e}");

        let block = format!("a:\n{}x\n", "- ".repeat(100_000));
        let t = std::time::Instant::now();
        let e = parse_yaml::<serde_yaml::Value>("t.yaml", &block).expect_err("too deep");
        assert!(t.elapsed().as_secs() < 2, "{:?}", t.elapsed());
        assert_eq!(e.line, Some(2));
        assert!(
            e.message.contains("nesting is deeper than 64 levels"),
            "{e}"
        );
    }

    #[test]
    fn alias_bombs_are_refused_and_plain_anchors_allowed() {
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            bomb += &format!(
                "a{i}: &a{i} [{}]\n",
                vec![format!("*a{}", i - 1); 10].join(", ")
            );
        }
        let e = parse_yaml::<serde_yaml::Value>("t.yaml", &bomb).expect_err("bomb");
        assert!(
            e.message.contains("aliases expand to more than 100000"),
            "{e}"
        );
        assert_eq!((e.line, e.key.as_str()), (Some(5), "a4[7]"), "{e}");

        let shared = "l: &l [{name: x, size: 4}]\nm: *l\nn: *l\n";
        let (v, _) = parse_yaml::<serde_yaml::Value>("t.yaml", shared).expect("anchors");
        assert_eq!(v["n"][0]["size"], serde_yaml::Value::from(4));
    }

    #[test]
    fn reader_errors_get_the_line_of_their_byte() {
        let e =
            parse_yaml::<serde_yaml::Value>("t.yaml", "a: 1\nb: x\u{1}y\n").expect_err("control");
        assert_eq!(
            e.to_string(),
            "t.yaml:2: control characters are not allowed (column 5)"
        );
    }

    #[test]
    fn duplicate_keys_name_the_second_line() {
        let e = parse_yaml::<serde_yaml::Value>("t.yaml", "a: 1\nb:\n  c: 1\n  c: 2\n")
            .expect_err("dup");
        assert_eq!((e.line, e.key.as_str()), (Some(4), "b.c"), "{e}");
        let e = parse_yaml::<serde_yaml::Value>("t.yaml", "metrics: {}\nx: 1\nmetrics: {}\n")
            .expect_err("dup");
        assert_eq!(
            e.to_string(),
            "t.yaml:3: key `metrics`: key \"metrics\" is given twice"
        );
    }
}
