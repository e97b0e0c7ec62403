//! `analyze --connection ID|IP:PORT`: one connection in full.
//!
//! The whole capture is analysed as usual (connection ids are given in order of first
//! packet, so they are the same as in the JSON and NDJSON reports); a sink keeps the record
//! and the findings of the connection asked for, and a second pass reads its packets back.

use super::report::{second_pass_inputs, Evidence};
use super::{open_output, Format, ReportArgs};
use anyhow::{bail, Context, Result};
use resetscope::diagnose::{ConnectionRecord, Finding};
use resetscope::pipeline::{Analysis, Sink};
use resetscope::report::connection::{self, ConnectionView};
use resetscope::report::evidence::{self, Target};
use resetscope::report::pcap_writer::Shape;
use resetscope::report::FrameNamer;
use resetscope::time::Timestamp;
use std::io::Write;
use std::net::SocketAddr;

/// Which connection: its id, or an endpoint of it.
#[derive(Clone, Copy, Debug)]
pub enum Spec {
    /// `connections[].id` of the JSON report.
    Id(u64),
    /// The client's or the server's address and port.
    Endpoint(SocketAddr),
}

impl Spec {
    /// Reads `12`, `10.0.0.5:54110` or `[2001:db8::1]:443`.
    pub fn parse(s: &str) -> Result<Spec, String> {
        let t = s.trim();
        if let Ok(id) = t.trim_start_matches('#').parse::<u64>() {
            return Ok(Spec::Id(id));
        }
        t.parse::<SocketAddr>().map(Spec::Endpoint).map_err(|_| {
            format!("{s:?}: give a connection id (as `id` in the JSON report) or an address and port (10.0.0.5:54110, [2001:db8::1]:443)")
        })
    }

    fn matches(&self, id: u64, client: SocketAddr, server: SocketAddr) -> bool {
        match *self {
            Spec::Id(n) => n == id,
            Spec::Endpoint(a) => a == client || a == server,
        }
    }
}

impl std::fmt::Display for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Spec::Id(n) => write!(f, "{n}"),
            Spec::Endpoint(a) => write!(f, "{a}"),
        }
    }
}

/// Other connections that match, listed so that one can be chosen.
const MAX_CANDIDATES: usize = 20;
/// Findings kept per connection.
const MAX_FINDINGS: usize = 1000;

/// Keeps the first matching connection's record, a short list of the others that match, and
/// the findings of all of them.
pub struct Pick {
    spec: Spec,
    first: Option<ConnectionRecord>,
    others: Vec<(u64, SocketAddr, SocketAddr, Timestamp)>,
    more: u64,
    findings: Vec<Finding>,
}

impl Pick {
    /// Looks for `spec`.
    pub fn new(spec: Spec) -> Pick {
        Pick {
            spec,
            first: None,
            others: Vec::new(),
            more: 0,
            findings: Vec::new(),
        }
    }
}

impl Sink for Pick {
    fn record(&mut self, rec: &ConnectionRecord) {
        if !self.spec.matches(rec.id, rec.client, rec.server) {
            return;
        }
        match &self.first {
            None => self.first = Some(rec.clone()),
            Some(_) if self.others.len() < MAX_CANDIDATES => self
                .others
                .push((rec.id, rec.client, rec.server, rec.start)),
            Some(_) => self.more += 1,
        }
    }

    fn finding(&mut self, f: &Finding) {
        if self.spec.matches(f.connection, f.client, f.server) && self.findings.len() < MAX_FINDINGS
        {
            self.findings.push(f.clone());
        }
    }
}

/// Writes the connection, or says why not: none matches (an error), or several do (a usage
/// error, with their ids).
pub fn finish(
    pick: Pick,
    a: &Analysis,
    names: &FrameNamer,
    r: &ReportArgs,
    evidence: Evidence<'_>,
) -> Result<std::process::ExitCode> {
    let Some(rec) = pick.first else {
        bail!(
            "no connection in the capture is {} {} ({} connections; their ids are in --format json)",
            match pick.spec {
                Spec::Id(_) => "number",
                Spec::Endpoint(_) => "at",
            },
            pick.spec,
            a.flows.connections
        );
    };
    if !pick.others.is_empty() {
        let mut msg = format!(
            "{} connections are at {}; choose one by its id:\n",
            1 + pick.others.len() as u64 + pick.more,
            pick.spec
        );
        let mut all = pick.others.clone();
        all.push((rec.id, rec.client, rec.server, rec.start));
        all.sort_unstable_by_key(|c| c.0);
        for (id, c, s, t) in all {
            msg.push_str(&format!(
                "  --connection {id:<8} {c} → {s}, from {}\n",
                t.rfc3339()
            ));
        }
        if pick.more > 0 {
            msg.push_str(&format!("  … and {} more\n", pick.more));
        }
        clap::Error::raw(clap::error::ErrorKind::ValueValidation, msg).exit();
    }
    // Its packets: the last ones, as many as a quarter of the budget holds (a row is about
    // 200 bytes with its summary).
    let max_rows = (r.memory / 4 / 200).max(evidence::MAX_ROWS);
    let target = Target {
        id: rec.id,
        client: rec.client,
        server: rec.server,
        start: rec.start,
        end: rec.end,
        ladder: true,
        max_rows,
    };
    let ladder = match second_pass_inputs(&evidence).and_then(|inputs| {
        evidence::gather(
            inputs,
            &Shape::of(&a.inputs),
            [Ok(target)],
            a.packets.max_behind,
            None,
            evidence.narrowing(a),
        )
        .context("reading the connection's packets")
    }) {
        Ok(mut g) => g.ladders.remove(&rec.id),
        Err(e) => {
            eprintln!("resetscope: warning: {e:#}");
            None
        }
    };
    let mut findings: Vec<&Finding> = pick
        .findings
        .iter()
        .filter(|f| f.connection == rec.id)
        .collect();
    findings.sort_by_key(|f| (f.time, f.close_frame));
    let view = ConnectionView {
        record: &rec,
        findings: &findings,
        ladder: ladder.as_ref(),
    };
    let mut out = open_output(&r.output)?;
    match r.format {
        Format::Json | Format::Ndjson => {
            resetscope::escape::json_to_writer(&mut out, &connection::json(&view))
                .context("writing the connection")?;
            out.write_all(b"\n").context("writing the connection")?;
        }
        _ => out
            .write_all(connection::text(&view, names).as_bytes())
            .context("writing the connection")?,
    }
    out.flush().context("writing the connection")?;
    Ok(std::process::ExitCode::SUCCESS)
}
