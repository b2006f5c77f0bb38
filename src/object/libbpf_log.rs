//! Routes libbpf's own log lines into our logger, and captures them while a
//! load or attach runs: libbpf's text is often the only place that says
//! which program failed and why.

use std::sync::Mutex;

use libbpf_rs::PrintLevel;

static CAPTURE: Mutex<Option<Vec<String>>> = Mutex::new(None);

fn print(level: PrintLevel, msg: String) {
    let line = msg.trim_end().to_string();
    match level {
        PrintLevel::Warn => log::warn!(target: "libbpf", "{line}"),
        PrintLevel::Info => log::info!(target: "libbpf", "{line}"),
        PrintLevel::Debug => log::debug!(target: "libbpf", "{line}"),
    }
    if let Ok(mut capture) = CAPTURE.lock() {
        if let Some(lines) = capture.as_mut() {
            lines.push(line);
        }
    }
}

/// Installs the routing once at start-up.
pub fn install() {
    libbpf_rs::set_print(Some((PrintLevel::Debug, print)));
}

/// Runs `f` and returns libbpf's log lines printed meanwhile.
pub fn capture<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    if let Ok(mut c) = CAPTURE.lock() {
        *c = Some(Vec::new());
    }
    let out = f();
    let lines = CAPTURE
        .lock()
        .ok()
        .and_then(|mut c| c.take())
        .unwrap_or_default();
    (out, lines)
}
