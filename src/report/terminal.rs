//! The default report, for a person at a terminal: what happened in one screen.

use super::caveats::caveats;
use super::FrameNamer;
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
    /// Table width in columns.
    pub width: u16,
    /// Also list informational findings (idle closes).
    pub all: bool,
    /// Most findings listed (0 = all).
    pub limit: usize,
}

impl Default for TerminalOptions {
    fn default() -> Self {
        TerminalOptions {
            color: false,
            width: 120,
            all: false,
            limit: 50,
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

/// Renders the report.
pub fn render(a: &Analysis, names: &FrameNamer, opts: &TerminalOptions) -> String {
    let paint = Paint { on: opts.color };
    let mut out = String::new();
    let p = &a.packets;
    let n = &a.diagnosis.connections;
    let inputs: Vec<String> = a.inputs.iter().map(|i| escape::terminal(&i.path)).collect();
    let span = super::capture_span(a);
    let _ = writeln!(
        out,
        "{} {}: {} frames, {} TCP, {} connections ({} HTTP, {} requests){}",
        paint.bold("resetscope"),
        if inputs.is_empty() {
            "live capture".to_string()
        } else {
            inputs.join(" + ")
        },
        p.frames,
        p.tcp,
        n.total,
        n.http,
        n.http_requests,
        span
    );
    if let Some(k) = a.kernel {
        let _ = writeln!(
            out,
            "libpcap: {} packets received, {} dropped by the kernel, {} dropped by the interface",
            k.received, k.dropped, k.interface_dropped
        );
    }
    let _ = writeln!(out, "{}", headline(a));
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
        let mut table = Table::new();
        table
            .load_style(presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(opts.width)
            .set_header(vec![
                "#",
                "time",
                "kind",
                "client → server",
                "request",
                "closed by",
                "idle",
                "frames",
            ]);
        for (n, f) in shown[..listed].iter().enumerate() {
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
            let close = format!("{} {}", f.by.name(), names.name(f.close_frame));
            table.add_row(vec![
                Cell::new(n + 1),
                Cell::new(format!("+{:.3}s", f.time.since(first_ts).as_secs_f64())),
                Cell::new(f.kind.name()),
                Cell::new(format!("{} → {}", f.client, f.server)),
                Cell::new(request),
                Cell::new(close),
                Cell::new(f.idle_ms.map(human_ms).unwrap_or_else(|| "-".into())),
                Cell::new(names.list(&f.frames)),
            ]);
        }
        let _ = writeln!(out, "{}", paint.bold("Findings"));
        let _ = writeln!(out, "{table}");
        for (n, f) in shown[..listed].iter().enumerate() {
            let _ = writeln!(
                out,
                "{:>3}. {} {}",
                n + 1,
                paint.severity(f.severity, f.kind.name()),
                escape::terminal_max(&f.sentence, 1000)
            );
        }
        if listed < shown.len() {
            let _ = writeln!(
                out,
                "… and {} more (--limit 0 lists all, --format json has every one)",
                shown.len() - listed
            );
        }
    }
    let idle_closes = a
        .diagnosis
        .counts
        .get(&FindingKind::IdleClose)
        .copied()
        .unwrap_or(0);
    if idle_closes > 0 && !opts.all {
        let _ = writeln!(
            out,
            "{idle_closes} idle closes (informational) not listed; --all lists them."
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
                paint.severity(Severity::Error, &format!("; {} idle races", s.idle_races))
            } else {
                String::new()
            };
            let _ = writeln!(out, "  {}: {}{}{}", s.server, est, announced, races);
            if let Some(r) = &s.recommendation {
                let _ = writeln!(out, "    → {r}");
            }
        }
    }

    let cav = caveats(a);
    if !cav.is_empty() {
        out.push('\n');
        let _ = writeln!(out, "{}", paint.bold("Caveats"));
        for c in cav {
            let _ = writeln!(out, "  - {}", escape::terminal_max(&c.message, 400));
        }
    }
    out
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
        f.time.to_datetime().format("%H:%M:%S%.3f"),
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

/// One sentence that says what matters most.
pub fn headline(a: &Analysis) -> String {
    let f = &a.diagnosis.findings;
    let count = |k: FindingKind| a.diagnosis.counts.get(&k).copied().unwrap_or(0);
    let races: Vec<&Finding> = f
        .iter()
        .filter(|x| x.kind == FindingKind::IdleRace)
        .collect();
    if !races.is_empty() {
        let mut methods: Vec<&str> = races
            .iter()
            .filter_map(|r| r.request.as_ref().map(|q| q.method.as_str()))
            .collect();
        methods.sort_unstable();
        methods.dedup();
        let methods = methods
            .iter()
            .map(|m| escape::terminal_max(m, 16))
            .collect::<Vec<_>>()
            .join("/");
        let server = races[0].server;
        let est = a
            .diagnosis
            .servers
            .iter()
            .find(|s| s.server == server)
            .and_then(|s| s.idle_timeout.as_ref())
            .map(|e| format!(" after ~{}", human_ms(e.median_ms)))
            .unwrap_or_default();
        let more_servers = races.iter().any(|r| r.server != server);
        let n = count(FindingKind::IdleRace);
        return format!(
            "{} {} request{} failed in keep-alive idle races: the server at {}{} closes idle connections{}, and the client reused connections at that moment.",
            n,
            methods,
            if n == 1 { "" } else { "s" },
            server,
            if more_servers { " (and others)" } else { "" },
            est
        );
    }
    let rif = count(FindingKind::ResetInFlight);
    if rif > 0 {
        return format!("{rif} requests were cut by a reset while waiting for their response.");
    }
    let (refused, aborts, rac) = (
        count(FindingKind::Refused),
        count(FindingKind::Abort),
        count(FindingKind::ResetAfterClose),
    );
    if refused + aborts + rac > 0 {
        return format!("No request was lost: {refused} refused connections, {aborts} aborts, {rac} resets after close.");
    }
    "No resets and no failed requests.".to_string()
}
