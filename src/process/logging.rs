//! Log output: the plain text format by default, or logfmt or JSON lines
//! for Loki and other collectors (`--log.format`), at `--log.level`.
//! Timestamps are left out under journald, which stamps every line itself.

use std::io::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Logfmt,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn filter(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// Whether stderr is the journal's stream (systemd sets JOURNAL_STREAM to
/// its `device:inode`), so that lines need no timestamp of their own.
pub fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    // SAFETY: a zeroed stat is valid for fstat to fill.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd 2 and a valid stat buffer.
    if unsafe { libc::fstat(2, &mut st) } != 0 {
        return false;
    }
    stream.to_string_lossy() == format!("{}:{}", st.st_dev, st.st_ino)
}

/// A logfmt value: bare when it can be, else quoted with escapes.
fn logfmt_value(v: &str) -> String {
    let bare = !v.is_empty()
        && v.chars()
            .all(|c| !c.is_whitespace() && c != '"' && c != '=' && !c.is_control());
    if bare {
        v.to_string()
    } else {
        json_string(v)
    }
}

fn json_string(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Installs the logger. `RUST_LOG`, when set, overrides the level.
pub fn init(format: Format, level: Level, timestamps: bool) {
    let mut b =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level.filter()));
    match format {
        Format::Text => {
            if timestamps {
                b.format_timestamp_millis();
            } else {
                b.format_timestamp(None);
            }
        }
        Format::Logfmt | Format::Json => {
            b.format(move |buf, record| {
                let ts = timestamps.then(|| buf.timestamp_millis().to_string());
                let level = record.level().as_str().to_ascii_lowercase();
                let msg = record.args().to_string();
                if format == Format::Json {
                    let mut line = String::from("{");
                    if let Some(ts) = &ts {
                        line.push_str(&format!("\"ts\":{},", json_string(ts)));
                    }
                    line.push_str(&format!(
                        "\"level\":{},\"target\":{},\"msg\":{}}}",
                        json_string(&level),
                        json_string(record.target()),
                        json_string(&msg)
                    ));
                    writeln!(buf, "{line}")
                } else {
                    let mut line = String::new();
                    if let Some(ts) = &ts {
                        line.push_str(&format!("ts={ts} "));
                    }
                    line.push_str(&format!(
                        "level={level} target={} msg={}",
                        logfmt_value(record.target()),
                        logfmt_value(&msg)
                    ));
                    writeln!(buf, "{line}")
                }
            });
        }
    }
    b.init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_only_when_needed() {
        assert_eq!(logfmt_value("listening"), "listening");
        assert_eq!(logfmt_value("a \"b\" c"), "\"a \\\"b\\\" c\"");
        assert_eq!(logfmt_value("k=v"), "\"k=v\"");
        assert_eq!(json_string("x\ny"), "\"x\\ny\"");
    }
}
