//! The default report, for a person at a terminal: what happened in one screen, fitted to
//! its width ([`TerminalOptions::width`]): the sentences wrapped at spaces, the findings
//! table's cells between words (see [`super::wrap`]), and on a terminal too narrow for the
//! columns' longest words, each finding stacked as labelled lines. `--quiet` keeps the
//! summary, the headline and the counts by kind.

use super::caveats::caveats;
use super::{words, wrap, FrameNamer};
use crate::diagnose::estimate::human_ms;
use crate::diagnose::{Finding, FindingKind, Severity};
use crate::escape;
use crate::pipeline::Analysis;
use comfy_table::{presets, Cell, ContentArrangement, Table};
use std::fmt::Write;

/// How to render.
#[derive(Clone, Debug)]
pub struct TerminalOptions {
    /// Use ANSI colours.
    pub color: bool,
    /// Width in columns: the table fits in it and the sentences are wrapped to it.
    pub width: u16,
    /// Also list informational findings (idle closes).
    pub all: bool,
    /// Most findings listed (0 = all).
    pub limit: usize,
    /// Only the summary line, the headline and the counts of findings by kind.
    pub quiet: bool,
}

/// The width of reports written to a file or a pipe (when `$COLUMNS` does not say one):
/// fixed, so that the same capture gives the same file wherever it was written.
pub const FILE_WIDTH: u16 = 100;

/// The narrowest report: below this, the table cannot hold its columns.
pub const MIN_WIDTH: u16 = 40;

impl Default for TerminalOptions {
    fn default() -> Self {
        TerminalOptions {
            color: false,
            width: FILE_WIDTH,
            all: false,
            limit: 50,
            quiet: false,
        }
    }
}

struct Paint {
    on: bool,
}

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
    fn severity(&self, sev: Severity, s: &str) -> String {
        match sev {
            Severity::Error => self.wrap("1;31", s),
            Severity::Warning => self.wrap("33", s),
            Severity::Info => self.wrap("2", s),
        }
    }
}

/// The columns of the findings table kept on one line when they can be (`+0.909s`,
/// `301 ms`).
const KEEP_WHOLE: [usize; 2] = [1, 6];

/// The findings table's header.
const HEADER: [&str; 8] = [
    "#",
    "time",
    "kind",
    "client → server",
    "request",
    "decided by",
    "idle",
    "frames",
];

/// The findings table, fitted to `width` columns: no line is wider, and no word is broken
/// unless a single word is wider than the whole table could make its column. `rows` are
/// the cells under [`HEADER`]. When the columns cannot hold their longest words side by
/// side (an 80-column terminal, long addresses), each finding is one cell of labelled lines
/// beside its number instead, as the HTML report stacks them on a phone.
fn findings_table(rows: &[Vec<String>], width: usize) -> Table {
    let cols = HEADER.len();
    // Borders (one more than the columns) and a column of padding either side of each.
    let available = width.saturating_sub(3 * cols + 1);
    let mut least = vec![0; cols];
    let header: Vec<String> = HEADER.iter().map(|h| h.to_string()).collect();
    let cells: Vec<Vec<String>> = std::iter::once(header)
        .chain(rows.iter().cloned())
        .collect();
    for row in &cells {
        for (i, cell) in row.iter().enumerate() {
            let unit = if KEEP_WHOLE.contains(&i) {
                wrap::width(cell)
            } else {
                wrap::longest_word(cell)
            };
            least[i] = least[i].max(unit);
        }
    }
    let mut table = Table::new();
    table
        .load_style(presets::UTF8_FULL_CONDENSED)
        // The cells are wrapped here; comfy-table only draws them.
        .set_content_arrangement(ContentArrangement::Disabled);
    match wrap::column_widths(&cells, &least, available) {
        Some(widths) => {
            let fit = |i: usize, text: &str| Cell::new(wrap::wrapped(text, widths[i], "", ""));
            table.set_header(HEADER.iter().enumerate().map(|(i, h)| fit(i, h)));
            for row in rows {
                table.add_row(row.iter().enumerate().map(|(i, c)| fit(i, c)));
            }
        }
        None => {
            let number = rows.len().to_string().len().max(1);
            // Two columns: the number, and the rest.
            let cell = width.saturating_sub(3 * 2 + 1 + number).max(1);
            table.set_header(vec![Cell::new("#"), Cell::new("finding")]);
            for row in rows {
                let [n, time, kind, tuple, request, by, idle, frames] = &row[..] else {
                    continue;
                };
                let mut lines = vec![format!("{kind} at {time}"), tuple.clone()];
                if request != "-" {
                    lines.push(format!("request {request}"));
                }
                lines.push(if idle == "-" {
                    format!("decided by {by}")
                } else {
                    format!("decided by {by}, idle {idle}")
                });
                lines.push(format!("frames {frames}"));
                let text: Vec<String> = lines
                    .iter()
                    .map(|l| wrap::wrapped(l, cell, "", "  "))
                    .collect();
                table.add_row(vec![Cell::new(n), Cell::new(text.join("\n"))]);
            }
        }
    }
    table
}

/// Renders the report.
pub fn render(a: &Analysis, names: &FrameNamer, opts: &TerminalOptions) -> String {
    let paint = Paint { on: opts.color };
    let width = opts.width.max(MIN_WIDTH) as usize;
    let mut out = String::new();
    // A paragraph: `text` wrapped to the width, the first line after `indent`, the others
    // after `hang`.
    let para = |out: &mut String, indent: &str, hang: &str, text: &str| {
        let _ = writeln!(out, "{}", wrap::wrapped(text, width, indent, hang));
    };
    let p = &a.packets;
    let n = &a.diagnosis.connections;
    let inputs: Vec<String> = a.inputs.iter().map(|i| escape::terminal(&i.path)).collect();
    let span = super::capture_span(a);
    let summary = format!(
        "{} {}: {}, {} TCP, {} ({}){}",
        paint.bold("resetscope"),
        if inputs.is_empty() {
            "live capture".to_string()
        } else {
            inputs.join(" + ")
        },
        super::frames_summary(a),
        words::count(p.tcp),
        words::things(n.total, "connection"),
        super::protocol_summary(n),
        span
    );
    para(&mut out, "", "  ", &summary);
    if let Some(k) = a.kernel {
        para(
            &mut out,
            "",
            "  ",
            &format!(
                "libpcap: {} received, {} dropped by the kernel, {} dropped by the interface",
                words::plural(k.received, "packet", "packets"),
                words::count(k.dropped),
                words::count(k.interface_dropped)
            ),
        );
    }
    para(&mut out, "", "", &headline(a));
    if let Some(s) = super::left_out::sentence(a) {
        para(&mut out, "", "", &escape::terminal(&s));
    }
    if opts.quiet {
        para(&mut out, "", "  ", &counts_line(a));
        return out;
    }
    for line in super::host_kernel_lines(a) {
        let _ = writeln!(out, "{line}");
    }
    out.push('\n');

    let first_ts = p.first_ts.unwrap_or_default();
    let shown: Vec<&Finding> = a
        .diagnosis
        .findings
        .iter()
        .filter(|f| opts.all || f.severity != Severity::Info)
        .collect();
    let listed = if opts.limit == 0 {
        shown.len()
    } else {
        shown.len().min(opts.limit)
    };
    if !shown.is_empty() {
        let rows: Vec<Vec<String>> = shown[..listed]
            .iter()
            .enumerate()
            .map(|(n, f)| {
                let request = f
                    .request
                    .as_ref()
                    .map(|r| {
                        format!(
                            "{} {} {}",
                            escape::terminal(&r.method),
                            escape::terminal_max(&r.target, 40),
                            names.name(r.frame)
                        )
                    })
                    .unwrap_or_else(|| "-".into());
                vec![
                    (n + 1).to_string(),
                    format!("+{:.3}s", f.time.since(first_ts).as_secs_f64()),
                    f.kind.name().to_string(),
                    format!("{} → {}", f.client, f.server),
                    request,
                    format!("{} {}", f.by.name(), names.name(f.close_frame)),
                    f.idle_ms.map(human_ms).unwrap_or_else(|| "-".into()),
                    names.list(&f.frames),
                ]
            })
            .collect();
        let _ = writeln!(out, "{}", paint.bold("Findings"));
        let _ = writeln!(out, "{}", findings_table(&rows, width));
        for (n, f) in shown[..listed].iter().enumerate() {
            let text = format!(
                "{} {}",
                paint.severity(f.severity, f.kind.name()),
                escape::terminal_max(&f.sentence, 1000)
            );
            para(&mut out, &format!("{:>3}. ", n + 1), "     ", &text);
        }
        // Every finding the table could show, kept in memory or not.
        let all: u64 = if opts.all {
            a.diagnosis.counts.values().sum()
        } else {
            super::problem_count(a)
        };
        if let Some(line) = not_listed(listed, shown.len(), all) {
            para(&mut out, "", "  ", &line);
            for line in super::unlisted_summary(&a.diagnosis.tally) {
                para(&mut out, "  ", "    ", &line);
            }
        }
    }
    let idle_closes = a
        .diagnosis
        .counts
        .get(&FindingKind::IdleClose)
        .copied()
        .unwrap_or(0);
    if idle_closes > 0 && !opts.all {
        para(
            &mut out,
            "",
            "  ",
            &format!(
                "{}; --all lists them.",
                super::idle_closes_not_listed(idle_closes, " (informational)")
            ),
        );
    }

    if !a.diagnosis.servers.is_empty() {
        out.push('\n');
        let _ = writeln!(out, "{}", paint.bold("Servers"));
        for s in &a.diagnosis.servers {
            let sum = super::server_summary(s);
            let est = match &sum.timeout {
                Some(t) => format!("closes idle connections after {t} ({})", sum.basis),
                None => "no idle closes seen".into(),
            };
            let announced = sum
                .announced
                .map(|a| format!("; announces Keep-Alive: timeout={a}"))
                .unwrap_or_default();
            let races = if s.idle_races > 0 {
                format!(
                    "; {}",
                    paint.severity(
                        Severity::Error,
                        &words::plural(s.idle_races, "idle race", "idle races")
                    )
                )
            } else {
                String::new()
            };
            para(
                &mut out,
                "  ",
                "    ",
                &format!("{}: {}{}{}", s.server, est, announced, races),
            );
            if let Some(r) = &s.recommendation {
                para(&mut out, "    → ", "      ", &escape::terminal_max(r, 2000));
            }
        }
    }

    if !a.diagnosis.proxies.is_empty() {
        out.push('\n');
        let _ = writeln!(out, "{}", paint.bold("Proxies"));
        for p in &a.diagnosis.proxies {
            let ups: Vec<String> = p.upstreams.iter().map(|u| u.to_string()).collect();
            let text = format!(
                "{} forwards to {} ({} seen forwarded): {} caused by upstream failures, {} retried by the proxy{}",
                p.proxy,
                ups.join(", "),
                words::plural(p.forwarded, "request", "requests"),
                words::plural(p.links.len() as u64, "client-visible failure", "client-visible failures"),
                words::plural(p.retried, "upstream race", "upstream races"),
                if p.unexplained > 0 {
                    format!(
                        ", {} no upstream failure explains",
                        words::plural(p.unexplained, "client-leg failure", "client-leg failures")
                    )
                } else {
                    String::new()
                }
            );
            para(&mut out, "  ", "    ", &text);
            let n = if opts.limit == 0 {
                p.links.len()
            } else {
                opts.limit.min(10)
            };
            for l in p.links.iter().take(n) {
                let text = format!(
                    "the {} to {} at {} followed the upstream {} at {} ({} → {}): {}",
                    l.client_outcome,
                    l.client,
                    names.name(l.client_frame),
                    l.upstream_kind.name(),
                    names.name(l.upstream_frame),
                    l.upstream_client,
                    l.upstream_server,
                    escape::terminal_max(&l.request, 80)
                );
                para(&mut out, "    ", "      ", &text);
            }
            if p.links.len() > n {
                para(
                    &mut out,
                    "    ",
                    "      ",
                    &format!(
                        "… and {} (--limit 0 lists all; the JSON has every one)",
                        words::plural((p.links.len() - n) as u64, "more link", "more links")
                    ),
                );
            }
            para(
                &mut out,
                "    → ",
                "      ",
                &escape::terminal_max(&p.recommendation, 2000),
            );
        }
    }

    if let Some(p) = &a.diagnosis.path {
        out.push('\n');
        let _ = writeln!(out, "{}", paint.bold("Resets from the path"));
        let servers: Vec<String> = p.servers.iter().map(|s| s.to_string()).collect();
        let text = format!(
            "{} whose TTL fits no other packet of the side {} claimed to come from, on connections to {}: most likely a firewall, NAT or load balancer on the path.",
            words::plural(p.resets, "RST", "RSTs"),
            if p.resets == 1 { "it" } else { "they" },
            servers.join(", ")
        );
        para(&mut out, "  ", "    ", &text);
        if let Some(s) = p.forgets_flows_idle_below_s {
            let text = format!(
                "It answered a packet with its own RST after {} of silence: it forgets flows idle for less than that{}. Keep connections through it busier than that (TCP keep-alive, or a client idle timeout below it).",
                human_ms(s * 1000.0),
                p.hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default()
            );
            para(&mut out, "    → ", "      ", &text);
        }
    }

    let cav = caveats(a);
    if !cav.is_empty() {
        out.push('\n');
        let _ = writeln!(out, "{}", paint.bold("Caveats"));
        for c in cav {
            para(
                &mut out,
                "  - ",
                "    ",
                &escape::terminal_max(&c.message, 400),
            );
        }
    }
    out
}

/// The counts of findings by kind, for `--quiet`: `Findings: 9 idle_race, 44 idle_close`,
/// or `Findings: none`.
fn counts_line(a: &Analysis) -> String {
    let mut kinds: Vec<(FindingKind, u64)> = a
        .diagnosis
        .counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| (*k, *n))
        .collect();
    kinds.sort_by_key(|(k, _)| (k.severity(), k.name()));
    if kinds.is_empty() {
        return "Findings: none".to_string();
    }
    let list: Vec<String> = kinds
        .iter()
        .map(|(k, n)| format!("{} {}", words::count(*n), k.name()))
        .collect();
    format!("Findings: {}", list.join(", "))
}

/// What the table leaves out, when it does: `listed` of the `kept` findings the analysis
/// kept in memory, of `all` there were.
fn not_listed(listed: usize, kept: usize, all: u64) -> Option<String> {
    let more = all.checked_sub(listed as u64).filter(|&m| m > 0)?;
    let how = if (kept as u64) < all {
        format!(
            "--limit 0 lists the {} kept in memory",
            words::count(kept as u64)
        )
    } else {
        "--limit 0 lists all".to_string()
    };
    Some(format!(
        "… and {} more ({how}, --format json has every one). All {}, listed or not:",
        words::count(more),
        words::count(all)
    ))
}

/// A finding on one line, in the report's words (live mode prints these as they happen).
pub fn finding_line(f: &Finding, names: &FrameNamer) -> String {
    let request = f
        .request
        .as_ref()
        .map(|r| {
            format!(
                " {} {} {}",
                escape::terminal(&r.method),
                escape::terminal_max(&r.target, 60),
                names.name(r.frame)
            )
        })
        .unwrap_or_default();
    format!(
        "{} {} {} → {}{}, {} {} {}: {}",
        words::time_of_day(f.time),
        f.kind.name(),
        f.client,
        f.server,
        request,
        f.by.name(),
        f.close_how(),
        names.name(f.close_frame),
        escape::terminal_max(&f.sentence, 1000)
    )
}

/// One sentence that says what matters most: the failed requests first (the idle races
/// per server, each with that server's own estimate), then the other failures, then the
/// resets that lost nothing. "No request was lost" is said only when no request failed and
/// no data was lost.
pub fn headline(a: &Analysis) -> String {
    if a.narrowed.is_some() && a.packets.matched == 0 && a.packets.frames > 0 {
        return "No frame is inside the time window and the filter given: nothing was analysed, so nothing is said of the capture.".to_string();
    }
    let d = &a.diagnosis;
    let count = |k: FindingKind| d.counts.get(&k).copied().unwrap_or(0);
    let plural = words::plural;
    let mut parts = Vec::new();
    let races = count(FindingKind::IdleRace);
    if races > 0 {
        let listed: Vec<&Finding> = d
            .findings
            .iter()
            .filter(|x| x.kind == FindingKind::IdleRace)
            .collect();
        let mut methods: Vec<&str> = listed
            .iter()
            .filter_map(|r| r.request.as_ref().map(|q| &*q.method))
            .collect();
        methods.sort_unstable();
        methods.dedup();
        let methods = methods
            .iter()
            .map(|m| escape::terminal_max(m, 16))
            .collect::<Vec<_>>()
            .join("/");
        let with_races: Vec<&crate::diagnose::estimate::ServerReport> =
            d.servers.iter().filter(|s| s.idle_races > 0).collect();
        let what = if methods.is_empty() {
            if races == 1 {
                "request".to_string()
            } else {
                "requests".to_string()
            }
        } else {
            format!(
                "{methods} {}",
                if races == 1 { "request" } else { "requests" }
            )
        };
        let note = |e: &crate::diagnose::estimate::Estimate| {
            e.tentative_note()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        };
        if let [s] = with_races[..] {
            let est = match &s.idle_timeout {
                Some(e) => format!(
                    " closes idle connections after ~{}{}",
                    human_ms(e.median_ms),
                    note(e)
                ),
                None => " was closing idle connections".to_string(),
            };
            parts.push(format!(
                "{} {what} failed {}: the server at {}{est}, and the client reused {} at that moment",
                words::count(races),
                words::agree(races, "in a keep-alive idle race", "in keep-alive idle races"),
                s.server,
                words::agree(races, "a connection", "connections")
            ));
        } else {
            let mut per: Vec<String> = with_races
                .iter()
                .take(3)
                .map(|s| {
                    let est = s
                        .idle_timeout
                        .as_ref()
                        .map(|e| format!(" (idle timeout ~{}{})", human_ms(e.median_ms), note(e)))
                        .unwrap_or_default();
                    format!("{} with {}{est}", words::count(s.idle_races), s.server)
                })
                .collect();
            if with_races.len() > 3 {
                per.push(format!(
                    "and {} with {}",
                    words::count(
                        races - with_races.iter().take(3).map(|s| s.idle_races).sum::<u64>()
                    ),
                    words::plural((with_races.len() - 3) as u64, "more server", "more servers")
                ));
            }
            parts.push(format!(
                "{} {what} failed in keep-alive idle races, reused as each server closed them: {}",
                words::count(races),
                per.join(", ")
            ));
        }
    }
    for p in d
        .proxies
        .iter()
        .filter(|p| !p.links.is_empty() || p.retried > 0)
    {
        let mut what: Vec<&str> = p.links.iter().map(|l| l.client_outcome.as_str()).collect();
        what.sort_unstable();
        what.dedup();
        parts.push(format!(
            "the client that reused them is the proxy at {}: its own clients saw {} of the upstream failures (as {}){}",
            p.proxy,
            words::count(p.links.len() as u64),
            what.join(" or "),
            if p.retried > 0 {
                format!(", and it retried {} itself", words::count(p.retried))
            } else {
                String::new()
            }
        ));
    }
    for (k, one, many) in [
        (
            FindingKind::ClosedWithoutResponse,
            "request was closed without a response",
            "requests were closed without a response",
        ),
        (
            FindingKind::ResetInFlight,
            "request was reset while waiting for its response",
            "requests were reset while waiting for their response",
        ),
        (
            FindingKind::ResetMidResponse,
            "response was cut short by a reset",
            "responses were cut short by a reset",
        ),
        (
            FindingKind::LostData,
            "connection lost data the peer never acknowledged",
            "connections lost data the peer never acknowledged",
        ),
    ] {
        let n = count(k);
        if n > 0 {
            parts.push(plural(n, one, many));
        }
    }
    if !parts.is_empty() {
        let mut s = parts.join("; ");
        s.push('.');
        return crate::diagnose::finding::capitalise(&s);
    }
    let (refused, timeouts, aborts, rac) = (
        count(FindingKind::Refused),
        count(FindingKind::ConnectTimeout),
        count(FindingKind::Abort),
        count(FindingKind::ResetAfterClose),
    );
    if d.connections.failed_requests > 0 {
        return format!(
            "{} failed (no complete response) without a finding that explains it; see the connections.",
            plural(d.connections.failed_requests, "request", "requests")
        );
    }
    // "No request was lost" only where nothing went unseen.
    let mut unseen = Vec::new();
    if d.connections.one_sided > 0 {
        unseen.push(format!(
            "{} captured in one direction only",
            plural(
                d.connections.one_sided,
                "connection was",
                "connections were"
            )
        ));
    }
    if a.flows.late_packets > 0 {
        unseen.push(format!(
            "{} came after their connections were released and were not analysed",
            plural(a.flows.late_packets, "packet", "packets")
        ));
    }
    if !unseen.is_empty() {
        return format!(
            "No finding of a lost request, but the capture cannot show them all: {} (see the caveats).",
            unseen.join("; ")
        );
    }
    if refused + timeouts + aborts + rac > 0 {
        let mut what = Vec::new();
        for (n, one, many) in [
            (refused, "refused connection", "refused connections"),
            (timeouts, "connect timeout", "connect timeouts"),
            (aborts, "abort", "aborts"),
            (rac, "reset after close", "resets after close"),
        ] {
            if n > 0 {
                what.push(plural(n, one, many));
            }
        }
        return format!("No request was lost: {}.", what.join(", "));
    }
    "No resets and no failed requests.".to_string()
}

#[cfg(test)]
mod tests {
    use super::not_listed;

    #[test]
    fn the_line_on_findings_not_listed_says_what_is_true() {
        // Every finding listed, though informational ones were not kept: nothing to say.
        assert_eq!(not_listed(1659, 1659, 1659), None);
        assert_eq!(not_listed(9, 9, 9), None);
        assert_eq!(
            not_listed(2, 9, 9).as_deref(),
            Some("… and 7 more (--limit 0 lists all, --format json has every one). All 9, listed or not:")
        );
        // More than memory kept: --limit 0 cannot list them all, and says so.
        assert_eq!(
            not_listed(50, 5000, 306913).as_deref(),
            Some("… and 306,863 more (--limit 0 lists the 5,000 kept in memory, --format json has every one). All 306,913, listed or not:")
        );
    }
}
