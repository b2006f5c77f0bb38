//! The `/` page: what is loaded and attached, for a human at a browser.

use std::fmt::Write;

use crate::exporter::ConfigReport;
use crate::object::ProgramState;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Directories of config and object files, dropped from what the page
/// shows when nobody had to log in to see it: the file names stay, where
/// they live on the host does not.
fn redactor(reports: &[ConfigReport], expose_paths: bool) -> impl Fn(&str) -> String {
    let mut dirs: Vec<String> = Vec::new();
    if !expose_paths {
        for r in reports {
            for path in [&r.file, &r.object] {
                if let Some((dir, _)) = path.rsplit_once('/') {
                    if !dir.is_empty() && !dir.starts_with('<') {
                        dirs.push(format!("{dir}/"));
                    }
                }
            }
        }
        // Longest first, so a nested directory goes before its parent.
        dirs.sort_by_key(|d| std::cmp::Reverse(d.len()));
        dirs.dedup();
    }
    move |text: &str| {
        let mut out = text.to_string();
        for d in &dirs {
            out = out.replace(d.as_str(), "");
        }
        out
    }
}

/// `expose_paths`: show where files are (when basic auth guards the page).
pub fn render(reports: &[ConfigReport], metrics_path: &str, expose_paths: bool) -> String {
    let show = redactor(reports, expose_paths);
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>ebpf-exporter</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}}\
         .ok{{color:#070}}.bad{{color:#b00}}</style></head><body>\
         <h1>ebpf-exporter {}</h1><p><a href=\"{}\">Metrics</a> · <a href=\"/healthz\">Health</a></p>\
         <h2>Configs</h2><table><tr><th>config</th><th>object</th><th>status</th><th>metrics</th></tr>",
        env!("CARGO_PKG_VERSION"),
        esc(metrics_path)
    );
    for r in reports {
        let status = match (&r.error, r.running) {
            (None, _) => format!(
                "<span class=\"ok\">running</span> (generation {})",
                r.generation
            ),
            (Some(e), true) => format!(
                "<span class=\"ok\">running</span> generation {}; \
                 <span class=\"bad\">the file as it is now was refused, so this version keeps running: {}</span>",
                r.generation,
                esc(&show(e))
            ),
            (Some(e), false) => format!("<span class=\"bad\">failed: {}</span>", esc(e)),
        };
        let _ = write!(
            h,
            "<tr><td>{}<br><small>{}</small></td><td>{}</td><td>{status}</td><td>{}</td></tr>",
            esc(&r.name),
            esc(&show(&r.file)),
            esc(&show(&r.object)),
            esc(&r.metrics.join(", "))
        );
    }
    h.push_str("</table><h2>Programs</h2><table><tr><th>config</th><th>program</th><th>section</th><th>id</th><th>status</th></tr>");
    for r in reports {
        for p in &r.programs {
            let status = match &p.state {
                ProgramState::Attached => "<span class=\"ok\">attached</span>".to_string(),
                ProgramState::LoadFailed(why) => {
                    format!(
                        "<span class=\"bad\">not loaded: {}</span>",
                        esc(&show(&why.to_string()))
                    )
                }
                ProgramState::AttachFailed(why) => {
                    format!(
                        "<span class=\"bad\">not attached: {}</span>",
                        esc(&show(&why.to_string()))
                    )
                }
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{status}</td></tr>",
                esc(&r.name),
                esc(&p.name),
                esc(&p.section),
                p.id.map(|i| i.to_string()).unwrap_or_default()
            );
        }
        for u in &r.unused {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td></td><td>not used: {} runs instead</td></tr>",
                esc(&r.name),
                esc(&u.name),
                esc(&u.section),
                esc(&u.instead)
            );
        }
    }
    h.push_str("</table></body></html>\n");
    h
}
