//! Stage 6, report: the analysis rendered for people and programs.
//!
//! - [`terminal`]: the default; a summary line, the findings table (`comfy-table`), the
//!   per-server idle-timeout estimates with recommendations, and the caveats.
//! - [`json`]: one JSON document (schema in `docs/json-schema.md`), connection records
//!   streamed out as they are released so memory stays bounded.
//! - [`ndjson`]: one JSON object per line (connections, findings, a summary) for log
//!   shippers and databases (`docs/ndjson.md`), written as they come.
//! - [`markdown`] and [`html`]: reports for tickets, with the evidence of each finding (a
//!   packet [`ladder`] gathered by a second, filtered pass over the inputs, see
//!   [`evidence`]) and, in HTML, a [`timeline`] of resets.
//!
//! - [`words`]: what they all say counts, durations and times with: plurals, thousands
//!   separators, `3 d 12 h 34 min`, `… UTC`; [`wrap`]: the terminal report's line breaks.
//!
//! Captured text is always passed through [`crate::escape`].

pub mod caveats;
pub mod connection;
pub mod evidence;
pub mod html;
pub mod json;
pub mod json_items;
pub mod ladder;
pub mod left_out;
pub mod markdown;
pub mod ndjson;
pub mod pcap_writer;
pub mod pcapng_writer;
pub mod targets;
pub mod terminal;
pub mod timeline;
pub mod words;
pub mod wrap;

use crate::diagnose::{Finding, FindingKind, Severity};
use crate::pipeline::Analysis;
use crate::source::FrameRef;
use rustc_hash::FxHashMap;
use std::path::{Path, PathBuf};

/// Everything a report for a ticket shows: the analysis, the packets behind its findings and
/// the reset timeline.
pub struct TicketReport<'a> {
    /// The analysis.
    pub analysis: &'a Analysis,
    /// How frames are named.
    pub names: &'a FrameNamer,
    /// Packet ladders by connection id.
    pub ladders: &'a FxHashMap<u64, evidence::Ladder>,
    /// Resets per second.
    pub timeline: &'a timeline::ResetTimeline,
    /// What the report is about (the capture's file names).
    pub title: String,
    /// Most findings listed (0 = all).
    pub limit: usize,
}

/// What the findings not listed add up to: per minute of capture time, as a sparkline,
/// and the client networks with the most (the servers follow in their own section), as
/// lines of plain text.
pub fn unlisted_summary(t: &crate::diagnose::tally::Tally) -> Vec<String> {
    let mut out = Vec::new();
    let (Some((&first, _)), Some((&last, _))) = (
        t.per_minute.first_key_value(),
        t.per_minute.last_key_value(),
    ) else {
        return out;
    };
    let minutes = ((last - first) / 60 + 1) as usize;
    // At most 60 columns: several minutes a column for a long capture.
    let per_column = minutes.div_ceil(60);
    let mut columns = vec![0u64; minutes.div_ceil(per_column)];
    for (&m, &n) in &t.per_minute {
        columns[((m - first) / 60) as usize / per_column] += n;
    }
    let peak = columns.iter().copied().max().unwrap_or(0).max(1);
    let bars: String = columns
        .iter()
        .map(|&n| match n {
            0 => '·',
            n => ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'][((n * 8 - 1) / peak).min(7) as usize],
        })
        .collect();
    let at = |secs: i64| {
        chrono::DateTime::from_timestamp(secs, 0)
            .map(|d| d.format("%H:%M").to_string())
            .unwrap_or_default()
    };
    let peak_at = columns.iter().position(|&n| n == peak).unwrap_or(0) as i64;
    let unit = if per_column == 1 {
        "minute".to_string()
    } else {
        format!("{per_column} minutes")
    };
    out.push(format!(
        "per {unit}, {}–{} UTC: {bars} (peak {} at {})",
        at(first),
        at(last + 60),
        words::count(peak),
        at(first + peak_at * per_column as i64 * 60)
    ));
    let top = t.top_networks(5);
    if !top.is_empty() {
        let nets = t.per_network.len() + (t.other_networks > 0) as usize;
        let list: Vec<String> = top
            .iter()
            .map(|(k, n)| format!("{k} {}", words::count(*n)))
            .collect();
        out.push(format!(
            "by client network: {}{}",
            list.join(", "),
            if nets > top.len() {
                format!(" (of {} networks)", words::count(nets as u64))
            } else {
                String::new()
            }
        ));
    }
    out
}

/// `the first finding is` / `the first 50 findings are`: the subject of the line that says
/// a report lists only some of the findings.
pub fn first_listed(n: usize) -> String {
    if n == 1 {
        "the first finding is".to_string()
    } else {
        format!("the first {} findings are", words::count(n as u64))
    }
}

/// `1 idle close (informational…) is not listed` / `44 idle closes … are not listed`:
/// the words around the count of idle closes the reports leave out; `what` goes after the
/// noun.
pub fn idle_closes_not_listed(n: u64, what: &str) -> String {
    format!(
        "{}{what} {} not listed",
        words::plural(n, "idle close", "idle closes"),
        words::agree(n, "is", "are")
    )
}

/// How many findings other than idle closes there are, listed or not.
pub fn problem_count(a: &Analysis) -> u64 {
    a.diagnosis
        .counts
        .iter()
        .filter(|(k, _)| **k != FindingKind::IdleClose)
        .map(|(_, n)| n)
        .sum()
}

/// The findings a report lists: every one but the informational idle closes, up to `limit`
/// (0 = all).
pub fn listed_findings(a: &Analysis, limit: usize) -> Vec<&Finding> {
    let all = a
        .diagnosis
        .findings
        .iter()
        .filter(|f| f.severity != Severity::Info);
    match limit {
        0 => all.collect(),
        n => all.take(n).collect(),
    }
}

/// `; 2026-11-20 22:28:49.123 UTC + 27.1 s`: when the capture starts and how long it runs.
pub fn capture_span(a: &Analysis) -> String {
    match (a.packets.first_ts, a.packets.last_ts) {
        (Some(f), Some(l)) => format!("; {} + {}", words::wall_clock(f), l.since(f)),
        _ => String::new(),
    }
}

/// What the connections spoke: `53 HTTP, 99 requests`, `35 TLS, 41 requests over TLS`,
/// with the connections whose protocol was not followed.
pub fn protocol_summary(n: &crate::diagnose::ConnectionCounts) -> String {
    use words::{count, plural};
    let mut parts = Vec::new();
    if n.http > 0 || (n.tls == 0 && n.http2 == 0) {
        parts.push(format!(
            "{} HTTP, {}",
            count(n.http),
            plural(n.http_requests, "request", "requests")
        ));
    }
    if n.tls > 0 {
        parts.push(format!(
            "{} TLS, {} over TLS",
            count(n.tls),
            plural(n.tls_requests, "request", "requests")
        ));
    }
    if n.http2 > 0 {
        parts.push(format!(
            "{} HTTP/2, {}",
            count(n.http2),
            plural(n.http2_streams, "stream", "streams")
        ));
    }
    if n.not_followed > 0 {
        parts.push(format!("{} not followed", count(n.not_followed)));
    }
    parts.join("; ")
}

/// What every report says of a server, as plain text for each format to decorate.
pub struct ServerSummary {
    /// The estimated idle timeout (`~301 ms`), if the server closed idle connections.
    pub timeout: Option<String>,
    /// What the estimate rests on (`median of 53 closes; 300 ms–302 ms`).
    pub basis: String,
    /// The `Keep-Alive: timeout` values it announced (`5`, or `1,5`), if any.
    pub announced: Option<String>,
}

/// Summarises one server's estimate.
pub fn server_summary(s: &crate::diagnose::estimate::ServerReport) -> ServerSummary {
    use crate::diagnose::estimate::human_ms;
    let (timeout, basis) = match &s.idle_timeout {
        Some(e) => (
            Some(format!("~{}", human_ms(e.median_ms))),
            match e.tentative_note() {
                Some(note) => format!(
                    "{note}; {}",
                    if e.observations == 1 {
                        human_ms(e.min_ms)
                    } else {
                        format!("{}–{}", human_ms(e.min_ms), human_ms(e.max_ms))
                    }
                ),
                None => format!(
                    "median of {}; {}–{}",
                    words::plural(e.observations, "close", "closes"),
                    human_ms(e.min_ms),
                    human_ms(e.max_ms)
                ),
            },
        ),
        None => (None, String::new()),
    };
    let announced = (!s.announced_keep_alive_timeout_s.is_empty()).then(|| {
        s.announced_keep_alive_timeout_s
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(",")
    });
    ServerSummary {
        timeout,
        basis,
        announced,
    }
}

impl TicketReport<'_> {
    /// The findings listed (see [`listed_findings`]).
    pub fn findings(&self) -> Vec<&Finding> {
        listed_findings(self.analysis, self.limit)
    }
}

/// Names frames for people: `#123` with one input file, `rot-2.pcap#123` with several.
#[derive(Clone, Debug, Default)]
pub struct FrameNamer {
    files: Vec<String>,
}

impl FrameNamer {
    /// For the given input paths.
    pub fn new(paths: &[PathBuf]) -> FrameNamer {
        FrameNamer {
            files: paths.iter().map(|p| file_name(p)).collect(),
        }
    }

    /// `#N`, or `FILE#N` when there are several files, the file name escaped for a
    /// terminal.
    pub fn name(&self, f: FrameRef) -> String {
        self.name_with(f, crate::escape::terminal)
    }

    /// `#N`, or `FILE#N` with the file name escaped by `escape` (a function of
    /// [`crate::escape`]: file names are as hostile as captured text).
    pub fn name_with(&self, f: FrameRef, escape: fn(&str) -> String) -> String {
        if self.files.len() > 1 {
            let file = self
                .files
                .get(f.file as usize)
                .map(String::as_str)
                .unwrap_or("?");
            format!("{}#{}", escape(file), f.number)
        } else {
            format!("#{}", f.number)
        }
    }

    /// Several frames, comma-separated.
    pub fn list(&self, frames: &[FrameRef]) -> String {
        self.list_with(frames, crate::escape::terminal)
    }

    /// Several frames, comma-separated, file names escaped by `escape`.
    pub fn list_with(&self, frames: &[FrameRef], escape: fn(&str) -> String) -> String {
        frames
            .iter()
            .map(|f| self.name_with(*f, escape))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

/// The frames read, and when the analysis was narrowed (`--since`, `--until`, a filter), how
/// many of them it took: `636 frames` or `636 frames (113 analysed)`.
pub fn frames_summary(a: &Analysis) -> String {
    let read = words::things(a.packets.frames, "frame");
    match &a.narrowed {
        Some(_) => format!("{read} ({} analysed)", words::count(a.packets.matched)),
        None => read,
    }
}

/// A Wireshark display filter that isolates the finding's connection, e.g.
/// `ip.addr == 127.0.0.1 && tcp.port == 54198 && tcp.port == 9000 && frame.number in
/// {12..19}` (a set with a range, Wireshark 3.6 and later; no `<` or `>`, which Markdown
/// and HTML would have to escape). The addresses and ports alone would also match later
/// connections that reuse them, so the filter pins the connection by its first and last
/// frames, or by their times when they are in different files of a set (frame numbers
/// start again in each file).
pub fn wireshark_filter(f: &crate::diagnose::Finding) -> String {
    connection_filter(f.client, f.server, f.span.0, f.span.1)
}

/// [`wireshark_filter`] for the connection between `client` and `server` whose first and
/// last packets are `first` and `last`.
pub fn connection_filter(
    client: std::net::SocketAddr,
    server: std::net::SocketAddr,
    first: crate::app::Mark,
    last: crate::app::Mark,
) -> String {
    let pin = if first.frame.file == last.frame.file {
        format!(
            "frame.number in {{{}..{}}}",
            first.frame.number, last.frame.number
        )
    } else {
        format!(
            "frame.time_epoch in {{{}..{}}}",
            epoch(first.ts),
            epoch(last.ts)
        )
    };
    format!("{} && {pin}", tuple_filter(client, server))
}

/// Seconds since the epoch with nine decimals, as Wireshark's `frame.time_epoch` takes them.
fn epoch(t: crate::time::Timestamp) -> String {
    let sign = if t.0 < 0 { "-" } else { "" };
    let ns = t.0.unsigned_abs();
    format!("{sign}{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000)
}

/// The part of [`wireshark_filter`] that names the addresses and ports.
fn tuple_filter(client: std::net::SocketAddr, server: std::net::SocketAddr) -> String {
    let field = if client.is_ipv4() {
        "ip.addr"
    } else {
        "ipv6.addr"
    };
    let addrs = if client.ip() == server.ip() {
        format!("{field} == {}", client.ip())
    } else {
        format!("{field} == {} && {field} == {}", client.ip(), server.ip())
    };
    let ports = if client.port() == server.port() {
        format!("tcp.port == {}", client.port())
    } else {
        format!(
            "tcp.port == {} && tcp.port == {}",
            client.port(),
            server.port()
        )
    };
    format!("{addrs} && {ports}")
}

/// The host kernel's part of a report, one line each: the reasons the kernel gave for the
/// RSTs (and where they come from) and the change of its counters over a live capture.
/// Empty when nothing is known. Plain text: the names and words are the kernel's and ours.
pub fn host_kernel_lines(a: &Analysis) -> Vec<String> {
    let Some(k) = &a.host_kernel else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(from) = k.reasons_from {
        let from = match from {
            "tracefs" => "read from tracefs as they happened",
            _ => "read from the capture's packet comments",
        };
        if k.resets.is_empty() {
            out.push(format!("kernel reset reasons ({from}): no RST on the wire"));
        } else {
            out.push(format!("kernel reset reasons ({from}):"));
            for r in &k.resets {
                let name = match r.reason.event {
                    crate::kernel::reason::KernelEvent::Sent => {
                        format!(
                            "{} {}",
                            r.reason.event.name(),
                            r.reason.name().unwrap_or("OTHER")
                        )
                    }
                    crate::kernel::reason::KernelEvent::Received => "tcp_receive_reset".into(),
                    crate::kernel::reason::KernelEvent::NotSent => "no tcp_send_reset".into(),
                };
                out.push(format!(
                    "  {} RST{} {name}: {}",
                    r.rsts,
                    if r.rsts == 1 { "" } else { "s" },
                    r.reason.meaning()
                ));
            }
        }
    }
    if !k.counters.is_empty() {
        out.push(
            "kernel TCP counters over the capture (/proc/net/netstat, the whole host):".into(),
        );
        for c in &k.counters {
            out.push(format!("  {} +{}: {}", c.name, c.change, c.meaning));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn wireshark_filters() {
        assert_eq!(
            super::tuple_filter(
                "10.0.0.1:54198".parse().unwrap(),
                "10.0.0.5:8080".parse().unwrap()
            ),
            "ip.addr == 10.0.0.1 && ip.addr == 10.0.0.5 && tcp.port == 54198 && tcp.port == 8080"
        );
        assert_eq!(
            super::tuple_filter(
                "[::1]:40000".parse().unwrap(),
                "[::1]:9000".parse().unwrap()
            ),
            "ipv6.addr == ::1 && tcp.port == 40000 && tcp.port == 9000"
        );
        assert_eq!(
            super::epoch(crate::time::Timestamp(1_732_141_729_000_000_042)),
            "1732141729.000000042"
        );
        assert_eq!(super::epoch(crate::time::Timestamp(-1)), "-0.000000001");
    }
}
