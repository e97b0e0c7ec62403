//! Packet ladders: the last packets of a connection, client on the left, server on the
//! right, as text (for Markdown and terminals) and as an SVG sequence diagram (for HTML).
//! Long silences are drawn compressed, with their duration written in.

use super::evidence::{Ladder, LadderRow};
use super::FrameNamer;
use crate::diagnose::{Finding, RequestRef};
use crate::escape;
use crate::flows::Side;
use crate::time::Nanos;
use std::fmt::Write;
use std::net::SocketAddr;

/// A pause at least this long is drawn as an idle gap.
const IDLE_GAP: Nanos = Nanos(50_000_000);

/// What a row is, for highlighting.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Role {
    Request,
    Fin,
    Rst,
    Plain,
}

fn role(row: &LadderRow, request: Option<&RequestRef>) -> Role {
    if row.is_rst() {
        Role::Rst
    } else if request.is_some_and(|r| r.frame == row.frame) {
        Role::Request
    } else if row.is_fin() {
        Role::Fin
    } else {
        Role::Plain
    }
}

fn numbers(row: &LadderRow) -> String {
    let mut s = format!("seq={}", row.seq);
    if let Some(a) = row.ack {
        let _ = write!(s, " ack={a}");
    }
    if row.len > 0 {
        let _ = write!(s, " len={}", row.len);
    }
    s
}

fn note(row: &LadderRow, request: Option<&RequestRef>) -> String {
    match role(row, request) {
        Role::Request => {
            let r = request.expect("request role");
            format!(
                "◀ the request{}",
                if r.idempotent {
                    ""
                } else {
                    " (not idempotent)"
                }
            )
        }
        Role::Fin => format!("◀ {} closes (FIN)", row.from.name()),
        Role::Rst => format!("◀ {} resets (RST)", row.from.name()),
        Role::Plain => String::new(),
    }
}

/// Captured text inside a fenced code block: no control characters, and no backticks or
/// tildes that could close the fence.
fn fenced(s: &str) -> String {
    escape::terminal(s)
        .replace('`', "\\x60")
        .replace('~', "\\x7e")
}

/// The ladder of a finding as fixed-width text, for a fenced code block.
pub fn text(ladder: &Ladder, f: &Finding, names: &FrameNamer) -> String {
    text_of(ladder, (f.client, f.server), f.request.as_ref(), names)
}

/// The ladder of a connection between `ends` (client, server) as fixed-width text, the
/// row of `request` marked.
pub fn text_of(
    ladder: &Ladder,
    ends: (SocketAddr, SocketAddr),
    request: Option<&RequestRef>,
    names: &FrameNamer,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>8}  {:>10}  client {} / server {}",
        "frame", "time", ends.0, ends.1
    );
    if ladder.omitted > 0 {
        let _ = writeln!(
            out,
            "{:>8}  ({} not shown)",
            "…",
            super::words::plural(ladder.omitted, "earlier packet", "earlier packets")
        );
    }
    let Some(first) = ladder.rows.first() else {
        return out;
    };
    let mut prev = first.ts;
    for row in &ladder.rows {
        let dt = row.ts.since(prev);
        if dt >= IDLE_GAP {
            let _ = writeln!(out, "{:>8}  {:>10}  ⋯ {} idle ⋯", "", "", dt);
        }
        prev = row.ts;
        let arrow = match row.from {
            Side::Client => "client ──> server",
            Side::Server => "client <── server",
        };
        let t = row.ts.since(first.ts).as_secs_f64();
        let line = format!(
            "{:>8}  {:>+10.6}  {arrow}  {:<8} {:<30} {} {}",
            names.name_with(row.frame, fenced),
            t,
            row.flag_names(),
            numbers(row),
            fenced(&row.summary),
            note(row, request)
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// The ladder as an SVG sequence diagram (self-contained, no script).
pub fn svg(ladder: &Ladder, f: &Finding, names: &FrameNamer) -> String {
    const W: i32 = 760;
    const CLIENT_X: i32 = 250;
    const SERVER_X: i32 = 650;
    const ROW: i32 = 34;
    const GAP: i32 = 28;
    const TOP: i32 = 58;
    // Lay rows out top to bottom; a long pause becomes a fixed-height gap band.
    let mut y = TOP;
    let mut items: Vec<(i32, Option<&LadderRow>, Option<Nanos>)> = Vec::new();
    let mut prev = ladder.rows.first().map(|r| r.ts);
    for row in &ladder.rows {
        let dt = prev.map(|p| row.ts.since(p)).unwrap_or_default();
        if dt >= IDLE_GAP {
            items.push((y, None, Some(dt)));
            y += GAP;
        }
        prev = Some(row.ts);
        items.push((y, Some(row), None));
        y += ROW;
    }
    let height = y + 10;
    let first_ts = ladder.rows.first().map(|r| r.ts).unwrap_or_default();
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="ladder" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height}" width="{W}" height="{height}" role="img" aria-label="packet ladder of connection {}">"#,
        f.connection
    );
    s.push_str(r#"<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="context-stroke"/></marker></defs>"#);
    let _ = write!(
        s,
        r#"<text x="{CLIENT_X}" y="18" class="end">client</text><text x="{CLIENT_X}" y="34" class="addr">{}</text><text x="{SERVER_X}" y="18" class="end">server</text><text x="{SERVER_X}" y="34" class="addr">{}</text>"#,
        escape::html(&f.client.to_string()),
        escape::html(&f.server.to_string())
    );
    let _ = write!(
        s,
        r#"<line x1="{CLIENT_X}" y1="42" x2="{CLIENT_X}" y2="{height}" class="life"/><line x1="{SERVER_X}" y1="42" x2="{SERVER_X}" y2="{height}" class="life"/>"#
    );
    if ladder.omitted > 0 {
        let _ = write!(
            s,
            r#"<text x="10" y="50" class="meta">… {}</text>"#,
            super::words::plural(ladder.omitted, "earlier packet", "earlier packets")
        );
    }
    for (y, row, gap) in items {
        if let Some(dt) = gap {
            let mid = y + GAP / 2;
            let _ = write!(
                s,
                r#"<rect x="{}" y="{}" width="{}" height="{}" class="gapband"/><text x="{}" y="{}" class="gap">≈ {} idle</text>"#,
                CLIENT_X - 30,
                y + 4,
                SERVER_X - CLIENT_X + 60,
                GAP - 8,
                (CLIENT_X + SERVER_X) / 2,
                mid + 4,
                escape::html(&dt.to_string())
            );
            continue;
        }
        let Some(row) = row else { continue };
        let class = match role(row, f.request.as_ref()) {
            Role::Request => "req",
            Role::Fin => "fin",
            Role::Rst => "rst",
            Role::Plain => "pkt",
        };
        let (x1, x2) = match row.from {
            Side::Client => (CLIENT_X, SERVER_X),
            Side::Server => (SERVER_X, CLIENT_X),
        };
        let label = if row.summary.is_empty() {
            format!("{}  {}", row.flag_names(), numbers(row))
        } else {
            format!("{}  {}  {}", row.flag_names(), row.summary, numbers(row))
        };
        let _ = write!(
            s,
            r#"<g class="{class}"><text x="10" y="{}" class="frame">{}</text><text x="10" y="{}" class="meta">+{:.6} s</text><line x1="{x1}" y1="{}" x2="{x2}" y2="{}" marker-end="url(#arrow)"/><text x="{}" y="{}" class="label">{}</text></g>"#,
            y + 12,
            names.name_with(row.frame, escape::html),
            y + 26,
            row.ts.since(first_ts).as_secs_f64(),
            y + 16,
            y + 26,
            (CLIENT_X + SERVER_X) / 2,
            y + 12,
            escape::html(&label)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::FrameRef;
    use crate::time::Timestamp;

    /// A payload's summary is captured text: the ladder escapes it once, so a captured
    /// backslash shows as `\\` (not `\\\\`) and ESC as `\x1b`, and a backtick cannot close the
    /// fence.
    #[test]
    fn captured_text_in_a_ladder_is_escaped_once() {
        let row = LadderRow {
            frame: FrameRef { file: 0, number: 4 },
            ts: Timestamp(0),
            from: Side::Client,
            flags: 0x18,
            seq: 1,
            ack: Some(1),
            len: 24,
            summary: "GET /a\\b\u{1b}[2J`x".into(),
        };
        let ladder = Ladder {
            rows: vec![row],
            omitted: 0,
        };
        let names = FrameNamer::new(&[std::path::PathBuf::from("c.pcap")]);
        let ends = (
            "10.0.0.1:40000".parse().unwrap(),
            "10.0.0.2:80".parse().unwrap(),
        );
        let text = text_of(&ladder, ends, None, &names);
        assert!(text.contains(r"GET /a\\b\x1b[2J\x60x"), "{text}");
    }
}
