//! Routes libbpf's own log lines into our logger, and captures them while a
//! load or attach runs: libbpf's text is often the only place that says
//! which program failed and why.
//!
//! libbpf calls its print callback synchronously, on the thread that called
//! into it, so capture is per thread: two configs loading on two threads
//! each see only their own lines. The callback is ours, not libbpf-rs's,
//! because it runs inside C and must survive any bytes libbpf hands it (a
//! program name need not be UTF-8) and never unwind.

use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_int, c_void};

thread_local! {
    static CAPTURE: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
    /// Set while `capture_quietly` runs on this thread.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// libbpf prints one line per call; the verifier log is printed in pieces
/// of this size at most (longer ones are cut, with a marker).
const LINE_MAX: usize = 16 * 1024;

extern "C" {
    /// C's vsnprintf; `ap` is a `va_list`, which on every ABI libbpf's
    /// callback receives is passed on as a pointer.
    fn vsnprintf(buf: *mut c_char, size: usize, fmt: *const c_char, ap: *mut c_void) -> c_int;
}

/// Installs the routing, once per process (calling it again is harmless).
pub fn install() {
    type Callback = unsafe extern "C" fn(
        libbpf_sys::libbpf_print_level,
        *const c_char,
        *mut libbpf_sys::__va_list_tag,
    ) -> c_int;
    let cb: Callback = print_cb;
    // SAFETY: print_cb matches libbpf_print_fn_t and stays valid forever.
    unsafe {
        libbpf_sys::libbpf_set_print(Some(cb));
    }
}

unsafe extern "C" fn print_cb(
    level: libbpf_sys::libbpf_print_level,
    fmt: *const c_char,
    ap: *mut libbpf_sys::__va_list_tag,
) -> c_int {
    if fmt.is_null() {
        return 0;
    }
    let mut buf = vec![0u8; LINE_MAX];
    // SAFETY: buf holds LINE_MAX bytes and vsnprintf writes at most that
    // many, NUL included; fmt and ap are what libbpf passed for this call.
    let n = unsafe { vsnprintf(buf.as_mut_ptr().cast(), buf.len(), fmt, ap.cast()) };
    if n < 0 {
        return 0;
    }
    let written = (n as usize).min(buf.len() - 1);
    let truncated = n as usize >= buf.len();
    // Nothing below may unwind into C: a panic here would abort.
    let _ = std::panic::catch_unwind(|| route(level, &buf[..written], truncated));
    0
}

fn route(level: libbpf_sys::libbpf_print_level, bytes: &[u8], truncated: bool) {
    let mut line = String::from_utf8_lossy(bytes).trim_end().to_string();
    if truncated {
        line.push_str(" [...]");
    }
    let quiet = QUIET.try_with(Cell::get).unwrap_or(false);
    match level {
        libbpf_sys::LIBBPF_WARN if !quiet => log::warn!(target: "libbpf", "{line}"),
        libbpf_sys::LIBBPF_INFO => log::info!(target: "libbpf", "{line}"),
        _ => log::debug!(target: "libbpf", "{line}"),
    }
    // Only warnings are kept for errors: libbpf reports every failure at
    // that level, and its info/debug chatter ("failed (-95) to create BPF
    // token ..., skipping optional step") would otherwise be taken for the
    // reason.
    if level != libbpf_sys::LIBBPF_WARN {
        return;
    }
    let _ = CAPTURE.try_with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            if let Some(lines) = c.as_mut() {
                lines.push(line);
            }
        }
    });
}

/// Runs `f` and returns libbpf's warnings printed meanwhile on this thread.
pub fn capture<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    let outer = CAPTURE.with(|c| c.replace(Some(Vec::new())));
    let out = f();
    let lines = CAPTURE.with(|c| c.replace(outer)).unwrap_or_default();
    (out, lines)
}

/// Like `capture`, but libbpf's warnings meanwhile are logged at debug
/// level only: for attempts whose failure the caller expects and reports
/// itself (the exporter's own map iterators on kernels that refuse them).
pub fn capture_quietly<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    let outer = QUIET.with(|q| q.replace(true));
    let out = capture(f);
    QUIET.with(|q| q.set(outer));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_per_thread_and_survives_any_bytes() {
        install();
        let (_, lines) = capture(|| {
            route(libbpf_sys::LIBBPF_WARN, b"prog 'caf\xff': failed\n", false);
            let other = std::thread::spawn(|| {
                capture(|| route(libbpf_sys::LIBBPF_WARN, b"elsewhere", false)).1
            });
            let theirs = other.join().expect("thread");
            assert_eq!(theirs, vec!["elsewhere".to_string()]);
            route(libbpf_sys::LIBBPF_WARN, b"long", true);
            // Debug chatter is logged but never taken for a reason.
            route(
                libbpf_sys::LIBBPF_DEBUG,
                b"failed (-95) to create BPF token",
                false,
            );
        });
        assert_eq!(
            lines,
            vec![
                "prog 'caf\u{fffd}': failed".to_string(),
                "long [...]".to_string()
            ]
        );
        let (_, none) = capture(|| ());
        assert!(none.is_empty());
    }

    #[test]
    fn the_real_callback_formats_libbpf_lines() {
        install();
        // A real libbpf failure that logs: opening garbage as an object.
        let (result, lines) =
            capture(|| libbpf_rs::ObjectBuilder::default().open_memory(b"not an ELF object"));
        assert!(result.is_err());
        assert!(
            lines.iter().any(|l| l.starts_with("libbpf: ")),
            "libbpf's own lines were captured: {lines:?}"
        );
    }
}
