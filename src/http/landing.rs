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

pub fn render(reports: &[ConfigReport], metrics_path: &str) -> String {
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
                esc(e)
            ),
            (Some(e), false) => format!("<span class=\"bad\">failed: {}</span>", esc(e)),
        };
        let _ = write!(
            h,
            "<tr><td>{}<br><small>{}</small></td><td>{}</td><td>{status}</td><td>{}</td></tr>",
            esc(&r.name),
            esc(&r.file),
            esc(&r.object),
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
                        esc(&why.to_string())
                    )
                }
                ProgramState::AttachFailed(why) => {
                    format!(
                        "<span class=\"bad\">not attached: {}</span>",
                        esc(&why.to_string())
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
    }
    h.push_str("</table></body></html>\n");
    h
}
