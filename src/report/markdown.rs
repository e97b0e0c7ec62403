//! The Markdown report, for tickets (GitHub, GitLab, Jira's Markdown): the verdict first,
//! then the findings table, the per-server estimates and recommendations, the caveats, and
//! for each finding its evidence: the sentence, a Wireshark filter that isolates the
//! connection, and a packet ladder in a fenced block. Captured text is escaped so that it can
//! never break the Markdown.

use super::caveats::caveats;
use super::terminal::headline;
use super::{server_summary, wireshark_filter, words, TicketReport};
use crate::diagnose::estimate::human_ms;
use crate::diagnose::{Finding, FindingKind};
use crate::escape;
use std::fmt::Write;

/// Our own sentences (which may quote captured text): escaped, but not cut short.
fn md(s: &str) -> String {
    escape::markdown_max(s, 2000)
}

fn request_cell(f: &Finding, t: &TicketReport<'_>) -> String {
    f.request
        .as_ref()
        .map(|r| {
            let target = escape::markdown_max(&r.target, 60);
            format!(
                "{} {} ({})",
                escape::markdown(&r.method),
                target,
                t.names.name_with(r.frame, escape::markdown)
            )
        })
        .unwrap_or_else(|| "–".into())
}

fn retry_cell(f: &Finding) -> &'static str {
    match f.retry_safe {
        Some(true) => "yes",
        Some(false) => "**no**",
        None if f.request.is_some() => "unknown",
        None => "–",
    }
}

/// Renders the Markdown report.
pub fn render(t: &TicketReport<'_>) -> String {
    let a = t.analysis;
    let mut out = String::new();
    let _ = writeln!(out, "# resetscope report: {}\n", md(&t.title));
    let _ = writeln!(out, "> **{}**\n", md(&headline(a)));
    if let Some(s) = super::left_out::sentence(a) {
        let _ = writeln!(out, "> {}\n", md(&s));
    }
    let p = &a.packets;
    let n = &a.diagnosis.connections;
    let span = super::capture_span(a);
    let _ = writeln!(
        out,
        "{}: {}, {} ({}){}.\n",
        md(&t.title),
        super::frames_summary(a),
        words::plural(n.total, "TCP connection", "TCP connections"),
        super::protocol_summary(n),
        span
    );

    let shown = t.findings();
    let _ = writeln!(out, "## Findings\n");
    if shown.is_empty() {
        let _ = writeln!(out, "No resets and no failed requests.\n");
    } else {
        let _ = writeln!(out, "| # | time | kind | client → server | request | decided by | idle | retry safe | frames |");
        let _ = writeln!(out, "|--:|---|---|---|---|---|---|---|---|");
        let first = p.first_ts.unwrap_or_default();
        for (i, f) in shown.iter().enumerate() {
            let _ = writeln!(
                out,
                "| [{n}](#finding-{n}) | +{:.3} s | `{}` | {} → {} | {} | {} {} {} | {} | {} | {} |",
                f.time.since(first).as_secs_f64(),
                f.kind.name(),
                f.client,
                f.server,
                request_cell(f, t),
                f.by.name(),
                f.close_how(),
                t.names.name_with(f.close_frame, escape::markdown),
                f.idle_ms.map(human_ms).unwrap_or_else(|| "–".into()),
                retry_cell(f),
                t.names.list_with(&f.frames, escape::markdown),
                n = i + 1
            );
        }
        out.push('\n');
        let listed_all = shown.len() as u64 == super::problem_count(t.analysis);
        if !listed_all {
            let _ = writeln!(
                out,
                "Only {} listed; `--format json` has every one. All {}, listed or not:\n",
                super::first_listed(shown.len()),
                words::count(super::problem_count(t.analysis))
            );
            for line in super::unlisted_summary(&a.diagnosis.tally) {
                let _ = writeln!(out, "- {}", escape::markdown(&line));
            }
            out.push('\n');
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
            out,
            "{}.\n",
            super::idle_closes_not_listed(
                idle,
                " (informational: graceful closes of idle keep-alive connections)"
            )
        );
    }

    if !a.diagnosis.servers.is_empty() {
        let _ = writeln!(out, "## Servers\n");
        for s in &a.diagnosis.servers {
            let sum = server_summary(s);
            let est = match &sum.timeout {
                Some(t) => format!("closes idle connections after **{t}** ({})", sum.basis),
                None => "closed no idle connection in this capture".into(),
            };
            let announced = sum
                .announced
                .map(|a| format!("; announces `Keep-Alive: timeout={a}`"))
                .unwrap_or_default();
            let races = if s.idle_races > 0 {
                format!(
                    "; **{}**",
                    words::plural(s.idle_races, "idle race", "idle races")
                )
            } else {
                String::new()
            };
            let _ = writeln!(out, "- **{}** {}{}{}.", s.server, est, announced, races);
            if let Some(r) = &s.recommendation {
                let _ = writeln!(out, "  - **Recommendation:** {}", md(r));
            }
        }
        out.push('\n');
    }

    let kernel = super::host_kernel_lines(a);
    if !kernel.is_empty() {
        let _ = writeln!(out, "## Host kernel");
        for line in kernel {
            match line.strip_prefix("  ") {
                Some(item) => {
                    let _ = writeln!(out, "- {}", md(item));
                }
                None => {
                    let _ = writeln!(out, "\n{}\n", md(&line));
                }
            }
        }
        out.push('\n');
    }

    let cav = caveats(a);
    if !cav.is_empty() {
        let _ = writeln!(out, "## Caveats\n");
        for c in cav {
            let _ = writeln!(out, "- {}", md(&c.message));
        }
        out.push('\n');
    }

    if !shown.is_empty() {
        let _ = writeln!(out, "## Evidence\n");
        for (i, f) in shown.iter().enumerate() {
            let n = i + 1;
            let _ = writeln!(
                out,
                "### <a id=\"finding-{n}\"></a>{n}. `{}`: {} → {}\n",
                f.kind.name(),
                f.client,
                f.server
            );
            let _ = writeln!(out, "{}\n", md(&f.sentence));
            let _ = writeln!(out, "Wireshark filter: `{}`\n", wireshark_filter(f));
            if let Some(ladder) = t.ladders.get(&f.connection) {
                let _ = writeln!(
                    out,
                    "~~~text\n{}~~~\n",
                    super::ladder::text(ladder, f, t.names)
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "---\n*resetscope {} · frame numbers are Wireshark's*",
        env!("CARGO_PKG_VERSION")
    );
    out
}
