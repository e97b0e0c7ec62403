//! The HTML report: one self-contained page (no external script, font or style sheet, and
//! no script at all, which a Content-Security-Policy also forbids), readable printed or on a
//! phone. It has the verdict, a timeline of resets with the findings marked, the findings
//! table, the per-server estimates, the caveats, and for each finding an SVG ladder of the
//! connection's last moments and a Wireshark filter. Captured text is HTML-escaped.

use super::caveats::caveats;
use super::terminal::headline;
use super::{server_summary, wireshark_filter, words, TicketReport};
use crate::diagnose::estimate::human_ms;
use crate::diagnose::{FindingKind, Severity};
use crate::escape;
use std::fmt::Write;

const STYLE: &str = r#"
:root { --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --err: #b42318; --warn: #b54708; --req: #175cd3; --bg: #fff; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--fg); background: var(--bg); margin: 0 auto; max-width: 1600px; padding: 16px 24px; overflow-wrap: break-word; }
p, li, .headline { max-width: 110ch; }
h1 { font-size: 1.5em; margin: 0.2em 0; } h2 { font-size: 1.2em; border-bottom: 1px solid var(--line); padding-bottom: 4px; margin-top: 1.6em; } h3 { font-size: 1.05em; }
.headline { font-size: 1.1em; font-weight: 600; border-left: 4px solid var(--err); padding: 6px 12px; background: #fef3f2; }
.headline.ok { border-color: #067647; background: #ecfdf3; }
.meta, .muted { color: var(--muted); }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.92em; }
code.filter { background: #f6f8fa; border: 1px solid var(--line); padding: 2px 6px; border-radius: 4px; user-select: all; word-break: break-all; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 0.92em; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
.kind { font-family: ui-monospace, monospace; white-space: nowrap; }
td.n { white-space: nowrap; text-align: right; }
td.req { overflow-wrap: anywhere; }
.error { color: var(--err); font-weight: 600; } .warning { color: var(--warn); font-weight: 600; }
article { border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; margin: 14px 0; break-inside: avoid; }
svg { max-width: 100%; height: auto; display: block; }
svg text { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; fill: var(--fg); }
svg text.end, svg text.addr { text-anchor: middle; } svg text.end { font-weight: 700; }
svg text.meta, svg text.tick, svg text.addr { fill: var(--muted); font-size: 11px; }
svg text.tick { text-anchor: end; } svg text.tick.end { text-anchor: end; }
svg text.label, svg text.gap { text-anchor: middle; }
svg text.gap { fill: var(--muted); font-style: italic; }
svg .life { stroke: #8c959f; stroke-width: 2; }
svg .gapband { fill: #f6f8fa; stroke: #d0d7de; stroke-dasharray: 4 3; }
svg g line { stroke: #8c959f; stroke-width: 1.5; }
svg g.req line { stroke: var(--req); stroke-width: 2.5; } svg g.req text.label { fill: var(--req); font-weight: 700; }
svg g.fin line { stroke: var(--warn); stroke-width: 2.5; } svg g.fin text.label { fill: var(--warn); font-weight: 700; }
svg g.rst line { stroke: var(--err); stroke-width: 2.5; } svg g.rst text.label { fill: var(--err); font-weight: 700; }
svg .axis { stroke: #8c959f; } svg .bar { fill: #f97066; }
svg .mark { fill: var(--warn); } svg .mark.idle_race, svg .mark.reset_in_flight { fill: var(--err); }
/* A phone: each finding a block of labelled lines, the ladders at their own size (scrolled). */
@media (max-width: 640px) {
  body { padding: 10px 12px; font-size: 14px; }
  table.findings thead { display: none; }
  table.findings, table.findings tbody, table.findings tr, table.findings td { display: block; width: 100%; }
  table.findings tr { border: 1px solid var(--line); border-radius: 6px; margin: 0 0 10px; padding: 4px 0; }
  table.findings td { border: none; padding: 1px 10px; text-align: left; overflow-wrap: anywhere; }
  table.findings td::before { content: attr(data-label) ": "; color: var(--muted); }
  svg.ladder { max-width: none; width: 760px; }
}
@media print { body { max-width: none; } a { color: inherit; text-decoration: none; } }
"#;

/// Escaped for HTML; our sentences (which may quote captured text) are not cut short.
fn h(s: &str) -> String {
    escape::html_max(s, 2000)
}

/// Renders the page.
pub fn render(t: &TicketReport<'_>) -> String {
    let a = t.analysis;
    let mut o = String::new();
    let title = format!("resetscope report: {}", t.title);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        h(&title)
    );
    let failed = super::problem_count(t.analysis) > 0;
    let _ = writeln!(o, "<header><h1>{}</h1>", h(&title));
    let _ = writeln!(
        o,
        "<p class=\"headline{}\">{}</p>",
        if failed { "" } else { " ok" },
        h(&headline(a))
    );
    if let Some(s) = super::left_out::sentence(a) {
        let _ = writeln!(o, "<p class=\"headline\">{}</p>", h(&s));
    }
    let p = &a.packets;
    let n = &a.diagnosis.connections;
    let span = super::capture_span(a);
    let _ = writeln!(
        o,
        "<p class=\"meta\">{}: {}, {} ({}){}.</p></header>",
        h(&t.title),
        super::frames_summary(a),
        words::plural(n.total, "TCP connection", "TCP connections"),
        h(&super::protocol_summary(n)),
        h(&span)
    );

    if let (Some(first), Some(last)) = (p.first_ts, p.last_ts) {
        let _ = writeln!(o, "<section><h2>Timeline</h2><p class=\"muted\">Resets per second over the capture ({} in all); ▼ marks a finding.</p><div class=\"scroll\">{}</div></section>", words::count(t.timeline.total()), t.timeline.svg(first, last, &a.diagnosis.findings));
    }

    let shown = t.findings();
    let _ = writeln!(o, "<section><h2>Findings</h2>");
    if shown.is_empty() {
        let _ = writeln!(o, "<p>No resets and no failed requests.</p>");
    } else {
        let _ = writeln!(o, "<div class=\"scroll\"><table class=\"findings\"><thead><tr><th>#</th><th>time</th><th>kind</th><th>client → server</th><th>request</th><th>decided by</th><th>idle</th><th>retry safe</th><th>frames</th></tr></thead><tbody>");
        let first = p.first_ts.unwrap_or_default();
        for (i, f) in shown.iter().enumerate() {
            let sev = match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Info => "info",
            };
            let request = f
                .request
                .as_ref()
                .map(|r| {
                    format!(
                        "<code>{} {}</code> {}",
                        h(&r.method),
                        escape::html_max(&r.target, 80),
                        t.names.name_with(r.frame, escape::html)
                    )
                })
                .unwrap_or_else(|| "–".into());
            let retry = match f.retry_safe {
                Some(true) => "yes",
                Some(false) => "<span class=\"error\">no</span>",
                None if f.request.is_some() => "unknown",
                None => "–",
            };
            let _ = writeln!(
                o,
                "<tr><td data-label=\"finding\"><a href=\"#finding-{n}\">{n}</a></td><td data-label=\"time\" class=\"n\">+{:.3} s</td><td data-label=\"kind\" class=\"kind {sev}\">{}</td><td data-label=\"client → server\">{} → {}</td><td data-label=\"request\" class=\"req\">{request}</td><td data-label=\"decided by\">{} {} {}</td><td data-label=\"idle\" class=\"n\">{}</td><td data-label=\"retry safe\">{retry}</td><td data-label=\"frames\">{}</td></tr>",
                f.time.since(first).as_secs_f64(),
                f.kind.name(),
                h(&f.client.to_string()),
                h(&f.server.to_string()),
                f.by.name(),
                f.close_how(),
                t.names.name_with(f.close_frame, escape::html),
                f.idle_ms.map(human_ms).unwrap_or_else(|| "–".into()),
                t.names.list_with(&f.frames, escape::html),
                n = i + 1
            );
        }
        let _ = writeln!(o, "</tbody></table></div>");
        if shown.len() as u64 != super::problem_count(t.analysis) {
            let _ = writeln!(o, "<p class=\"muted\">Only {} listed; the JSON report has every one. All {}, listed or not:</p>", super::first_listed(shown.len()), words::count(super::problem_count(t.analysis)));
            let _ = writeln!(o, "<ul class=\"muted\">");
            for line in super::unlisted_summary(&a.diagnosis.tally) {
                let _ = writeln!(o, "<li>{}</li>", escape::html(&line));
            }
            let _ = writeln!(o, "</ul>");
        }
    }
    let idle = a
        .diagnosis
        .counts
        .get(&FindingKind::IdleClose)
        .copied()
        .unwrap_or(0);
    if idle > 0 {
        let _ = writeln!(
            o,
            "<p class=\"muted\">{}.</p>",
            super::idle_closes_not_listed(
                idle,
                " (informational: graceful closes of idle keep-alive connections)"
            )
        );
    }
    let _ = writeln!(o, "</section>");

    if !a.diagnosis.servers.is_empty() {
        let _ = writeln!(o, "<section><h2>Servers</h2><ul>");
        for s in &a.diagnosis.servers {
            let sum = server_summary(s);
            let est = match &sum.timeout {
                Some(t) => format!(
                    "closes idle connections after <strong>{t}</strong> ({})",
                    h(&sum.basis)
                ),
                None => "closed no idle connection in this capture".into(),
            };
            let announced = sum
                .announced
                .map(|a| format!("; announces <code>Keep-Alive: timeout={a}</code>"))
                .unwrap_or_default();
            let races = if s.idle_races > 0 {
                format!(
                    "; <span class=\"error\">{}</span>",
                    words::plural(s.idle_races, "idle race", "idle races")
                )
            } else {
                String::new()
            };
            let _ = write!(
                o,
                "<li><strong>{}</strong> {est}{announced}{races}.",
                h(&s.server.to_string())
            );
            if let Some(r) = &s.recommendation {
                let _ = write!(o, "<br><strong>Recommendation:</strong> {}", h(r));
            }
            let _ = writeln!(o, "</li>");
        }
        let _ = writeln!(o, "</ul></section>");
    }

    let kernel = super::host_kernel_lines(a);
    if !kernel.is_empty() {
        let _ = writeln!(o, "<section><h2>Host kernel</h2>");
        let mut open = false;
        for line in kernel {
            match line.strip_prefix("  ") {
                Some(item) => {
                    if !open {
                        let _ = writeln!(o, "<ul>");
                        open = true;
                    }
                    let _ = writeln!(o, "<li>{}</li>", h(item));
                }
                None => {
                    if open {
                        let _ = writeln!(o, "</ul>");
                        open = false;
                    }
                    let _ = writeln!(o, "<p>{}</p>", h(&line));
                }
            }
        }
        if open {
            let _ = writeln!(o, "</ul>");
        }
        let _ = writeln!(o, "</section>");
    }

    let cav = caveats(a);
    if !cav.is_empty() {
        let _ = writeln!(o, "<section><h2>Caveats</h2><ul>");
        for c in cav {
            let _ = writeln!(o, "<li>{}</li>", h(&c.message));
        }
        let _ = writeln!(o, "</ul></section>");
    }

    if !shown.is_empty() {
        let _ = writeln!(o, "<section><h2>Evidence</h2>");
        for (i, f) in shown.iter().enumerate() {
            let n = i + 1;
            let _ = writeln!(
                o,
                "<article id=\"finding-{n}\"><h3>{n}. <span class=\"kind\">{}</span>: {} → {}</h3>",
                f.kind.name(),
                h(&f.client.to_string()),
                h(&f.server.to_string())
            );
            let _ = writeln!(o, "<p>{}</p>", h(&f.sentence));
            let _ = writeln!(
                o,
                "<p>Wireshark filter: <code class=\"filter\">{}</code></p>",
                h(&wireshark_filter(f))
            );
            if let Some(ladder) = t.ladders.get(&f.connection) {
                let _ = writeln!(
                    o,
                    "<div class=\"scroll\">{}</div>",
                    super::ladder::svg(ladder, f, t.names)
                );
            }
            let _ = writeln!(o, "</article>");
        }
        let _ = writeln!(o, "</section>");
    }
    let _ = writeln!(
        o,
        "<footer class=\"muted\"><p>resetscope {} · frame numbers are Wireshark's · no script on this page</p></footer>\n</body>\n</html>",
        env!("CARGO_PKG_VERSION")
    );
    o
}
